// vector_math_avx512.h: tanh, sigmoid, gelu and gelu's gradient on 16 floats at a time, written with
// AVX-512 intrinsics for the avx512 span copies of fast_spans.cpp. Same formulas and polynomials as
// vector_math.h (whose scalar forms the baseline and avx2 copies and the strided loops vectorise), with
// two instructions the compiler does not emit from portable code:
// - 1 / d as rcp14 and one Newton step (relative error ~2^-27, within an ulp of the division) in place
//   of vdivps, which on Intel cores issues one 512-bit divide per ~10 cycles on a single port: in gelu
//   the divide was about a third of the loop's time;
// - exp's 2^n through vscalefps, which rounds once into the denormal range and saturates to inf or 0, so
//   the clamps and the two-factor product of vmath::exp_parts are not needed.
// The span loops run four vectors side by side: each function is one long dependency chain (~150
// cycles), and four independent chains keep both vector ports busy.
// Measured against oneDNN 2.6's eltwise primitives in bench_ops (BM_vs_onednn); accuracy is checked by
// tests/test_unary.cpp and tests/test_vector_math_avx512.cpp on every copy (WEFT_MAX_CPU_ISA).
// Only fast_spans.cpp includes this, for x86-64 builds with GCC or Clang.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define WEFT_AVX512_INLINE gnu::always_inline, gnu::target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")

namespace weft::kernels::vmath512 {

[[WEFT_AVX512_INLINE]] inline __m512 set(float v) { return _mm512_set1_ps(v); }

// |x| and x's sign bit.
[[WEFT_AVX512_INLINE]] inline __m512 abs(__m512 x) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}
[[WEFT_AVX512_INLINE]] inline __m512 or_sign_of(__m512 a, __m512 s) {
  // a | (s & sign) in one vpternlogd: with A = a (0xF0), B = s (0xCC), C = the sign mask (0xAA),
  // A | (B & C) is 0xF0 | 0x88 = 0xF8.
  return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(a), _mm512_castps_si512(s),
                                                       _mm512_set1_epi32(INT32_MIN), 0xF8));
}
// Lanes whose sign bit is set (-0 and negative NaNs included, as vmath's bit tests).
[[WEFT_AVX512_INLINE]] inline __mmask16 sign_set(__m512 x) { return _mm512_movepi32_mask(_mm512_castps_si512(x)); }

// 1 / d for finite d >= 1 (callers keep d there): rcp14's 14 bits, then r + r (1 - d r).
[[WEFT_AVX512_INLINE]] inline __m512 recip(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, set(1.0f)), r);
}

// exp(r) for |r| <= ln2 / 2: vmath::exp_reduced, the Cephes expf polynomial.
[[WEFT_AVX512_INLINE]] inline __m512 exp_reduced(__m512 r) {
  __m512 p = set(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, set(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, set(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, set(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, set(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, set(5.0000001201e-1f));
  return _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), set(1.0f));
}

// exp(r) for |r| <= ln2 / 2 by a plain degree-6 Horner polynomial (6 fmas where exp_reduced's form
// takes 8): a weighted least-squares fit to exp on Chebyshev nodes, relative error 1.9e-9 in exact
// arithmetic and under 1e-7 (1.6 ulps) evaluated in float32. For the normal CDF, whose error bound is
// 1.2e-7 relative from the erfc approximation anyway, and tanh's 1 - 2 / (exp(2|x|) + 1), which divides
// exp's error by about 3 (|x| >= 0.625 there); sigmoid keeps exp_reduced's ulp.
[[WEFT_AVX512_INLINE]] inline __m512 exp_reduced_horner(__m512 r) {
  __m512 p = set(0.0013836841098964214f);
  p = _mm512_fmadd_ps(p, r, set(0.008374815806746483f));
  p = _mm512_fmadd_ps(p, r, set(0.04166822507977486f));
  p = _mm512_fmadd_ps(p, r, set(0.16666419804096222f));
  p = _mm512_fmadd_ps(p, r, set(0.49999991059303284f));
  p = _mm512_fmadd_ps(p, r, set(1.0f));
  return _mm512_fmadd_ps(p, r, set(1.0f));
}

// exp(x) for x in [-2^21, 128] or NaN (callers clamp): x = n ln2 + r, n rounded by the 1.5 * 2^23
// shift (one fma and one subtract, where vrndscaleps is two uops), and exp(r) scaled by 2^n in one
// rounding by vscalefps: denormal results as exact as one rounding allows, 2^128 and above inf, below
// 2^-150 zero. So no clamp is needed inside that range (vmath::exp_parts needs two).
// kHorner: exp(r) by exp_reduced_horner (two fewer operations, up to 1.6 ulps) instead of exp_reduced.
template <bool kHorner = false>
[[WEFT_AVX512_INLINE]] inline __m512 exp_core(__m512 x) {
  const __m512 shift = set(12582912.0f);
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, set(1.44269504088896341f), shift), shift);
  __m512 r = _mm512_fnmadd_ps(n, set(0.693359375f), x);  // ln2 in two parts: n * hi is exact
  r = _mm512_fnmadd_ps(n, set(-2.12194440e-4f), r);
  return _mm512_scalef_ps(kHorner ? exp_reduced_horner(r) : exp_reduced(r), n);
}

