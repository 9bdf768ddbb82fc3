// bench_train: training steps against the bound set by their matmuls alone: the same matmul problems
// run as raw oneDNN primitives made once in this binary, timed in pairs with the step (Note [Paired
// timing]). fraction = bound time / step time (1.0 = nothing but matmuls). Cases: one SGD step of a
// 2-layer MLP (batch 64, 512 -> 2048 -> 512, GELU, MSE) written with ops directly (also with
// optim::SGD's step in backward, and against two floors: its update as a raw loop, or fused into
// the weight-gradient products by oneDNN), and AdamW steps
// (with clip_grad_norm_, as examples/train_gpt.cpp) of nn::GPT at train_gpt's size and at C=256, and
// the same GPT steps under bfloat16 autocast against float32.
// libtorch's side of the same steps is bench_torch.cpp.
#include <cmath>
#include <memory>
#include <vector>

#include "bench_common.h"

namespace {

constexpr int64_t kBatch = 64, kIn = 512, kHidden = 2048, kOut = 512;

// The step's matmuls: C[M, N] = op(A) @ op(B) (`batch` of them), operands transposed through strides
// as weft passes them.
struct Problem {
  int64_t m, k, n;
  bool a_transposed, b_transposed;
  int64_t batch = 1;
};
constexpr Problem kProblems[] = {
    {kBatch, kIn, kHidden, false, true},      // h = x @ W1^T
    {kBatch, kHidden, kOut, false, true},     // y = h @ W2^T
    {kBatch, kOut, kHidden, false, false},    // dh = dy @ W2
    {kOut, kBatch, kHidden, true, false},     // dW2 = dy^T @ h
    {kHidden, kBatch, kIn, true, false},      // dW1 = dz^T @ x
};
template <class Problems>
double matmul_flops(const Problems& problems) {
  double f = 0;
  for (const auto& p : problems) f += 2.0 * p.batch * p.m * p.k * p.n;
  return f;
}
double step_matmul_flops() { return matmul_flops(kProblems); }

// A raw oneDNN matmul for one problem, made once with its buffers. With `sgd_lr`, C stands for a
// weight and the product is its SGD update fused in: C = C - sgd_lr * A @ B (an output scale and a
// sum post-op), the gradient never written.
struct RawMatmul {
  explicit RawMatmul(const Problem& p, float sgd_lr = 0.0f)
      : a(weft::randn({p.batch * p.m * p.k})), b(weft::randn({p.batch * p.k * p.n})),
        c(weft::empty({p.batch * p.m * p.n})) {
    auto& eng = bench::raw_engine();
    const int64_t m = p.m, k = p.k, n = p.n, mk = m * k, kn = k * n;
    auto a_md = p.a_transposed ? bench::f32_desc({p.batch, m, k}, {mk, 1, m}) : bench::f32_desc({p.batch, m, k}, {mk, k, 1});
    auto b_md = p.b_transposed ? bench::f32_desc({p.batch, k, n}, {kn, 1, k}) : bench::f32_desc({p.batch, k, n}, {kn, n, 1});
    auto c_md = bench::f32_desc({p.batch, m, n}, {m * n, n, 1});
    dnnl::primitive_attr attr;
    if (sgd_lr != 0.0f) {
      attr.set_output_scales(0, {-sgd_lr});
      dnnl::post_ops sum;
      sum.append_sum(1.0f);
      attr.set_post_ops(sum);
    }
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), attr, eng));
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

// The bound: a step's matmul problems back to back, each primitive made once.
struct Bound {
  template <class Problems>
  explicit Bound(const Problems& problems) {
    for (const auto& p : problems) mms.push_back(std::make_unique<RawMatmul>(p));
  }
  void run() {
    for (auto& mm : mms) mm->run();
  }
  std::vector<std::unique_ptr<RawMatmul>> mms;
};

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

// Sets the counters every step case reports: the fraction of the bound and the matmul work's GFLOP/s.
void step_counters(benchmark::State& state, double flops, double tokens) {
  state.counters["fraction"] = state.counters["baseline_us"] / state.counters["weft_us"];
  state.counters["GFLOPs"] = flops / (state.counters["weft_us"] * 1e3);
  state.counters["GFLOPs_bound"] = flops / (state.counters["baseline_us"] * 1e3);
  if (tokens > 0) state.counters["tokens_per_s"] = tokens / (state.counters["weft_us"] * 1e-6);
}

// One full step (forward, backward, SGD update) against its five matmuls. The loss must fall, or the
// step is wrong.
void BM_mlp_step(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  Mlp mlp;
  Bound bound(kProblems);
  weft::Tensor x = weft::randn({kBatch, kIn}), target = weft::randn({kBatch, kOut});
  const float first = mlp.step(x, target, 0.05);
  float last = first;
  bench::paired(state, [&] { bound.run(); }, [&] { last = mlp.step(x, target, 0.05); });
  step_counters(state, step_matmul_flops(), 0);
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
}

