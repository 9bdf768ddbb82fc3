// Strided iteration over several operands of one shape: the engine of every reference kernel.
#pragma once

#include <array>
#include <cstdint>

#include "framework/shape.h"

namespace weft::detail {

// K operands sharing a shape, each with its own strides (in elements). Dims that can be merged
// are merged so that the innermost row is as long as possible.
template <size_t K>
struct StridedLoop {
  Shape shape;
  std::array<Shape, K> strides;

  StridedLoop(const Shape& full_shape, const std::array<const Shape*, K>& operand_strides) {
    for (size_t d = 0; d < full_shape.size(); ++d) {
      if (full_shape[d] == 1) continue;  // size-1 dims never move the pointer
      bool merge = !shape.empty();
      for (size_t k = 0; k < K && merge; ++k)
        merge = strides[k].back() == (*operand_strides[k])[d] * full_shape[d];
      if (merge) {
        shape.back() *= full_shape[d];
        for (size_t k = 0; k < K; ++k) strides[k].back() = (*operand_strides[k])[d];
      } else {
        shape.push_back(full_shape[d]);
        for (size_t k = 0; k < K; ++k) strides[k].push_back((*operand_strides[k])[d]);
      }
    }
    for (int64_t s : full_shape)
      if (s == 0) empty_ = true;
  }

  int64_t row_length() const { return shape.empty() ? 1 : shape.back(); }
  int64_t row_count() const {
    if (empty_) return 0;
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
    return rows;
  }
  std::array<int64_t, K> inner_strides() const {
    std::array<int64_t, K> s{};
    if (!shape.empty())
      for (size_t k = 0; k < K; ++k) s[k] = strides[k].back();
    return s;
  }
  // Element offsets of each operand at the start of row `row`.
  std::array<int64_t, K> row_offsets(int64_t row) const {
    std::array<int64_t, K> off{};
    for (size_t d = shape.size() - (shape.empty() ? 0 : 1); d-- > 0;) {
      int64_t i = row % shape[d];
      row /= shape[d];
      for (size_t k = 0; k < K; ++k) off[k] += i * strides[k][d];
    }
    return off;
  }

  // Calls f(offsets, n, inner_strides) once per innermost row, rows in order.
  template <class F>
  void for_each_row(F&& f) const {
    int64_t rows = row_count(), n = row_length();
    auto inner = inner_strides();
    if (rows == 0) return;
    size_t outer_dims = shape.empty() ? 0 : shape.size() - 1;
    Shape index(outer_dims, 0);
    std::array<int64_t, K> off{};
    for (int64_t r = 0; r < rows; ++r) {
      f(off, n, inner);
      for (size_t d = outer_dims; d-- > 0;) {  // odometer increment
        ++index[d];
        for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
        if (index[d] < shape[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * shape[d];
        index[d] = 0;
      }
    }
  }

 private:
  bool empty_ = false;
};

}  // namespace weft::detail
