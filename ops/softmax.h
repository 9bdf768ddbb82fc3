// softmax and log_softmax over any dim.
#pragma once

#include "framework/tensor.h"

namespace weft {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace weft
