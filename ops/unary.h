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

namespace autograd { struct Node; }
namespace detail {
// clamp's backward record for an input `x` whose values (before clamping) are `values`: the gradient
// passes where values >= min and values <= max, as in torch's clamp_backward (so not at NaN). Null
// when x needs no gradient. Shared by clamp and Tensor::clamp_.
std::shared_ptr<autograd::Node> clamp_node(const Tensor& x, const Tensor& values, std::optional<Scalar> min,
                                           std::optional<Scalar> max);
}  // namespace detail

}  // namespace weft
