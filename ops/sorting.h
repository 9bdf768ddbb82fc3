// Sorting and selection along a dim: sort, argsort, topk, kthvalue, median. Values are
// differentiable (the gradient goes back to the positions they came from); indices are int64.
// NaN orders above every number, as in torch.
#pragma once

#include <utility>

#include "framework/tensor.h"

namespace weft {

// Stable: equal values keep their order (torch's stable=true), ascending or descending.
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
// The k largest (or smallest) along dim, always in sorted order (what torch gives for sorted=true).
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
// The k-th smallest (k from 1) along dim.
std::pair<Tensor, Tensor> kthvalue(const Tensor& x, int64_t k, int64_t dim = -1, bool keepdim = false);
// The lower median (of an even count, the smaller middle value); NaN when the lane holds NaN.
// The global median of an empty tensor is NaN, as in torch.
Tensor median(const Tensor& x);
std::pair<Tensor, Tensor> median(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace weft
