// bench_ops: weft's ops against what they are built to match: raw oneDNN primitives made once outside
// the timing loop (matmul, linear, softmax, layer norm, log-softmax for cross entropy) and plain
// vectorised loops into preallocated, pre-touched memory (elementwise add, reductions; libm tanh / exp
// loops). Every case interleaves weft and its baseline (Note [Paired timing] in bench_common.h).
#include <sys/mman.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "bench_common.h"

namespace {

using dnnl::memory;
using Args = std::unordered_map<int, memory>;

weft::Tensor randn(const weft::Shape& shape) { return weft::randn(shape); }
float* fp(const weft::Tensor& t) { return t.data_ptr<float>(); }

// One call of a raw primitive made once, waited for: the baseline side of a pair.
auto raw_call(const dnnl::primitive& prim, const Args& args) {
  return [&prim, &args] {
    prim.execute(bench::raw_stream(), args);
    bench::raw_stream().wait();
  };
}

// ---------------------------------------------------------------- matmul / linear (n x n x n)

// weft's matmul (or linear) against a raw oneDNN matmul primitive made once: C = A @ B, or with
// `linear` C = A @ W^T + bias, W read through column-major strides exactly as weft::linear passes
// it. Paired (Note [Paired timing]): the target is within 5% of the raw call.
void BM_matmul_pair(benchmark::State& state, bool linear) {
  const int64_t n = state.range(0);
  bench::set_threads(static_cast<int>(state.range(1)));
  weft::Tensor a = randn({n, n}), b = randn({n, n}), bias = randn({n}), c = weft::empty({n, n});
  auto a_md = bench::f32_desc({n, n}, {n, 1});
  auto b_md = linear ? bench::f32_desc({n, n}, {1, n}) : bench::f32_desc({n, n}, {n, 1});
  auto c_md = bench::f32_desc({n, n}, {n, 1});
  auto bias_md = bench::f32_desc({1, n}, {n, 1});
  auto& eng = bench::raw_engine();
  auto desc = linear ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
  dnnl::matmul prim(dnnl::matmul::primitive_desc(desc, eng));
  Args args{{DNNL_ARG_SRC, memory(a_md, eng, fp(a))},
            {DNNL_ARG_WEIGHTS, memory(b_md, eng, fp(b))},
            {DNNL_ARG_DST, memory(c_md, eng, fp(c))}};
  if (linear) args.emplace(DNNL_ARG_BIAS, memory(bias_md, eng, fp(bias)));
  bench::paired(
      state,
      raw_call(prim, args),
      [&] { benchmark::DoNotOptimize((linear ? weft::linear(a, b, bias) : weft::matmul(a, b)).raw_data()); });
  const double flops = 2.0 * n * n * n;
  state.counters["GFLOPs"] = flops / (state.counters["weft_us"] * 1e3);
  state.counters["GFLOPs_onednn"] = flops / (state.counters["baseline_us"] * 1e3);
}

void BM_matmul(benchmark::State& s) { BM_matmul_pair(s, false); }
void BM_linear(benchmark::State& s) { BM_matmul_pair(s, true); }
BENCHMARK(BM_matmul)->ArgNames({"n", "threads"})->ArgsProduct({{64, 256, 1024, 2048}, {1, 2}})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_linear)->ArgNames({"n", "threads"})->ArgsProduct({{64, 256, 1024, 2048}, {1, 2}})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- elementwise add, reductions
// Paired with plain loops (Note [Paired timing]) into memory allocated and written before timing
// (huge-page advised, as bench_peak's STREAM arrays): the loop pays no page fault, and weft's output
// block comes from its cache after the first call, so both sides stream the same bytes.

// n floats on a 2 MiB boundary, advised to use huge pages, written once.
std::unique_ptr<float, decltype(&std::free)> touched(int64_t n, float value) {
  const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + (2 << 20) - 1) / (2 << 20) * (2 << 20);
  auto* p = static_cast<float*>(std::aligned_alloc(2 << 20, bytes));
  madvise(p, bytes, MADV_HUGEPAGE);
  for (int64_t i = 0; i < n; ++i) p[i] = value;
  return {p, &std::free};
}

