// bench_memory: a GPT training step's peak memory against what the step must hold, and the scaling
// of tokens/s and memory over four model sizes. One AdamW step with clip_grad_norm_, as
// examples/train_gpt.cpp takes it, on one thread.
//
// What the step must hold is counted, not measured: the parameters, their gradients, AdamW's two
// state buffers per parameter, and the activations saved for backward. The last is the growth of
// the allocator's bytes in use over forward (the loss computed, backward not yet run), which is
// exactly what the graph keeps. peak_ratio = the allocator's peak bytes in use over the step
// (AllocatorStats::peak_bytes_in_use, size classes included) / that sum; 1.0 would mean no
// transient buffer ever coexisted with all of it. held_MiB adds what the allocator's cache keeps
// after the step: the process's footprint from weft's side.
#include <memory>
#include <vector>

#include "bench_common.h"
#include "framework/allocator.h"

namespace {

struct GptSize {
  const char* name;
  weft::nn::GPTConfig config;
  int64_t batch;
};
// train_gpt's model, then three wider and deeper ones (the C=256 one is bench_train's larger GPT).
const GptSize kSizes[] = {
    {"train_gpt", {.vocab_size = 16, .block_size = 32, .n_layer = 2, .n_head = 4, .n_embd = 64}, 32},
    {"C=128", {.vocab_size = 256, .block_size = 64, .n_layer = 2, .n_head = 4, .n_embd = 128}, 8},
    {"C=256", {.vocab_size = 256, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 256}, 8},
    {"C=384", {.vocab_size = 256, .block_size = 128, .n_layer = 6, .n_head = 6, .n_embd = 384}, 8},
};

constexpr double kMiB = 1024.0 * 1024.0;

uint64_t in_use() { return weft::allocator::stats().bytes_in_use; }

void BM_gpt_memory(benchmark::State& state) {
  bench::set_threads(1);
  const GptSize& size = kSizes[state.range(0)];
  weft::manual_seed(3);
  weft::Generator gen(7);
  const int64_t t = size.config.block_size, v = size.config.vocab_size;
  weft::Tensor x = weft::randint(0, v, {size.batch, t}, weft::dtype(weft::kInt64), &gen);
  weft::Tensor y = weft::randint(0, v, {size.batch, t}, weft::dtype(weft::kInt64), &gen);
  auto model = std::make_shared<weft::nn::GPT>(size.config);
  weft::optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  double param_bytes = 0;
  for (const weft::Tensor& p : model->parameters()) param_bytes += static_cast<double>(p.numel()) * static_cast<double>(p.element_size());

  uint64_t activations = 0;
  auto step = [&] {
    opt.zero_grad();  // gradients to none: each step makes them anew, as PyTorch's default
    const uint64_t before_forward = in_use();
    weft::Tensor loss = weft::cross_entropy(model->forward(x).reshape({-1, v}), y.reshape({-1}));
    activations = in_use() - before_forward;
    loss.backward();
    weft::optim::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    return loss.item<float>();
  };
  const float first = step();  // AdamW's state exists from here on; the cache is warm
  // Everything that is not the step's: the batch, the model's own bookkeeping, other cases' leftovers.
  opt.zero_grad();
  const uint64_t outside = in_use() - static_cast<uint64_t>(3 * param_bytes);  // parameters, AdamW's m and v
  float last = first;
  uint64_t peak = 0;
  for (auto _ : state) {
    weft::allocator::reset_peak_stats();
    const double t0 = bench::clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    last = step();
    state.SetIterationTime((bench::clock_ns(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e-9);
    peak = std::max(peak, weft::allocator::stats().peak_bytes_in_use - outside);
  }
  const weft::AllocatorStats after = weft::allocator::stats();
  const double must = 4 * param_bytes + static_cast<double>(activations);  // params, grads, m, v, activations
  state.counters["params_M"] = param_bytes / 4 / 1e6;
  state.counters["params_MiB"] = param_bytes / kMiB;
  state.counters["activations_MiB"] = static_cast<double>(activations) / kMiB;
  state.counters["must_hold_MiB"] = must / kMiB;
  state.counters["peak_MiB"] = static_cast<double>(peak) / kMiB;
  state.counters["peak_ratio"] = static_cast<double>(peak) / must;
  state.counters["held_MiB"] = static_cast<double>(after.bytes_in_use + after.bytes_cached - outside) / kMiB;
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(size.batch * t), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(size.name);
  if (!(last < first)) state.SkipWithError("the loss did not fall: the training step is wrong");
}
BENCHMARK(BM_gpt_memory)->ArgName("size")->DenseRange(0, 3)->Iterations(4)->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