// BM_mlp_step's model trained by optim::SGD with its step in backward (nn/optim_in_backward.h):
// each parameter updated as soon as its gradient is complete, while it is still in cache, and its
// gradient released; the step is forward and backward alone.
struct MlpInBackward {
  Mlp mlp;
  weft::optim::SGD opt{{mlp.w1, mlp.b1, mlp.w2, mlp.b2}, {.lr = 0.05}};
  weft::optim::OptimizerInBackward in_backward{opt};

  float step(const weft::Tensor& x, const weft::Tensor& target) {
    weft::Tensor h = weft::gelu(weft::linear(x, mlp.w1, mlp.b1));
    weft::Tensor loss = weft::mse_loss(weft::linear(h, mlp.w2, mlp.b2), target);
    loss.backward();
    return loss.item<float>();
  }
};

// BM_mlp_step with the SGD update in backward, against the same five matmuls.
void BM_mlp_step_in_backward(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  MlpInBackward mlp;
  Bound bound(kProblems);
  weft::Tensor x = weft::randn({kBatch, kIn}), target = weft::randn({kBatch, kOut});
  const float first = mlp.step(x, target);
  float last = first;
  bench::paired(state, [&] { bound.run(); }, [&] { last = mlp.step(x, target); });
  step_counters(state, step_matmul_flops(), 0);
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
  if (mlp.in_backward.updates() == 0) state.SkipWithError("no update ran in backward");
}

// p -= lr * g over n floats: the SGD update as a plain loop, compiled for avx512, avx2 and baseline
// x86-64 and picked by the CPU (weft's own update, Tensor::sub_, has the same three copies), so the
// floor below is not an easier, narrower loop.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void raw_sgd(float* p, const float* g, float lr, int64_t n) {
#pragma omp parallel for simd if (n > (1 << 16)) num_threads(weft::get_num_threads())
  for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
}

// The MLP step against its floor: the five matmuls (as BM_mlp_step's bound) plus its SGD update as
// the raw loop above, over arrays of the parameters' sizes (12 bytes an element, read p and g, write
// p). The update is memory-bound (2.1M parameters, 25 MB moved per step) and as long as a fifth of the
// matmuls on a 2-core Ice Lake host, so a matmul-only bound leaves it no room; this pair says how
// close the step is to what the hardware must do for it.
void BM_mlp_step_floor(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  Mlp mlp;
  Bound bound(kProblems);
  std::vector<weft::Tensor> ps, gs;
  for (const weft::Tensor* t : {&mlp.w1, &mlp.b1, &mlp.w2, &mlp.b2}) {
    ps.push_back(weft::randn(t->shape()));
    gs.push_back(weft::randn(t->shape()));
  }
  auto floor = [&] {
    bound.run();
    for (size_t k = 0; k < ps.size(); ++k)
      raw_sgd(ps[k].data_ptr<float>(), gs[k].data_ptr<float>(), 1e-9f, ps[k].numel());
  };
  weft::Tensor x = weft::randn({kBatch, kIn}), target = weft::randn({kBatch, kOut});
  const float first = mlp.step(x, target, 0.05);
  float last = first;
  bench::paired(state, floor, [&] { last = mlp.step(x, target, 0.05); });
  step_counters(state, step_matmul_flops(), 0);
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
}

// The MLP step's update alone: optim::SGD's step (kernels::sgd_step) over arrays of the MLP's
// parameter sizes, gradients set, against raw_sgd over the same arrays. GB/s counts 12 bytes an element.
void BM_mlp_step_update(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  Mlp mlp;
  std::vector<weft::Tensor> ps, gs;
  int64_t total = 0;
  for (const weft::Tensor* t : {&mlp.w1, &mlp.b1, &mlp.w2, &mlp.b2}) {
    ps.push_back(weft::randn(t->shape()).requires_grad_());
    gs.push_back(weft::randn(t->shape()));
    ps.back().set_grad(gs.back());
    total += t->numel();
  }
  weft::optim::SGD opt(ps, {.lr = 1e-9});
  auto raw = [&] {
    for (size_t k = 0; k < ps.size(); ++k)
      raw_sgd(ps[k].data_ptr<float>(), gs[k].data_ptr<float>(), 1e-9f, ps[k].numel());
  };
  bench::paired(state, raw, [&] { opt.step(); });
  state.counters["GBs"] = 12.0 * total / (state.counters["weft_us"] * 1e3);
  state.counters["GBs_loop"] = 12.0 * total / (state.counters["baseline_us"] * 1e3);
}

