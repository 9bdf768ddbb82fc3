// pool3d.h: 3-D pooling kernels (max with indices, average), forward and backward, plain loops over
// [N, C, D, H, W] volumes for float32 and float64 (average forward also int64, dividing as
// integers). No autograd.
#pragma once

#include <cstdint>

#include "framework/tensor.h"
#include "kernels/pool.h"

namespace weft::kernels {

// Per spatial dim d, h, w; the output sizes follow pool_output_size (kernels/pool.h).
struct Pool3dGeometry {
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t pad[3] = {0, 0, 0};
  int64_t dilation[3] = {1, 1, 1};
  bool ceil_mode = false;
};

// y [N, C, OD, OH, OW] and the int64 index ((d * H) + h) * W + w of each window's maximum within its
// volume; a NaN in a window is its maximum.
MaxPoolResult max_pool3d_forward(const Tensor& x, const Pool3dGeometry& g);
// dx [x_shape]: dy added at the indices.
Tensor max_pool3d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);

// divisor_override 0: none; otherwise as avg_pool2d_forward (kernels/pool.h). g.dilation must be 1.
Tensor avg_pool3d_forward(const Tensor& x, const Pool3dGeometry& g, bool count_include_pad,
                          int64_t divisor_override);
Tensor avg_pool3d_backward(const Tensor& dy, const Shape& x_shape, const Pool3dGeometry& g,
                           bool count_include_pad, int64_t divisor_override);

}  // namespace weft::kernels