// A loop over n elements: parallel (the thread setting's team) above 32K elements; below, no
// parallel region at all (even an if(false) one costs a team setup).
template <class F>
void loop(int64_t n, F f) {
  if (n > 32768) {
#pragma omp parallel for simd schedule(static) num_threads(weft::get_num_threads())
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// c = a + b: 12 bytes per element (STREAM's add), the GB/s the report sets beside its peak.
void BM_add(benchmark::State& state) {
  const int64_t n = state.range(0);
  bench::set_threads(static_cast<int>(state.range(1)));
  weft::NoGradGuard no_grad;
  auto a = touched(n, 1.0f), b = touched(n, 2.0f), c = touched(n, 0.0f);
  const float *pa = a.get(), *pb = b.get();
  float* pc = c.get();
  weft::Tensor x = weft::ones({n}), y = weft::full({n}, 2.0);
  bench::paired(
      state,
      [&] {
        loop(n, [=](int64_t i) { pc[i] = pa[i] + pb[i]; });
        benchmark::ClobberMemory();
      },
      [&] { benchmark::DoNotOptimize(weft::add(x, y).raw_data()); });
  state.counters["GBs"] = 12.0 * n / (state.counters["weft_us"] * 1e3);
  state.counters["GBs_loop"] = 12.0 * n / (state.counters["baseline_us"] * 1e3);
}
BENCHMARK(BM_add)->ArgNames({"n", "threads"})->Args({16, 1})->Args({16 << 20, 1})->Args({16 << 20, 2})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);

// std::tanh or std::exp per element: the libm route weft's float32 tanh and exp took before their
// own polynomials (kernels/vector_math.h).
void BM_transcendental(benchmark::State& state, bool tanh_op) {
  const int64_t n = state.range(0);
  bench::set_threads(static_cast<int>(state.range(1)));
  weft::NoGradGuard no_grad;
  weft::Tensor x = randn({n});
  auto y = touched(n, 0.0f);
  const float* px = fp(x);
  float* py = y.get();
  bench::paired(
      state,
      [&] {
        if (tanh_op) loop(n, [=](int64_t i) { py[i] = std::tanh(px[i]); });
        else loop(n, [=](int64_t i) { py[i] = std::exp(px[i]); });
        benchmark::ClobberMemory();
      },
      [&] { benchmark::DoNotOptimize((tanh_op ? weft::tanh(x) : weft::exp(x)).raw_data()); });
}
BENCHMARK_CAPTURE(BM_transcendental, tanh, true)->ArgNames({"n", "threads"})->Args({16, 1})->Args({1 << 20, 1})
    ->Args({1 << 20, 2})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_transcendental, exp, false)->ArgNames({"n", "threads"})->Args({16, 1})->Args({1 << 20, 1})
    ->Args({1 << 20, 2})->UseManualTime()->Unit(benchmark::kMicrosecond);

// The sum of 16M floats (accumulated in double, as weft's float sums are), and the mean of each row of
// a [16384, 1024] matrix.
void BM_reduce(benchmark::State& state, bool rows) {
  const int64_t n = state.range(0), cols = 1024, nrows = n / cols;
  bench::set_threads(static_cast<int>(state.range(1)));
  weft::NoGradGuard no_grad;
  auto a = touched(n, 0.5f), out = touched(nrows, 0.0f);
  const float* pa = a.get();
  float* po = out.get();
  weft::Tensor x = weft::full({nrows, cols}, 0.5);
  bench::paired(
      state,
      [&] {
        if (rows) {
#pragma omp parallel for schedule(static) num_threads(weft::get_num_threads())
          for (int64_t r = 0; r < nrows; ++r) {
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < cols; ++j) acc += pa[r * cols + j];
            po[r] = acc / cols;
          }
          benchmark::ClobberMemory();
        } else {
          double total = 0;
#pragma omp parallel for simd reduction(+ : total) schedule(static) num_threads(weft::get_num_threads())
          for (int64_t i = 0; i < n; ++i) total += pa[i];
          benchmark::DoNotOptimize(total);
        }
      },
      [&] { benchmark::DoNotOptimize((rows ? weft::mean(x, {1}) : weft::sum(x)).raw_data()); });
  state.counters["GBs"] = 4.0 * n / (state.counters["weft_us"] * 1e3);
}
BENCHMARK_CAPTURE(BM_reduce, sum, false)->ArgNames({"n", "threads"})->Args({16 << 20, 1})->Args({16 << 20, 2})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_reduce, mean_rows, true)->ArgNames({"n", "threads"})->Args({16 << 20, 1})->Args({16 << 20, 2})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- own loops against oneDNN's primitives
// weft runs float32 elementwise ops and reductions on its own loops (kernels/elementwise.h,
// reduce.h), not on oneDNN's eltwise, binary and reduction primitives. These pairs are the
// measurement behind that choice: the primitive made once (its best case), against weft's op
// including its output allocation (Note [Paired timing]).

