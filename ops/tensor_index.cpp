// x.index({...}) and x.index_put_({...}, v): the basic indices as views, the advanced ones gathered
// (or written) through one flattened dim, all composed of differentiable ops.
#include "ops/tensor_index.h"

#include <algorithm>

#include "framework/error.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "ops/indexing.h"
#include "ops/rearrange.h"
#include "ops/scatter.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

using indexing::EllipsisIndexType;
using indexing::Slice;
using indexing::TensorIndex;

// An int64 index tensor standing for dim `dim` of the basic-indexed tensor.
struct Advanced {
  int64_t dim;
  Tensor index;
};

// How many of x's dims an index uses up (None, Ellipsis and bools use none).
int64_t dims_used(const TensorIndex& i) {
  const auto& v = i.value();
  if (std::holds_alternative<int64_t>(v) || std::holds_alternative<Slice>(v)) return 1;
  if (const Tensor* t = std::get_if<Tensor>(&v)) return t->dtype() == kBool ? t->dim() : 1;
  return 0;
}

// Python's slice of a dim of `size`: (start, length).
std::pair<int64_t, int64_t> slice_bounds(const Slice& s, int64_t size, const char* op) {
  const int64_t step = s.step.value_or(1);
  WEFT_CHECK(step > 0, op, ": slice step must be positive, but got ", step);
  auto clamp = [&](std::optional<int64_t> bound, int64_t fallback) {
    if (!bound) return fallback;
    int64_t b = *bound < 0 ? *bound + size : *bound;
    return std::clamp<int64_t>(b, 0, size);
  };
  const int64_t start = clamp(s.start, 0), stop = clamp(s.stop, size);
  return {start, stop > start ? (stop - start + step - 1) / step : 0};
}

// A bool index, as torch's: a new dim of size 1 at `dim`, indexed by [0] (true) or [] (false) as an
// advanced index, so that it broadcasts with the other index tensors and the result is a copy.
Tensor bool_dim(const Tensor& y, int64_t dim, bool keep, std::vector<Advanced>& advanced) {
  advanced.push_back({dim, zeros({keep ? 1 : 0}, TensorOptions().dtype(kInt64))});
  return unsqueeze(y, dim);
}

// Applies the basic indices to x, views only, and lists the advanced ones against the dims of the
// result (a bool mask becomes one int64 index per dim it covers, from its nonzero coordinates).
Tensor apply_basic(const Tensor& x, const std::vector<TensorIndex>& indices, std::vector<Advanced>& advanced,
                   const char* op) {
  int64_t used = 0, ellipses = 0;
  for (const TensorIndex& i : indices) {
    used += dims_used(i);
    ellipses += std::holds_alternative<EllipsisIndexType>(i.value());
  }
  WEFT_CHECK(ellipses <= 1, op, ": an index can only have a single ellipsis but got ", ellipses);
  WEFT_CHECK(used <= x.dim(), op, ": too many indices for a tensor of dimension ", x.dim(), " (the indices use ",
             used, " dims)");
  Tensor y = x;
  int64_t dim = 0;
  for (const TensorIndex& i : indices) {
    const auto& v = i.value();
    if (std::holds_alternative<TensorIndex::NoneIndex>(v)) {
      y = unsqueeze(y, dim++);
    } else if (std::holds_alternative<EllipsisIndexType>(v)) {
      dim += x.dim() - used;
    } else if (const bool* b = std::get_if<bool>(&v)) {
      y = bool_dim(y, dim++, *b, advanced);
    } else if (const int64_t* k = std::get_if<int64_t>(&v)) {
      const int64_t size = y.shape()[dim];
      WEFT_CHECK(*k >= -size && *k < size, op, ": index ", *k, " is out of bounds for dimension ", dim, " with size ",
                 size);
      y = select(y, dim, *k);
    } else if (const Slice* s = std::get_if<Slice>(&v)) {
      auto [start, length] = slice_bounds(*s, y.shape()[dim], op);
      const int64_t step = s->step.value_or(1);
      if (step == 1 || length == 0) {
        y = narrow(y, dim, start, length);
      } else {
        Shape shape = y.shape(), strides = y.strides();
        shape[dim] = length;
        strides[dim] *= step;
        y = as_strided(y, shape, strides, y.storage_offset() + start * y.strides()[dim]);
      }
      ++dim;
    } else {
      const Tensor t = std::get<Tensor>(v).detach();
      if (t.dtype() == kBool && t.dim() == 0) {  // a bool tensor of no dims: as a bool
        y = bool_dim(y, dim++, t.item<bool>(), advanced);
      } else if (t.dtype() == kBool) {
        for (int64_t j = 0; j < t.dim(); ++j)
          WEFT_CHECK(t.shape()[j] == y.shape()[dim + j], op, ": the shape of the mask ", t.shape(), " at index ", j,
                     " does not match the shape of the indexed tensor ", y.shape(), " at index ", dim + j);
        const Tensor coords = nonzero(t);
        for (int64_t j = 0; j < t.dim(); ++j) advanced.push_back({dim + j, select(coords, 1, j)});
        dim += t.dim();
      } else {
        WEFT_CHECK(t.dtype() == kInt64, op, ": tensors used as indices must be int64 or bool, but got ",
                   dtype_name(t.dtype()));
        advanced.push_back({dim++, t});
      }
    }
  }
  return y;
}

