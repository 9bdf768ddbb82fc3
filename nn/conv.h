// nn convolution layers: Conv1d, Conv2d, ConvTranspose2d, with PyTorch's arguments and default
// initialisation (weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
#pragma once

#include <string>

#include "nn/module.h"
#include "ops/conv.h"

namespace weft::nn {

class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2d kernel_size, Size2d stride = 1, ConvPadding padding = 0,
         Size2d dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Size2d kernel_size, stride;
  ConvPadding padding;
  Size2d dilation;
  int64_t groups;
  Tensor& weight;  // [out_channels, in_channels / groups, kh, kw]
  Tensor& bias;    // [out_channels], undefined without bias
};

class Conv1d : public UnaryModule {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, ConvPadding padding = 0,
         int64_t dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels, kernel_size, stride;
  ConvPadding padding;
  int64_t dilation, groups;
  Tensor& weight;  // [out_channels, in_channels / groups, k]
  Tensor& bias;
};

class ConvTranspose2d : public UnaryModule {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Size2d kernel_size, Size2d stride = 1,
                  Size2d padding = 0, Size2d output_padding = 0, int64_t groups = 1, bool bias = true,
                  Size2d dilation = 1);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Size2d kernel_size, stride, padding, output_padding;
  int64_t groups;
  Size2d dilation;
  Tensor& weight;  // [in_channels, out_channels / groups, kh, kw]
  Tensor& bias;
};

}  // namespace weft::nn
