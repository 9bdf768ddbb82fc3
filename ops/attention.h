// scaled_dot_product_attention, as PyTorch's (attn_mask: bool, true = attend, or additive float).
#pragma once

#include <optional>

#include "framework/tensor.h"

namespace weft {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

}  // namespace weft
