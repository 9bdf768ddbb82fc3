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

// Note [Checked shape arithmetic]
// Every tensor that exists has non-negative sizes whose product, counting a 0 as a 1, fits in
// int64, a byte count below kMaxTensorBytes, and (for a view) every element inside its storage:
// make_empty and make_alias enforce it. So products of an existing tensor's sizes and strides
// (numel_of, contiguous strides, a kernel's outer * inner) cannot overflow, and only arithmetic on
// sizes that come from a caller (factory shapes, reshape targets, broadcast, cat and matmul
// outputs, view geometries, embedding tables) goes through the checked helpers below, which
// throw weft::Error naming the op and the sizes.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 48;  // 256 TiB: beyond any allocator, far below overflow

int64_t checked_mul(int64_t a, int64_t b, const char* op);
int64_t checked_add(int64_t a, int64_t b, const char* op);
// The element count of a shape a caller asked for: negative sizes and products past int64
// (counting 0 as 1, so that every partial product of the sizes fits too) name `op`.
int64_t checked_numel(const Shape& shape, const char* op);
// numel * element_size, refused past kMaxTensorBytes.
size_t checked_nbytes(int64_t numel, size_t element_size, const Shape& shape, const char* op);

// The element count of an existing tensor's shape (see Note [Checked shape arithmetic]).
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
