// bench_overlap: how much of a training step's communication is hidden behind its compute, for
// data parallelism (each gradient's all-reduce started during backward, Note [Overlapped gradient
// reduction] in nn/parallel.h) and fully_shard (prefetched all-gathers, in-flight reduce-scatters).
// One step (forward + backward, gradients reduced and waited for) of a stack of MLP blocks, timed in
// lock step four ways: the step with overlap, the same step without, the same compute alone (one
// rank, full parameters, its rows, no communication), and the same communication alone as raw MPI on
// preallocated buffers. Counters: hidden = (compute + communication - step) / communication, for the
// overlapped and the plain step (1: all communication hidden; 0: none; below 0: the step costs more
// than its parts), and exposed_us: how long the step still waits for communication after backward
// returns (DP: sync_grads and the reads of the gradients; FSDP: the last reduce-scatters). The
// exposed tail depends much less on the machine's load than the difference of three wall times, so
// 1 - exposed_us / exposed_no_overlap_us is the steadier reading of DP's hidden fraction. Run under
// mpirun (2 ranks, one thread each); only rank 0 reports.
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "bench_mpi_main.h"
#include "distributed/collectives.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "nn/nn.h"
#include "nn/optim_dist.h"
#include "ops/ops.h"

namespace {

using namespace weft;
namespace par = weft::nn::parallel;

constexpr int64_t kWidth = 256, kBlocks = 4, kRowsPerRank = 64;

std::shared_ptr<nn::Sequential> make_stack() {
  manual_seed(3);
  auto m = std::make_shared<nn::Sequential>();
  for (int64_t i = 0; i < kBlocks; ++i) m->push_back(std::make_shared<nn::MLP>(kWidth, 4 * kWidth, kWidth));
  return m;
}

// overlap: prefetched gathers and reduce-scatters left in flight; probe: the progress probe at each
// gradient (Note [Progress of in-flight reductions]).
// mp: fully_shard's mixed precision (Note [FSDP mixed precision]).
std::shared_ptr<par::FullyShardedModule> sharded_stack(const dist::DeviceMesh& mesh, bool overlap, bool probe = true,
                                                       par::MixedPrecisionPolicy mp = {}) {
  par::FullyShardOptions options{
      .prefetch = overlap, .async_reduce = overlap, .advance_in_flight = probe, .mp_policy = mp};
  auto m = make_stack();
  for (int64_t i = 0; i < kBlocks; ++i) par::fully_shard((*m)[size_t(i)], mesh, options);
  return par::fully_shard(m, mesh, options);
}

// The communication a step does, as raw MPI on preallocated buffers.
struct RawCommunication {
  struct Param {
    std::vector<int> counts, displs;
    std::vector<float> shard, full, sum;
  };
  std::vector<Param> params;