// What the MLP step would cost with its SGD update fused into the weight-gradient products, as
// oneDNN can run them (RawMatmul's sgd_lr: W -= lr * dy^T x in the product's own pass over W, so
// neither gradient is written or read again), plus the two bias updates as the raw loop, against the
// five plain products (BM_mlp_step's bound). fraction = bound / this: near 1, the update costs
// nothing there. weft does not run this path: see benchmarks/README.md ("MLP step in backward").
void BM_mlp_step_fused_floor(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  Bound bound(kProblems);
  std::vector<std::unique_ptr<RawMatmul>> fused;
  for (size_t k = 0; k < std::size(kProblems); ++k)  // the last two are the weight-gradient products
    fused.push_back(std::make_unique<RawMatmul>(kProblems[k], k >= 3 ? 1e-9f : 0.0f));
  weft::Tensor b1 = weft::randn({kHidden}), g1 = weft::randn({kHidden}), b2 = weft::randn({kOut}),
               g2 = weft::randn({kOut});
  auto fused_step = [&] {
    for (auto& mm : fused) mm->run();
    raw_sgd(b1.data_ptr<float>(), g1.data_ptr<float>(), 1e-9f, kHidden);
    raw_sgd(b2.data_ptr<float>(), g2.data_ptr<float>(), 1e-9f, kOut);
  };
  bench::paired(state, [&] { bound.run(); }, fused_step);
  step_counters(state, step_matmul_flops(), 0);
}

// A GPT of nn/transformer.h and the matmul problems of one of its training steps: per block the
// four linears (qkv C->3C, proj C->C, fc1 C->4C, fc2 4C->C), each forward, input gradient and weight
// gradient, and attention's six batched T x T x (C/H) products; the tied vocabulary head's three.
struct GptCase {
  weft::nn::GPTConfig config;
  int64_t batch;
  std::vector<Problem> problems() const {
    const int64_t bt = batch * config.block_size, c = config.n_embd, t = config.block_size;
    const int64_t hd = c / config.n_head, bh = batch * config.n_head;
    std::vector<Problem> out;
    auto linear = [&](int64_t in, int64_t o) {
      out.push_back({bt, in, o, false, true});   // y = x W^T
      out.push_back({bt, o, in, false, false});  // dx = dy W
      out.push_back({o, bt, in, true, false});   // dW = dy^T x
    };
    for (int64_t l = 0; l < config.n_layer; ++l) {
      linear(c, 3 * c), linear(c, c), linear(c, 4 * c), linear(4 * c, c);
      out.push_back({t, hd, t, false, true, bh});   // s = q k^T
      out.push_back({t, t, hd, false, false, bh});  // y = a v
      out.push_back({t, hd, t, false, true, bh});   // da = dy v^T
      out.push_back({t, t, hd, true, false, bh});   // dv = a^T dy
      out.push_back({t, t, hd, false, false, bh});  // dq = ds k
      out.push_back({t, t, hd, true, false, bh});   // dk = ds^T q
    }
    linear(c, config.vocab_size);
    return out;
  }
};

const GptCase kGptCases[] = {
    // examples/train_gpt.cpp's model and batch
    {{.vocab_size = 16, .block_size = 32, .n_layer = 2, .n_head = 4, .n_embd = 64}, 32},
    // the larger GPT
    {{.vocab_size = 256, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 256}, 8},
};

// One AdamW step with clip_grad_norm_(1.0), as train_gpt takes it, against its matmuls.
void BM_gpt_step(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(1)));
  const GptCase& gc = kGptCases[state.range(0)];
  weft::manual_seed(3);
  auto model = std::make_shared<weft::nn::GPT>(gc.config);
  weft::optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  weft::Generator gen(7);
  const int64_t t = gc.config.block_size, v = gc.config.vocab_size;
  weft::Tensor x = weft::randint(0, v, {gc.batch, t}, weft::dtype(weft::kInt64), &gen);
  weft::Tensor y = weft::randint(0, v, {gc.batch, t}, weft::dtype(weft::kInt64), &gen);
  auto step = [&] {
    opt.zero_grad();
    weft::Tensor loss = weft::cross_entropy(model->forward(x).reshape({-1, v}), y.reshape({-1}));
    loss.backward();
    weft::optim::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    return loss.item<float>();
  };
  const std::vector<Problem> problems = gc.problems();
  Bound bound(problems);
  const float first = step();
  float last = first;
  bench::paired(state, [&] { bound.run(); }, [&] { last = step(); });
  step_counters(state, matmul_flops(problems), static_cast<double>(gc.batch * t));
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
}

