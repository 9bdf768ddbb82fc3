// index.cpp: index_select / index_add / gather / scatter_add / triangle kernels on contiguous buffers.
#include "kernels/index.h"

#include <cstring>

#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

struct DimSplit {
  int64_t outer = 1, size = 1, inner = 1;
};
DimSplit split_at(const Shape& shape, int64_t dim) {
  DimSplit s;
  for (int64_t d = 0; d < dim; ++d) s.outer *= shape[d];
  s.size = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

int64_t checked_index(int64_t v, int64_t size, const char* op, int64_t dim) {
  WEFT_CHECK(v >= 0 && v < size, op, ": index ", v, " is out of range for dim ", dim, " of size ", size);
  return v;
}

// Calls f(position, linear) for every position of `shape` in row-major order.
template <class F>
void for_each_position(const Shape& shape, F&& f) {
  const int64_t n = numel_of(shape);
  Shape pos(shape.size(), 0);
  for (int64_t linear = 0; linear < n; ++linear) {
    f(pos, linear);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++pos[d] < shape[d]) break;
      pos[d] = 0;
    }
  }
}

// The offset, through `strides`, of position `pos` with its coordinate along `dim` replaced by
// `index`: where gather reads and scatter_add writes. A negative dim replaces nothing.
int64_t indexed_offset(const Shape& pos, const Shape& strides, int64_t dim = -1, int64_t index = 0) {
  int64_t off = 0;
  for (size_t d = 0; d < pos.size(); ++d) off += (static_cast<int64_t>(d) == dim ? index : pos[d]) * strides[d];
  return off;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor xc = dense(x), ic = dense(index);
  Shape out_shape = x.shape();
  out_shape[dim] = index.numel();
  Tensor out = make_empty(out_shape, x.dtype());
  DimSplit s = split_at(x.shape(), dim);
  const int64_t n = index.numel(), bytes = s.inner * static_cast<int64_t>(x.element_size());
  if (out.numel() == 0) return out;
  const int64_t* idx = ic.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) checked_index(idx[i], s.size, "index_select", dim);
  const char* src = static_cast<const char*>(xc.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(dst + (o * n + i) * bytes, src + (o * s.size + idx[i]) * bytes, bytes);
  return out;
}

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = contiguous_copy(base), ic = dense(index), sc = dense(src, out.dtype());
  DimSplit s = split_at(out.shape(), dim);
  const int64_t n = index.numel();
  if (sc.numel() == 0) return out;
  const int64_t* idx = ic.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) checked_index(idx[i], s.size, "index_add", dim);
  visit<kAllDTypes>(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data_ptr<T>();
    const T* p = sc.data_ptr<T>();
    for (int64_t a = 0; a < s.outer; ++a)
      for (int64_t i = 0; i < n; ++i) {
        T* orow = o + (a * s.size + idx[i]) * s.inner;
        const T* prow = p + (a * n + i) * s.inner;
        for (int64_t j = 0; j < s.inner; ++j) orow[j] = static_cast<T>(orow[j] + prow[j]);
      }
  });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor ic = dense(index);
  Tensor out = make_empty(index.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const int64_t* idx = ic.data_ptr<int64_t>();
  const Shape& xs = x.strides();
  const int64_t size = x.size(dim);
  visit<kAllDTypes>(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    for_each_position(index.shape(), [&](const Shape& pos, int64_t linear) {
      o[linear] = px[indexed_offset(pos, xs, dim, checked_index(idx[linear], size, "gather", dim))];
    });
  });
  return out;
}

Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = contiguous_copy(base), ic = dense(index);
  Tensor sc = src.dtype() == out.dtype() ? src : contiguous_copy(src, out.dtype());  // read through strides
  if (index.numel() == 0) return out;
  const int64_t* idx = ic.data_ptr<int64_t>();
  const Shape& ss = sc.strides();
  const Shape& os = out.strides();
  const int64_t size = out.size(dim);
  visit<kAllDTypes>(out.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    const T* ps = sc.data_ptr<T>();
    T* o = out.data_ptr<T>();
    for_each_position(index.shape(), [&](const Shape& pos, int64_t linear) {
      T& at = o[indexed_offset(pos, os, dim, checked_index(idx[linear], size, "scatter_add", dim))];
      at = static_cast<T>(at + ps[indexed_offset(pos, ss)]);
    });
  });
  return out;
}

Tensor triangle(const Tensor& x, int64_t diagonal, bool upper) {
  Tensor out = contiguous_copy(x);
  const int64_t rows = x.size(-2), cols = x.size(-1);
  const int64_t mats = rows * cols == 0 ? 0 : out.numel() / (rows * cols);
  visit<kAllDTypes>(out.dtype(), "triu/tril", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data_ptr<T>();
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const bool keep = upper ? j - i >= diagonal : j - i <= diagonal;
          if (!keep) o[(m * rows + i) * cols + j] = T(0);
        }
  });
  return out;
}

Tensor storage_positions(const Shape& shape, const Shape& strides, int64_t offset) {
  Tensor pos = make_empty(shape, kInt64);
  int64_t* p = pos.data_ptr<int64_t>();
  const int64_t n = pos.numel();
  Shape idx(shape.size(), 0);
  int64_t at = offset;
  for (int64_t i = 0; i < n; ++i) {
    p[i] = at;
    for (size_t d = shape.size(); d-- > 0;) {
      at += strides[d];
      if (++idx[d] < shape[d]) break;
      at -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return pos;
}

}  // namespace weft::kernels
