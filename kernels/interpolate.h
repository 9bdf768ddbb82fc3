// interpolate.h: resampling of the 1, 2 or 3 spatial dims of [N, C, ...] inputs (nearest,
// nearest-exact, linear, cubic and area averages), forward and backward, with PyTorch's
// source-coordinate rules. No autograd.
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

// The same rule along every axis:
//   nearest        src = floor(dst * scale), in float as PyTorch (Note [Nearest shortcuts])
//   nearest_exact  src = floor((dst + 0.5) * scale), in float
//   linear         two taps (half-pixel centres, or with align_corners the corner pixels' centres aligned)
//   cubic          four taps, Keys' cubic convolution with A = -0.75, clamped at the borders
//   area           the average of [floor(dst * in / out), ceil((dst + 1) * in / out)): adaptive average pooling
//   *_antialias    linear's or cubic's filter stretched by the downsampling factor, normalized (Pillow's)
enum class ResampleMode { nearest, nearest_exact, linear, cubic, area, linear_antialias, cubic_antialias };

// y [N, C, axes[0].out, ...], one axis per spatial dim of x (1 to 3).
Tensor resample_forward(const Tensor& x, const std::vector<ResampleAxis>& axes, ResampleMode mode,
                        bool align_corners);
// dx [x_shape]: each dy element spread back onto the inputs it was computed from, with their weights.
Tensor resample_backward(const Tensor& dy, const Shape& x_shape, const std::vector<ResampleAxis>& axes,
                         ResampleMode mode, bool align_corners);

}  // namespace weft::kernels
