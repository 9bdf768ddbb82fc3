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

// Wraps a possibly negative `dim` into [0, rank); names `op` when it is out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);

// The broadcast of two shapes as numpy and PyTorch define it; names `op` when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// True when `from` can be broadcast to `to`.
bool is_broadcastable_to(const Shape& from, const Shape& to);

std::string shape_str(const Shape& shape);
std::ostream& operator<<(std::ostream& out, const Shape& shape);

inline Shape to_shape(const std::vector<int64_t>& v) { return Shape(v.begin(), v.end()); }
inline std::vector<int64_t> to_vector(const Shape& s) { return {s.begin(), s.end()}; }

}  // namespace weft
