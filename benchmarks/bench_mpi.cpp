// bench_mpi: weft's collectives, redistribute, local_map and a tensor-parallel MLP layer against raw
// MPI on preallocated buffers, the body called directly, and one rank computing alone. Run under
// mpirun (2 ranks, one thread each); every rank runs every case in lock step, only rank 0 reports.
#include <mpi.h>
#include <sys/mman.h>

#include <cstdlib>
#include <ctime>

#include <algorithm>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "bench_mpi_main.h"
#include "autograd/engine.h"
#include "distributed/collectives.h"
#include "distributed/dtensor.h"
#include "distributed/local_map.h"
#include "distributed/runtime.h"
#include "distributed/watchdog.h"
#include "nn/nn.h"

namespace {

using namespace weft::dist;
using weft::Tensor;

// Made on first use (collective: every rank reaches it in the same case) and never destroyed, as
// its communicators must not be freed after MPI_Finalize.
DeviceMesh& world_mesh() {
  static DeviceMesh* mesh = new DeviceMesh({static_cast<int64_t>(world_size())});
  return *mesh;
}

// Note [Lock step]
// The machine is shared, so wall times drift by multiples from one second to the next. Each case
// therefore times weft and its baseline in the SAME iteration, alternating which goes first, and
// reports medians: what a drift adds, it adds to both. Every timed call starts after a barrier and is
// timed with MPI_Wtime; a communicating case takes the slowest rank's time (what it costs the job),
// a local one rank 0's. Iteration counts are fixed (->Iterations) so that every rank issues exactly
// the same collectives. The case's own time is weft's (SetIterationTime); counters carry both
// medians, ratio = weft / baseline and extra_us = weft - baseline.
template <class B, class W>
void paired(benchmark::State& state, B&& baseline, W&& weft, bool communicates = true) {
  baseline();  // warm: buffers cached, primitives made, pages touched
  weft();
  auto timed = [](auto& f) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    f();
    return MPI_Wtime() - t0;
  };
  std::vector<double> tb, tw;
  for (auto _ : state) {
    double t[2];
    if (tb.size() % 2 == 0) {
      t[0] = timed(baseline);
      t[1] = timed(weft);
    } else {
      t[1] = timed(weft);
      t[0] = timed(baseline);
    }
    if (communicates) MPI_Allreduce(MPI_IN_PLACE, t, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    else MPI_Bcast(t, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    state.SetIterationTime(t[1]);
    tb.push_back(t[0]);
    tw.push_back(t[1]);
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  const double b = median(tb), w = median(tw);
  state.counters["baseline_us"] = b * 1e6;
  state.counters["weft_us"] = w * 1e6;
  state.counters["ratio"] = b > 0 ? w / b : 0.0;
  state.counters["extra_us"] = (w - b) * 1e6;
}

// ---------------------------------------------------------------- all_reduce / all_gather

// The baselines' buffers: n floats, allocated once and touched, on huge pages from 2 MiB up as weft's
// allocator asks for (else the baseline pays TLB misses weft does not, and looks slow).
struct RawBuffer {
  explicit RawBuffer(int64_t n) : size(n) {
    const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 4095) / 4096 * 4096;
    const bool huge = bytes >= (size_t(2) << 20);
    data = static_cast<float*>(std::aligned_alloc(huge ? size_t(2) << 20 : 4096, bytes));
    if (huge) madvise(data, bytes, MADV_HUGEPAGE);
    std::fill(data, data + n, 1.0f);
  }
  ~RawBuffer() { std::free(data); }
  RawBuffer(const RawBuffer&) = delete;
  RawBuffer& operator=(const RawBuffer&) = delete;
  int64_t size;
  float* data;
};

// Sum of n floats: MPI_Allreduce between preallocated buffers vs funcol::all_reduce.
void BM_all_reduce(benchmark::State& state) {
  const int64_t n = state.range(0);
  RawBuffer in(n), out(n);
  Tensor x = weft::ones({n});
  paired(
      state, [&] { MPI_Allreduce(in.data, out.data, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); },
      [&] { benchmark::DoNotOptimize(funcol::all_reduce(x, ReduceOp::Sum, world_mesh()).raw_data()); });
}

// The debug mode's cost per collective (WEFT_DEBUG_COLLECTIVES=1: a fingerprint all_gather first):
// funcol::all_reduce with the check on against the same call with it off.
void BM_all_reduce_debug(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor x = weft::ones({n});
  auto call = [&](bool debug) {
    set_debug_collectives(debug);
    benchmark::DoNotOptimize(funcol::all_reduce(x, ReduceOp::Sum, world_mesh()).raw_data());
    set_debug_collectives(false);
  };
  paired(state, [&] { call(false); }, [&] { call(true); });
}

// The all-reduce algorithm on a small group (Note [Ring all-reduce for small groups] in
// distributed/collectives.cpp): funcol::all_reduce of n floats with Open MPI's default choice
// (binomial below 4 ranks; baseline) against the ring weft selects (weft).
void BM_all_reduce_ring(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor x = weft::ones({n});
  auto call = [&](bool ring) {
    detail::set_small_group_ring(ring);
    benchmark::DoNotOptimize(funcol::all_reduce(x, ReduceOp::Sum, world_mesh()).raw_data());
    detail::set_small_group_ring(true);
  };
  paired(state, [&] { call(false); }, [&] { call(true); });
}

// n floats from every rank. weft is given the sizes, as a caller that knows them would (else it
// exchanges them first).
void BM_all_gather(benchmark::State& state) {
  const int64_t n = state.range(0);
  RawBuffer in(n), out(n * world_size());
  Tensor x = weft::ones({n});
  std::vector<int64_t> sizes(world_size(), n);
  paired(
      state, [&] { MPI_Allgather(in.data, n, MPI_FLOAT, out.data, n, MPI_FLOAT, MPI_COMM_WORLD); },
      [&] { benchmark::DoNotOptimize(funcol::all_gather(x, 0, world_mesh(), 0, sizes).raw_data()); });
}

// ---------------------------------------------------------------- redistribute of n global floats

// S(0) -> R is an all_gather of n / k floats per rank.
void BM_redistribute_s0_r(benchmark::State& state) {
  const int64_t n = state.range(0), k = world_size();
  RawBuffer in(n / k), out(n);
  DTensor x = make_dtensor(weft::ones({n / k}), world_mesh(), {Shard(0)}, {n});
  paired(
      state, [&] { MPI_Allgather(in.data, n / k, MPI_FLOAT, out.data, n / k, MPI_FLOAT, MPI_COMM_WORLD); },
      [&] { benchmark::DoNotOptimize(x.redistribute({Replicate()}).to_local().raw_data()); });
}

// P -> R is an all_reduce of n floats.
void BM_redistribute_p_r(benchmark::State& state) {
  const int64_t n = state.range(0);
  RawBuffer in(n), out(n);
  DTensor x = make_dtensor(weft::ones({n}), world_mesh(), {Partial()}, {n});
  paired(
      state, [&] { MPI_Allreduce(in.data, out.data, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); },
      [&] { benchmark::DoNotOptimize(x.redistribute({Replicate()}).to_local().raw_data()); });
}

// ---------------------------------------------------------------- local_map overhead

// A body with no communication on 16-element shards: y = a * b + a.
Tensor tiny_body(const Tensor& a, const Tensor& b) { return weft::add(weft::mul(a, b), a); }

// backward 0: forward only, 1: forward + backward from the output with a given gradient (so that
// neither side pays for a sum or a to_local, which are not local_map's); types: check_types (the
// SPMD types, docs/spmd_types.md) off or on. Baseline: the body called on the local tensors
// directly. Both sides accumulate into existing .grads, in place.
void BM_local_map(benchmark::State& state) {
  const bool backward = state.range(0) != 0;
  const bool types = state.range(1) != 0;
  Tensor a = weft::rand({16}, weft::requires_grad()), b = weft::rand({16}, weft::requires_grad());
  Tensor dy = weft::rand({16});
  DTensor A = make_dtensor(a.detach(), world_mesh(), {Shard(0)}, {16 * world_size()});
  DTensor B = make_dtensor(b.detach(), world_mesh(), {Shard(0)}, {16 * world_size()});
  DTensor dY = make_dtensor(dy, world_mesh(), {Shard(0)}, {16 * world_size()});
  A.requires_grad_();
  B.requires_grad_();
  auto mapped = local_map(tiny_body, {.out_placements = {Placements{Shard(0)}},
                                      .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Shard(0)}},
                                      .even_shards = true,
                                      .check_types = types});
  paired(
      state,
      [&] {
        Tensor y = tiny_body(a, b);
        if (backward) weft::autograd::backward({y}, {dy});
        benchmark::DoNotOptimize(y.impl());
      },
      [&] {
        DTensor y = mapped(A, B);
        if (backward) weft::autograd::backward({y}, {dY});
        benchmark::DoNotOptimize(y.impl());
      },
      /*communicates=*/false);
}

