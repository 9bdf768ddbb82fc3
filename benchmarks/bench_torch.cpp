// bench_torch: libtorch 1.13 (Debian's libtorch-dev) on the cases the report sets beside weft's: a
// 16-float add, the 200-op autograd chain of bench_autograd, n^3 matmuls, the MLP step of bench_train
// and the GPT steps of bench_train, same shapes, same thread counts (at::set_num_threads, which sets
// libtorch's OpenMP team and its oneDNN/MKL calls). Its own binary, so that the two libraries' OpenMP
// and oneDNN copies never share a process; timed like weft's side (blocks of calls, median per call,
// Note [Paired timing] and Note [Which clock] in bench_common.h). Built only when libtorch is found.
#include <torch/torch.h>

#include <cmath>

#include "bench_common.h"

namespace {

void set_threads(const benchmark::State& state, int arg) {
  const int n = static_cast<int>(state.range(arg));
  at::set_num_threads(n);
  bench::set_threads(n);  // the calling thread's OpenMP setting, read by Note [Which clock]
}

void BM_torch_add(benchmark::State& state) {
  set_threads(state, 1);
  torch::NoGradGuard no_grad;
  const int64_t n = state.range(0);
  torch::Tensor a = torch::ones({n}), b = torch::full({n}, 2.0);
  bench::blocks(state, [&] { benchmark::DoNotOptimize(torch::add(a, b).data_ptr()); });
}
BENCHMARK(BM_torch_add)->ArgNames({"n", "threads"})->Args({16, 1})->UseManualTime()->Unit(benchmark::kMicrosecond);

// bench_autograd's chain: y = y * s, y = y + x, y = tanh(y), 200 ops over 16 floats, then backward.
void BM_torch_chain_fwd_bwd(benchmark::State& state) {
  set_threads(state, 0);
  torch::Tensor x = torch::rand({16}, torch::requires_grad()), s = torch::tensor(0.9f, torch::requires_grad());
  bench::blocks(state, [&] {
    torch::Tensor y = x;
    for (int i = 0; i < 200; ++i) y = i % 3 == 0 ? y * s : i % 3 == 1 ? y + x : torch::tanh(y);
    y.sum().backward();
  });
  state.counters["ns_per_op"] = state.counters["weft_us"] * 1e3 / 200;
}
BENCHMARK(BM_torch_chain_fwd_bwd)->ArgNames({"threads"})->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_torch_matmul(benchmark::State& state) {
  set_threads(state, 1);
  torch::NoGradGuard no_grad;
  const int64_t n = state.range(0);
  torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
  bench::blocks(state, [&] { benchmark::DoNotOptimize(torch::matmul(a, b).data_ptr()); });
  state.counters["GFLOPs"] = 2.0 * n * n * n / (state.counters["weft_us"] * 1e3);
}
BENCHMARK(BM_torch_matmul)->ArgNames({"n", "threads"})->ArgsProduct({{64, 256, 1024}, {1, 2}})->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// bench_train's MLP step: 64 x 512 -> 2048 -> 512, GELU, MSE, plain SGD.
void BM_torch_mlp_step(benchmark::State& state) {
  set_threads(state, 0);
  torch::Tensor w1 = (torch::randn({2048, 512}) * 0.02).requires_grad_(), b1 = torch::zeros({2048}, torch::requires_grad());
  torch::Tensor w2 = (torch::randn({512, 2048}) * 0.02).requires_grad_(), b2 = torch::zeros({512}, torch::requires_grad());
  torch::Tensor x = torch::randn({64, 512}), target = torch::randn({64, 512});
  bench::blocks(state, [&] {
    torch::Tensor h = torch::gelu(torch::linear(x, w1, b1));
    torch::Tensor loss = torch::mse_loss(torch::linear(h, w2, b2), target);
    loss.backward();
    torch::NoGradGuard no_grad;
    for (torch::Tensor* p : {&w1, &b1, &w2, &b2}) {
      p->sub_(p->grad(), 0.05);
      p->mutable_grad() = torch::Tensor();
    }
    benchmark::DoNotOptimize(loss.item<float>());
  });
}
BENCHMARK(BM_torch_mlp_step)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);

