// bench_fsdp: how much of fully_shard's communication is hidden behind compute. One training step
// (forward + backward) of a stack of MLP blocks, each its own FSDP unit, timed in lock step four
// ways: FSDP with prefetch and in-flight reduce-scatters, FSDP with neither (no overlap), the same
// compute alone (one rank, full parameters, no communication), and the same communication alone
// (raw MPI all_gather / reduce_scatter of every parameter on preallocated buffers). Counters:
// hidden = (compute + communication - step) / communication, for the overlapped and the plain
// step. Run under mpirun (2 ranks, one thread each); only rank 0 reports.
#include <mpi.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "nn/nn.h"
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

std::shared_ptr<par::FullyShardedModule> sharded_stack(const dist::DeviceMesh& mesh, bool overlap) {
  par::FullyShardOptions options{.prefetch = overlap, .async_reduce = overlap};
  auto m = make_stack();
  for (int64_t i = 0; i < kBlocks; ++i) par::fully_shard((*m)[size_t(i)], mesh, options);
  return par::fully_shard(m, mesh, options);
}

// The communication FSDP does in one step, as raw MPI: per parameter, an all_gather in forward,
// another in backward (resharded after forward) and a reduce_scatter of its gradient.
struct RawCommunication {
  struct Param {
    std::vector<int> counts, displs;
    std::vector<float> shard, full;
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
      params.push_back(std::move(q));
    }
  }
  void gather() {
    for (Param& q : params)
      MPI_Allgatherv(q.shard.data(), int(q.shard.size()), MPI_FLOAT, q.full.data(), q.counts.data(),
                     q.displs.data(), MPI_FLOAT, MPI_COMM_WORLD);
  }
  void step() {
    gather();
    gather();
    for (Param& q : params)
      MPI_Reduce_scatter(q.full.data(), q.shard.data(), q.counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// See Note [Lock step] in bench_mpi.cpp: the four are timed in the same iteration (rotating which
// goes first), each after a barrier, the slowest rank's time counted, medians reported.
void BM_fsdp_step(benchmark::State& state) {
  const int64_t k = dist::world_size();
  auto mesh = dist::init_device_mesh({k}, {"dp"});
  auto overlapped = sharded_stack(mesh, true), plain = sharded_stack(mesh, false);
  auto single = make_stack();
  RawCommunication raw(*single);
  Tensor x = randn({kRowsPerRank * k, kWidth});
  Tensor local_x = x.narrow(0, 0, kRowsPerRank).contiguous();
  auto fsdp_step = [&](par::FullyShardedModule& m) {
    dist::DTensor out(m.forward(x));
    out.to_local().sum().backward();
    for (const Tensor& p : m.parameters()) dist::funcol::wait_tensor(dist::DTensor(p.grad()).spec().local);
    m.zero_grad();
  };
  auto compute = [&] {
    single->forward(local_x).sum().backward();
    single->zero_grad();
  };
  std::vector<std::function<void()>> cases = {[&] { fsdp_step(*overlapped); }, [&] { fsdp_step(*plain); },
                                              compute, [&] { raw.step(); }};
  for (auto& c : cases) c();  // warm, and the first forward records the order prefetch follows
  std::vector<std::vector<double>> times(cases.size());
  size_t round = 0;
  for (auto _ : state) {
    std::vector<double> t(cases.size());
    for (size_t j = 0; j < cases.size(); ++j) {
      size_t c = (j + round) % cases.size();
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      cases[c]();
      t[c] = MPI_Wtime() - t0;
    }
    ++round;
    MPI_Allreduce(MPI_IN_PLACE, t.data(), int(t.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    state.SetIterationTime(t[0]);
    for (size_t c = 0; c < t.size(); ++c) times[c].push_back(t[c]);
  }
  const double step = median(times[0]), no_overlap = median(times[1]), comp = median(times[2]),
               comm = median(times[3]);
  state.counters["step_us"] = step * 1e6;
  state.counters["no_overlap_us"] = no_overlap * 1e6;
  state.counters["compute_us"] = comp * 1e6;
  state.counters["comm_us"] = comm * 1e6;
  state.counters["ratio"] = no_overlap > 0 ? step / no_overlap : 0.0;
  state.counters["hidden"] = comm > 0 ? (comp + comm - step) / comm : 0.0;
  state.counters["hidden_no_overlap"] = comm > 0 ? (comp + comm - no_overlap) / comm : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Runtime runtime(argc, argv);
  bench::set_threads(1);
  benchmark::RegisterBenchmark("BM_fsdp_step", BM_fsdp_step)
      ->Iterations(20)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  // Only rank 0 writes: the other ranks drop --benchmark_out* and report nothing.
  std::vector<char*> args(argv, argv + argc);
  if (dist::world_rank() != 0)
    std::erase_if(args, [](const char* a) { return std::string_view(a).starts_with("--benchmark_out"); });
  int nargs = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&nargs, args.data());
  if (dist::world_rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    struct NullReporter : benchmark::BenchmarkReporter {
      bool ReportContext(const Context&) override { return true; }
      void ReportRuns(const std::vector<Run>&) override {}
    } null_reporter;
    benchmark::RunSpecifiedBenchmarks(&null_reporter);
  }
  benchmark::Shutdown();
  return 0;
}
