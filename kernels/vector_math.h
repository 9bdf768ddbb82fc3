// vector_math.h: float32 exp, tanh, sigmoid, silu and the normal CDF (through erfc) as inline polynomials,
// no libm calls, so `#pragma omp simd` loops over them vectorise (std::exp / std::tanh are scalar calls,
// and in a 16-element autograd chain __tanhf + __expm1f were ~15% of the time). Used by the float32
// span kernels (fast_spans.cpp) and, element by element, by the strided loops (elementwise.cpp).
//
// Written for gcc's if-conversion under -ftrapping-math: no `c ? a : b` on computed floats (that stays a
// branch and blocks vectorisation); both sides are computed and selected through bit masks. kFma: the
// library targets baseline x86-64, where std::fma is a libm call, so a * b + c there, and fused
// multiply-adds only in the avx2+fma span copies. always_inline throughout: one out-of-line call per
// element and the loop stays scalar.
//
// Accuracy (tests/test_unary.cpp checks it against float64 over the whole range): exp, sigmoid, silu and
// tanh within a few float ulps; exp overflows to inf above ~88.72 and underflows through the denormals
// to 0 below ~-103.9; tanh(+-inf) = +-1; NaN in gives NaN out.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace weft::kernels::vmath {

template <bool kFma>
[[gnu::always_inline]] inline float madd(float a, float b, float c) {
  if constexpr (kFma) return std::fma(a, b, c);
  else return a * b + c;
}

[[gnu::always_inline]] inline uint32_t mask_if(bool c) { return 0u - static_cast<uint32_t>(c); }

// a where mask is all ones, b where it is zero.
[[gnu::always_inline]] inline float select_bits(uint32_t mask, float a, float b) {
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & mask) | (std::bit_cast<uint32_t>(b) & ~mask));
}

[[gnu::always_inline]] inline float abs_bits(float x) {
  return std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0x7FFFFFFFu);
}

// |a| with the sign of s.
[[gnu::always_inline]] inline float with_sign_of(float a, float s) {
  return std::bit_cast<float>(std::bit_cast<uint32_t>(a) | (std::bit_cast<uint32_t>(s) & 0x80000000u));
}

// exp(r) for |r| <= ln2 / 2: the Cephes expf polynomial (relative error ~1e-7).
template <bool kFma>
[[gnu::always_inline]] inline float exp_reduced(float r) {
  float p = 1.9875691500e-4f;
  p = madd<kFma>(p, r, 1.3981999507e-3f);
  p = madd<kFma>(p, r, 8.3334519073e-3f);
  p = madd<kFma>(p, r, 4.1665795894e-2f);
  p = madd<kFma>(p, r, 1.6666665459e-1f);
  p = madd<kFma>(p, r, 5.0000001201e-1f);
  return madd<kFma>(p, r * r, r) + 1.0f;
}

// exp(x), whole float range, as a product a * b: x = n ln2 + r, n = round(x / ln2), a = exp(r) 2^n1 and
// b = 2^n2 with n1 + n2 = n both small enough (n in [-217, 129]) that a and b are normal floats. So a
// result in the denormal range is rounded once, by the last multiply, n = 129 overflows to inf there, and
// m * exp(x) computed as (m * a) * b keeps its digits when exp(x) alone would be a denormal (silu).
struct ExpParts {
  float a, b;
};

template <bool kFma = false>
[[gnu::always_inline]] inline ExpParts exp_parts(float x) {
  // Clamp to [-150, 89]: outside, the result is 0 or inf anyway (for silu's |m| <= 150 too), and n stays
  // small. Below, b is 0, so that m * exp(x) is 0 for any finite m. NaN compares false and flows through to the result.
  uint32_t below = mask_if(x < -150.0f);
  x = select_bits(mask_if(x > 89.0f), 89.0f, x);
  x = select_bits(below, -150.0f, x);
  // Adding 1.5 * 2^23 rounds x / ln2 to an integer held in the low mantissa bits (no cvt, which SSE2
  // only has truncating).
  constexpr float kShift = 12582912.0f;
  float t = madd<kFma>(x, 1.44269504088896341f, kShift);
  float n = t - kShift;
  float r = madd<kFma>(n, -0.693359375f, x);  // ln2 in two parts: n * hi is exact
  r = madd<kFma>(n, 2.12194440e-4f, r);
  // Unsigned arithmetic: for a NaN x the bits are garbage, but exp(r) is NaN already.
  uint32_t nb = std::bit_cast<uint32_t>(t) - 0x4B400000u;
  uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(nb) >> 1), n2 = nb - n1;
  return {exp_reduced<kFma>(r) * std::bit_cast<float>((n1 + 127u) << 23),
          std::bit_cast<float>(((n2 + 127u) << 23) & ~below)};
}

template <bool kFma = false>
[[gnu::always_inline]] inline float exp(float x) {
  ExpParts e = exp_parts<kFma>(x);
  return e.a * e.b;
}

