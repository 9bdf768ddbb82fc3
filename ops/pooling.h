// 2-D pooling with PyTorch's signatures: max (with indices), average, adaptive average. Inputs are
// [N, C, H, W] or unbatched [C, H, W], floating (bfloat16 and float16 computed in float32).
#pragma once

#include <optional>
#include <utility>

#include "framework/tensor.h"
#include "ops/conv.h"

namespace weft {

// stride defaults to kernel_size. padding is at most half the (dilated) kernel.
Tensor max_pool2d(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride = std::nullopt,
                  Size2d padding = 0, Size2d dilation = 1, bool ceil_mode = false);
// The pooled values and, for each, the int64 index h * W + w of the maximum within its plane
// (PyTorch's return_indices=True).
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, Size2d kernel_size,
                                                  std::optional<Size2d> stride = std::nullopt, Size2d padding = 0,
                                                  Size2d dilation = 1, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride = std::nullopt,
                  Size2d padding = 0, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
// Averages over windows that tile the input into output_size cells.
Tensor adaptive_avg_pool2d(const Tensor& input, Size2d output_size);

}  // namespace weft
