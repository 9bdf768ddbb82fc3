// nn pooling and reshaping layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Identity.
#pragma once

#include <optional>
#include <string>

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
  std::string extra_repr() const override;
  Size2d kernel_size, stride, padding, dilation;
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
