// Sorting and selection: the lanes kernels (kernels/lanes.h) pick the values, and one backward
// node sends each value's gradient back to the position it was taken from.
#include "ops/sorting.h"

#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "kernels/lanes.h"
#include "kernels/toolkit.h"
#include "ops/scatter.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;

// The gradient of values picked from x along dim at `indices` (of the values' shape, kept dim):
// zeros of x's shape with each gradient added at its position.
struct PickedBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor indices;
  Shape in_shape;
  int64_t dim = 0;
  const char* name_ = "";
  variable_list apply(variable_list&& grads) override {
    Tensor idx = indices.unpack(this);
    if (GradMode::is_enabled()) [[unlikely]]  // create_graph: the same scatter, recorded
      return {scatter_add(zeros(in_shape, grads[0].dtype()), dim, idx, reshape(grads[0], idx.shape()))};
    Tensor g = kernels::reshaped(grads[0], idx.shape());
    return {kernels::scatter_add(zeros(in_shape, g.dtype()), dim, idx, g)};
  }
  std::string name() const override { return name_; }
};

// `values` picked from x at `indices` (both shaped with dim kept), recorded for backward.
Tensor picked(Tensor values, const Tensor& indices, const Tensor& x, int64_t dim, const char* node_name) {
  return autograd::record<PickedBackward>(std::move(values), [&](PickedBackward& n) {
    n.save(n.indices, indices);
    n.in_shape = x.shape(), n.dim = dim, n.name_ = node_name;
  }, x);
}

// A 0-dim input works as one lane of one element; the results are reshaped back to 0-dim.
Tensor as_lane(const Tensor& x) { return x.dim() == 0 ? reshape(x, {1}) : x; }

int64_t lane_dim(const Tensor& x, int64_t dim, const char* op) { return wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op); }

void check_sortable(const Tensor& x, const char* op) {
  detail::check_plain(x, op);
}

// topk, kthvalue and median take no bool tensor (torch has no kernel for one); sort and argsort do.
void check_not_bool(const Tensor& x, const char* op) {
  WEFT_CHECK(x.dtype() != kBool, op, ": not supported for bool tensors (got shape ", x.shape(), ")");
}

// The lanes kernels order bool, int64, float32 and float64: the narrower integers are ordered as
// int64 and the 16-bit floats as float32, both exact, and the values cast back (narrowed).
Tensor widened(const Tensor& x) {
  switch (x.dtype()) {
    case kUInt8: case kInt8: case kInt32: return kernels::cast(x, kInt64);
    case kBFloat16: case kFloat16: return kernels::cast(x, kFloat32);
    default: return x;
  }
}
Tensor narrowed(const Tensor& values, DType dtype) { return values.dtype() == dtype ? values : kernels::cast(values, dtype); }

std::pair<Tensor, Tensor> select_kth(const Tensor& x, int64_t k, int64_t dim, bool keepdim, bool nan_wins,
                                     const char* op, const char* node_name) {
  check_sortable(x, op);
  check_not_bool(x, op);
  int64_t d = lane_dim(x, dim, op);
  Tensor lanes = as_lane(x);
  int64_t n = lanes.shape()[d];
  WEFT_CHECK(n > 0, op, ": expected reduction dim ", d, " to have a non-zero size but the input has shape ",
             x.shape());
  WEFT_CHECK(k >= 1 && k <= n, op, ": k must be in [1, ", n, "] for dim ", d, " of shape ", x.shape(), " but got ", k);
  auto [wide_values, indices] = kernels::kth_smallest(widened(lanes), d, k, nan_wins);
  Tensor values = narrowed(wide_values, x.dtype());
  Shape out_shape = x.shape();
  if (x.dim() > 0) {
    if (keepdim) out_shape[d] = 1;
    else out_shape.erase(out_shape.begin() + d);
  }
  Tensor v = picked(values, indices, lanes, d, node_name);
  return {reshape(v, out_shape), kernels::reshaped(indices, out_shape)};
}

}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  check_sortable(x, "sort");
  int64_t d = lane_dim(x, dim, "sort");
  Tensor lanes = as_lane(x);
  auto [values, indices] = kernels::sort(widened(lanes), d, descending);
  Tensor v = picked(narrowed(values, x.dtype()), indices, lanes, d, "SortBackward");
  if (x.dim() == 0) return {reshape(v, {}), kernels::reshaped(indices, {})};
  return {v, indices};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  check_sortable(x, "argsort");
  int64_t d = lane_dim(x, dim, "argsort");
  Tensor indices = kernels::sort(widened(as_lane(x)), d, descending).second;
  return x.dim() == 0 ? kernels::reshaped(indices, {}) : indices;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_sortable(x, "topk");
  check_not_bool(x, "topk");
  int64_t d = lane_dim(x, dim, "topk");
  Tensor lanes = as_lane(x);
  int64_t n = lanes.shape()[d];
  WEFT_CHECK(k >= 0 && k <= n, "topk: k must be in [0, ", n, "] for dim ", d, " of shape ", x.shape(), " but got ", k);
  auto [sorted, order] = kernels::sort(widened(lanes), d, largest);
  Tensor values = narrowed(kernels::contiguous_copy(narrow(sorted, d, 0, k)), x.dtype());
  Tensor indices = kernels::contiguous_copy(narrow(order, d, 0, k));
  Tensor v = picked(values, indices, lanes, d, "TopkBackward");
  if (x.dim() == 0) return {reshape(v, {}), kernels::reshaped(indices, {})};
  return {v, indices};
}

std::pair<Tensor, Tensor> kthvalue(const Tensor& x, int64_t k, int64_t dim, bool keepdim) {
  return select_kth(x, k, dim, keepdim, false, "kthvalue", "KthvalueBackward");
}

std::pair<Tensor, Tensor> median(const Tensor& x, int64_t dim, bool keepdim) {
  check_not_bool(x, "median");
  int64_t n = x.dim() == 0 ? 1 : x.shape()[lane_dim(x, dim, "median")];
  return select_kth(x, (n - 1) / 2 + 1, dim, keepdim, true, "median", "MedianBackward");
}

Tensor median(const Tensor& x) {
  check_sortable(x, "median");
  check_not_bool(x, "median");
  if (x.numel() == 0) {
    WEFT_CHECK(is_floating(x.dtype()), "median: the median of an empty ", x.dtype(), " tensor is undefined");
    return full({}, NAN, x.dtype());
  }
  return median(reshape(x, {x.numel()}), 0, false).first;
}

}  // namespace weft
