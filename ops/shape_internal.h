// shape_internal.h: what shape_ops.cpp and copy_ops.cpp share (ops/ internal): how a one-input op
// records its node, a plain copy, and the differentiable scatter-add used by gradients.
#pragma once

#include "autograd/node.h"
#include "framework/tensor.h"

namespace weft::detail {

// Records a NodeT (when grad is on and x requires grad) as the history of `y`; `init` fills the
// node's fields. A result sharing x's storage is marked a view (see check_inplace).
template <class NodeT, class Init>
Tensor record(Tensor y, const Tensor& x, Init&& init) {
  if (auto node = autograd::make_node<NodeT>(x)) {
    init(*node);
    autograd::set_history(y, node);
    if (y.shares_storage(x)) autograd::autograd_meta(y).is_view = true;
  }
  return y;
}

// A contiguous copy of x in `dtype`, without history.
Tensor copy_of(const Tensor& x, DType dtype);

// base with src's slices added at `index` along dim (index_select's gradient); differentiable.
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace weft::detail
