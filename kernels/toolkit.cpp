// The kernel author's toolkit (kernels/toolkit.h): copies and dense views.
#include "kernels/toolkit.h"

namespace weft::kernels {

Tensor contiguous_copy(const Tensor& t) { return contiguous_copy(t, t.dtype()); }

Tensor contiguous_copy(const Tensor& t, DType dtype) {
  Tensor out = make_empty(t.shape(), dtype);
  copy_into(out, t);
  return out;
}

Tensor dense(const Tensor& t) { return t.is_contiguous() ? t : contiguous_copy(t); }

Tensor dense(const Tensor& t, DType dtype) { return t.dtype() == dtype ? dense(t) : contiguous_copy(t, dtype); }

Tensor reshaped(const Tensor& t, const Shape& shape) {
  Tensor c = dense(t);
  return make_alias(c, shape, contiguous_strides(shape), c.storage_offset());
}

}  // namespace weft::kernels
