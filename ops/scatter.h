// Writing into a copy at indexed positions, torch's out-of-place forms: scatter, scatter_add,
// scatter_reduce, index_fill, index_copy, masked_scatter; the selections masked_select and
// nonzero; and unique. Differentiable where torch's are (not nonzero, unique or the indices).
#pragma once

#include <string>
#include <tuple>

#include "framework/tensor.h"

namespace weft {

// x with src[p] (or value) written at p with p[dim] replaced by index[p], for every p of index's
// shape; index is int64 of x's rank, no larger than src anywhere nor than x outside dim.
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// reduce: "sum", "prod", "mean", "amax" or "amin"; include_self counts x's own values.
Tensor scatter_reduce(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src,
                      const std::string& reduce, bool include_self = true);
// index is 1-D int64: the slices of x along dim that are filled or replaced by src's slices.
Tensor index_fill(const Tensor& x, int64_t dim, const Tensor& index, Scalar value);
Tensor index_copy(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// The elements of x (broadcast with the bool mask) where mask is true, as a 1-D tensor.
Tensor masked_select(const Tensor& x, const Tensor& mask);
// x (broadcast with mask) with the true positions filled, in order, by source's first elements.
Tensor masked_scatter(const Tensor& x, const Tensor& mask, const Tensor& source);
// The coordinates of the nonzero elements, [count, x.dim()] int64 in row-major order.
Tensor nonzero(const Tensor& x);

// The sorted distinct values of the flattened x, with (when asked, else undefined) the index of
// each element's value among them and each value's count.
struct UniqueResult {
  Tensor values, inverse, counts;
};
UniqueResult unique(const Tensor& x, bool return_inverse = false, bool return_counts = false);

}  // namespace weft