// exp(x) for x <= 0 (-inf included): clamped at -150, below which the result is 0 anyway (max returns
// x itself when it is NaN).
[[WEFT_AVX512_INLINE]] inline __m512 exp_nonpositive(__m512 x) { return exp_core(_mm512_max_ps(set(-150.0f), x)); }

// vmath::tanh: |x| < 0.625 by the Cephes odd polynomial, else 1 - 2 / (exp(2|x|) + 1) with |x| capped
// at 10 (tanh(10) rounds to 1, and exp stays finite, which the reciprocal needs); x's sign put back.
[[WEFT_AVX512_INLINE]] inline __m512 tanh(__m512 x) {
  const __m512 a = abs(x);
  const __m512 s = _mm512_mul_ps(a, a);
  __m512 p = set(-5.70498872745e-3f);
  p = _mm512_fmadd_ps(p, s, set(2.06390887954e-2f));
  p = _mm512_fmadd_ps(p, s, set(-5.37397155531e-2f));
  p = _mm512_fmadd_ps(p, s, set(1.33314422036e-1f));
  p = _mm512_fmadd_ps(p, s, set(-3.33332819422e-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, s), a, a);
  const __m512 capped = _mm512_min_ps(set(10.0f), a);  // NaN stays NaN
  const __m512 e = exp_core<true>(_mm512_add_ps(capped, capped));
  const __m512 big = _mm512_fnmadd_ps(set(2.0f), recip(_mm512_add_ps(e, set(1.0f))), set(1.0f));
  const __mmask16 use_small = _mm512_cmp_ps_mask(a, set(0.625f), _CMP_LT_OQ);
  return or_sign_of(_mm512_mask_blend_ps(use_small, big, small), x);
}

// vmath::sigmoid: e = exp(-|x|) in (0, 1], r = 1 / (1 + e); r for x >= 0, e r for x < 0.
[[WEFT_AVX512_INLINE]] inline __m512 sigmoid(__m512 x) {
  const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), abs(x)));
  const __m512 r = recip(_mm512_add_ps(e, set(1.0f)));
  return _mm512_mask_blend_ps(sign_set(x), r, _mm512_mul_ps(e, r));
}

// vmath::normal_cdf: Phi(-|x|) = erfc(z) / 2, z = |x| / sqrt2, as t exp(-z^2 + P(t)) / 2 with
// t = 1 / (1 + z / 2) (Numerical Recipes' erfcc), then 1 - that for x >= 0. Computed with h = t / 2 =
// 1 / (2 + z), which is the factor wanted, and P's coefficients scaled by 2^k for h^k (exact: powers of
// two). z is capped at 32 (NaN passes), for the reciprocal and so that -z^2 + P stays in exp's range:
// past it the result underflows to 0 either way.
[[WEFT_AVX512_INLINE]] inline __m512 normal_cdf(__m512 x) {
  const __m512 z = _mm512_min_ps(set(32.0f), _mm512_mul_ps(abs(x), set(0.70710678118654752440f)));
  const __m512 h = recip(_mm512_add_ps(z, set(2.0f)));
  __m512 p = set(0.17087277f * 512);
  p = _mm512_fmadd_ps(p, h, set(-0.82215223f * 256));
  p = _mm512_fmadd_ps(p, h, set(1.48851587f * 128));
  p = _mm512_fmadd_ps(p, h, set(-1.13520398f * 64));
  p = _mm512_fmadd_ps(p, h, set(0.27886807f * 32));
  p = _mm512_fmadd_ps(p, h, set(-0.18628806f * 16));
  p = _mm512_fmadd_ps(p, h, set(0.09678418f * 8));
  p = _mm512_fmadd_ps(p, h, set(0.37409196f * 4));
  p = _mm512_fmadd_ps(p, h, set(1.00002368f * 2));
  p = _mm512_fmadd_ps(p, h, set(-1.26551223f));
  const __m512 small = _mm512_mul_ps(h, exp_core<true>(_mm512_fnmadd_ps(z, z, p)));
  return _mm512_mask_blend_ps(sign_set(x), _mm512_sub_ps(set(1.0f), small), small);
}

[[WEFT_AVX512_INLINE]] inline __m512 gelu(__m512 x) { return _mm512_mul_ps(x, normal_cdf(x)); }

// g * (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
[[WEFT_AVX512_INLINE]] inline __m512 gelu_grad(__m512 g, __m512 x) {
  const __m512 pdf =
      _mm512_mul_ps(set(0.39894228040143267794f), exp_nonpositive(_mm512_mul_ps(_mm512_mul_ps(set(-0.5f), x), x)));
  return _mm512_mul_ps(g, _mm512_fmadd_ps(x, pdf, normal_cdf(x)));
}

}  // namespace weft::kernels::vmath512

#undef WEFT_AVX512_INLINE
