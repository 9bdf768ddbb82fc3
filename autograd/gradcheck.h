// gradcheck: analytic gradients against central finite differences, in float64.
#pragma once

#include <functional>

#include "autograd/node.h"

namespace weft::autograd {

using GradcheckFn = std::function<variable_list(const variable_list&)>;

// Compares the Jacobian that backward computes with (f(x + eps) - f(x - eps)) / (2 eps) for every
// float64 input that requires grad. Throws weft::Error naming the worst element when
// |analytic - numeric| > atol + rtol * |numeric| anywhere (or returns false when raise is false).
bool gradcheck(const GradcheckFn& fn, const variable_list& inputs, double eps = 1e-6, double atol = 1e-5,
               double rtol = 1e-3, bool raise = true);

// The same for a function of one output.
bool gradcheck(const std::function<Tensor(const variable_list&)>& fn, const variable_list& inputs,
               double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool raise = true);

// Second derivatives: gradcheck of (inputs, v) -> v^T J(inputs), the first-order gradients that
// grad() computes with create_graph, for a fixed pseudo-random float64 v per floating output (v
// is checked as an input too: the gradient is linear in it). Checks every node's backward formula
// as a differentiable function, as PyTorch's gradgradcheck.
bool gradgradcheck(const GradcheckFn& fn, const variable_list& inputs, double eps = 1e-6, double atol = 1e-5,
                   double rtol = 1e-3, bool raise = true);
bool gradgradcheck(const std::function<Tensor(const variable_list&)>& fn, const variable_list& inputs,
                   double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool raise = true);

}  // namespace weft::autograd
