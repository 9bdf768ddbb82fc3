// Copying shape ops: new tensors rather than views (cat, stack, triu/tril, clone, contiguous, to_dtype).
#pragma once

#include "framework/tensor.h"

namespace weft {

Tensor cat(const TensorList& tensors, int64_t dim = 0);
Tensor stack(const TensorList& tensors, int64_t dim = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dtype);

}  // namespace weft