// AdamW's step over the C=256 GPT's parameters (3.3M floats, gradients set): weft's fused pass
// (kernels/optim_kernels.cpp) against the loop it replaced, a scalar per-parameter loop as
// nn/optim.cpp had it. GB/s counts the 28 bytes an element moves (p, g, m, v read; p, m, v written).
void BM_adamw_step(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  weft::manual_seed(3);
  weft::nn::GPT model(kGptCases[1].config);
  std::vector<weft::Tensor> params = model.parameters(), m, v;
  int64_t total = 0;
  for (weft::Tensor& p : params) {
    p.set_grad(weft::randn(p.shape()));
    m.push_back(weft::zeros(p.shape()));
    v.push_back(weft::zeros(p.shape()));
    total += p.numel();
  }
  weft::optim::AdamW opt(params, {.lr = 1e-4, .weight_decay = 0.01});
  int64_t t = 0;
  auto scalar_loop = [&] {  // the replaced loop: one parallel-capable loop per parameter, not vectorised
    weft::NoGradGuard no_grad;
    ++t;
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, decay = 1.0f - 1e-4f * 0.01f;
    const float step_size = static_cast<float>(1e-4 / (1 - std::pow(0.9, t)));
    const float bc2 = static_cast<float>(std::sqrt(1 - std::pow(0.999, t)));
    for (size_t k = 0; k < params.size(); ++k) {
      float* p = params[k].data_ptr<float>();
      const float* g = params[k].grad().data_ptr<float>();
      float *mk = m[k].data_ptr<float>(), *vk = v[k].data_ptr<float>();
      const int64_t n = params[k].numel();
#pragma omp parallel for if (n > (1 << 16)) num_threads(weft::get_num_threads())
      for (int64_t i = 0; i < n; ++i) {
        p[i] *= decay;
        mk[i] += (1 - b1) * (g[i] - mk[i]);
        vk[i] = b2 * vk[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step_size * mk[i] / (std::sqrt(vk[i]) / bc2 + eps);
      }
    }
  };
  bench::paired(state, scalar_loop, [&] { opt.step(); });
  state.counters["GBs"] = 28.0 * total / (state.counters["weft_us"] * 1e3);
  state.counters["GBs_loop"] = 28.0 * total / (state.counters["baseline_us"] * 1e3);
}

// A GPT training step as BM_gpt_step takes it, its forward under bfloat16 autocast or not.
struct GptTrainer {
  GptTrainer(const GptCase& gc, bool autocast_on)
      : model((weft::manual_seed(3), std::make_shared<weft::nn::GPT>(gc.config))),
        opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01}), autocast(autocast_on) {
    weft::Generator gen(7);
    const int64_t t = gc.config.block_size;
    x = weft::randint(0, gc.config.vocab_size, {gc.batch, t}, weft::dtype(weft::kInt64), &gen);
    y = weft::randint(0, gc.config.vocab_size, {gc.batch, t}, weft::dtype(weft::kInt64), &gen);
  }
  float step() {
    opt.zero_grad();
    weft::Tensor loss;
    {
      weft::AutocastGuard guard(weft::kBFloat16, autocast);  // the forward only, as torch.autocast is used
      loss = weft::cross_entropy(model->forward(x).reshape({-1, model->config.vocab_size}), y.reshape({-1}));
    }
    loss.backward();
    weft::optim::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    return loss.item<float>();
  }
  std::shared_ptr<weft::nn::GPT> model;
  weft::optim::AdamW opt;
  bool autocast;
  weft::Tensor x, y;
};

// The GPT step under bfloat16 autocast against the same step in float32 (same initial weights, data
// and optimizer), paired: ratio = autocast time / float32 time. The target, >= 1.6x faster,
// needs AVX512-BF16 (avx512_bf16 counter: 1 when this CPU has it); without it oneDNN emulates
// bfloat16 products with float32 FMAs plus conversions, and autocast only adds casts.
void BM_gpt_autocast_step(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(1)));
  const GptCase& gc = kGptCases[state.range(0)];
  GptTrainer full(gc, false), mixed(gc, true);
  full.step();
  const float first = mixed.step();
  float last = first;
  bench::paired(state, [&] { full.step(); }, [&] { last = mixed.step(); });
  const double tokens = static_cast<double>(gc.batch * gc.config.block_size);
  state.counters["tokens_per_s"] = tokens / (state.counters["weft_us"] * 1e-6);
  state.counters["tokens_per_s_float32"] = tokens / (state.counters["baseline_us"] * 1e-6);
  state.counters["avx512_bf16"] = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
  if (!(last < first)) state.SkipWithError("the loss did not fall under autocast: the training step is wrong");
}

BENCHMARK(BM_adamw_step)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mlp_step)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mlp_step_in_backward)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mlp_step_floor)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mlp_step_update)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mlp_step_fused_floor)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gpt_step)->ArgNames({"model", "threads"})->ArgsProduct({{0, 1}, {1, 2}})->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gpt_autocast_step)->ArgNames({"model", "threads"})->ArgsProduct({{0, 1}, {1, 2}})->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
