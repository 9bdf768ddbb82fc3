// batch_norm.h: batch normalization kernels over the channel dim (dim 1) of [N, C, ...] inputs,
// forward (training or with given statistics) and backward, for float32 and float64. No autograd.
#pragma once

#include "framework/tensor.h"

namespace weft::kernels {

// y = (x - mean) * invstd * weight + bias per channel. Training: mean and the biased variance of
// each channel over N and the spatial dims; otherwise mean = stats_mean and var = stats_var (the
// running statistics). weight/bias may be undefined. mean, invstd and var are [C] of x's dtype.
struct BatchNormResult {
  Tensor y, mean, invstd, var;
};
BatchNormResult batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats_mean,
                                   const Tensor& stats_var, bool training, double eps);

// running = (1 - momentum) * running + momentum * batch statistic, in place; the variance enters
// unbiased (var * count / (count - 1)), as PyTorch's.
void batch_norm_update_running(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                               const Tensor& var, double momentum, int64_t count);

// Gradients of batch_norm_forward, each only when its flag is set. With `training` the statistics
// depend on x (the full formula); otherwise they are constants.
struct BatchNormGrads {
  Tensor dx, dweight, dbias;
};
BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& invstd, bool training, bool need_dx, bool need_dweight,
                                   bool need_dbias);

}  // namespace weft::kernels
