// nn convolution layers: construction with PyTorch's default initialisation, forward on ops/conv.h.
#include "nn/conv.h"

#include <cmath>

#include "kernels/toolkit.h"
#include "nn/init.h"

namespace weft::nn {
namespace {

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): kaiming_uniform(a=sqrt(5)) for the weight, and the bias rule.
Tensor fan_in_uniform(const Shape& shape, int64_t fan_in, const char* module) {
  Tensor t = kernels::make_empty(shape, kFloat32, module);
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return init::uniform_(t, -bound, bound);
}

// Checks the channels and kernel; returns fan_in: in_channels / groups (out_channels / groups for a
// transposed convolution, as PyTorch computes it from weight dim 1) times the kernel's size.
int64_t checked_fan_in(int64_t in, int64_t out, int64_t groups, const Shape& kernel, bool transposed,
                       const char* module) {
  WEFT_CHECK(in > 0 && out > 0 && groups > 0 && in % groups == 0 && out % groups == 0, module,
             ": expected positive channels divisible by groups but got in_channels=", in, ", out_channels=", out,
             ", groups=", groups);
  int64_t fan_in = (transposed ? out : in) / groups;
  for (int64_t k : kernel) {
    WEFT_CHECK(k > 0, module, ": expected a positive kernel_size but got ", kernel);
    fan_in *= k;
  }
  return fan_in;
}

// weight [out, in / groups, kernel...] ([in, out / groups, kernel...] transposed).
Tensor conv_weight(int64_t in, int64_t out, int64_t groups, const Shape& kernel, bool transposed, const char* module) {
  const int64_t fan_in = checked_fan_in(in, out, groups, kernel, transposed, module);
  Shape shape = transposed ? Shape{in, out / groups} : Shape{out, in / groups};
  for (int64_t k : kernel) shape.push_back(k);
  return fan_in_uniform(shape, fan_in, module);
}

Tensor conv_bias(int64_t in, int64_t out, int64_t groups, const Shape& kernel, bool transposed, const char* module) {
  return fan_in_uniform({out}, checked_fan_in(in, out, groups, kernel, transposed, module), module);
}

std::string pair_str(Size2d v) { return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")"; }

std::string padding_str(const ConvPadding& p) {
  if (!p.mode.empty()) return "'" + p.mode + "'";
  return p.values.size() == 1 ? pair_str(p.values[0]) : pair_str({p.values[0], p.values[1]});
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, Size2d kernel, Size2d stride_, ConvPadding padding_, Size2d dilation_,
               int64_t groups_, bool has_bias)
    : UnaryModule("Conv2d"),
      in_channels(in),
      out_channels(out),
      kernel_size(kernel),
      stride(stride_),
      padding(std::move(padding_)),
      dilation(dilation_),
      groups(groups_),
      weight(register_parameter("weight", conv_weight(in, out, groups_, {kernel.h, kernel.w}, false, "Conv2d"))),
      bias(register_parameter("bias", has_bias ? conv_bias(in, out, groups_, {kernel.h, kernel.w}, false, "Conv2d")
                                               : Tensor())) {}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding, dilation, groups); }

std::string Conv2d::extra_repr() const {
  return std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", kernel_size=" + pair_str(kernel_size) +
         ", stride=" + pair_str(stride) + ", padding=" + padding_str(padding) + ", dilation=" + pair_str(dilation) +
         ", groups=" + std::to_string(groups) + (bias.defined() ? "" : ", bias=false");
}

Conv1d::Conv1d(int64_t in, int64_t out, int64_t kernel, int64_t stride_, ConvPadding padding_, int64_t dilation_,
               int64_t groups_, bool has_bias)
    : UnaryModule("Conv1d"),
      in_channels(in),
      out_channels(out),
      kernel_size(kernel),
      stride(stride_),
      padding(std::move(padding_)),
      dilation(dilation_),
      groups(groups_),
      weight(register_parameter("weight", conv_weight(in, out, groups_, {kernel}, false, "Conv1d"))),
      bias(register_parameter("bias", has_bias ? conv_bias(in, out, groups_, {kernel}, false, "Conv1d") : Tensor())) {}

Tensor Conv1d::forward(const Tensor& x) { return conv1d(x, weight, bias, stride, padding, dilation, groups); }

std::string Conv1d::extra_repr() const {
  return std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", kernel_size=" +
         std::to_string(kernel_size) + ", stride=" + std::to_string(stride) + ", padding=" + padding_str(padding) +
         ", dilation=" + std::to_string(dilation) + ", groups=" + std::to_string(groups) +
         (bias.defined() ? "" : ", bias=false");
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Size2d kernel, Size2d stride_, Size2d padding_,
                                 Size2d output_padding_, int64_t groups_, bool has_bias, Size2d dilation_)
    : UnaryModule("ConvTranspose2d"),
      in_channels(in),
      out_channels(out),
      kernel_size(kernel),
      stride(stride_),
      padding(padding_),
      output_padding(output_padding_),
      groups(groups_),
      dilation(dilation_),
      weight(register_parameter("weight",
                                conv_weight(in, out, groups_, {kernel.h, kernel.w}, true, "ConvTranspose2d"))),
      bias(register_parameter("bias", has_bias ? conv_bias(in, out, groups_, {kernel.h, kernel.w}, true,
                                                           "ConvTranspose2d")
                                               : Tensor())) {}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation);
}

std::string ConvTranspose2d::extra_repr() const {
  return std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", kernel_size=" + pair_str(kernel_size) +
         ", stride=" + pair_str(stride) + ", padding=" + pair_str(padding) + ", output_padding=" +
         pair_str(output_padding) + ", groups=" + std::to_string(groups) + (bias.defined() ? "" : ", bias=false");
}

}  // namespace weft::nn