// The leading n sizes of `shape` placed at `to` among the others.
Shape leading_placed_at(const Shape& shape, size_t n, int64_t to) {
  Shape out;
  for (size_t k = n; k < n + static_cast<size_t>(to); ++k) out.push_back(shape[k]);
  for (size_t k = 0; k < n; ++k) out.push_back(shape[k]);
  for (size_t k = n + static_cast<size_t>(to); k < shape.size(); ++k) out.push_back(shape[k]);
  return out;
}

// `head` followed by tail's sizes from `from` on.
Shape joined(const Shape& head, const Shape& tail, size_t from) {
  Shape out = head;
  for (size_t k = from; k < tail.size(); ++k) out.push_back(tail[k]);
  return out;
}

// The advanced indices resolved: y with the indexed dims moved to the front (a view), the index of
// each broadcast position into those dims flattened, and where PyTorch puts the result's dims.
struct Gathering {
  Shape perm;          // y's dims, the indexed ones first
  Shape broadcast;     // the index tensors' common shape
  Tensor linear;       // [numel(broadcast)] int64: each position's index into the flattened dims
  int64_t positions;   // the product of the indexed dims' sizes
  int64_t result_dim;  // where the broadcast dims go in the result: the first indexed dim when the
                       // indexed dims are adjacent, else 0
};

Gathering resolve(const Tensor& y, const std::vector<Advanced>& advanced, const char* op) {
  Gathering g;
  g.broadcast = advanced[0].index.shape();
  for (size_t k = 1; k < advanced.size(); ++k)
    g.broadcast = broadcast_shapes(g.broadcast, advanced[k].index.shape(), op);
  bool adjacent = true;
  for (size_t k = 0; k < advanced.size(); ++k) {
    g.perm.push_back(advanced[k].dim);
    adjacent &= advanced[k].dim == advanced[0].dim + static_cast<int64_t>(k);
  }
  for (int64_t d = 0; d < y.dim(); ++d)
    if (std::find(g.perm.begin(), g.perm.end(), d) == g.perm.end()) g.perm.push_back(d);
  g.result_dim = adjacent ? advanced[0].dim : 0;
  const int64_t count = numel_of(g.broadcast);
  g.linear = zeros({count}, TensorOptions().dtype(kInt64));
  auto* linear = static_cast<int64_t*>(g.linear.raw_data());
  g.positions = 1;
  for (const Advanced& a : advanced) {
    const int64_t size = y.shape()[a.dim];
    g.positions *= size;
    const Tensor index = expand(a.index, g.broadcast).contiguous();
    const auto* p = static_cast<const int64_t*>(index.raw_data());
    for (int64_t e = 0; e < count; ++e) {
      int64_t v = p[e];
      WEFT_CHECK(v >= -size && v < size, op, ": index ", v, " is out of bounds for dimension ", a.dim, " with size ",
                 size);
      linear[e] = linear[e] * size + (v < 0 ? v + size : v);
    }
  }
  return g;
}

// y permuted (indexed dims first) and flattened over the indexed dims: [positions, rest...].
Tensor flattened(const Tensor& y, const Gathering& g, size_t indexed) {
  Tensor yp = permute(y, g.perm);
  return reshape(yp, joined(Shape{g.positions}, yp.shape(), indexed));
}

