// Shape ops: views that share storage (reshape when possible, transpose, narrow, ...), and split
// and chunk into such views. The copying shape ops (copy_ops.h) and the indexed reads (indexing.h)
// have headers of their own, included here so that one include still brings the whole family.
#pragma once

#include <vector>

#include "framework/tensor.h"
#include "ops/copy_ops.h"
#include "ops/indexing.h"

namespace weft {

Tensor reshape(const Tensor& x, const Shape& shape);   // -1 infers one dim
Tensor view(const Tensor& x, const Shape& shape);      // error when not viewable
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const Shape& dims);
Tensor expand(const Tensor& x, const Shape& shape);    // -1 keeps a dim
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset);
TensorList split(const Tensor& x, int64_t split_size, int64_t dim = 0);
TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
// torch.chunk: chunks of ceil(n/k), the last smaller, possibly fewer than k.
TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

}  // namespace weft
