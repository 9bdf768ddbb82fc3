// interpolate.h: nearest and (bi/tri)linear resampling of the 1, 2 or 3 spatial dims of
// [N, C, ...] inputs, forward and backward, with PyTorch's source-coordinate rules. No autograd.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "framework/tensor.h"

namespace weft::kernels {

// How one output dim maps onto the input: its size, and the scale the caller gave (scale_factor),
// which PyTorch uses as given rather than recomputing it from the sizes.
struct ResampleAxis {
  int64_t out = 1;
  std::optional<double> scale_factor;
};

// y [N, C, axes[0].out, ...], one axis per spatial dim of x (1 to 3): nearest (src = floor(dst *
// in / out)) or linear along every axis (half-pixel centres, or with align_corners the corner
// pixels' centres aligned).
Tensor resample_forward(const Tensor& x, const std::vector<ResampleAxis>& axes, bool linear, bool align_corners);
// dx [x_shape]: each dy element spread back onto the inputs it was interpolated from.
Tensor resample_backward(const Tensor& dy, const Shape& x_shape, const std::vector<ResampleAxis>& axes, bool linear,
                         bool align_corners);

}  // namespace weft::kernels
