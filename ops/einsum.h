// einsum: torch.einsum's subscript language ("ij,jk->ik", implicit output, "...", repeated
// subscripts for diagonals), evaluated as diagonals, sums and batched matmuls of the operands.
#pragma once

#include <string>

#include "framework/tensor.h"

namespace weft {

Tensor einsum(const std::string& equation, const TensorList& operands);

}  // namespace weft
