// fast_spans.cpp: the float32 contiguous span kernels (exp, tanh, sigmoid, silu, gelu, the silu / gelu
// gradients, the four arithmetic ops, and the float sum) over the polynomials of vector_math.h, compiled
// three times, for baseline x86-64, avx2+fma and avx512, and picked at run time (the library is built
// without -march=native). The avx512 copy halves the instructions per element: on an AVX-512 host
// (AMD EPYC, Zen 4) tanh over 16K floats went from 2.7x oneDNN's eltwise time to 1.45x, gelu from
// 3.8x to 1.9x, exp over 1M floats from 1.39x to 0.75x (bench_ops BM_vs_onednn). The arithmetic
// ones are here for the width alone: an optimizer's in-place p -= lr * g over 1M floats took 187 us
// as an SSE2 loop and 118 us as an AVX2 one. In the avx512 copy tanh, sigmoid, gelu and gelu's
// gradient are written with intrinsics (vector_math_avx512.h: no divide, a vscalefps exp, four
// vectors side by side), which took them on 16K floats (Ice Lake, 1 thread) from 1.59x, 1.04x and
// 1.53x oneDNN's eltwise time to about 0.85x, 0.75x and 0.92x.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu_isa.h"
#include "kernels/elementwise.h"
#include "kernels/vector_math.h"
#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 reports the undefined pass-through operand inside avx512fintrin.h's unmasked intrinsics
// (_mm512_min_ps, _mm512_rcp14_ps, ...) as maybe-uninitialized once they are inlined; it is not.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/vector_math_avx512.h"
#endif

