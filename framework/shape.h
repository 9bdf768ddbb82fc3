// Shape and stride arithmetic: element counts, contiguous strides, dim wrapping, broadcasting.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "framework/small_vector.h"

namespace weft {

// Sizes and strides live inline up to six dims, so that making a tensor allocates no vector.
using Shape = SmallVector<int64_t, 6>;

int64_t numel_of(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

// Raises the error of an out-of-range `dim` for a tensor of `rank` dims; `op` names the caller.
[[noreturn]] void throw_dim_out_of_range(int64_t dim, int64_t rank, const char* op);

// Wraps a possibly negative `dim` into [0, rank); names `op` when it is out of range. A 0-dim
// tensor accepts 0 and -1, as in PyTorch. Inline: shape queries sit on every op's hot path.
inline int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  const int64_t extent = rank == 0 ? 1 : rank;
  if (dim < -extent || dim >= extent) [[unlikely]]
    throw_dim_out_of_range(dim, rank, op);
  return dim < 0 ? dim + extent : dim;
}

// Like wrap_dim, but for indexing an existing dim: a 0-dim tensor has none.
inline size_t dim_index(int64_t dim, int64_t rank, const char* op) {
  if (dim < -rank || dim >= rank) [[unlikely]]
    throw_dim_out_of_range(dim, rank, op);
  return static_cast<size_t>(dim < 0 ? dim + rank : dim);
}

// The broadcast of two shapes as numpy and PyTorch define it; names `op` when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// True when `from` can be broadcast to `to`.
bool is_broadcastable_to(const Shape& from, const Shape& to);

std::string shape_str(const Shape& shape);
std::ostream& operator<<(std::ostream& out, const Shape& shape);

inline Shape to_shape(const std::vector<int64_t>& v) { return Shape(v.begin(), v.end()); }
inline std::vector<int64_t> to_vector(const Shape& s) { return {s.begin(), s.end()}; }

}  // namespace weft
