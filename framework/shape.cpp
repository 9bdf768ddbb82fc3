// Shape and stride arithmetic shared by every layer.
#include "framework/shape.h"

#include <sstream>

#include "framework/error.h"

namespace weft {

int64_t checked_mul(int64_t a, int64_t b, const char* op) {
  int64_t r;
  WEFT_CHECK(!__builtin_mul_overflow(a, b, &r), op, ": size arithmetic overflows int64 (", a, " * ", b, ")");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* op) {
  int64_t r;
  WEFT_CHECK(!__builtin_add_overflow(a, b, &r), op, ": size arithmetic overflows int64 (", a, " + ", b, ")");
  return r;
}

int64_t checked_numel(const Shape& shape, const char* op) {
  int64_t bound = 1;
  bool zero = false;
  for (int64_t s : shape) {
    WEFT_CHECK(s >= 0, op, ": sizes must be non-negative but got ", shape);
    zero = zero || s == 0;
    WEFT_CHECK(!__builtin_mul_overflow(bound, s == 0 ? 1 : s, &bound), op, ": the shape ", shape,
               " has more elements than int64 can count");
  }
  return zero ? 0 : bound;
}

size_t checked_nbytes(int64_t numel, size_t element_size, const Shape& shape, const char* op) {
  int64_t bytes;
  WEFT_CHECK(!__builtin_mul_overflow(numel, static_cast<int64_t>(element_size), &bytes) && bytes <= kMaxTensorBytes,
             op, ": the shape ", shape, " needs ", numel, " elements of ", element_size,
             " bytes, more than the limit of ", kMaxTensorBytes, " bytes");
  return static_cast<size_t>(bytes);
}

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  int64_t running = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = running;
    running *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

void throw_dim_out_of_range(int64_t dim, int64_t rank, const char* op) {
  WEFT_CHECK(rank > 0 || (dim != 0 && dim != -1), op, ": dimension ", dim,
             " of a 0-dim tensor, which has no dimensions");
  const int64_t extent = rank == 0 ? 1 : rank;
  WEFT_ERROR(op, ": dimension out of range (expected to be in range of [", -extent, ", ", extent - 1,
             "], but got ", dim, ")");
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    WEFT_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " are not broadcastable (size ", da, " vs ", db, " at dim ", i, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool is_broadcastable_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[lead + i]) return false;
  return true;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Shape& shape) {
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  return out << ']';
}

}  // namespace weft
