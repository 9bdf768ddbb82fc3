// pool.h: 2-D pooling kernels (max with indices, average, adaptive average), forward and backward,
// plain loops over [N, C, H, W] planes for float32 and float64 (average pooling forward also int64,
// dividing as integers). No autograd.
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace weft::kernels {

struct PoolGeometry {
  int64_t kernel[2] = {1, 1};
  int64_t stride[2] = {1, 1};
  int64_t pad[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  bool ceil_mode = false;
};

// PyTorch's pooling_output_shape: with ceil_mode the last window may start in the right padding
// but not beyond it.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode);

// y [N, C, OH, OW] and the int64 index (h * W + w within its plane) of each window's maximum; a
// NaN in a window is its maximum.
struct MaxPoolResult {
  Tensor y, indices;
};
MaxPoolResult max_pool2d_forward(const Tensor& x, const PoolGeometry& g);
// dx [x_shape]: dy added at the indices.
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);

// divisor_override 0: none. The divisor is the window's size within the padded input when
// count_include_pad, else the count of its elements inside the input.
Tensor avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, bool count_include_pad, int64_t divisor_override);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const PoolGeometry& g, bool count_include_pad,
                           int64_t divisor_override);

// Output (oh, ow) averages rows [floor(oh H / OH), ceil((oh + 1) H / OH)) and likewise columns.
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);

}  // namespace weft::kernels
