// interpolate.h: nearest and bilinear resampling of [N, C, H, W] planes, forward and backward, with
// PyTorch's source-coordinate rules. No autograd.
#pragma once

#include <cstdint>
#include <optional>

#include "framework/tensor.h"

namespace weft::kernels {

// How one output dim maps onto the input: its size, and the scale the caller gave (scale_factor),
// which PyTorch uses as given rather than recomputing it from the sizes.
struct ResampleAxis {
  int64_t out = 1;
  std::optional<double> scale_factor;
};

// y [N, C, h.out, w.out]: nearest (src = floor(dst * in / out)) or bilinear (half-pixel centres, or
// with align_corners the corner pixels' centres aligned).
Tensor resample_forward(const Tensor& x, ResampleAxis h, ResampleAxis w, bool bilinear, bool align_corners);
// dx [x_shape]: each dy element spread back onto the inputs it was interpolated from.
Tensor resample_backward(const Tensor& dy, const Shape& x_shape, ResampleAxis h, ResampleAxis w, bool bilinear,
                         bool align_corners);

}  // namespace weft::kernels