namespace weft::kernels {
namespace {

enum class K : uint8_t { Exp, Tanh, Sigmoid, Silu, Gelu, SiluGrad, GeluGrad, Add, Sub, Mul, Div };

template <K k, bool kFma>
[[gnu::always_inline]] inline float apply(float x) {
  if constexpr (k == K::Exp) return vmath::exp<kFma>(x);
  else if constexpr (k == K::Tanh) return vmath::tanh<kFma>(x);
  else if constexpr (k == K::Sigmoid) return vmath::sigmoid<kFma>(x);
  else if constexpr (k == K::Silu) return vmath::silu<kFma>(x);
  else return vmath::gelu<kFma>(x);
}

// As binary_fn in elementwise.cpp: alpha scales b for Add and Sub.
template <K k, bool kFma>
[[gnu::always_inline]] inline float apply(float a, float b, float alpha) {
  if constexpr (k == K::SiluGrad) return vmath::silu_grad<kFma>(a, b);
  else if constexpr (k == K::GeluGrad) return vmath::gelu_grad<kFma>(a, b);
  else if constexpr (k == K::Add) return a + alpha * b;
  else if constexpr (k == K::Sub) return a - alpha * b;
  else if constexpr (k == K::Mul) return a * b;
  else return a / b;
}

// Whole blocks of 8 in the vector loop; the n % 8 tail through an 8-wide stack buffer, so it is one more
// vector pass rather than a scalar epilogue (a 16-element op is 2 blocks; a 20-element one 2 + 1).
constexpr int64_t kBlock = 8;

template <K k, bool kFma>
[[gnu::always_inline]] inline void span1(float* o, const float* x, int64_t n) {
  int64_t body = n & ~(kBlock - 1);
#pragma omp simd
  for (int64_t i = 0; i < body; ++i) o[i] = apply<k, kFma>(x[i]);
  if (body == n) return;
  float in[kBlock] = {}, res[kBlock];
  for (int64_t i = body; i < n; ++i) in[i - body] = x[i];
#pragma omp simd
  for (int64_t i = 0; i < kBlock; ++i) res[i] = apply<k, kFma>(in[i]);
  for (int64_t i = body; i < n; ++i) o[i] = res[i - body];
}

template <K k, bool kFma>
[[gnu::always_inline]] inline void span2(float* o, const float* a, const float* b, float alpha, int64_t n) {
  int64_t body = n & ~(kBlock - 1);
#pragma omp simd
  for (int64_t i = 0; i < body; ++i) o[i] = apply<k, kFma>(a[i], b[i], alpha);
  if (body == n) return;
  // The tail's padding lanes divide 1 by 1, not by 0: no spurious FP exception flags.
  float ina[kBlock] = {1, 1, 1, 1, 1, 1, 1, 1}, inb[kBlock] = {1, 1, 1, 1, 1, 1, 1, 1}, res[kBlock];
  for (int64_t i = body; i < n; ++i) ina[i - body] = a[i], inb[i - body] = b[i];
#pragma omp simd
  for (int64_t i = 0; i < kBlock; ++i) res[i] = apply<k, kFma>(ina[i], inb[i], alpha);
  for (int64_t i = body; i < n; ++i) o[i] = res[i - body];
}

// Note [Float32 sums]
// One double accumulator (a float widened and added per element) runs at the add's latency, about one
// element a cycle, and oneDNN's float reduction was 3.8x faster over 1M floats (bench_ops
// BM_vs_onednn/sum). Here a block of kSumBlock floats is summed into kSumLanes independent float
// partial sums, which the vector adds advance side by side; the lanes are then added pairwise and each
// block's total is added in double. A float partial sum carries kSumBlock / kSumLanes = 128 terms (and
// 5 pairwise roundings), so its error stays that of a short sum, while the row's length is carried by
// the double.
constexpr int64_t kSumLanes = 32, kSumBlock = 4096;

[[gnu::always_inline]] inline double sum_span(const float* x, int64_t n) {
  double total = 0;
  int64_t i = 0;
  while (n - i >= kSumLanes) {
    float lane[kSumLanes] = {};
    const int64_t end = i + std::min(n - i, kSumBlock) / kSumLanes * kSumLanes;
    for (; i < end; i += kSumLanes)
#pragma omp simd
      for (int64_t l = 0; l < kSumLanes; ++l) lane[l] += x[i + l];
    // Pairwise, in float: a chain of 32 double adds cost more than the block itself on a 1024-float row.
    for (int64_t w = kSumLanes / 2; w > 0; w /= 2)
      for (int64_t l = 0; l < w; ++l) lane[l] += lane[l + w];
    total += lane[0];
  }
  for (; i < n; ++i) total += x[i];
  return total;
}

// The copies: baseline x86-64, avx2+fma and avx512 (attributes from kernels/cpu_isa.h).
template <K k>
void span1_base(float* o, const float* x, int64_t n) { span1<k, false>(o, x, n); }
template <K k>
[[WEFT_AVX2]] void span1_avx2(float* o, const float* x, int64_t n) { span1<k, true>(o, x, n); }
#if defined(__x86_64__) && defined(__GNUC__)
// The ops vector_math_avx512.h has intrinsic forms of: 16 lanes a step, the tail under a lane mask.
template <K k>
constexpr bool kIntrinsic512 = k == K::Tanh || k == K::Sigmoid || k == K::Gelu || k == K::GeluGrad;
template <K k>
[[gnu::always_inline, WEFT_AVX512]] inline __m512 apply512(__m512 x) {
  if constexpr (k == K::Tanh) return vmath512::tanh(x);
  else if constexpr (k == K::Sigmoid) return vmath512::sigmoid(x);
  else return vmath512::gelu(x);
}
template <K k>
[[WEFT_AVX512]] void span1_avx512(float* o, const float* x, int64_t n) {
  if constexpr (kIntrinsic512<k>) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {  // four independent chains (see vector_math_avx512.h)
      __m512 v[4];
      for (int u = 0; u < 4; ++u) v[u] = _mm512_loadu_ps(x + i + 16 * u);
      for (int u = 0; u < 4; ++u) _mm512_storeu_ps(o + i + 16 * u, apply512<k>(v[u]));
    }
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(o + i, apply512<k>(_mm512_loadu_ps(x + i)));
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
      _mm512_mask_storeu_ps(o + i, m, apply512<k>(_mm512_maskz_loadu_ps(m, x + i)));
    }
  } else {
    span1<k, true>(o, x, n);
  }
}
#else
template <K k>
[[WEFT_AVX512]] void span1_avx512(float* o, const float* x, int64_t n) { span1<k, true>(o, x, n); }
#endif
template <K k>
void span2_base(float* o, const float* a, const float* b, float alpha, int64_t n) {
  span2<k, false>(o, a, b, alpha, n);
}
template <K k>
[[WEFT_AVX2]] void span2_avx2(float* o, const float* a, const float* b, float alpha, int64_t n) {
  span2<k, true>(o, a, b, alpha, n);
}
template <K k>
[[WEFT_AVX512]] void span2_avx512(float* o, const float* a, const float* b, float alpha, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if constexpr (k == K::GeluGrad) {  // a is the incoming gradient, b the input
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      __m512 g[4], v[4];
      for (int u = 0; u < 4; ++u) g[u] = _mm512_loadu_ps(a + i + 16 * u), v[u] = _mm512_loadu_ps(b + i + 16 * u);
      for (int u = 0; u < 4; ++u) _mm512_storeu_ps(o + i + 16 * u, vmath512::gelu_grad(g[u], v[u]));
    }
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(o + i, vmath512::gelu_grad(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
      _mm512_mask_storeu_ps(o + i, m, vmath512::gelu_grad(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
    return;
  }
#endif
  span2<k, true>(o, a, b, alpha, n);
}
double sum_base(const float* x, int64_t n) { return sum_span(x, n); }
[[WEFT_AVX2]] double sum_avx2(const float* x, int64_t n) { return sum_span(x, n); }
[[WEFT_AVX512]] double sum_avx512(const float* x, int64_t n) { return sum_span(x, n); }

template <K k>
UnarySpan pick1() { return widest<UnarySpan>(span1_base<k>, span1_avx2<k>, span1_avx512<k>); }
template <K k>
BinarySpan pick2() { return widest<BinarySpan>(span2_base<k>, span2_avx2<k>, span2_avx512<k>); }

}  // namespace

double float32_sum(const float* x, int64_t n) {
  static const auto sum = widest<double (*)(const float*, int64_t)>(sum_base, sum_avx2, sum_avx512);
  return sum(x, n);
}

UnarySpan float32_span(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp: return pick1<K::Exp>();
    case UnaryOp::Tanh: return pick1<K::Tanh>();
    case UnaryOp::Sigmoid: return pick1<K::Sigmoid>();
    case UnaryOp::Silu: return pick1<K::Silu>();
    case UnaryOp::Gelu: return pick1<K::Gelu>();
    default: return nullptr;
  }
}

BinarySpan float32_span(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return pick2<K::Add>();
    case BinaryOp::Sub: return pick2<K::Sub>();
    case BinaryOp::Mul: return pick2<K::Mul>();
    case BinaryOp::Div: return pick2<K::Div>();
    case BinaryOp::SiluGrad: return pick2<K::SiluGrad>();
    case BinaryOp::GeluGrad: return pick2<K::GeluGrad>();
    default: return nullptr;
  }
}

}  // namespace weft::kernels
