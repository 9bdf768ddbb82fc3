// scatter.h: writing values into a copy of a tensor at indexed positions (scatter and
// scatter_reduce, index_fill, index_copy). No autograd; ops/scatter.cpp checks shapes and dtypes.
#pragma once

#include "framework/tensor.h"

namespace weft::kernels {

enum class ScatterReduce : uint8_t { Assign, Sum, Prod, Mean, Max, Min };

// A contiguous copy of `base` where, for every position p of index's shape, src[p] is combined into
// the element at p with p[dim] replaced by index[p]. With include_self, the combination starts from
// base's value (Mean then counts it); without, from the first value scattered there. Positions no
// index names keep base's value. Indices must lie in [0, base.size(dim)).
Tensor scatter(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src, ScatterReduce op,
               bool include_self, const char* name);

// A contiguous copy of x with the slices index[i] along dim set to `value` (negative i from the end).
Tensor index_fill(const Tensor& x, int64_t dim, const Tensor& index, Scalar value, const char* name);
// A contiguous copy of x with slice index[i] along dim replaced by slice i of src (last write wins).
Tensor index_copy(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, const char* name);

}  // namespace weft::kernels