// exp(x) for x <= 0 only (x < -87 gives exp(-87) ~ 1.6e-38; NaN stays NaN through r): the cheaper
// form the normal CDF uses, where the argument is never positive and never needs denormals.
template <bool kFma>
[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  // Float bits above -87's, read unsigned, are the more negative numbers (and -NaN): clamp those.
  x = select_bits(mask_if(std::bit_cast<uint32_t>(x) > 0xC2AE0000u), -87.0f, x);
  float n = -static_cast<float>(static_cast<int32_t>(0.5f - x * 1.44269504088896341f));  // round(x / ln2)
  float r = madd<kFma>(n, -0.693359375f, x);
  r = madd<kFma>(n, 2.12194440e-4f, r);
  return exp_reduced<kFma>(r) * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// tanh(x), on |x| with x's sign put back (so tanh(-0) = -0): |x| < 0.625 by the Cephes tanhf odd
// polynomial (no cancellation near 0, denormals pass through); otherwise 1 - 2 / (exp(2|x|) + 1).
// exp(2|x|) = inf for large or infinite x gives exactly +-1; NaN takes the second form and stays NaN.
template <bool kFma = false>
[[gnu::always_inline]] inline float tanh(float x) {
  float a = abs_bits(x);
  float s = a * a;
  float p = -5.70498872745e-3f;
  p = madd<kFma>(p, s, 2.06390887954e-2f);
  p = madd<kFma>(p, s, -5.37397155531e-2f);
  p = madd<kFma>(p, s, 1.33314422036e-1f);
  p = madd<kFma>(p, s, -3.33332819422e-1f);
  float small = madd<kFma>(p * s, a, a);
  float big = 1.0f - 2.0f / (exp<kFma>(2.0f * a) + 1.0f);
  return with_sign_of(select_bits(mask_if(a < 0.625f), small, big), x);
}

// sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, e = exp(-|x|) in (0, 1]: no overflow,
// and for very negative x the result follows exp down through the denormals instead of flushing to 0.
template <bool kFma = false>
[[gnu::always_inline]] inline float sigmoid(float x) {
  float e = exp<kFma>(-abs_bits(x));
  float r = 1.0f / (1.0f + e);
  return select_bits(mask_if(std::bit_cast<int32_t>(x) < 0), e * r, r);
}

// silu and its gradient: as sigmoid, with e = exp(-|x|) kept as its two factors. For x < 0 the result is
// x e / (1 + e); multiplying x into e's first factor keeps the product normal until the last rounding,
// where a sigmoid that is already a denormal (x < -87) would have lost digits that x then scales up. For
// x >= 0, 1 - sigmoid(x) is e / (1 + e) itself, not 1 - s (which rounds to 0 for x > 17).
template <bool kFma = false>
[[gnu::always_inline]] inline float silu(float x) {
  ExpParts e = exp_parts<kFma>(-abs_bits(x));
  float r = 1.0f / madd<kFma>(e.a, e.b, 1.0f);
  return select_bits(mask_if(std::bit_cast<int32_t>(x) < 0), ((x * e.a) * e.b) * r, x * r);
}

// g * d/dx silu(x) = g * s * (1 + x (1 - s)), s = sigmoid(x).
template <bool kFma = false>
[[gnu::always_inline]] inline float silu_grad(float g, float x) {
  ExpParts ep = exp_parts<kFma>(-abs_bits(x));
  float e = ep.a * ep.b;
  float r = 1.0f / (1.0f + e);
  float pos = r * madd<kFma>(x, e * r, 1.0f);                    // s = r, 1 - s = e r
  float neg = ((madd<kFma>(x, r, 1.0f) * ep.a) * ep.b) * r;       // s = e r, 1 - s = r
  return g * select_bits(mask_if(std::bit_cast<int32_t>(x) < 0), neg, pos);
}

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// The standard normal CDF Phi(x) = erfc(-x / sqrt2) / 2 through erfc(z), z = |x| / sqrt2 >= 0, as
// t exp(-z^2 + P(t)) with t = 1 / (1 + z / 2) (Numerical Recipes' erfcc: relative error < 1.2e-7 for
// every z). erfc on the small side keeps Phi accurate in the left tail, where 1 + erf(x / sqrt2) cancels.
template <bool kFma>
[[gnu::always_inline]] inline float normal_cdf(float x) {
  float z = abs_bits(x) * static_cast<float>(kSqrt1_2);
  float t = 1.0f / madd<kFma>(0.5f, z, 1.0f);
  float p = 0.17087277f;
  p = madd<kFma>(p, t, -0.82215223f);
  p = madd<kFma>(p, t, 1.48851587f);
  p = madd<kFma>(p, t, -1.13520398f);
  p = madd<kFma>(p, t, 0.27886807f);
  p = madd<kFma>(p, t, -0.18628806f);
  p = madd<kFma>(p, t, 0.09678418f);
  p = madd<kFma>(p, t, 0.37409196f);
  p = madd<kFma>(p, t, 1.00002368f);
  p = madd<kFma>(p, t, -1.26551223f);
  // Phi(-|x|), rounded once where it is a denormal (x < -13.2): exp_parts, not exp_nonpositive, whose
  // clamp at exp(-87) held Phi there at ~1e-39 instead of letting it fall to 0 at x ~ -14.
  ExpParts e = exp_parts<kFma>(madd<kFma>(-z, z, p));
  float small = ((0.5f * t) * e.a) * e.b;
  return select_bits(mask_if(std::bit_cast<int32_t>(x) < 0), small, 1.0f - small);
}

template <bool kFma = false>
[[gnu::always_inline]] inline float gelu(float x) { return x * normal_cdf<kFma>(x); }

// g * (Phi(x) + x phi(x)).
// phi(x) through exp_parts as normal_cdf (exp_nonpositive's clamp held it at ~6e-39 for |x| > 13.2).
template <bool kFma = false>
[[gnu::always_inline]] inline float gelu_grad(float g, float x) {
  ExpParts e = exp_parts<kFma>(-0.5f * x * x);
  float pdf = (static_cast<float>(kInvSqrt2Pi) * e.a) * e.b;
  return g * madd<kFma>(x, pdf, normal_cdf<kFma>(x));
}

}  // namespace weft::kernels::vmath
