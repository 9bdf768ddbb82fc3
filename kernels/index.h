// index.h: the indexing kernels behind index_select, gather, their scatter-add backwards, and triu/tril.
// No autograd and no user-facing checks beyond index bounds: the ops in shape_ops.cpp check shapes.
#pragma once

#include "framework/tensor.h"

namespace weft::kernels {

// out[..., i, ...] = x[..., index[i], ...] along `dim`; index is 1-D int64.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// A copy of `base` with src[..., i, ...] added into row index[i] along `dim` (repeats accumulate).
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
// out[p] = x[p with p[dim] replaced by index[p]], out shaped like index.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// A copy of `base` with src[p] added at p with p[dim] replaced by index[p] (repeats accumulate).
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
// A copy of x (>= 2-D) keeping the upper (j - i >= diagonal) or lower (j - i <= diagonal) triangle.
Tensor triangle(const Tensor& x, int64_t diagonal, bool upper);

// The storage offset (in elements) of every element of a geometry, as a contiguous int64 tensor.
Tensor storage_positions(const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace weft::kernels
