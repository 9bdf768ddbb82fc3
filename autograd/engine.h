// The engine: runs the reachable part of the tape backwards, each node once, after all of its
// gradient contributions have arrived.
#pragma once

#include "autograd/node.h"

namespace weft::autograd {

// Accumulates the gradients of `outputs` (with `grad_outputs`, or ones for one-element outputs)
// into the .grad of every leaf they depend on.
// create_graph records the backward itself, so that the gradients are differentiable (gradient
// penalties, Hessian-vector products); it keeps the graph, as PyTorch's retain_graph defaults to
// create_graph. As in PyTorch, backward with create_graph makes a reference cycle between a leaf
// and its .grad (the .grad's history reaches the leaf's accumulator, which holds the leaf): prefer
// grad() for higher derivatives. See Note [create_graph] in engine.cpp.
void backward(const variable_list& outputs, const variable_list& grad_outputs = {},
              bool retain_graph = false, bool create_graph = false);

// The gradients of `outputs` with respect to `inputs`, returned instead of accumulated. An input
// the outputs do not depend on gets an undefined tensor if allow_unused, else an error.
variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs = {}, bool retain_graph = false,
                   bool allow_unused = false, bool create_graph = false);

// Note [Gradient arithmetic]
// The engine sums gradients that meet at a node and reduces broadcast gradients to the input's
// shape, in one central place. Plain gradients go straight to the kernels layer (add, sum_to, cast,
// has_nan), which sits below autograd; a DTensor gradient carries its distributed layer's spec in
// its impl, and the engine asks that spec to add it (DistSpec::add_gradients): a virtual call
// through the tensor, so nothing is registered at load time and no linker can drop it.

// a + b for gradients: plain tensors through the kernels, DTensors through their spec.
Tensor accumulate_gradients(const Tensor& a, const Tensor& b);
// sum += grad in place, for a leaf's .grad (Note [In-place gradient accumulation] in node.cpp).
// False, with `sum` untouched, when sum can not hold the result: another dtype, a strided or
// broadcast layout, another shape, a plain sum and a DTensor grad.
bool accumulate_gradients_in_place(const Tensor& sum, const Tensor& grad);

}  // namespace weft::autograd
