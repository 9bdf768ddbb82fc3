// bench_autograd: the fixed cost autograd adds per op, on a chain of 200 ops over 16 floats (the data
// work is a few nanoseconds, so what is measured is dispatch, allocation, recording and the engine).
#include <cmath>
#include <vector>

#include "bench_common.h"

namespace {

constexpr int kOps = 200;
constexpr int64_t kElems = 16;

// ns per op of the chain: the time per iteration divided by kOps (see Counter::kInvert).
benchmark::Counter ns_per_op() {
  return benchmark::Counter(kOps * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The chain: y = y * s, y = y + x, y = tanh(y), repeated; s is a 0-dim tensor, x has 16 elements.
weft::Tensor chain(const weft::Tensor& x, const weft::Tensor& s) {
  weft::Tensor y = x;
  for (int i = 0; i < kOps; ++i) {
    switch (i % 3) {
      case 0: y = weft::mul(y, s); break;
      case 1: y = weft::add(y, x); break;
      default: y = weft::tanh(y); break;
    }
  }
  return y;
}

struct Inputs {
  weft::Tensor x = weft::rand({kElems}, weft::requires_grad());
  weft::Tensor s = weft::scalar_tensor(0.9, weft::requires_grad());
};

// Baseline for fwd+bwd: the same chain and its hand-written gradient on plain arrays (what the math
// itself costs), with the intermediate values kept as a tape would keep them.
void BM_chain_plain_loop(benchmark::State& state) {
  bench::set_threads(1);
  std::vector<float> x(kElems, 0.3f), tape((kOps + 1) * kElems), gx(kElems), gy(kElems);
  const float s = 0.9f;
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), tape.begin());
    for (int i = 0; i < kOps; ++i) {
      const float* in = &tape[i * kElems];
      float* out = &tape[(i + 1) * kElems];
      for (int64_t j = 0; j < kElems; ++j)
        out[j] = i % 3 == 0 ? in[j] * s : i % 3 == 1 ? in[j] + x[j] : std::tanh(in[j]);
    }
    std::fill(gy.begin(), gy.end(), 1.0f);
    std::fill(gx.begin(), gx.end(), 0.0f);
    float gs = 0;
    for (int i = kOps - 1; i >= 0; --i) {
      const float* in = &tape[i * kElems];
      const float* out = &tape[(i + 1) * kElems];
      for (int64_t j = 0; j < kElems; ++j) {
        if (i % 3 == 0) { gs += gy[j] * in[j]; gy[j] *= s; }
        else if (i % 3 == 1) gx[j] += gy[j];
        else gy[j] *= 1 - out[j] * out[j];
      }
    }
    benchmark::DoNotOptimize(gs);
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  state.counters["ns_per_op"] = ns_per_op();
}

// Forward with nothing recorded: the per-op cost of dispatch and allocation alone.
void BM_chain_fwd_nograd(benchmark::State& state) {
  bench::set_threads(1);
  Inputs in;
  weft::NoGradGuard no_grad;
  benchmark::DoNotOptimize(chain(in.x, in.s).raw_data());
  bench::LoopClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(chain(in.x, in.s).raw_data());
  bench::record_baseline("chain_fwd", clock, state);
  state.counters["ns_per_op"] = ns_per_op();
}

// Forward recording the graph (dropped at the end of each iteration): ratio vs no-grad is the
// recording cost.
void BM_chain_fwd_grad(benchmark::State& state) {
  bench::set_threads(1);
  Inputs in;
  benchmark::DoNotOptimize(chain(in.x, in.s).raw_data());
  bench::LoopClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(chain(in.x, in.s).raw_data());
  bench::report_ratio("chain_fwd", clock, state);
  state.counters["ns_per_op"] = ns_per_op();
}

// Forward + backward (sum().backward(), gradients accumulated into x and s): target < 600 ns per op.
void BM_chain_fwd_bwd(benchmark::State& state) {
  bench::set_threads(1);
  Inputs in;
  chain(in.x, in.s).sum().backward();  // warm: every size class cached
  for (auto _ : state) {
    chain(in.x, in.s).sum().backward();
    benchmark::DoNotOptimize(in.x.grad().raw_data());
  }
  state.counters["ns_per_op"] = ns_per_op();
}

// Views as model code makes them (reshape, transpose, narrow: three per iteration), each of the
// one before; ns per view. Arg: 0 under NoGradGuard, 1 grad mode with a base that does not require
// grad (an input batch), 2 a base that requires grad (each view records a node).
void BM_view_ops(benchmark::State& state) {
  bench::set_threads(1);
  const int64_t mode = state.range(0);
  weft::Tensor x = weft::rand({8, 16}, weft::requires_grad(mode == 2));
  weft::GradMode::set_enabled(mode != 0);
  for (auto _ : state) {
    weft::Tensor a = weft::reshape(x, {16, 8});
    weft::Tensor b = a.transpose(0, 1);
    benchmark::DoNotOptimize(b.narrow(1, 2, 8).raw_data());
  }
  weft::GradMode::set_enabled(true);
  state.counters["ns_per_view"] =
      benchmark::Counter(3e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// In-place ops on 16 floats, as optimizers and model code apply them: per iteration one out-of-place
// mul (a fresh tensor), then add_, mul_ and clamp_ on it; ns per op (the mul and the three).
// Arg: 0 under NoGradGuard, 1 grad mode with an input that requires grad (each op records a node:
// Note [Recording an in-place op]), 2 the same through a view (each op rebases the view's base).
void BM_inplace_ops(benchmark::State& state) {
  bench::set_threads(1);
  const int64_t mode = state.range(0);
  weft::Tensor x = weft::rand({4, kElems}, weft::requires_grad(mode != 0));
  weft::GradMode::set_enabled(mode != 0);
  for (auto _ : state) {
    weft::Tensor y = weft::mul(x, 2.0);
    weft::Tensor target = mode == 2 ? y.narrow(0, 1, 2) : y;
    target.add_(1.0);
    target.mul_(0.5);
    target.clamp_(-1.0, 1.0);
    benchmark::DoNotOptimize(target.raw_data());
  }
  weft::GradMode::set_enabled(true);
  state.counters["ns_per_op"] =
      benchmark::Counter(4e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_chain_plain_loop);
BENCHMARK(BM_chain_fwd_nograd)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_chain_fwd_grad)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_chain_fwd_bwd)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_view_ops)->ArgName("mode")->DenseRange(0, 2);
BENCHMARK(BM_inplace_ops)->ArgName("mode")->DenseRange(0, 2);

}  // namespace

BENCHMARK_MAIN();
