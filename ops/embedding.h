// embedding: rows of a (num_embeddings, dim) weight looked up by integer indices (int64 or int32).
// padding_idx (negative counts from the end), as PyTorch's: that row is looked up as any other but
// gets no gradient.
#pragma once

#include <optional>

#include "framework/tensor.h"

namespace weft {

Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace weft