// The SPMD types' cost per op inside a body: 32 ops on 16-element shards (a Megatron-like mix of
// Varying, Invariant-turned-Replicate and Partial values), forward + backward. Baseline: the same
// local_map with check_types off; per_op_ns is the difference over the 32 ops.
constexpr int kTypedOps = 32;
Tensor typed_body(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor h = x;
  for (int i = 0; i < kTypedOps / 4; ++i) h = weft::add(weft::mul(weft::tanh(h), w), weft::neg(b));  // 4 ops
  return h;
}

void BM_local_map_types_per_op(benchmark::State& state) {
  Tensor x = weft::rand({16}), w = weft::rand({16}), b = weft::rand({16});
  DTensor X = make_dtensor(x, world_mesh(), {Shard(0)}, {16 * world_size()});
  DTensor W = make_dtensor(w, world_mesh(), {Replicate()}, {16});
  DTensor B = make_dtensor(b, world_mesh(), {Replicate()}, {16});
  X.requires_grad_();
  W.requires_grad_();
  B.requires_grad_();
  auto options = [](bool types) {
    // Declared grad placements: both variants run the same backward (derived ones would match them).
    return LocalMapOptions{.out_placements = {Placements{Shard(0)}},
                           .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()},
                                                                Placements{Partial()}},
                           .even_shards = true,
                           .check_types = types};
  };
  auto off = local_map(typed_body, options(false)), on = local_map(typed_body, options(true));
  auto run = [&](auto& mapped) {
    Tensor y = mapped(X, W, B).to_local();
    y.sum().backward();
    benchmark::DoNotOptimize(y.raw_data());
  };
  paired(state, [&] { run(off); }, [&] { run(on); }, /*communicates=*/false);
  state.counters["per_op_ns"] = state.counters["extra_us"] * 1e3 / kTypedOps;
}

