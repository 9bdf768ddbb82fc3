// ops/reduced_float.h (internal): bfloat16 and float16 through ops whose kernels take float32 and
// float64 only (norms, softmax, losses): the inputs widened to float32 by recorded casts, so that
// gradients come back in the caller's dtype, and the result rounded back once. PyTorch's CPU kernels
// compute these ops in float for the reduced types as well.
#pragma once

#include "framework/tensor.h"

namespace weft::detail {

inline bool any_reduced_float(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t->defined() && is_reduced_float(t->dtype())) return true;
  return false;
}

inline Tensor widened(const Tensor& t) { return t.defined() && is_reduced_float(t.dtype()) ? t.to(kFloat32) : t; }

}  // namespace weft::detail
