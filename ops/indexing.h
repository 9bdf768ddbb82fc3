// Indexed reads along a dim (differentiable): index_select with a 1-D int64 index, gather with an
// index of the input's rank.
#pragma once

#include "framework/tensor.h"

namespace weft {

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace weft
