// Elementwise unary ops (differentiable unless noted). Float ops on int/bool inputs promote to float32.
#pragma once

#include <memory>
#include <optional>

#include "framework/tensor.h"

namespace weft {

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
// approximate: "none" (erf form) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);
Tensor sign(const Tensor& x);  // no gradient (zero)
Tensor reciprocal(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor erfinv(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor log10(const Tensor& x);
Tensor sinh(const Tensor& x);
Tensor cosh(const Tensor& x);
Tensor asin(const Tensor& x);
Tensor acos(const Tensor& x);
Tensor atan(const Tensor& x);
Tensor asinh(const Tensor& x);
Tensor acosh(const Tensor& x);
Tensor atanh(const Tensor& x);
// Rounding keeps the dtype (integral inputs come back unchanged); round is half to even, as torch's.
// Their gradient is zero; frac's (x - trunc(x)) passes the gradient through.
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);
Tensor trunc(const Tensor& x);
Tensor frac(const Tensor& x);
// Bool results, never differentiable; integral and bool inputs are finite.
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
// NaN, +inf and -inf replaced by `nan`, `posinf` and `neginf` (by default 0 and the dtype's largest
// and lowest finite values); the gradient passes where x is finite.
Tensor nan_to_num(const Tensor& x, double nan = 0.0, std::optional<double> posinf = std::nullopt,
                  std::optional<double> neginf = std::nullopt);

namespace autograd { struct Node; }
namespace detail {
// clamp's backward record for an input `x` whose values (before clamping) are `values`: the gradient
// passes where values >= min and values <= max, as in torch's clamp_backward (so not at NaN). Null
// when x needs no gradient. Shared by clamp and Tensor::clamp_.
std::shared_ptr<autograd::Node> clamp_node(const Tensor& x, const Tensor& values, std::optional<Scalar> min,
                                           std::optional<Scalar> max);
}  // namespace detail

}  // namespace weft
