// shape_internal.h: what shape_ops.cpp and copy_ops.cpp share (ops/ internal): how a view is
// marked, and the differentiable scatter-add used by gradients.
#pragma once

#include "autograd/node.h"
#include "framework/tensor.h"

namespace weft::detail {

// A node taking the gradient of `view` (any geometry over base's storage) to base: it scatters the
// gradient into zeros of base's geometry. Its edge is base's current history.
std::shared_ptr<autograd::Node> as_strided_history(const Tensor& base, const Tensor& view);

// `y` marked a view of x when it shares x's storage (with or without a history, which must be
// recorded first): every shape op ends with it. A stale view's history is rebuilt with
// as_strided_history. See Note [In-place on views] in ops/inplace.cpp.
inline Tensor view_result(Tensor y, const Tensor& x) {
  if (y.shares_storage(x)) autograd::mark_view(y, x, &as_strided_history);
  return y;
}

// The number of storage elements a geometry reaches from the start of its storage (0 if empty).
int64_t storage_extent(const Shape& shape, const Shape& strides, int64_t offset);

// base with src's slices added at `index` along dim (index_select's gradient); differentiable.
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace weft::detail