// nn::GPT of weft (nn/transformer.h) in libtorch: tied embeddings, pre-norm blocks, causal attention
// composed of matmul, mask, softmax and matmul, as libtorch 1.13 has no fused attention (weft's
// scaled_dot_product_attention is fused, kernels/attention_kernels.cpp).
struct GptImpl : torch::nn::Module {
  GptImpl(int64_t vocab, int64_t block, int64_t layers, int64_t heads, int64_t embd) : n_head(heads) {
    wte = register_module("wte", torch::nn::Embedding(vocab, embd));
    wpe = register_module("wpe", torch::nn::Embedding(block, embd));
    for (int64_t l = 0; l < layers; ++l) {
      auto lin = [&](int64_t in, int64_t out, const std::string& name) {
        return register_module(name + std::to_string(l), torch::nn::Linear(in, out));
      };
      blocks.push_back({register_module("ln1_" + std::to_string(l), torch::nn::LayerNorm(torch::nn::LayerNormOptions({embd}))),
                        lin(embd, 3 * embd, "qkv"), lin(embd, embd, "proj"),
                        register_module("ln2_" + std::to_string(l), torch::nn::LayerNorm(torch::nn::LayerNormOptions({embd}))),
                        lin(embd, 4 * embd, "fc1"), lin(4 * embd, embd, "fc2")});
    }
    ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embd})));
    mask = torch::ones({block, block}).triu(1).to(torch::kBool);
  }
  torch::Tensor forward(const torch::Tensor& idx) {
    const int64_t B = idx.size(0), T = idx.size(1), C = wte->weight.size(1), H = n_head, D = C / H;
    torch::Tensor x = wte(idx) + wpe(torch::arange(T));
    for (auto& b : blocks) {
      auto qkv = b.qkv(b.ln1(x)).split(C, 2);
      auto heads = [&](const torch::Tensor& t) { return t.reshape({B, T, H, D}).transpose(1, 2); };
      torch::Tensor s = torch::matmul(heads(qkv[0]), heads(qkv[1]).transpose(-2, -1)) * (1.0 / std::sqrt(double(D)));
      s = s.masked_fill(mask.slice(0, 0, T).slice(1, 0, T), -INFINITY);
      torch::Tensor y = torch::matmul(torch::softmax(s, -1), heads(qkv[2])).transpose(1, 2).reshape({B, T, C});
      x = x + b.proj(y);
      x = x + b.fc2(torch::gelu(b.fc1(b.ln2(x))));
    }
    return torch::linear(ln_f(x), wte->weight);
  }
  struct Block {
    torch::nn::LayerNorm ln1;
    torch::nn::Linear qkv, proj;
    torch::nn::LayerNorm ln2;
    torch::nn::Linear fc1, fc2;
  };
  int64_t n_head;
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  std::vector<Block> blocks;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::Tensor mask;
};

// bench_train's GPT cases: model 0 is train_gpt's (vocab 16, T 32, 2 layers, 4 heads, C 64, batch 32),
// model 1 the larger one (vocab 256, T 64, 4 layers, 4 heads, C 256, batch 8). AdamW with
// clip_grad_norm_(1.0), as train_gpt steps.
void BM_torch_gpt_step(benchmark::State& state) {
  set_threads(state, 1);
  const bool big = state.range(0) == 1;
  const int64_t vocab = big ? 256 : 16, block = big ? 64 : 32, layers = big ? 4 : 2, embd = big ? 256 : 64;
  const int64_t batch = big ? 8 : 32;
  torch::manual_seed(3);
  auto model = std::make_shared<GptImpl>(vocab, block, layers, 4, embd);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
  torch::Tensor x = torch::randint(0, vocab, {batch, block}), y = torch::randint(0, vocab, {batch, block});
  float first = -1, last = 0;
  bench::blocks(state, [&] {
    opt.zero_grad();
    torch::Tensor loss = torch::cross_entropy_loss(model->forward(x).reshape({-1, vocab}), y.reshape({-1}));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    last = loss.item<float>();
    if (first < 0) first = last;
  });
  state.counters["tokens_per_s"] = batch * block / (state.counters["weft_us"] * 1e-6);
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
}
BENCHMARK(BM_torch_gpt_step)->ArgNames({"model", "threads"})->ArgsProduct({{0, 1}, {1, 2}})->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
