// Reductions over all or some dims, with keepdim. `dims` empty means all dims.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "framework/tensor.h"

namespace weft {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
// sum(x, 1) as in torch: one dim as a number.
template <DimIndex I>
Tensor sum(const Tensor& x, I dim, bool keepdim = false) { return sum(x, Shape{static_cast<int64_t>(dim)}, keepdim); }
template <DimIndex I>
Tensor mean(const Tensor& x, I dim, bool keepdim = false) { return mean(x, Shape{static_cast<int64_t>(dim)}, keepdim); }
Tensor prod(const Tensor& x);
Tensor prod(const Tensor& x, int64_t dim, bool keepdim = false);
// Global max/min (values only).
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
// Along a dim: (values, indices int64). An empty input gives an empty result unless the dim has size 0.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor var(const Tensor& x, const Shape& dims = {}, bool unbiased = true, bool keepdim = false);
Tensor std(const Tensor& x, const Shape& dims = {}, bool unbiased = true, bool keepdim = false);
// The vector p-norm over dims (every dim when empty), for every p torch.norm takes as a number:
// (sum |x|^p)^(1/p) for p != 0 (negative p too), the largest |x| for inf, the smallest for -inf, and the
// count of nonzero entries for 0. "fro" is p = 2 over the given dims.
Tensor norm(const Tensor& x, double p = 2.0, const Shape& dims = {}, bool keepdim = false);
Tensor norm(const Tensor& x, const std::string& p, const Shape& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor all(const Tensor& x);
Tensor any(const Tensor& x);
Tensor all(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor any(const Tensor& x, int64_t dim, bool keepdim = false);
// Same shape and values (dtypes may differ: compared after promotion, as torch 2.x does).
bool equal(const Tensor& a, const Tensor& b);
// |a - b| <= atol + rtol |b| everywhere (equal infinities too, NaN never); a and b must share a dtype
// and broadcast together, as in torch.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

// Sums `x` down to `shape` (which x's shape broadcasts from): the gradient of a broadcast.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace weft
