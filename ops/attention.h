// scaled_dot_product_attention, as PyTorch's (attn_mask: bool, true = attend, or additive float), on a
// fused flash-style kernel that keeps no [L, S] matrix for backward (see Note [Flash attention]).
#pragma once

#include <optional>

#include "framework/tensor.h"

namespace weft {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

namespace detail {
// The composed form (matmul, mask, softmax, matmul; its backward keeps the [L, S] probabilities):
// the op's path where the fused kernel does not apply, and the reference tests and benchmarks
// compare the fused kernel with. `scale` is explicit here.
Tensor composed_scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& attn_mask, bool is_causal, double scale);

// Off: scaled_dot_product_attention always takes the composed form, so that a benchmark can time a
// whole model both ways in one process (bench_attention's GPT step). On by default.
void set_fused_attention(bool on);
}  // namespace detail

}  // namespace weft
