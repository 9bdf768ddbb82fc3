// nn pooling and reshaping layers: what they print, and Flatten's forward.
#include "nn/pooling.h"

#include "ops/shape_ops.h"

namespace weft::nn {
namespace {
std::string pair_str(Size2d v) { return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")"; }
std::string triple_str(Size3d v) {
  return "(" + std::to_string(v.d) + ", " + std::to_string(v.h) + ", " + std::to_string(v.w) + ")";
}
std::string bool_str(bool b) { return b ? "true" : "false"; }
}  // namespace

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride) + ", padding=" + pair_str(padding) +
         ", dilation=" + pair_str(dilation) + ", ceil_mode=" + bool_str(ceil_mode);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride) + ", padding=" + pair_str(padding) +
         ", ceil_mode=" + bool_str(ceil_mode) + ", count_include_pad=" + bool_str(count_include_pad);
}

std::string MaxPool1d::extra_repr() const {
  return "kernel_size=" + std::to_string(kernel_size) + ", stride=" + std::to_string(stride) +
         ", padding=" + std::to_string(padding) + ", dilation=" + std::to_string(dilation) +
         ", ceil_mode=" + bool_str(ceil_mode);
}

std::string MaxPool3d::extra_repr() const {
  return "kernel_size=" + triple_str(kernel_size) + ", stride=" + triple_str(stride) +
         ", padding=" + triple_str(padding) + ", dilation=" + triple_str(dilation) + ", ceil_mode=" + bool_str(ceil_mode);
}

std::string AvgPool1d::extra_repr() const {
  return "kernel_size=" + std::to_string(kernel_size) + ", stride=" + std::to_string(stride) +
         ", padding=" + std::to_string(padding) + ", ceil_mode=" + bool_str(ceil_mode) +
         ", count_include_pad=" + bool_str(count_include_pad);
}

std::string AvgPool3d::extra_repr() const {
  return "kernel_size=" + triple_str(kernel_size) + ", stride=" + triple_str(stride) +
         ", padding=" + triple_str(padding) + ", ceil_mode=" + bool_str(ceil_mode) +
         ", count_include_pad=" + bool_str(count_include_pad);
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(output_size); }

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_dim, end_dim); }

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

}  // namespace weft::nn