  explicit RawCommunication(const nn::Module& model) {
    const int k = dist::world_size(), me = dist::world_rank();
    for (const Tensor& p : model.parameters()) {
      Param q;
      int64_t inner = p.numel() / p.size(0), at = 0;
      for (int64_t s : dist::chunk_sizes(p.size(0), k)) {
        q.counts.push_back(int(s * inner));
        q.displs.push_back(int(at));
        at += s * inner;
      }
      q.shard.assign(size_t(q.counts[size_t(me)]), 1.0f);
      q.full.assign(size_t(p.numel()), 1.0f);
      q.sum.assign(size_t(p.numel()), 1.0f);
      params.push_back(std::move(q));
    }
  }
  // Each collective is issued in the non-blocking form and polled as weft's own waits poll (MPI_Test,
  // spinning 50 us before yielding the core; distributed/watchdog.cpp). On this shared, oversubscribed
  // machine the blocking forms, or MPI_Wait, or a pure MPI_Test spin took 4-8x as long as weft's
  // collectives on the same buffers (a scheduler time slice lost per collective), which would
  // count as communication weft hid.
  static void wait(MPI_Request r) {
    const double t0 = MPI_Wtime();
    for (int done = 0; !done;) {
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);
      if (!done && MPI_Wtime() - t0 > 50e-6) sched_yield();
    }
  }
  void gather() {
    for (Param& q : params) {
      MPI_Request r;
      MPI_Iallgatherv(q.shard.data(), int(q.shard.size()), MPI_FLOAT, q.full.data(), q.counts.data(),
                      q.displs.data(), MPI_FLOAT, MPI_COMM_WORLD, &r);
      wait(r);
    }
  }
  // FSDP, per parameter: an all_gather in forward, another in backward (resharded after forward)
  // and a reduce_scatter of its gradient.
  void fsdp_step() {
    gather();
    gather();
    for (Param& q : params) {
      MPI_Request r;
      MPI_Ireduce_scatter(q.full.data(), q.shard.data(), q.counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
      wait(r);
    }
  }
  // Data parallel: an all_reduce of every gradient.
  void dp_step() {
    for (Param& q : params) {
      MPI_Request r;
      MPI_Iallreduce(q.full.data(), q.sum.data(), int(q.full.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
      wait(r);
    }
  }
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Times the four cases {overlapped step, plain step, compute, communication}, and any `extra`
// step cases after them, in lock step and sets the counters. See Note [Lock step] in bench_mpi.cpp:
// all run in the same iteration (rotating which goes first), each after a barrier, the slowest
// rank's time counted, medians reported. A step case returns the time it waited for communication
// after its backward (its exposed tail; 0 if it does not say), reported as exposed_us and
// exposed_no_overlap_us (an extra case `name`: name_us and exposed_name_us).
// The lock-step rounds alone: per case its wall times, then per case its exposed tails.
std::vector<std::vector<double>> timed_rounds(benchmark::State& state,
                                              const std::vector<std::function<double()>>& cases) {
  for (const auto& c : cases) c();  // warm (and FSDP's first forward records the order prefetch follows)
  const size_t n = cases.size();
  std::vector<std::vector<double>> times(2 * n);
  size_t round = 0;
  for (auto _ : state) {
    std::vector<double> t(2 * n);  // wall times, then exposed tails
    for (size_t j = 0; j < n; ++j) {
      size_t c = (j + round) % n;
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      t[n + c] = cases[c]();
      t[c] = MPI_Wtime() - t0;
    }
    ++round;
    MPI_Allreduce(MPI_IN_PLACE, t.data(), int(t.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    state.SetIterationTime(t[0]);
    for (size_t c = 0; c < t.size(); ++c) times[c].push_back(t[c]);
  }
  return times;
}

void lock_step(benchmark::State& state, const std::vector<std::function<double()>>& cases,
               const std::vector<std::string>& extra = {}) {
  const size_t n = cases.size();
  const std::vector<std::vector<double>> times = timed_rounds(state, cases);
  const double step = median(times[0]), no_overlap = median(times[1]), comp = median(times[2]),
               comm = median(times[3]);
  state.counters["step_us"] = step * 1e6;
  state.counters["no_overlap_us"] = no_overlap * 1e6;
  state.counters["compute_us"] = comp * 1e6;
  state.counters["comm_us"] = comm * 1e6;
  state.counters["ratio"] = no_overlap > 0 ? step / no_overlap : 0.0;
  state.counters["hidden"] = comm > 0 ? (comp + comm - step) / comm : 0.0;
  state.counters["hidden_no_overlap"] = comm > 0 ? (comp + comm - no_overlap) / comm : 0.0;
  state.counters["exposed_us"] = median(times[n]) * 1e6;
  state.counters["exposed_no_overlap_us"] = median(times[n + 1]) * 1e6;
  for (size_t e = 0; e < extra.size(); ++e) {
    state.counters[extra[e] + "_us"] = median(times[4 + e]) * 1e6;
    state.counters["exposed_" + extra[e] + "_us"] = median(times[n + 4 + e]) * 1e6;
  }
}

// One step of a data-parallel or fully sharded stack: forward, backward, then every gradient at
// the parameter's placements with its data present, as the optimizer needs it. Returns how long
// that last part waited: the exposed tail. sync_grads all-reduces the P(sum) gradients of data
// parallelism without overlap (coalesced into one all_reduce, as an optimizer step does); with
// overlap they are Replicate already, and fully_shard's are Shard(0): it moves nothing, and the
// wait collects what is still in flight.
double step(nn::UnaryModule& m, const Tensor& x) {
  dist::DTensor out(m.forward(x));
  out.to_local().sum().backward();
  const double t0 = MPI_Wtime();
  const std::vector<Tensor> params = m.parameters();
  optim::sync_grads(params);
  for (const Tensor& p : params) dist::funcol::wait_tensor(dist::DTensor(p.grad()).spec().local);
  const double exposed = MPI_Wtime() - t0;
  m.zero_grad();
  return exposed;
}

// What both benchmarks compare a step with: the batch, the same compute alone (one rank, full
// parameters, its rows, no communication) and the raw communication's buffers.
struct Baselines {
  int64_t k = dist::world_size();
  dist::DeviceMesh mesh = dist::init_device_mesh({k}, {"dp"});
  std::shared_ptr<nn::Sequential> single = make_stack();
  RawCommunication raw{*single};
  Tensor x = randn({kRowsPerRank * k, kWidth});
  Tensor local_x = x.narrow(0, 0, kRowsPerRank).contiguous();

  double compute() {
    single->forward(local_x).sum().backward();
    single->zero_grad();
    return 0.0;
  }
};

// fully_shard, overlapped (prefetch, reduce-scatters in flight, the progress probe), plain, and
// overlapped without the probe (the extra case no_probe: the probe's paired baseline).
void BM_fsdp_step(benchmark::State& state) {
  Baselines b;
  auto overlapped = sharded_stack(b.mesh, true), plain = sharded_stack(b.mesh, false),
       unprobed = sharded_stack(b.mesh, true, /*probe=*/false);
  lock_step(state,
            {[&] { return step(*overlapped, b.x); }, [&] { return step(*plain, b.x); }, [&] { return b.compute(); },
             [&] {
               b.raw.fsdp_step();
               return 0.0;
             },
             [&] { return step(*unprobed, b.x); }},
            {"no_probe"});
}

// fully_shard's mixed precision against float32, all overlapped, in lock step: param_dtype bfloat16
// with float32 reduce-scatters (bf16_f32reduce) and with bfloat16 ones (bf16; PyTorch's default
// reduce_dtype, whose cast back to float32 waits for each reduction). The bytes counters are
// per rank and step, what each collective's output holds (fully_shard's, by construction:
// test_mpi_fsdp_mp checks that the gathered parameters are bfloat16): two all_gathers per parameter
// (forward, and again for backward after resharding) and one reduce_scatter. On a CPU without
// AVX512-BF16 the bfloat16 matmuls are widened to float32, so the time ratio is the
// communication saved less the casts added, not bfloat16 compute: compute_bf16_us against
// compute_f32_us (one rank's rows, no communication) shows that cost alone.
void BM_fsdp_mp_step(benchmark::State& state) {
  Baselines b;
  auto f32 = sharded_stack(b.mesh, true);
  auto bf16_f32reduce = sharded_stack(b.mesh, true, true, {.param_dtype = kBFloat16, .reduce_dtype = kFloat32});
  auto bf16 = sharded_stack(b.mesh, true, true, {.param_dtype = kBFloat16});
  // The compute alone in bfloat16: one rank's rows through a bfloat16 copy of the stack.
  auto single16 = make_stack();
  single16->to(kBFloat16);
  Tensor local_x16 = b.local_x.to(kBFloat16);
  const std::vector<std::vector<double>> times = timed_rounds(
      state, {[&] { return step(*f32, b.x); }, [&] { return step(*bf16_f32reduce, b.x); },
              [&] { return step(*bf16, b.x); }, [&] { return b.compute(); },
              [&] {
                single16->forward(local_x16).sum().backward();
                single16->zero_grad();
                return 0.0;
              }});
  const double t32 = median(times[0]), t16 = median(times[1]), t16r = median(times[2]);
  state.counters["compute_f32_us"] = median(times[3]) * 1e6;
  state.counters["compute_bf16_us"] = median(times[4]) * 1e6;
  state.counters["f32_us"] = t32 * 1e6;
  state.counters["bf16_f32reduce_us"] = t16 * 1e6;
  state.counters["bf16_us"] = t16r * 1e6;
  state.counters["ratio_bf16_f32reduce"] = t16 / t32;  // below 1: faster than float32
  state.counters["ratio_bf16"] = t16r / t32;
  double elements = 0;
  for (const Tensor& p : b.single->parameters()) elements += double(p.numel());
  state.counters["gather_MB_f32"] = 2 * elements * 4 / 1e6;
  state.counters["gather_MB_bf16"] = 2 * elements * 2 / 1e6;
  state.counters["reduce_MB_f32"] = elements * 4 / 1e6;
  state.counters["reduce_MB_bf16"] = elements * 2 / 1e6;
}

// Data parallel: with overlap the all-reduces were started during backward; without, sync_grads
// all-reduces the gradients after it.
void BM_dp_step(benchmark::State& state) {
  Baselines b;
  auto overlapped = par::data_parallel(make_stack(), b.mesh, /*overlap_grad_reduce=*/true);
  auto plain = par::data_parallel(make_stack(), b.mesh, /*overlap_grad_reduce=*/false);
  lock_step(state, {[&] { return step(*overlapped, b.x); }, [&] { return step(*plain, b.x); },
                    [&] { return b.compute(); }, [&] {
                      b.raw.dp_step();
                      return 0.0;
                    }});
}

}  // namespace

int main(int argc, char** argv) {
  dist::Runtime runtime(argc, argv);
  bench::set_threads(1);
  using Case = std::pair<const char*, void (*)(benchmark::State&)>;
  for (const auto& [name, fn] : {Case{"BM_dp_step", BM_dp_step}, Case{"BM_fsdp_step", BM_fsdp_step},
                                {"BM_fsdp_mp_step", BM_fsdp_mp_step}})
    benchmark::RegisterBenchmark(name, fn)->Iterations(30)->UseManualTime()->Unit(benchmark::kMillisecond);
  return bench::run_on_every_rank(argc, argv);
}
