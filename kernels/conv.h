// conv.h: 2-D convolution kernels, forward, backward-data and backward-weights: oneDNN primitives
// for float32 (cached, see Note [Primitive cache]) and a reference loop for float64.
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace weft::kernels {

// A convolution's geometry over its two spatial dims (h, w). Padding may differ before and after
// (PyTorch's padding="same" with an even kernel pads one more after).
struct ConvGeometry {
  int64_t stride[2] = {1, 1};
  int64_t pad_before[2] = {0, 0};
  int64_t pad_after[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  int64_t groups = 1;
};

// floor((in + pads - dilation * (kernel - 1) - 1) / stride) + 1: the output extent of one dim.
inline int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pads, int64_t dilation) {
  return (in + pads - dilation * (kernel - 1) - 1) / stride + 1;
}

// y [N, OC, OH, OW] = x [N, C, H, W] convolved with w [OC, C / groups, KH, KW] (+ bias [OC]), with
// OH, OW from conv_output_size. The caller has checked the shapes; x, w, bias share one floating
// dtype. No autograd.
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g);

// The gradient with respect to x (of shape x_shape) of conv2d_forward, given dy: a transposed
// convolution (also conv_transpose2d's forward).
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const ConvGeometry& g);

// The gradients with respect to w (of shape w_shape) and, with want_bias, to the bias.
struct ConvWeightGrads {
  Tensor dw, dbias;
};
ConvWeightGrads conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Shape& w_shape, bool want_bias,
                                        const ConvGeometry& g);

}  // namespace weft::kernels
