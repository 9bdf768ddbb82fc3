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
