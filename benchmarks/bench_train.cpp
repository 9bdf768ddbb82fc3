// bench_train: one SGD step of a 2-layer MLP (batch 64, 512 -> 2048 -> 512, GELU, MSE) written with
// ops directly, against the bound set by its matmuls alone: the same five matmul problems run as raw
// oneDNN primitives in this binary. fraction = bound time / step time (1.0 = nothing but matmuls).
// (A libtorch comparison would go here; libtorch is not installed on this machine.)
#include <memory>
#include <vector>

#include "bench_common.h"

namespace {

constexpr int64_t kBatch = 64, kIn = 512, kHidden = 2048, kOut = 512;

// The step's matmuls: C[M, N] = op(A) @ op(B), operands transposed through strides as weft passes them.
struct Problem {
  int64_t m, k, n;
  bool a_transposed, b_transposed;
};
constexpr Problem kProblems[] = {
    {kBatch, kIn, kHidden, false, true},      // h = x @ W1^T
    {kBatch, kHidden, kOut, false, true},     // y = h @ W2^T
    {kBatch, kOut, kHidden, false, false},    // dh = dy @ W2
    {kOut, kBatch, kHidden, true, false},     // dW2 = dy^T @ h
    {kHidden, kBatch, kIn, true, false},      // dW1 = dz^T @ x
};
double step_matmul_flops() {
  double f = 0;
  for (const auto& p : kProblems) f += 2.0 * p.m * p.k * p.n;
  return f;
}

// A raw oneDNN matmul for one problem, made once with its buffers.
struct RawMatmul {
  explicit RawMatmul(const Problem& p)
      : a(weft::randn({p.m * p.k})), b(weft::randn({p.k * p.n})), c(weft::empty({p.m * p.n})) {
    auto& eng = bench::raw_engine();
    auto a_md = p.a_transposed ? bench::f32_desc({p.m, p.k}, {1, p.m}) : bench::f32_desc({p.m, p.k}, {p.k, 1});
    auto b_md = p.b_transposed ? bench::f32_desc({p.k, p.n}, {1, p.k}) : bench::f32_desc({p.k, p.n}, {p.n, 1});
    auto c_md = bench::f32_desc({p.m, p.n}, {p.n, 1});
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));
    args = {{DNNL_ARG_SRC, dnnl::memory(a_md, eng, a.raw_data())},
            {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, eng, b.raw_data())},
            {DNNL_ARG_DST, dnnl::memory(c_md, eng, c.raw_data())}};
  }
  void run() {
    prim.execute(bench::raw_stream(), args);
    bench::raw_stream().wait();
  }
  weft::Tensor a, b, c;
  dnnl::matmul prim;
  std::unordered_map<int, dnnl::memory> args;
};

// The bound: the five matmuls back to back, each primitive made once outside the loop.
void BM_train_matmuls_onednn(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  std::vector<std::unique_ptr<RawMatmul>> mms;
  for (const auto& p : kProblems) mms.push_back(std::make_unique<RawMatmul>(p));
  for (auto& mm : mms) mm->run();
  bench::LoopClock clock;
  for (auto _ : state)
    for (auto& mm : mms) mm->run();
  bench::record_baseline(bench::key_of("train_step", state, 1), clock, state);
  state.counters["GFLOPs"] = bench::gflops(step_matmul_flops());
}

struct Mlp {
  weft::Tensor w1 = weft::randn({kHidden, kIn}).mul_(0.02).requires_grad_();
  weft::Tensor b1 = weft::zeros({kHidden}, weft::requires_grad());
  weft::Tensor w2 = weft::randn({kOut, kHidden}).mul_(0.02).requires_grad_();
  weft::Tensor b2 = weft::zeros({kOut}, weft::requires_grad());

  float step(const weft::Tensor& x, const weft::Tensor& target, double lr) {
    weft::Tensor h = weft::gelu(weft::linear(x, w1, b1));
    weft::Tensor loss = weft::mse_loss(weft::linear(h, w2, b2), target);
    loss.backward();
    weft::NoGradGuard no_grad;
    for (weft::Tensor* p : {&w1, &b1, &w2, &b2}) {
      p->sub_(p->grad(), lr);
      p->set_grad(weft::Tensor());  // as zero_grad(set_to_none=True)
    }
    return loss.item<float>();
  }
};

// One full step: forward, backward, SGD update. The loss must fall, or the step is wrong.
void BM_train_step_weft(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  Mlp mlp;
  weft::Tensor x = weft::randn({kBatch, kIn}), target = weft::randn({kBatch, kOut});
  const float first = mlp.step(x, target, 0.05);
  float last = first;
  bench::LoopClock clock;
  for (auto _ : state) last = mlp.step(x, target, 0.05);
  bench::report_ratio(bench::key_of("train_step", state, 1), clock, state);
  auto it = bench::baseline_times().find(bench::key_of("train_step", state, 1));
  if (it != bench::baseline_times().end()) state.counters["fraction"] = it->second / clock.ns_per_iter(state);
  state.counters["GFLOPs"] = bench::gflops(step_matmul_flops());
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
}

void thread_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"threads"})->UseRealTime()->Unit(benchmark::kMillisecond)->Arg(1)->Arg(2);
}
BENCHMARK(BM_train_matmuls_onednn)->Apply(thread_args);
BENCHMARK(BM_train_step_weft)->Apply(thread_args);

}  // namespace

BENCHMARK_MAIN();
