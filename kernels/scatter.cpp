// Scatter kernels: positions are walked in row-major order with their coordinates, so any strides
// of src work; the output is a dense copy of the base.
#include "kernels/scatter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

// Calls f(coordinates) for every position of `shape` in row-major order.
template <class F>
void for_each_coordinate(const Shape& shape, F&& f) {
  const int64_t n = numel_of(shape);
  Shape pos(shape.size(), 0);
  for (int64_t linear = 0; linear < n; ++linear) {
    f(pos);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++pos[d] < shape[d]) break;
      pos[d] = 0;
    }
  }
}

int64_t offset_of(const Shape& pos, const Shape& strides) {
  int64_t off = 0;
  for (size_t d = 0; d < pos.size(); ++d) off += pos[d] * strides[d];
  return off;
}

int64_t checked(int64_t v, int64_t size, const char* name, int64_t dim) {
  WEFT_CHECK(v >= 0 && v < size, name, ": index ", v, " is out of bounds for dim ", dim, " of size ", size);
  return v;
}

template <class T>
T combine(ScatterReduce op, T acc, T v) {
  switch (op) {
    case ScatterReduce::Assign: return v;
    case ScatterReduce::Sum: case ScatterReduce::Mean: return static_cast<T>(acc + v);
    case ScatterReduce::Prod: return static_cast<T>(acc * v);
    case ScatterReduce::Max:
      if constexpr (std::is_floating_point_v<T>) return (std::isnan(acc) || acc > v) ? acc : v;  // NaN wins
      else return std::max(acc, v);
    case ScatterReduce::Min:
      if constexpr (std::is_floating_point_v<T>) return (std::isnan(acc) || acc < v) ? acc : v;
      else return std::min(acc, v);
  }
  return v;
}

}  // namespace

Tensor scatter(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src, ScatterReduce op,
               bool include_self, const char* name) {
  if (base.dtype() == kBFloat16 || base.dtype() == kFloat16) {  // computed in float32, rounded once
    Tensor wide = scatter(cast(base, kFloat32), dim, index, cast(src, kFloat32), op, include_self, name);
    return cast(wide, base.dtype());
  }
  Tensor out = contiguous_copy(base);
  if (index.numel() == 0) return out;
  Tensor idx = dense(index);
  const int64_t* pi = idx.data_ptr<int64_t>();
  const Shape& out_strides = out.strides();
  const Shape& src_strides = src.strides();
  int64_t size = base.dim() == 0 ? 1 : base.size(dim);
  visit<kStdArith>(base.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    T* po = static_cast<T*>(out.raw_data());
    const T* ps = static_cast<const T*>(src.raw_data());
    std::vector<int64_t> count;                    // Mean: how many values met at each element
    std::vector<bool> touched(out.numel(), false);  // without include_self: the first value starts
    if (op == ScatterReduce::Mean) count.assign(out.numel(), include_self ? 1 : 0);
    int64_t linear = 0;
    for_each_coordinate(index.shape(), [&](const Shape& pos) {
      Shape target = pos;
      if (base.dim() > 0) target[dim] = checked(pi[linear], size, name, dim);
      else checked(pi[linear], 1, name, dim);
      ++linear;
      int64_t o = offset_of(target, out_strides);
      T v = ps[offset_of(pos, src_strides)];
      if (op != ScatterReduce::Assign && !include_self && !touched[o]) po[o] = v;
      else po[o] = combine(op, po[o], v);
      touched[o] = true;
      if (!count.empty()) ++count[o];
    });
    if (op == ScatterReduce::Mean)
      for (int64_t o = 0; o < out.numel(); ++o)
        if (count[o] > 1 || (count[o] == 1 && !include_self)) {
          if constexpr (std::is_floating_point_v<T>) po[o] /= static_cast<T>(count[o]);
          else if constexpr (!std::is_same_v<T, bool>) po[o] = static_cast<T>(po[o] / count[o]);  // torch floors
        }
  });
  return out;
}

Tensor index_fill(const Tensor& x, int64_t dim, const Tensor& index, Scalar value, const char* name) {
  Tensor out = contiguous_copy(x);
  if (x.dim() == 0) {
    for (int64_t i : index.to_vector<int64_t>()) checked(i, 1, name, 0);
    if (index.numel() > 0) fill_out(out, value);
    return out;
  }
  Shape shape = out.shape(), strides = out.strides();
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  for (int64_t i : index.to_vector<int64_t>()) {
    const int64_t size = x.size(dim);
    if (i < 0 && i >= -size) i += size;  // index_fill counts from the end, as torch's
    checked(i, size, name, dim);
    fill_out(make_alias(out, shape, strides, i * out.stride(dim)), value);
  }
  return out;
}

Tensor index_copy(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, const char* name) {
  Tensor out = contiguous_copy(x);
  auto positions = index.to_vector<int64_t>();
  if (x.dim() == 0) {
    for (int64_t i : positions) checked(i, 1, name, 0);
    if (!positions.empty()) copy_into(out, reshaped(src, {}));
    return out;
  }
  Shape shape = out.shape(), strides = out.strides(), src_strides = src.strides();
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  src_strides.erase(src_strides.begin() + dim);
  for (size_t j = 0; j < positions.size(); ++j) {
    int64_t i = checked(positions[j], x.size(dim), name, dim);
    Tensor from = make_alias(src, shape, src_strides, src.storage_offset() + static_cast<int64_t>(j) * src.stride(dim));
    copy_into(make_alias(out, shape, strides, i * out.stride(dim)), from);
  }
  return out;
}

}  // namespace weft::kernels
