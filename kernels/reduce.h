// Reduction kernels: contiguous fast paths for reducing the innermost or the outermost dims, a
// strided reference loop otherwise; plus the index kernels that max/min/prod backward need.
#pragma once

#include <utility>

#include "framework/tensor.h"

namespace weft::kernels {

enum class ReduceOp : uint8_t { Sum, Prod, Max, Min, All, Any };

// The result shape of reducing `dims` (wrapped, sorted, unique) of `shape`.
Shape reduced_shape(const Shape& shape, const Shape& dims, bool keepdim);

// Reduces x over `dims` (wrapped, sorted, unique; every dim when empty) into a new contiguous
// tensor of x's dtype. Sum and Prod of float32 accumulate in double. All/Any expect bool input.
// An empty reduction gives the op's identity (Max/Min callers refuse it first).
Tensor reduce(ReduceOp op, const Tensor& x, const Shape& dims, bool keepdim);

// x summed down to `shape` (which must broadcast to x's shape): the reduction behind broadcast
// gradients, used by the engine directly and by the sum_to op. x itself when the shapes are equal;
// integral inputs sum in int64, float32 accumulates in double.
Tensor sum_to(const Tensor& x, const Shape& shape);

// Max (or min) of x along `dim` with the int64 index of the first extreme element; NaN wins.
std::pair<Tensor, Tensor> reduce_arg(bool is_max, const Tensor& x, int64_t dim, bool keepdim);

// Zeros of `shape` (grad's dtype) with grad[..., 0, ...] added at index[..., 0, ...] along dim;
// grad and index have `shape` with size 1 at dim. The backward of max/min along a dim.
Tensor scatter_add_dim(const Tensor& grad, const Tensor& index, int64_t dim, const Shape& shape);

// For every element of x, the product of the other elements along `dim` (exact when some are 0).
Tensor prod_others(const Tensor& x, int64_t dim);

}  // namespace weft::kernels
