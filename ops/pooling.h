// Pooling with PyTorch's signatures: 2-D max (with indices), average, adaptive average; 1-D and 3-D
// max (with indices) and average. Inputs are [N, C, L], [N, C, H, W] or [N, C, D, H, W], or
// unbatched without N; floating (bfloat16 and float16 computed in float32), and int64 for the
// averages (PyTorch's integer division, truncating toward zero).
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

// A 3-D spatial argument given once for every dim or as {d, h, w}: PyTorch's int-or-triple.
struct Size3d {
  Size3d(int64_t v) : d(v), h(v), w(v) {}  // NOLINT: implicit, as Python's int is
  Size3d(int64_t d_, int64_t h_, int64_t w_) : d(d_), h(h_), w(w_) {}
  int64_t d, h, w;
};

// [N, C, L] (or [C, L]): the 2-D pools over a height of one, as PyTorch computes them. max_pool1d's
// indices are positions along L. As PyTorch 1.13's, max_pool1d without indices returns an empty
// [N, C, 0] for a window longer than the padded input when it records no gradient.
Tensor avg_pool1d(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride = std::nullopt,
                  int64_t padding = 0, bool ceil_mode = false, bool count_include_pad = true);
Tensor max_pool1d(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride = std::nullopt,
                  int64_t padding = 0, int64_t dilation = 1, bool ceil_mode = false);
std::pair<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, int64_t kernel_size,
                                                  std::optional<int64_t> stride = std::nullopt, int64_t padding = 0,
                                                  int64_t dilation = 1, bool ceil_mode = false);

// [N, C, D, H, W] (or [C, D, H, W]). max_pool3d's indices are (d * H + h) * W + w within a volume.
Tensor avg_pool3d(const Tensor& input, Size3d kernel_size, std::optional<Size3d> stride = std::nullopt,
                  Size3d padding = 0, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
Tensor max_pool3d(const Tensor& input, Size3d kernel_size, std::optional<Size3d> stride = std::nullopt,
                  Size3d padding = 0, Size3d dilation = 1, bool ceil_mode = false);
std::pair<Tensor, Tensor> max_pool3d_with_indices(const Tensor& input, Size3d kernel_size,
                                                  std::optional<Size3d> stride = std::nullopt, Size3d padding = 0,
                                                  Size3d dilation = 1, bool ceil_mode = false);

}  // namespace weft
