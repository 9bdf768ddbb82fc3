// bench_attention: the fused (flash-style) scaled_dot_product_attention against the composed form it
// replaced (matmul, causal mask, softmax, matmul; detail::composed_scaled_dot_product_attention), at
// GPT shapes (B = 8, H = 4, and train_gpt's B = 32, T = 32): forward alone (no grad) and forward + backward, causal, float32, paired in one case
// (Note [Paired timing] in bench_common.h; ratio = fused time / composed time). The counters
// held_fused_MB and held_composed_MB are the bytes a forward leaves in use for backward.
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

}  // namespace

BENCHMARK_MAIN();