// The dims [0, n) moved to [to, to + n), or back.
Tensor move_leading(const Tensor& t, int64_t n, int64_t to, bool back) {
  if (to == 0 || n == 0) return t;
  Shape front, placed;
  for (int64_t k = 0; k < n; ++k) {
    front.push_back(k);
    placed.push_back(to + k);
  }
  return back ? movedim(t, placed, front) : movedim(t, front, placed);
}

}  // namespace

Tensor index(const Tensor& x, const std::vector<TensorIndex>& indices) {
  detail::check_plain(x, "index");
  std::vector<Advanced> advanced;
  Tensor y = apply_basic(x, indices, advanced, "index");
  if (advanced.empty()) return y;
  const Gathering g = resolve(y, advanced, "index");
  Tensor picked = index_select(flattened(y, g, advanced.size()), 0, g.linear);
  return move_leading(reshape(picked, joined(g.broadcast, picked.shape(), 1)), static_cast<int64_t>(g.broadcast.size()),
                      g.result_dim, false);
}

Tensor& index_put_(Tensor& x, const std::vector<TensorIndex>& indices, const Tensor& values, bool accumulate) {
  detail::check_plain(x, "index_put_");
  detail::check_plain(values, "index_put_");
  std::vector<Advanced> advanced;
  Tensor y = apply_basic(x, indices, advanced, "index_put_");  // a view of x
  if (advanced.empty()) {
    WEFT_CHECK(is_broadcastable_to(values.shape(), y.shape()), "index_put_: shape mismatch: values of shape ",
               values.shape(), " cannot be broadcast to the indexing result of shape ", y.shape());
    if (accumulate) y.add_(values);
    else y.copy_(values);
    return x;
  }
  const Gathering g = resolve(y, advanced, "index_put_");
  const Tensor flat = flattened(y, g, advanced.size());
  // values broadcast to the indexed result's shape, its broadcast dims then moved to the front.
  const Shape result = joined(g.broadcast, flat.shape(), 1);
  const auto nb = static_cast<int64_t>(g.broadcast.size());
  const Shape placed_result = leading_placed_at(result, g.broadcast.size(), g.result_dim);
  WEFT_CHECK(is_broadcastable_to(values.shape(), placed_result), "index_put_: shape mismatch: values of shape ",
             values.shape(), " cannot be broadcast to the indexing result of shape ", placed_result);
  Tensor v = move_leading(expand(values.to(x.dtype()), placed_result), nb, g.result_dim, true);
  const Shape rows = joined(Shape{numel_of(g.broadcast)}, flat.shape(), 1);
  v = reshape(v, rows);
  Tensor updated;
  if (accumulate) {
    // scatter_add takes an index of the source's shape: each row's position, repeated along the row.
    Shape column(rows.size(), 1);
    column[0] = rows[0];
    updated = scatter_add(flat, 0, expand(reshape(g.linear, column), rows).contiguous(), v);
  } else {
    updated = index_copy(flat, 0, g.linear, v);
  }
  // Back to y's layout, written through the view.
  Shape permuted;
  for (int64_t d : g.perm) permuted.push_back(y.shape()[d]);
  Shape inverse(g.perm.size());
  for (size_t k = 0; k < g.perm.size(); ++k) inverse[static_cast<size_t>(g.perm[k])] = static_cast<int64_t>(k);
  y.copy_(permute(reshape(updated, permuted), inverse));
  return x;
}

Tensor& index_put_(Tensor& x, const std::vector<TensorIndex>& indices, Scalar value) {
  return index_put_(x, indices, scalar_tensor(value, TensorOptions().dtype(x.dtype())));
}

Tensor Tensor::index(std::initializer_list<indexing::TensorIndex> indices) const {
  return weft::index(*this, std::vector<indexing::TensorIndex>(indices));
}

Tensor& Tensor::index_put_(std::initializer_list<indexing::TensorIndex> indices, const Tensor& values) {
  return weft::index_put_(*this, std::vector<indexing::TensorIndex>(indices), values);
}

Tensor& Tensor::index_put_(std::initializer_list<indexing::TensorIndex> indices, Scalar value) {
  return weft::index_put_(*this, std::vector<indexing::TensorIndex>(indices), value);
}

}  // namespace weft
