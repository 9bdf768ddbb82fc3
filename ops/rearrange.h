// Rearranging elements, composed of the differentiable shape and indexing ops (so their gradients,
// and gradients of those gradients, come from them): flip, roll, repeat, tile, repeat_interleave,
// movedim, unbind, and the diagonal family (diagonal is a view; diag and trace copy or reduce).
#pragma once

#include <optional>
#include <vector>

#include "framework/tensor.h"

namespace weft {

Tensor flip(const Tensor& x, const Shape& dims);
// Elements shifted by shifts[i] along dims[i] (wrapping around); without dims, over the flattened
// tensor, keeping its shape.
Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims = {});
// torch's repeat: `repeats` has at least x.dim() entries; x gains leading dims of size 1 to match.
Tensor repeat(const Tensor& x, const Shape& repeats);
// torch's tile: as repeat, with missing leading repeats taken as 1.
Tensor tile(const Tensor& x, const Shape& repeats);
// Each element repeated `repeats` times along dim (over the flattened tensor when dim is not given),
// or repeats[i] times for element i with a 1-D int64 tensor of counts.
Tensor repeat_interleave(const Tensor& x, int64_t repeats, std::optional<int64_t> dim = std::nullopt);
Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, std::optional<int64_t> dim = std::nullopt);
Tensor movedim(const Tensor& x, int64_t source, int64_t destination);
Tensor movedim(const Tensor& x, const Shape& source, const Shape& destination);
// The views of x's slices along dim.
TensorList unbind(const Tensor& x, int64_t dim = 0);
// A view of the diagonal of dims dim1 and dim2 (offset above it when positive), moved last.
Tensor diagonal(const Tensor& x, int64_t offset = 0, int64_t dim1 = 0, int64_t dim2 = 1);
// 1-D: a square matrix with x on its `offset` diagonal; 2-D: a copy of that diagonal.
Tensor diag(const Tensor& x, int64_t offset = 0);
// The sum of a matrix's main diagonal.
Tensor trace(const Tensor& x);

}  // namespace weft