// ---------------------------------------------------------------- tensor-parallel MLP layer
// y = gelu(x W1^T + b1) W2^T + b2, x [32, 1024], hidden 4096; loss = mse(y, t); forward + backward.
constexpr int64_t kBatch = 32, kModel = 1024, kHidden = 4096;

struct MlpData {  // the full weights and data, the same on every rank (seeded)
  Tensor w1, b1, w2, b2, x, target;
  MlpData() {
    weft::Generator gen(7);
    w1 = weft::randn({kHidden, kModel}, {}, &gen).mul_(0.02);
    b1 = weft::zeros({kHidden});
    w2 = weft::randn({kModel, kHidden}, {}, &gen).mul_(0.02);
    b2 = weft::zeros({kModel});
    x = weft::randn({kBatch, kModel}, {}, &gen);
    target = weft::randn({kBatch, kModel}, {}, &gen);
  }
};

// Baseline: each rank computes the whole layer alone (both ranks at once, so memory bandwidth is
// shared as in the parallel case). weft: column-parallel first Linear (W1, b1 sharded by rows, S(0)),
// row-parallel second (W2 sharded by columns, S(1)), the partial products summed by
// reduce_from_parallel_region (all_reduce forward, identity backward): one all_reduce of [32, 1024]
// per step. speedup = one-rank time / tensor-parallel time.
void BM_mlp_tensor_parallel(benchmark::State& state) {
  MlpData m;
  Tensor w1 = m.w1.clone().requires_grad_(), b1 = m.b1.clone().requires_grad_();
  Tensor w2 = m.w2.clone().requires_grad_(), b2 = m.b2.clone().requires_grad_();
  DeviceMesh& mesh = world_mesh();
  const int64_t k = world_size(), r = world_rank(), h = kHidden / k;
  DTensor W1 = make_dtensor(m.w1.narrow(0, r * h, h).contiguous(), mesh, {Shard(0)}, {kHidden, kModel});
  DTensor B1 = make_dtensor(m.b1.narrow(0, r * h, h).contiguous(), mesh, {Shard(0)}, {kHidden});
  DTensor W2 = make_dtensor(m.w2.narrow(1, r * h, h).contiguous(), mesh, {Shard(1)}, {kModel, kHidden});
  DTensor B2 = make_dtensor(m.b2, mesh, {Replicate()}, {kModel});
  DTensor X = make_dtensor(m.x, mesh, {Replicate()}, {kBatch, kModel});
  for (DTensor* p : {&W1, &B1, &W2, &B2}) p->requires_grad_();
  auto column = local_map(
      [](const Tensor& x, const Tensor& w, const Tensor& b) { return weft::gelu(weft::linear(x, w, b)); },
      {.out_placements = {Placements{Shard(1)}},
       .in_placements = PlacementsList{Placements{Replicate()}, Placements{Shard(0)}, Placements{Shard(0)}},
       .even_shards = true});
  auto row = local_map(
      [](const Tensor& hs, const Tensor& w, const Tensor& b, const DeviceMesh& dm) {
        return weft::add(funcol::reduce_from_parallel_region(weft::linear(hs, w), dm), b);
      },
      {.out_placements = {Placements{Replicate()}},
       .in_placements = PlacementsList{Placements{Shard(1)}, Placements{Shard(1)}, Placements{Replicate()}, std::nullopt},
       .even_shards = true});
  paired(
      state,
      [&] {
        weft::mse_loss(weft::linear(weft::gelu(weft::linear(m.x, w1, b1)), w2, b2), m.target).backward();
        for (Tensor* p : {&w1, &b1, &w2, &b2}) p->set_grad(Tensor());
      },
      [&] {
        DTensor y = row(column(X, W1, B1), W2, B2, mesh);
        weft::mse_loss(y.to_local(), m.target).backward();
        for (DTensor* p : {&W1, &B1, &W2, &B2}) p->set_grad(Tensor());
      });
  state.counters["speedup"] = 1.0 / state.counters["ratio"];
}

