// The strided conversion copy.
#include "framework/copy.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "framework/strided_loop.h"

namespace weft::detail {

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  WEFT_CHECK(is_broadcastable_to(t.shape(), shape), "expand: the shape ", t.shape(),
             " cannot be broadcast to ", shape);
  Shape strides(shape.size(), 0);
  size_t lead = shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    strides[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return strides;
}

Tensor contiguous_or_self(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = make_empty(t.shape(), t.dtype());
  copy_into(out, t);
  return out;
}

namespace {

// Note [Float to integer conversion]: C++ leaves a float outside the target integer's range (NaN,
// infinities, too large) undefined. PyTorch 1.13 on x86 gives what the truncating instruction gives:
// a conversion through int32 (int64 for an int64 result) whose out-of-range answer is that type's
// minimum, then wrapped to a narrower integer (300.0 -> uint8 44, NaN -> int8 0). Spelled out here
// so that weft's values do not depend on the compiler (tests/conformance/copy_ops.py checks them).
template <class D, class S>
D convert(S v) {
  if constexpr (std::is_integral_v<D> && !std::is_same_v<D, bool> && !std::is_integral_v<S> &&
                !std::is_same_v<S, bool>) {
    const double x = static_cast<double>(v);
    if constexpr (sizeof(D) == 8) {
      return x >= -0x1p63 && x < 0x1p63 ? static_cast<D>(static_cast<int64_t>(x))
                                        : static_cast<D>(std::numeric_limits<int64_t>::min());
    } else {
      const int32_t i =
          x >= -0x1p31 && x < 0x1p31 ? static_cast<int32_t>(x) : std::numeric_limits<int32_t>::min();
      return static_cast<D>(i);  // modular since C++20
    }
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace

namespace {

// Note [Copying short rows]
// A gradient written into a transposed layout (split's, Note [Split's gradient] in
// ops/shape_ops.cpp) or attention's heads merged back ([B, H, T, D] -> [B, T, H, D]) is thousands of
// rows of D = 16 elements, and per row the odometer and the element loop's overlap checks cost more
// than moving 64 bytes (2% of train_gpt's step). Without a conversion the bits are moved as
// unsigned integers of the element's size, and the two innermost dims run as plain nested loops
// (the odometer steps once per block of rows).
template <class U>
void copy_bits(const StridedLoop<2>& loop, U* out, const U* in) {
  const size_t nd = loop.shape.size();
  const int64_t n = loop.row_length(), m = nd >= 2 ? loop.shape[nd - 2] : 1;
  const int64_t so = nd >= 1 ? loop.strides[0][nd - 1] : 1, si = nd >= 1 ? loop.strides[1][nd - 1] : 1;
  const int64_t ro = nd >= 2 ? loop.strides[0][nd - 2] : 0, ri = nd >= 2 ? loop.strides[1][nd - 2] : 0;
  const size_t outer_dims = nd >= 2 ? nd - 2 : 0;
  int64_t blocks = 1;
  for (size_t d = 0; d < outer_dims; ++d) blocks *= loop.shape[d];
  Shape index(outer_dims, 0);
  int64_t off_o = 0, off_i = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t r = 0; r < m; ++r) {
      U* o = out + off_o + r * ro;
      const U* i = in + off_i + r * ri;
      if (so == 1 && si == 1) {
        for (int64_t j = 0; j < n; ++j) o[j] = i[j];
      } else {
        for (int64_t j = 0; j < n; ++j) o[j * so] = i[j * si];
      }
    }
    for (size_t d = outer_dims; d-- > 0;) {  // odometer increment
      ++index[d];
      off_o += loop.strides[0][d];
      off_i += loop.strides[1][d];
      if (index[d] < loop.shape[d]) break;
      off_o -= loop.strides[0][d] * loop.shape[d];
      off_i -= loop.strides[1][d] * loop.shape[d];
      index[d] = 0;
    }
  }
}

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  check_plain(dst, "copy");
  check_plain(src, "copy");
  const Shape& shape = dst.shape();
  if (dst.numel() == 0) return;
  if (src.dtype() == dst.dtype() && src.shape() == shape && src.is_contiguous() && dst.is_contiguous()) {
    if (dst.raw_data() != src.raw_data())
      std::memmove(dst.raw_data(), src.raw_data(), dst.numel() * dst.element_size());
    return;
  }
  Shape src_strides = broadcast_strides(src, shape);
  StridedLoop<2> loop(shape, {&dst.strides(), &src_strides});
  if (src.dtype() == dst.dtype()) {  // see Note [Copying short rows]
    void* out = dst.raw_data();
    const void* in = src.raw_data();
    switch (dst.element_size()) {
      case 1: return copy_bits(loop, static_cast<uint8_t*>(out), static_cast<const uint8_t*>(in));
      case 2: return copy_bits(loop, static_cast<uint16_t*>(out), static_cast<const uint16_t*>(in));
      case 4: return copy_bits(loop, static_cast<uint32_t*>(out), static_cast<const uint32_t*>(in));
      case 8: return copy_bits(loop, static_cast<uint64_t*>(out), static_cast<const uint64_t*>(in));
      default: break;
    }
  }
  visit<kAllDTypes>(dst.dtype(), "copy", [&](auto dtag) {
    using D = decltype(dtag);
    visit<kAllDTypes>(src.dtype(), "copy", [&](auto stag) {
      using S = decltype(stag);
      D* out = static_cast<D*>(dst.raw_data());
      const S* in = static_cast<const S*>(src.raw_data());
      loop.for_each_row([&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
        D* o = out + off[0];
        const S* i = in + off[1];
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t j = 0; j < n; ++j) o[j] = convert<D>(i[j]);
        } else {
          for (int64_t j = 0; j < n; ++j) o[j * st[0]] = convert<D>(i[j * st[1]]);
        }
      });
    });
  });
}

}  // namespace weft::detail
