// Strided copy with dtype conversion and broadcasting: the one loop behind contiguous, clone,
// to(dtype), copy_ and every export.
#pragma once

#include "framework/tensor.h"

namespace weft::detail {

// Writes `src` (broadcast to dst's shape, converted to dst's dtype) into `dst`. No autograd.
void copy_into(const Tensor& dst, const Tensor& src);

// `t` itself when contiguous, else a contiguous copy (no autograd).
Tensor contiguous_or_self(const Tensor& t);

// Strides that make `t` read as if broadcast to `shape` (0 on broadcast dims).
Shape broadcast_strides(const Tensor& t, const Shape& shape);

}  // namespace weft::detail
