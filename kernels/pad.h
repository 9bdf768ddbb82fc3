// pad.h: padding kernels over an input's trailing dims (constant, reflect, replicate, circular),
// forward and backward, for every dtype. No autograd.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace weft::kernels {

enum class PadMode { kConstant, kReflect, kReplicate, kCircular };

// (before, after) for each of the last pads.size() dims, outermost first. A negative amount crops
// (constant mode only; the caller checks). Elements outside the input read `value` (constant mode).
using PadAmounts = std::vector<std::pair<int64_t, int64_t>>;
Tensor pad_forward(const Tensor& x, const PadAmounts& pads, PadMode mode, double value);
// dx [x_shape]: each element of dy added to the input element it was read from.
Tensor pad_backward(const Tensor& dy, const Shape& x_shape, const PadAmounts& pads, PadMode mode);

}  // namespace weft::kernels
