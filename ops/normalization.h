// layer_norm and rms_norm over the trailing dims named by normalized_shape.
#pragma once

#include <optional>

#include "framework/tensor.h"

namespace weft {

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                std::optional<double> eps = std::nullopt);

}  // namespace weft
