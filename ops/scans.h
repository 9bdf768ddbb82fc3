// Running reductions along a dim: cumsum, cumprod (bool and integers accumulate in int64, as in
// torch) and logcumsumexp (floating only), each differentiable.
#pragma once

#include "framework/tensor.h"

namespace weft {

Tensor cumsum(const Tensor& x, int64_t dim);
Tensor cumprod(const Tensor& x, int64_t dim);
Tensor logcumsumexp(const Tensor& x, int64_t dim);

}  // namespace weft