// ---------------------------------------------------------------- GPT training step

// Note [CPU-time speedup]
// On this shared machine a rank is often descheduled, and a tensor-parallel step waits at every
// collective for the slower rank: its wall time measures the scheduler about as much as the code.
// Each rank runs one thread, so the process's CPU time of a step is what the step would take on a
// core of its own (waits included, as weft's waits spin before yielding; time spent descheduled
// excluded). speedup_cpu = the single-process step's CPU time / the tensor-parallel step's, each the
// median over the iterations of the slowest rank's median.
struct CpuTimer {
  static double now() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
  }
  explicit CpuTimer(std::vector<double>& out) : out(out), start(now()) {}
  ~CpuTimer() { out.push_back(now() - start); }
  std::vector<double>& out;
  double start;
};

double cpu_speedup(std::vector<double> single, std::vector<double> parallel) {
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  double m[2] = {median(std::move(single)), median(std::move(parallel))};
  MPI_Allreduce(MPI_IN_PLACE, m, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m[1] > 0 ? m[0] / m[1] : 0.0;
}

// The slowest rank's median of v.
double slowest_median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  double m = v.empty() ? 0.0 : v[v.size() / 2];
  MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m;
}

// The GPT of BM_gpt_step and its batch (the same on every rank), made from one seed.
struct GptCase {
  static constexpr weft::nn::GPTConfig config{.vocab_size = 256, .block_size = 64, .n_layer = 2, .n_head = 4,
                                              .n_embd = 256};
  static constexpr int64_t batch = 8, tokens = batch * config.block_size;
  Tensor x, y;
  GptCase() {
    weft::Generator gen(11);
    x = weft::randint(0, config.vocab_size, {batch, config.block_size}, weft::dtype(weft::kInt64), &gen);
    y = weft::randint(0, config.vocab_size, {batch, config.block_size}, weft::dtype(weft::kInt64), &gen);
  }
  static std::shared_ptr<weft::nn::GPT> model() {
    weft::manual_seed(5);
    return std::make_shared<weft::nn::GPT>(config);
  }
  static DeviceMesh& mesh() {
    static DeviceMesh* tp_mesh = new DeviceMesh({static_cast<int64_t>(world_size())}, {"tp"});  // see world_mesh()
    return *tp_mesh;
  }
  // Tensor parallel (Megatron's plan), with the vocabulary split too (nn/vocab_parallel.h) or not.
  static std::shared_ptr<weft::nn::parallel::Parallelized> parallel(bool vocab_parallel) {
    auto gpt = model();
    return weft::nn::parallel::tensor_parallel(gpt, mesh(), weft::nn::parallel::default_tp_plan(*gpt, vocab_parallel));
  }
  // One AdamW step; the loss from vocab-sharded logits without gathering them when they are.
  void step(weft::nn::UnaryModule& m, weft::optim::AdamW& opt) const {
    opt.zero_grad();
    Tensor out = m.forward(x);
    Tensor loss;
    if (out.is_dtensor() && DTensor(out).placements()[0].is_shard(2))
      loss = weft::nn::parallel::vocab_parallel_cross_entropy(DTensor(out), y);
    else
      loss = weft::cross_entropy((out.is_dtensor() ? DTensor(out).to_local() : out).reshape({-1, config.vocab_size}),
                                 y.reshape({-1}));
    loss.backward();
    opt.step();
  }
};

