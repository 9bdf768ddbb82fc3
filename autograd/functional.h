// autograd::functional: derivatives of a function of tensors, as torch.autograd.functional: vjp,
// jvp (by the double-vjp trick), hvp, jacobian and hessian. Built on grad() with create_graph, so
// they need nothing above autograd.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "autograd/node.h"

namespace weft::autograd::functional {

using TensorsFn = std::function<variable_list(const variable_list&)>;
using ScalarFn = std::function<Tensor(const variable_list&)>;

// Note [Functional inputs]
// As in PyTorch, each function is evaluated on inputs that are fresh leaves requiring grad (aliases
// of the given tensors), so the caller's tensors need not require grad; with create_graph and an
// input that does require grad, the alias keeps that input's history and the results are
// differentiable with respect to it. Without create_graph the results are detached. A result with
// respect to an input the function does not use is zeros.

// (f(inputs), v^T J): v holds one tensor per output, of its shape.
std::pair<variable_list, variable_list> vjp(const TensorsFn& f, const variable_list& inputs, const variable_list& v,
                                            bool create_graph = false);

// (f(inputs), J v): v holds one tensor per input, of its shape. Computed as the gradient, with
// respect to u, of u^T J (linear in u), which needs only reverse mode.
std::pair<variable_list, variable_list> jvp(const TensorsFn& f, const variable_list& inputs, const variable_list& v,
                                            bool create_graph = false);

// (f(inputs), H v) for a function with one element.
std::pair<Tensor, variable_list> hvp(const ScalarFn& f, const variable_list& inputs, const variable_list& v,
                                     bool create_graph = false);

// jac[i][j] = d outputs[i] / d inputs[j], of shape outputs[i].shape ++ inputs[j].shape, in
// inputs[j]'s dtype. Detached.
std::vector<variable_list> jacobian(const TensorsFn& f, const variable_list& inputs);

// hess[i][j] = d^2 f / d inputs[i] d inputs[j], of shape inputs[i].shape ++ inputs[j].shape, for a
// function with one element. Detached.
std::vector<variable_list> hessian(const ScalarFn& f, const variable_list& inputs);

}  // namespace weft::autograd::functional
