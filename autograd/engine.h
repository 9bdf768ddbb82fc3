// The engine: runs the reachable part of the tape backwards, each node once, after all of its
// gradient contributions have arrived.
#pragma once

#include "autograd/node.h"

namespace weft::autograd {

// Accumulates the gradients of `outputs` (with `grad_outputs`, or ones for one-element outputs)
// into the .grad of every leaf they depend on.
void backward(const variable_list& outputs, const variable_list& grad_outputs = {},
              bool retain_graph = false);

// The gradients of `outputs` with respect to `inputs`, returned instead of accumulated. An input
// the outputs do not depend on gets an undefined tensor if allow_unused, else an error.
variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs = {}, bool retain_graph = false,
                   bool allow_unused = false);

// Note [Gradient arithmetic hooks]
// The engine sums gradients that meet at a node and reduces broadcast gradients to the input's
// shape, in one central place. The arithmetic itself lives in ops/ (a layer above) and, for
// DTensors, in distributed/; each registers its implementation here when the library loads.
struct GradientArithmetic {
  Tensor (*add)(const Tensor& a, const Tensor& b) = nullptr;
  Tensor (*sum_to)(const Tensor& grad, const Shape& shape) = nullptr;
  Tensor (*cast)(const Tensor& grad, DType dtype) = nullptr;
  bool (*has_nan)(const Tensor& grad) = nullptr;
};
GradientArithmetic& gradient_arithmetic();

// a + b for gradients: plain tensors through ops, DTensors through the distributed layer.
Tensor accumulate_gradients(const Tensor& a, const Tensor& b);
// A contiguous copy with no history.
Tensor clone_detached(const Tensor& t);

}  // namespace weft::autograd