// Note [Where the TP step waits]
// A rank's tensor-parallel step is its compute plus its collectives, and each collective's time on
// a rank is the wait for the last rank to arrive (skew: that rank's extra work or descheduling
// before it) plus the transfer after it arrived (the data's copying and reduction, and any
// descheduling then). The wait trace (Note [Wait trace] in distributed/watchdog.h) times every
// collective's begin and completion on the steady clock, which the ranks of one host share, so
// after each step the ranks exchange their begin times and split each collective's time into the
// two: tp_skew_ms = sum of (last rank's begin - own begin), tp_transfer_ms = sum of (own
// completion - last rank's begin), and tp_compute_cpu_ms the step's thread CPU time outside the
// collectives, against half_single_cpu_ms, half the single-process step's. Each is the median over
// the iterations, the largest over the ranks.
struct StepAccount {
  std::vector<double> skew, transfer, compute_cpu;
  // After one step whose collectives `events` traced (the same collectives on every rank);
  // cpu: the step's thread CPU seconds. Collective (one all_gather of the begin times).
  void add(const std::vector<detail::TraceEvent>& events, double cpu) {
    const int k = world_size(), me = world_rank();
    std::vector<double> mine, all(events.size() * static_cast<size_t>(k));
    for (const auto& e : events) mine.push_back(e.begun);
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(), static_cast<int>(mine.size()),
                  MPI_DOUBLE, MPI_COMM_WORLD);
    double s = 0, t = 0, c = cpu;
    for (size_t i = 0; i < events.size(); ++i) {
      double last = 0;
      for (int r = 0; r < k; ++r) last = std::max(last, all[static_cast<size_t>(r) * events.size() + i]);
      s += last - all[static_cast<size_t>(me) * events.size() + i];
      t += events[i].done - last;
      c -= events[i].cpu_done - events[i].cpu_begun;
    }
    skew.push_back(s);
    transfer.push_back(t);
    compute_cpu.push_back(c);
  }
};

