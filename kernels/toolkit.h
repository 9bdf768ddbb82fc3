// The kernel author's toolkit: how kernels and ops make outputs, aliases and copies, and the shape
// helpers they share. Everything here is plain computation: it returns tensors without autograd
// history and records nothing, so the engine and every layer above may use it.
#pragma once

#include "framework/copy.h"
#include "framework/tensor.h"

namespace weft::kernels {

// A new, uninitialised, contiguous tensor: every kernel's output.
using weft::detail::make_empty;
// A tensor over base's storage with another geometry (offset in elements): how views are made.
using weft::detail::make_alias;
// Writes src, broadcast to dst's shape and converted to dst's dtype, into dst (which may be strided).
using weft::detail::copy_into;

// A new contiguous tensor holding t's values, in `dtype` (t's own by default). Always a new buffer:
// kernels that write into their copy, and gradients that end in .grad, need one of their own.
Tensor contiguous_copy(const Tensor& t);
Tensor contiguous_copy(const Tensor& t, DType dtype);

// t itself when it is already contiguous (and of `dtype`), else contiguous_copy: dense memory to read.
Tensor dense(const Tensor& t);
Tensor dense(const Tensor& t, DType dtype);

// t's values read row-major with `shape` (same numel): an alias of t when it is contiguous, else of
// a contiguous copy.
Tensor reshaped(const Tensor& t, const Shape& shape);

// The row-major coordinate of element `index` of `shape` (0 along empty dims).
Shape unravel(int64_t index, const Shape& shape);

}  // namespace weft::kernels
