// Batch, instance and group normalization with PyTorch's signatures, over the channel dim (dim 1) of
// [N, C, ...] inputs (floating; bfloat16 and float16 computed in float32, with float32 or like statistics).
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace weft {

// training: normalise by each channel's batch statistics and, when running_mean/running_var are
// given, update them in place: running = (1 - momentum) * running + momentum * batch (the variance
// unbiased). Otherwise normalise by the running statistics, which must be given.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
// Normalises each (sample, channel) plane by its own statistics (use_input_stats) or by the running
// ones; given running statistics are updated with the batch's mean of the per-sample ones.
Tensor instance_norm(const Tensor& input, const Tensor& running_mean = Tensor(), const Tensor& running_var = Tensor(),
                     const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool use_input_stats = true,
                     double momentum = 0.1, double eps = 1e-5);
// Normalises each sample's channels in num_groups groups; weight and bias are per channel.
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace weft