double thread_cpu() { return detail::trace_cpu_clock(); }

// One AdamW step (forward, backward, update) of the GPT of nn/transformer.h, sized so that tensor
// parallelism has work to split: 2 layers, 4 heads, n_embd 256, 64 positions, batch 8. Baseline:
// every rank trains the whole model alone (at once, sharing memory bandwidth as the parallel run
// does); weft: tensor parallel over all ranks with the vocabulary split too (Megatron's
// vocab-parallel embedding, tied head and cross-entropy: nn/vocab_parallel.h). Counters: tokens/s of
// each, the speedup, and where the TP step waits (Note [Where the TP step waits]).
void BM_gpt_step(benchmark::State& state) {
  GptCase c;
  auto single = GptCase::model();
  auto parallel = GptCase::parallel(/*vocab_parallel=*/true);
  weft::optim::AdamW single_opt(single->parameters(), {.lr = 1e-3}), parallel_opt(parallel->parameters(), {.lr = 1e-3});
  std::vector<double> cpu_single, cpu_tp, waited, single_thread;
  std::vector<std::vector<detail::TraceEvent>> traces;
  std::vector<double> tp_thread;
  paired(
      state,
      [&] {
        CpuTimer timer(cpu_single);
        const double c0 = thread_cpu();
        c.step(*single, single_opt);
        single_thread.push_back(thread_cpu() - c0);
      },
      [&] {
        CpuTimer timer(cpu_tp);
        const double w0 = detail::waited_seconds(), c0 = thread_cpu();
        detail::set_wait_trace(true);
        c.step(*parallel, parallel_opt);
        traces.push_back(detail::take_wait_trace());
        detail::set_wait_trace(false);
        tp_thread.push_back(thread_cpu() - c0);
        waited.push_back(detail::waited_seconds() - w0);
      });
  StepAccount account;
  for (size_t i = 0; i < traces.size(); ++i) account.add(traces[i], tp_thread[i]);
  state.counters["speedup"] = 1.0 / state.counters["ratio"];
  state.counters["speedup_cpu"] = cpu_speedup(cpu_single, cpu_tp);
  state.counters["tp_wait_ms"] = slowest_median(waited) * 1e3;
  state.counters["tp_skew_ms"] = slowest_median(account.skew) * 1e3;
  state.counters["tp_transfer_ms"] = slowest_median(account.transfer) * 1e3;
  state.counters["tp_compute_cpu_ms"] = slowest_median(account.compute_cpu) * 1e3;
  state.counters["half_single_cpu_ms"] = slowest_median(single_thread) * 0.5e3;
  state.counters["tp_collectives"] = static_cast<double>(traces.empty() ? 0 : traces.back().size());
  state.counters["tokens_per_s_single"] = GptCase::tokens / (state.counters["baseline_us"] * 1e-6);
  state.counters["tokens_per_s_tp"] = GptCase::tokens / (state.counters["weft_us"] * 1e-6);
}

// Two parallelised GPTs' steps paired (baseline `a`, weft `b`) with their speedup in wall and CPU
// time and each one's tokens/s, under the counter names report.py reads.
void paired_gpt_steps(benchmark::State& state, weft::nn::UnaryModule& a, weft::nn::UnaryModule& b,
                      const std::string& a_tokens, const std::string& b_tokens) {
  GptCase c;
  weft::optim::AdamW a_opt(a.parameters(), {.lr = 1e-3}), b_opt(b.parameters(), {.lr = 1e-3});
  std::vector<double> cpu_a, cpu_b;
  paired(
      state,
      [&] {
        CpuTimer timer(cpu_a);
        c.step(a, a_opt);
      },
      [&] {
        CpuTimer timer(cpu_b);
        c.step(b, b_opt);
      });
  state.counters["speedup"] = 1.0 / state.counters["ratio"];
  state.counters["speedup_cpu"] = cpu_speedup(cpu_a, cpu_b);
  state.counters[a_tokens] = GptCase::tokens / (state.counters["baseline_us"] * 1e-6);
  state.counters[b_tokens] = GptCase::tokens / (state.counters["weft_us"] * 1e-6);
}

