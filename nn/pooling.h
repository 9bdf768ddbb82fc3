// nn pooling and reshaping layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool2d, Flatten,
// Identity. stride defaults to kernel_size, as PyTorch's. PyTorch's return_indices=True is
// forward_with_indices (as in libtorch): forward returns one tensor, as Sequential needs.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "nn/module.h"
#include "ops/pooling.h"

namespace weft::nn {

class MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(Size2d kernel_size, std::optional<Size2d> stride = std::nullopt, Size2d padding = 0,
                     Size2d dilation = 1, bool ceil_mode = false)
      : UnaryModule("MaxPool2d"), kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding),
        dilation(dilation), ceil_mode(ceil_mode) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode); }
  // The values and, for each, the index h * W + w of its maximum within its plane.
  std::pair<Tensor, Tensor> forward_with_indices(const Tensor& x) {
    return max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);
  }
  std::string extra_repr() const override;
  Size2d kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class MaxPool1d : public UnaryModule {
 public:
  explicit MaxPool1d(int64_t kernel_size, std::optional<int64_t> stride = std::nullopt, int64_t padding = 0,
                     int64_t dilation = 1, bool ceil_mode = false)
      : UnaryModule("MaxPool1d"), kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding),
        dilation(dilation), ceil_mode(ceil_mode) {}
  Tensor forward(const Tensor& x) override { return max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode); }
  // The values and, for each, the position of its maximum along L.
  std::pair<Tensor, Tensor> forward_with_indices(const Tensor& x) {
    return max_pool1d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);
  }
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class MaxPool3d : public UnaryModule {
 public:
  explicit MaxPool3d(Size3d kernel_size, std::optional<Size3d> stride = std::nullopt, Size3d padding = 0,
                     Size3d dilation = 1, bool ceil_mode = false)
      : UnaryModule("MaxPool3d"), kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding),
        dilation(dilation), ceil_mode(ceil_mode) {}
  Tensor forward(const Tensor& x) override { return max_pool3d(x, kernel_size, stride, padding, dilation, ceil_mode); }
  // The values and, for each, the index (d * H + h) * W + w of its maximum within its volume.
  std::pair<Tensor, Tensor> forward_with_indices(const Tensor& x) {
    return max_pool3d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);
  }
  std::string extra_repr() const override;
  Size3d kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(Size2d kernel_size, std::optional<Size2d> stride = std::nullopt, Size2d padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true,
                     std::optional<int64_t> divisor_override = std::nullopt)
      : UnaryModule("AvgPool2d"), kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding),
        ceil_mode(ceil_mode), count_include_pad(count_include_pad), divisor_override(divisor_override) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  }
  std::string extra_repr() const override;
  Size2d kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
  std::optional<int64_t> divisor_override;
};

// PyTorch's AvgPool1d has no divisor_override.
class AvgPool1d : public UnaryModule {
 public:
  explicit AvgPool1d(int64_t kernel_size, std::optional<int64_t> stride = std::nullopt, int64_t padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true)
      : UnaryModule("AvgPool1d"), kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding),
        ceil_mode(ceil_mode), count_include_pad(count_include_pad) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool1d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
  }
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

class AvgPool3d : public UnaryModule {
 public:
  explicit AvgPool3d(Size3d kernel_size, std::optional<Size3d> stride = std::nullopt, Size3d padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true,
                     std::optional<int64_t> divisor_override = std::nullopt)
      : UnaryModule("AvgPool3d"), kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding),
        ceil_mode(ceil_mode), count_include_pad(count_include_pad), divisor_override(divisor_override) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool3d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  }
  std::string extra_repr() const override;
  Size3d kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
  std::optional<int64_t> divisor_override;
};

class AdaptiveAvgPool2d : public UnaryModule {
 public:
  explicit AdaptiveAvgPool2d(Size2d output_size) : UnaryModule("AdaptiveAvgPool2d"), output_size(output_size) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, output_size); }
  std::string extra_repr() const override;
  Size2d output_size;
};

// Flattens dims start_dim..end_dim into one (by default all but the batch dim).
class Flatten : public UnaryModule {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : UnaryModule("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};

// Returns its input: a placeholder where a block has nothing to do (a shortcut without projection).
class Identity : public UnaryModule {
 public:
  Identity() : UnaryModule("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace weft::nn