enum class RawOp { kAdd, kTanh, kExp, kSigmoid, kGelu, kSilu, kSum, kMeanRows };

dnnl::primitive raw_primitive(RawOp op, const memory::desc& x_md, const memory::desc& y_md) {
  auto& eng = bench::raw_engine();
  using dnnl::algorithm;
  const auto inference = dnnl::prop_kind::forward_inference;
  switch (op) {
    case RawOp::kAdd:
      return dnnl::binary(dnnl::binary::primitive_desc(dnnl::binary::desc(algorithm::binary_add, x_md, x_md, y_md), eng));
    case RawOp::kTanh:
    case RawOp::kExp:
    case RawOp::kSigmoid:
    case RawOp::kGelu:
    case RawOp::kSilu: {
      auto alg = op == RawOp::kTanh      ? algorithm::eltwise_tanh
                 : op == RawOp::kExp     ? algorithm::eltwise_exp
                 : op == RawOp::kSigmoid ? algorithm::eltwise_logistic
                 : op == RawOp::kGelu    ? algorithm::eltwise_gelu_erf
                                         : algorithm::eltwise_swish;
      const float alpha = op == RawOp::kSilu ? 1.f : 0.f;  // swish(x) = x sigmoid(alpha x)
      return dnnl::eltwise_forward(
          dnnl::eltwise_forward::primitive_desc(dnnl::eltwise_forward::desc(inference, alg, x_md, alpha), eng));
    }
    case RawOp::kSum:
    case RawOp::kMeanRows: {
      auto alg = op == RawOp::kSum ? algorithm::reduction_sum : algorithm::reduction_mean;
      return dnnl::reduction(dnnl::reduction::primitive_desc(dnnl::reduction::desc(alg, x_md, y_md, 0.f, 0.f), eng));
    }
  }
  return {};
}

weft::Tensor weft_op(RawOp op, const weft::Tensor& x) {
  switch (op) {
    case RawOp::kAdd: return weft::add(x, x);
    case RawOp::kTanh: return weft::tanh(x);
    case RawOp::kExp: return weft::exp(x);
    case RawOp::kSigmoid: return weft::sigmoid(x);
    case RawOp::kGelu: return weft::gelu(x);
    case RawOp::kSilu: return weft::silu(x);
    case RawOp::kSum: return weft::sum(x);
    case RawOp::kMeanRows: return weft::mean(x, {1}, /*keepdim=*/true);
  }
  return {};
}

// n elements; kMeanRows reads them as rows of 1024 (or one row of n) and reduces each row.
void BM_vs_onednn(benchmark::State& state, RawOp op) {
  const int64_t n = state.range(0);
  bench::set_threads(static_cast<int>(state.range(1)));
  weft::NoGradGuard no_grad;
  const bool rows = op == RawOp::kMeanRows;
  const int64_t cols = std::min<int64_t>(n, 1024);
  const memory::dims x_dims = rows ? memory::dims{n / cols, cols} : memory::dims{n};
  const memory::dims x_strides = rows ? memory::dims{cols, 1} : memory::dims{1};
  const memory::dims y_dims = op == RawOp::kSum ? memory::dims{1} : rows ? memory::dims{n / cols, 1} : x_dims;
  const memory::dims y_strides = rows ? memory::dims{1, 1} : memory::dims{1};
  weft::Tensor x = weft::randn(weft::Shape(x_dims.begin(), x_dims.end()));
  weft::Tensor y = weft::empty(weft::Shape(y_dims.begin(), y_dims.end()));
  auto x_md = bench::f32_desc(x_dims, x_strides), y_md = bench::f32_desc(y_dims, y_strides);
  dnnl::primitive prim = raw_primitive(op, x_md, y_md);
  auto& eng = bench::raw_engine();
  memory xm(x_md, eng, fp(x)), ym(y_md, eng, fp(y));
  Args args = op == RawOp::kAdd ? Args{{DNNL_ARG_SRC_0, xm}, {DNNL_ARG_SRC_1, xm}, {DNNL_ARG_DST, ym}}
                                : Args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}};
  bench::paired(
      state,
      raw_call(prim, args),
      [&] { benchmark::DoNotOptimize(weft_op(op, x).raw_data()); });
}

