// BFloat16 and Half: the 16-bit floating storage types, converting to and from float exactly as
// PyTorch's c10::BFloat16 and c10::Half do (round to nearest even; NaN stays NaN).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace weft {

namespace detail {

// float -> bfloat16 bits: the top 16 bits of the float, rounded to nearest even. NaN becomes the
// canonical quiet NaN 0x7FC0 (as c10's round_to_nearest_even), never a rounded-up infinity.
constexpr uint16_t bf16_bits_from_float(float f) {
  if (f != f) return 0x7FC0;
  const uint32_t x = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

constexpr float float_from_bf16_bits(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// float -> IEEE binary16 bits, round to nearest even (the software path; F16C's vcvtps2ph with
// rounding mode 0 gives the same bits).
constexpr uint16_t f16_bits_from_float(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t x = bits & 0x7FFFFFFFu;
  if (x > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (x >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to infinity (and inf stays inf)
  if (x < 0x38800000u) {
    // Below 2^-14 the half is subnormal (unit 2^-24). Adding 0.5f puts the value's 2^-24 multiple in
    // the low mantissa bits of the sum, and the float addition rounds it to nearest even.
    const float sum = std::bit_cast<float>(x) + 0.5f;
    return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(sum) - 0x3F000000u);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even;
  // a carry out of the mantissa correctly bumps the exponent.
  const uint32_t odd = (x >> 13) & 1u;
  return sign | static_cast<uint16_t>((x + 0xC8000FFFu + odd) >> 13);
}

constexpr float float_from_f16_bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  if (em >= 0x7C00u) return std::bit_cast<float>(sign | 0x7F800000u | ((em & 0x3FFu) << 13));  // inf, NaN
  if (em >= 0x0400u) return std::bit_cast<float>(sign | ((em << 13) + 0x38000000u));        // normal
  const float v = static_cast<float>(em) * 0x1p-24f;                                       // subnormal
  return sign ? -v : v;
}

}  // namespace detail

// Both types convert implicitly to and from float, so generic code (static_cast<T>(double), printing
// through double) handles them; arithmetic on them is float arithmetic, rounded when stored back.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  constexpr BFloat16(float f) : bits(detail::bf16_bits_from_float(f)) {}
  constexpr operator float() const { return detail::float_from_bf16_bits(bits); }
  static constexpr BFloat16 from_bits(uint16_t b) {
    BFloat16 v;
    v.bits = b;
    return v;
  }
};

struct Half {
  uint16_t bits = 0;
  Half() = default;
  constexpr Half(float f) : bits(detail::f16_bits_from_float(f)) {}
  constexpr operator float() const { return detail::float_from_f16_bits(bits); }
  static constexpr Half from_bits(uint16_t b) {
    Half v;
    v.bits = b;
    return v;
  }
};

// True for the two 16-bit float types, which kernels compute in float32 (as PyTorch does on CPU).
template <class T>
inline constexpr bool is_reduced_float_v = std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>;

}  // namespace weft

// numeric_limits as for float: generic kernels ask for infinity, lowest and max.
template <>
class std::numeric_limits<weft::BFloat16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_integer = false;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 8;
  static constexpr weft::BFloat16 lowest() { return weft::BFloat16::from_bits(0xFF7F); }
  static constexpr weft::BFloat16 max() { return weft::BFloat16::from_bits(0x7F7F); }
  static constexpr weft::BFloat16 min() { return weft::BFloat16::from_bits(0x0080); }
  static constexpr weft::BFloat16 epsilon() { return weft::BFloat16::from_bits(0x3C00); }
  static constexpr weft::BFloat16 infinity() { return weft::BFloat16::from_bits(0x7F80); }
  static constexpr weft::BFloat16 quiet_NaN() { return weft::BFloat16::from_bits(0x7FC0); }
};

template <>
class std::numeric_limits<weft::Half> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_integer = false;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 11;
  static constexpr weft::Half lowest() { return weft::Half::from_bits(0xFBFF); }
  static constexpr weft::Half max() { return weft::Half::from_bits(0x7BFF); }
  static constexpr weft::Half min() { return weft::Half::from_bits(0x0400); }
  static constexpr weft::Half epsilon() { return weft::Half::from_bits(0x1400); }
  static constexpr weft::Half infinity() { return weft::Half::from_bits(0x7C00); }
  static constexpr weft::Half quiet_NaN() { return weft::Half::from_bits(0x7E00); }
};
