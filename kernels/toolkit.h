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

// Throws unless t is a defined plain tensor (not a DTensor), naming `op`: every op and collective
// checks its tensor inputs with it first.
using weft::detail::check_plain;

// The row-major coordinate of element `index` of `shape` (0 along empty dims), in shape's own
// container: a Shape for a tensor, a std::vector<int64_t> for a device mesh.
template <class Coords>
Coords unravel(int64_t index, const Coords& shape) {
  Coords coord(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 0) continue;
    coord[d] = index % shape[d];
    index /= shape[d];
  }
  return coord;
}

// The row-major index of coordinate `coord` of `shape`: unravel's inverse.
template <class Coords>
int64_t ravel(const Coords& coord, const Coords& shape) {
  int64_t index = 0;
  for (size_t d = 0; d < shape.size(); ++d) index = index * shape[d] + coord[d];
  return index;
}

}  // namespace weft::kernels
