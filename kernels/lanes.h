// lanes.h: kernels that work along one dim, lane by lane (every 1-D line of elements along `dim`):
// sorting, selection and scans. No autograd; the ops in ops/sorting.cpp and ops/scans.cpp check
// their arguments and record the backward.
#pragma once

#include <utility>

#include "framework/tensor.h"

namespace weft::kernels {

// Every lane along `dim` sorted (stably), with the int64 position each value came from. NaN orders
// above every number, as in torch: last ascending, first descending.
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending);

// The k-th smallest (k from 1) of every lane along `dim`, with its position, the lane dim kept
// (size 1). NaN orders above every number; with `nan_wins` a lane holding NaN answers NaN at the
// position of its first NaN (torch.median).
std::pair<Tensor, Tensor> kth_smallest(const Tensor& x, int64_t dim, int64_t k, bool nan_wins);

enum class Scan : uint8_t { Sum, Prod, LogSumExp };
// Inclusive running sum, product or log-sum-exp along `dim`, in x's dtype; `reverse` runs from the
// end of each lane (element i combines elements i..n-1), as backward needs.
Tensor scan(Scan op, const Tensor& x, int64_t dim, bool reverse = false);

// The gradient of cumprod along `dim` for input x, output y and incoming gradient g, exact where x
// holds zeros (each lane: the formula sum_{k>=i} g_k y_k / x_i before its first zero, the product of
// the others at that zero, nothing after it).
Tensor cumprod_backward(const Tensor& g, const Tensor& x, const Tensor& y, int64_t dim);

}  // namespace weft::kernels