void vs_onednn_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "threads"})->UseManualTime()->Unit(benchmark::kMicrosecond);
  b->Args({16, 1})->Args({1024, 1})->Args({4096, 1})->Args({16384, 1})->Args({1 << 20, 1})->Args({1 << 20, 2});
  b->Args({16 << 20, 1})->Args({16 << 20, 2});
}
BENCHMARK_CAPTURE(BM_vs_onednn, add, RawOp::kAdd)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, tanh, RawOp::kTanh)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, exp, RawOp::kExp)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, sigmoid, RawOp::kSigmoid)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, gelu, RawOp::kGelu)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, silu, RawOp::kSilu)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, sum, RawOp::kSum)->Apply(vs_onednn_args);
BENCHMARK_CAPTURE(BM_vs_onednn, mean_rows, RawOp::kMeanRows)->Apply(vs_onednn_args);

// ---------------------------------------------------------------- softmax, layer norm, cross entropy
// All on [rows, cols] float32, along the last dim, forward (inference) only.
constexpr int64_t kRows = 512, kCols = 1024, kClasses = 1000;

// Each against its raw oneDNN primitive made once, paired (Note [Paired timing]).
void BM_softmax(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  weft::NoGradGuard no_grad;
  auto& eng = bench::raw_engine();
  weft::Tensor x = randn({kRows, kCols}), y = weft::empty({kRows, kCols});
  auto md = bench::f32_desc({kRows, kCols}, {kCols, 1});
  dnnl::softmax_forward prim(dnnl::softmax_forward::primitive_desc(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng));
  Args args{{DNNL_ARG_SRC, memory(md, eng, fp(x))}, {DNNL_ARG_DST, memory(md, eng, fp(y))}};
  bench::paired(state, raw_call(prim, args), [&] { benchmark::DoNotOptimize(weft::softmax(x, -1).raw_data()); });
}

void BM_layer_norm(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  weft::NoGradGuard no_grad;
  auto& eng = bench::raw_engine();
  weft::Tensor x = randn({kRows, kCols}), y = weft::empty({kRows, kCols});
  weft::Tensor w = weft::ones({kCols}), b = weft::zeros({kCols});
  auto md = bench::f32_desc({kRows, kCols}, {kCols, 1});
  auto wmd = bench::f32_desc({kCols}, {1});
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  dnnl::layer_normalization_forward prim(dnnl::layer_normalization_forward::primitive_desc(
      dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, md, 1e-5f, flags), eng));
  Args args{{DNNL_ARG_SRC, memory(md, eng, fp(x))},
            {DNNL_ARG_DST, memory(md, eng, fp(y))},
            {DNNL_ARG_SCALE, memory(wmd, eng, fp(w))},
            {DNNL_ARG_SHIFT, memory(wmd, eng, fp(b))}};
  bench::paired(state, raw_call(prim, args),
                [&] { benchmark::DoNotOptimize(weft::layer_norm(x, {kCols}, w, b).raw_data()); });
}

// Baseline: oneDNN log-softmax, then a loop picking each row's target and averaging.
void BM_cross_entropy(benchmark::State& state) {
  bench::set_threads(static_cast<int>(state.range(0)));
  weft::NoGradGuard no_grad;
  auto& eng = bench::raw_engine();
  weft::Tensor x = randn({kRows, kClasses}), lp = weft::empty({kRows, kClasses});
  weft::Tensor target = weft::randint(0, kClasses, {kRows});
  const int64_t* pt = target.data_ptr<int64_t>();
  auto md = bench::f32_desc({kRows, kClasses}, {kClasses, 1});
  dnnl::logsoftmax_forward prim(dnnl::logsoftmax_forward::primitive_desc(
      dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng));
  Args args{{DNNL_ARG_SRC, memory(md, eng, fp(x))}, {DNNL_ARG_DST, memory(md, eng, fp(lp))}};
  const float* plp = fp(lp);
  bench::paired(
      state,
      [&] {
        prim.execute(bench::raw_stream(), args);
        bench::raw_stream().wait();
        double loss = 0;
        for (int64_t r = 0; r < kRows; ++r) loss -= plp[r * kClasses + pt[r]];
        benchmark::DoNotOptimize(loss / kRows);
      },
      [&] { benchmark::DoNotOptimize(weft::cross_entropy(x, target).raw_data()); });
}

void nn_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"threads"})->UseManualTime()->Unit(benchmark::kMicrosecond)->Arg(1)->Arg(2);
}
BENCHMARK(BM_softmax)->Apply(nn_args);
BENCHMARK(BM_layer_norm)->Apply(nn_args);
BENCHMARK(BM_cross_entropy)->Apply(nn_args);

}  // namespace

BENCHMARK_MAIN();
