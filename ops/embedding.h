// embedding: rows of a (num_embeddings, dim) weight looked up by integer indices.
#pragma once

#include "framework/tensor.h"

namespace weft {

Tensor embedding(const Tensor& weight, const Tensor& indices);

}  // namespace weft