// The same step under tensor parallelism with the embedding, head and loss replicated (baseline)
// against the vocabulary split (weft): what vocab parallelism itself buys. Counters as above.
void BM_gpt_step_vocab_parallel(benchmark::State& state) {
  auto tp = GptCase::parallel(/*vocab_parallel=*/false), vocab = GptCase::parallel(/*vocab_parallel=*/true);
  paired_gpt_steps(state, *tp, *vocab, "tokens_per_s_tp", "tokens_per_s_tp_vocab");
}

// The same GPT step, tensor parallel (baseline) against tensor + sequence parallel (weft,
// default_sp_plan), both with the vocabulary split: the TP regions' all-reduces become all-gathers
// and reduce-scatters, and the norms, residuals and position embeddings run on 1/k of the sequence.
// Counters: tokens/s of each.
void BM_gpt_step_sequence_parallel(benchmark::State& state) {
  auto tp = GptCase::parallel(/*vocab_parallel=*/true);
  auto sp_model = GptCase::model();
  auto sp = weft::nn::parallel::sequence_parallel(sp_model, GptCase::mesh(),
                                                  weft::nn::parallel::default_sp_plan(*sp_model, true));
  paired_gpt_steps(state, *tp, *sp, "tokens_per_s_tp", "tokens_per_s_tp_sp");
}

// The wait policy (detail::WaitPolicy, Note [Watchdog]): the TP step (vocabulary split) with the
// default (spin 50 us, then sched_yield once per 64 polls up to 4096 polls; baseline) against an
// alternative (weft) that gives the core away at every poll after its spin: policy 0 yields at once,
// 1 spins 5 us then yields, 2 spins 50 us then naps 1 us, 3 naps at once, 4 spins 50 us then yields.
// Counters: speedup and speedup_cpu of the alternative over the default, and the time blocked in
// waits per step under each (the slowest rank's median).
std::vector<detail::WaitPolicy> wait_policies() {
  return {{0, false, true}, {5e-6, false, true}, {50e-6, true, true}, {0, true, true}, {50e-6, false, true}};
}

template <class Step>
void compare_wait_policies(benchmark::State& state, Step&& step) {
  const detail::WaitPolicy fixed = detail::wait_policy(), other = wait_policies()[static_cast<size_t>(state.range(0))];
  std::vector<double> cpu[2], waited[2];
  auto run = [&](int i, detail::WaitPolicy policy) {
    detail::set_wait_policy(policy);
    CpuTimer timer(cpu[i]);
    const double w0 = detail::waited_seconds();
    step();
    waited[i].push_back(detail::waited_seconds() - w0);
  };
  paired(state, [&] { run(0, fixed); }, [&] { run(1, other); });
  detail::set_wait_policy(fixed);
  state.counters["speedup"] = 1.0 / state.counters["ratio"];
  state.counters["speedup_cpu"] = cpu_speedup(cpu[0], cpu[1]);
  state.counters["wait_ms_default"] = slowest_median(waited[0]) * 1e3;
  state.counters["wait_ms_policy"] = slowest_median(waited[1]) * 1e3;
}

void BM_gpt_step_wait_policy(benchmark::State& state) {
  GptCase c;
  auto tp = GptCase::parallel(/*vocab_parallel=*/true);
  weft::optim::AdamW opt(tp->parameters(), {.lr = 1e-3});
  compare_wait_policies(state, [&] { c.step(*tp, opt); });
}

