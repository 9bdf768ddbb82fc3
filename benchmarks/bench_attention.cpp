// bench_attention: the fused (flash-style) scaled_dot_product_attention against the composed form it
// replaced (matmul, causal mask, softmax, matmul; detail::composed_scaled_dot_product_attention), at
// GPT shapes (B = 8, H = 4, and train_gpt's B = 32, T = 32): forward alone (no grad) and forward + backward, causal, float32, paired in one case
// (Note [Paired timing] in bench_common.h; ratio = fused time / composed time). The counters
// held_fused_MB and held_composed_MB are the bytes a forward leaves in use for backward. Last, a GPT
// training step with either attention.
#include <cmath>
#include <memory>

#include "bench_common.h"

namespace {

struct Inputs {
  weft::Tensor q, k, v;
};

Inputs make_inputs(const benchmark::State& state, bool grad) {
  const int64_t B = state.range(0), H = 4, T = state.range(1), D = state.range(2);
  auto r = [&] { return weft::randn({B, H, T, D}, weft::TensorOptions().requires_grad(grad)); };
  return {r(), r(), r()};
}

weft::Tensor attention(const Inputs& in, bool fused) {
  const double scale = 1 / std::sqrt(static_cast<double>(in.q.size(-1)));
  return fused ? weft::scaled_dot_product_attention(in.q, in.k, in.v, weft::Tensor(), true)
               : weft::detail::composed_scaled_dot_product_attention(in.q, in.k, in.v, weft::Tensor(), true, scale);
}

// Bytes in use after one forward with grad, beyond the inputs: what the graph holds until backward.
double held_mb(const Inputs& in, bool fused) {
  const uint64_t before = weft::allocator::stats().bytes_in_use;
  weft::Tensor out = attention(in, fused);
  const uint64_t held = weft::allocator::stats().bytes_in_use - before;
  out.sum().backward();
  return static_cast<double>(held) / (1 << 20);
}

void BM_attention_forward(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(3)));
  weft::NoGradGuard no_grad;
  Inputs in = make_inputs(state, false);
  bench::paired(
      state, [&] { benchmark::DoNotOptimize(attention(in, false).raw_data()); },
      [&] { benchmark::DoNotOptimize(attention(in, true).raw_data()); });
}

void BM_attention_forward_backward(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(3)));
  Inputs in = make_inputs(state, true);
  weft::Tensor g = weft::randn(in.q.shape());
  auto step = [&](bool fused) {
    weft::autograd::variable_list grads = weft::autograd::grad({attention(in, fused)}, {in.q, in.k, in.v}, {g});
    benchmark::DoNotOptimize(grads[0].raw_data());
  };
  bench::paired(state, [&] { step(false); }, [&] { step(true); });
  state.counters["held_fused_MB"] = held_mb(in, true);
  state.counters["held_composed_MB"] = held_mb(in, false);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "D", "threads"})->ArgsProduct({{8}, {64, 256, 1024}, {16, 64}, {1}});
  b->Args({32, 32, 16, 1});  // examples/train_gpt.cpp's attention: batch 32, 4 heads of 16, T = 32
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_attention_forward)->Apply(shapes);
BENCHMARK(BM_attention_forward_backward)->Apply(shapes);

// One training step (AdamW, clip_grad_norm_, as bench_train's BM_gpt_step) of nn::GPT with the
// attention composed (baseline) or fused, alternating in one case: model 0 is examples/train_gpt's
// (C 64, 4 heads, T 32, batch 32), model 1 the larger GPT (C 256, 4 heads, T 64, batch 8).
void BM_gpt_step_attention(benchmark::State& state) {
  struct Config {
    weft::nn::GPTConfig gpt;
    int64_t batch;
  };
  const Config configs[] = {
      {{.vocab_size = 16, .block_size = 32, .n_layer = 2, .n_head = 4, .n_embd = 64}, 32},
      {{.vocab_size = 256, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 256}, 8},
  };
  const Config& c = configs[state.range(0)];
  bench::set_threads(static_cast<int>(state.range(1)));
  weft::manual_seed(3);
  auto model = std::make_shared<weft::nn::GPT>(c.gpt);
  weft::optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  weft::Generator gen(7);
  const int64_t t = c.gpt.block_size, v = c.gpt.vocab_size;
  weft::Tensor x = weft::randint(0, v, {c.batch, t}, weft::dtype(weft::kInt64), &gen);
  weft::Tensor y = weft::randint(0, v, {c.batch, t}, weft::dtype(weft::kInt64), &gen);
  auto step = [&](bool fused) {
    weft::detail::set_fused_attention(fused);
    opt.zero_grad();
    weft::Tensor loss = weft::cross_entropy(model->forward(x).reshape({-1, v}), y.reshape({-1}));
    loss.backward();
    weft::optim::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  };
  bench::paired(state, [&] { step(false); }, [&] { step(true); });
  weft::detail::set_fused_attention(true);
  state.counters["tokens_per_s"] = static_cast<double>(c.batch * t) / (state.counters["weft_us"] * 1e-6);
}
BENCHMARK(BM_gpt_step_attention)->ArgNames({"model", "threads"})->ArgsProduct({{0, 1}, {1, 2}})->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
