// pad with torch.nn.functional.pad's signature: constant, reflect, replicate and circular padding.
#pragma once

#include <string>
#include <vector>

#include "framework/tensor.h"

namespace weft {

// `pad` pairs (before, after) starting from the last dim: {left, right} pads the last dim,
// {left, right, top, bottom} the last two, of an input of any rank in every mode. "constant" fills
// with `value`; "reflect" (amounts smaller than the dim), "replicate" and "circular" (amounts at most
// the dim) pad with the input's own elements. Negative amounts crop, in every mode.
Tensor pad(const Tensor& input, const std::vector<int64_t>& pad, const std::string& mode = "constant",
           double value = 0.0);

}  // namespace weft