// The TP step (vocabulary split) with Open MPI's default all-reduce algorithm (baseline) against
// the ring weft selects on small groups (weft; Note [Ring all-reduce for small groups]). Counters:
// speedup and speedup_cpu of the ring, and each one's transfer time per step (Note [Where the TP
// step waits]).
void BM_gpt_step_ring(benchmark::State& state) {
  GptCase c;
  auto tp = GptCase::parallel(/*vocab_parallel=*/true);
  weft::optim::AdamW opt(tp->parameters(), {.lr = 1e-3});
  std::vector<double> cpu[2], thread[2];
  std::vector<std::vector<detail::TraceEvent>> traces[2];
  auto run = [&](int i) {
    detail::set_small_group_ring(i == 1);
    CpuTimer timer(cpu[i]);
    const double c0 = thread_cpu();
    detail::set_wait_trace(true);
    c.step(*tp, opt);
    traces[i].push_back(detail::take_wait_trace());
    detail::set_wait_trace(false);
    thread[i].push_back(thread_cpu() - c0);
    detail::set_small_group_ring(true);
  };
  paired(state, [&] { run(0); }, [&] { run(1); });
  StepAccount account[2];
  for (int i = 0; i < 2; ++i)
    for (size_t s = 0; s < traces[i].size(); ++s) account[i].add(traces[i][s], thread[i][s]);
  state.counters["speedup"] = 1.0 / state.counters["ratio"];
  state.counters["speedup_cpu"] = cpu_speedup(cpu[0], cpu[1]);
  state.counters["transfer_ms_default"] = slowest_median(account[0].transfer) * 1e3;
  state.counters["transfer_ms_ring"] = slowest_median(account[1].transfer) * 1e3;
}

// Iteration counts are fixed (see Note [Lock step]): about a second of work per case here.
void register_benchmarks() {
  auto sized = [](const char* name, void (*fn)(benchmark::State&), std::vector<std::pair<int64_t, int64_t>> cases) {
    for (auto [floats, iterations] : cases)
      benchmark::RegisterBenchmark(name, fn)->ArgNames({"floats"})->Arg(floats)->Iterations(iterations)
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
  };
  sized("BM_all_reduce", BM_all_reduce, {{1, 2000}, {64 << 10, 200}, {128 << 10, 200}, {4 << 20, 20}});  // 128K: the GPT step's
  sized("BM_all_reduce_debug", BM_all_reduce_debug, {{1, 2000}, {64 << 10, 200}});
  sized("BM_all_reduce_ring", BM_all_reduce_ring, {{1, 2000}, {16 << 10, 1000}, {128 << 10, 200}});
  sized("BM_all_gather", BM_all_gather, {{1, 2000}, {64 << 10, 200}, {4 << 20, 20}});
  sized("BM_redistribute_s0_r", BM_redistribute_s0_r, {{256, 2000}, {4 << 20, 20}});
  sized("BM_redistribute_p_r", BM_redistribute_p_r, {{256, 2000}, {4 << 20, 20}});
  benchmark::RegisterBenchmark("BM_local_map", BM_local_map)->ArgNames({"backward", "types"})
      ->ArgsProduct({{0, 1}, {0, 1}})->Iterations(5000)->UseManualTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_local_map_types_per_op", BM_local_map_types_per_op)->Iterations(3000)
      ->UseManualTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_mlp_tensor_parallel", BM_mlp_tensor_parallel)->Iterations(10)
      ->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_gpt_step", BM_gpt_step)->Iterations(10)->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_gpt_step_ring", BM_gpt_step_ring)->Iterations(10)->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_gpt_step_wait_policy", BM_gpt_step_wait_policy)->ArgNames({"policy"})
      ->DenseRange(0, 4)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_gpt_step_vocab_parallel", BM_gpt_step_vocab_parallel)->Iterations(10)
      ->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_gpt_step_sequence_parallel", BM_gpt_step_sequence_parallel)->Iterations(10)
      ->UseManualTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  bench::set_threads(1);
  register_benchmarks();
  return bench::run_on_every_rank(argc, argv);
}
