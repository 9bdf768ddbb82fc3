// The strided conversion copy.
#include "framework/copy.h"

#include <cstring>

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
          for (int64_t j = 0; j < n; ++j) o[j] = static_cast<D>(i[j]);
        } else {
          for (int64_t j = 0; j < n; ++j) o[j * st[0]] = static_cast<D>(i[j * st[1]]);
        }
      });
    });
  });
}

}  // namespace weft::detail
