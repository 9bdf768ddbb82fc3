// unbatched.h: how the spatial ops (convolutions, pooling) take an input without its batch dim, as
// PyTorch's do (ops/ internal).
#pragma once

#include <utility>

#include "framework/tensor.h"
#include "ops/shape_ops.h"

namespace weft::detail {

// f(x) when x has `batched_dim` dims; for one dim less, f of x with a batch of one added, which
// the result loses again.
template <class F>
Tensor with_batch(const Tensor& x, int64_t batched_dim, const char* op, F&& f) {
  check_plain(x, op);
  if (x.dim() == batched_dim - 1) return squeeze(std::forward<F>(f)(unsqueeze(x, 0)), 0);
  return std::forward<F>(f)(x);
}

}  // namespace weft::detail
