// Reductions (sum, mean, prod, max/min, var/std, norm, logsumexp, all/any) with their backward,
// and sum_to, the reduction behind broadcast gradients.
#include "ops/reduce.h"

#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "ops/autocast.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/logical.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "ops/copy_ops.h"
#include "ops/scatter.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::ReduceOp;
using kernels::reshaped;

// Wraps, sorts and checks `dims`; empty stays empty (all dims).
Shape normalize_dims(const Shape& dims, int64_t rank, const char* op) {
  Shape out;
  for (int64_t d : dims) out.push_back(wrap_dim(d, std::max<int64_t>(rank, 1), op));
  std::sort(out.begin(), out.end());
  for (size_t i = 1; i < out.size(); ++i)
    WEFT_CHECK(out[i] != out[i - 1], op, ": dim ", out[i], " appears multiple times in the list of dims");
  if (rank == 0) out.clear();  // a 0-d tensor reduces over its (no) dims whatever dim 0/-1 says
  return out;
}

int64_t reduced_count(const Shape& shape, const Shape& dims) {
  if (dims.empty()) return numel_of(shape);
  int64_t n = 1;
  for (int64_t d : dims) n *= shape[d];
  return n;
}

// A reduced gradient (keepdim or not) broadcast back to the input's shape, as a new dense tensor:
// gradients that end in .grad must own dense memory. Under grad mode (create_graph) in ops, so that
// it records (Note [create_graph] in autograd/engine.cpp).
Tensor expand_back(const Tensor& g, const Shape& in_shape, const Shape& dims, bool keepdim) {
  if (GradMode::is_enabled()) [[unlikely]]
    return contiguous(expand(reshape(g, kernels::reduced_shape(in_shape, dims, true)), in_shape));
  Tensor gk = g;
  if (!keepdim) gk = reshaped(g, kernels::reduced_shape(in_shape, dims, true));
  Tensor out = kernels::make_empty(in_shape, g.dtype());
  kernels::copy_into(out, gk);
  return out;
}

// Sum and prod of bool/int promote to int64, as in PyTorch.
Tensor accumulation_input(const Tensor& x) { return is_floating(x.dtype()) ? x : kernels::cast(x, kInt64); }

struct SumBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape in_shape, dims;
  bool keepdim = false;
  variable_list apply(variable_list&& grads) override { return {expand_back(grads[0], in_shape, dims, keepdim)}; }
  std::string name() const override { return "SumBackward"; }
};

struct MeanBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape in_shape, dims;
  bool keepdim = false;
  double count = 1;
  variable_list apply(variable_list&& grads) override {
    return {div(expand_back(grads[0], in_shape, dims, keepdim), count)};
  }
  std::string name() const override { return "MeanBackward"; }
};

}  // namespace

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kSum, static_cast<Tensor (*)(const Tensor&, const Shape&, bool)>(sum), x, dims,
                          keepdim);
  detail::check_plain(x, "sum");
  Shape d = normalize_dims(dims, x.dim(), "sum");
  Tensor y = kernels::reduce(ReduceOp::Sum, accumulation_input(x), d, keepdim);
  return autograd::record<SumBackward>(std::move(y), [&](SumBackward& n) {
    n.in_shape = x.shape(), n.dims = d, n.keepdim = keepdim;
  }, x);
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kMean, static_cast<Tensor (*)(const Tensor&, const Shape&, bool)>(mean), x,
                          dims, keepdim);
  detail::check_plain(x, "mean");
  WEFT_CHECK(is_floating(x.dtype()), "mean: could not infer output dtype; the input dtype must be floating "
             "point but got ", x.dtype());
  Shape d = normalize_dims(dims, x.dim(), "mean");
  double count = static_cast<double>(reduced_count(x.shape(), d));
  Tensor y = kernels::binary_scalar(kernels::BinaryOp::Div, kernels::reduce(ReduceOp::Sum, x, d, keepdim), count);
  return autograd::record<MeanBackward>(std::move(y), [&](MeanBackward& n) {
    n.in_shape = x.shape(), n.dims = d, n.keepdim = keepdim, n.count = count;
  }, x);
}

namespace {
struct ProdBackward final : autograd::Node {
  SavedTensor x;
  int64_t dim = -1;  // -1: the product of all elements
  bool keepdim = false;
  variable_list apply(variable_list&& grads) override {
    Tensor xv = x.unpack(this);
    if (dim < 0) {
      Tensor others = reshaped(kernels::prod_others(reshaped(xv, {xv.numel()}), 0), xv.shape());
      return {mul(others, grads[0])};
    }
    return {mul(expand_back(grads[0], xv.shape(), {dim}, keepdim), kernels::prod_others(xv, dim))};
  }
  std::string name() const override { return "ProdBackward"; }
};

Tensor prod_impl(const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_plain(x, "prod");
  Shape d = dim < 0 ? Shape{} : Shape{dim};
  Tensor y = kernels::reduce(ReduceOp::Prod, accumulation_input(x), d, keepdim);
  return autograd::record<ProdBackward>(std::move(y), [&](ProdBackward& n) {
    n.save(n.x, x);
    n.dim = dim, n.keepdim = keepdim;
  }, x);
}
}  // namespace

Tensor prod(const Tensor& x) { return prod_impl(x, -1, false); }
Tensor prod(const Tensor& x, int64_t dim, bool keepdim) {
  return prod_impl(x, x.dim() == 0 ? -1 : wrap_dim(dim, x.dim(), "prod"), keepdim);
}

namespace {
// Global max/min: the gradient is shared evenly by every element equal to the result; a NaN result
// counts the NaN elements as equal to it (torch's evenly_distribute_backward).
struct ExtremeAllBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor x, y;
  variable_list apply(variable_list&& grads) override {
    Tensor xv = x.unpack(this), yv = y.unpack(this);
    Tensor hit = kernels::has_nan(yv) ? ne(xv, xv) : eq(xv, yv);
    Tensor mask = kernels::cast(hit, grads[0].dtype());
    return {mul(div(mask, sum(mask)), grads[0])};
  }
  std::string name() const override { return "MaxBackward"; }
};

Tensor extreme_all(const Tensor& x, bool is_max, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.numel() > 0, op, ": expected a non-empty tensor (the reduction has no identity) but got shape ",
             x.shape());
  Tensor y = kernels::reduce(is_max ? ReduceOp::Max : ReduceOp::Min, x, {}, false);
  return autograd::record<ExtremeAllBackward>(y, [&](ExtremeAllBackward& n) {
    n.save(n.x, x);
    n.save(n.y, y, true);
  }, x);
}

// torch reduces an empty tensor along a dim of non-zero size (to an empty result) but not along a
// dim of size 0, where max and min have no identity.
void check_reduced_dim(const Tensor& x, int64_t d, const char* op) {
  WEFT_CHECK(x.shape()[d] > 0, op, ": expected reduction dim ", d, " to have a non-zero size but the input has "
             "shape ", x.shape());
}

struct ExtremeDimBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor indices;
  Shape in_shape;
  int64_t dim = 0;
  bool keepdim = false;
  variable_list apply(variable_list&& grads) override {
    Shape kshape = kernels::reduced_shape(in_shape, {dim}, true);
    Tensor g = keepdim ? grads[0] : reshaped(grads[0], kshape);
    Tensor idx = indices.unpack(this);
    if (!keepdim) idx = reshaped(idx, kshape);
    if (GradMode::is_enabled()) [[unlikely]]  // create_graph: the same scatter, recorded
      return {scatter_add(zeros(in_shape, g.dtype()), dim, idx, reshape(grads[0], kshape))};
    return {kernels::scatter_add_dim(g, idx, dim, in_shape)};
  }
  std::string name() const override { return "MaxBackward"; }
};

std::pair<Tensor, Tensor> extreme_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
  detail::check_plain(x, op);
  if (x.dim() == 0) {  // a 0-d tensor is its own extreme, at index 0
    Tensor y = add(x, 0);
    return {y, zeros({}, kInt64)};
  }
  int64_t d = wrap_dim(dim, x.dim(), op);
  check_reduced_dim(x, d, op);
  auto [values, indices] = kernels::reduce_arg(is_max, x, d, keepdim);
  values = autograd::record<ExtremeDimBackward>(std::move(values), [&](ExtremeDimBackward& n) {
    n.save(n.indices, indices);
    n.in_shape = x.shape(), n.dim = d, n.keepdim = keepdim;
  }, x);
  return {values, indices};
}

Tensor arg_extreme(const Tensor& x, std::optional<int64_t> dim, bool keepdim, bool is_max, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.dtype() != kBool, op, ": not supported for bool tensors (as in torch; convert to an integer dtype)");
  if (dim && x.dim() > 0) {
    int64_t d = wrap_dim(*dim, x.dim(), op);
    check_reduced_dim(x, d, op);
    return kernels::reduce_arg(is_max, x, d, keepdim).second;
  }
  WEFT_CHECK(x.numel() > 0, op, ": expected a non-empty tensor (or a dim to reduce) but got shape ", x.shape());
  Tensor flat_index = kernels::reduce_arg(is_max, reshaped(x, {x.numel()}), 0, false).second;
  return keepdim ? reshaped(flat_index, Shape(x.dim(), 1)) : flat_index;
}
}  // namespace

Tensor max(const Tensor& x) { return extreme_all(x, true, "max"); }
Tensor min(const Tensor& x) { return extreme_all(x, false, "min"); }
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_dim(x, dim, keepdim, true, "max");
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_dim(x, dim, keepdim, false, "min");
}
Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  Tensor y = arg_extreme(x, dim, keepdim, true, "argmax");
  spmd::note_op("argmax", y, {&x});
  return y;
}
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  Tensor y = arg_extreme(x, dim, keepdim, false, "argmin");
  spmd::note_op("argmin", y, {&x});
  return y;
}

namespace {
// var and std. std's gradient is var's gradient of grad / (2 std), taken as 0 where std == 0 (torch's
// std_backward): composing sqrt's backward would give inf * 0 = NaN there.
struct VarBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor x, mean, result;  // mean with keepdim; result (the std) saved only for std
  Shape dims;
  bool keepdim = false, is_std = false;
  double denom = 1;
  variable_list apply(variable_list&& grads) override {
    Tensor g = grads[0];
    if (is_std) {
      Tensor s = result.unpack(this);
      g = masked_fill(div(g, mul(s, 2.0)), eq(s, 0), 0);
    }
    Tensor xv = x.unpack(this);
    g = expand_back(g, xv.shape(), dims, keepdim);
    // The saved mean was computed under no-grad; create_graph needs it as a function of x.
    Tensor m = GradMode::is_enabled() ? weft::mean(xv, dims, true) : mean.unpack(this);
    return {mul(g, mul(sub(xv, m), 2.0 / denom))};
  }
  std::string name() const override { return is_std ? "StdBackward" : "VarBackward"; }
};

Tensor var_or_std(const Tensor& x, const Shape& dims, bool unbiased, bool keepdim, bool is_std, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(is_floating(x.dtype()), op, ": expected a floating point tensor but got ", x.dtype());
  Shape d = normalize_dims(dims, x.dim(), op);
  // max(0, n - correction), as in torch: an empty reduction is 0 / 0 = NaN, never -0.
  double denom = std::max(0.0, static_cast<double>(reduced_count(x.shape(), d)) - (unbiased ? 1.0 : 0.0));
  Tensor m, y;
  {
    NoGradGuard no_grad;  // two passes: the mean, then the squared deviations
    m = mean(x, d, true);
    Tensor dev = sub(x, m);
    y = div(sum(mul(dev, dev), d, keepdim), denom);
    if (is_std) y = sqrt(y);
  }
  return autograd::record<VarBackward>(y, [&](VarBackward& n) {
    n.save(n.x, x);
    n.save(n.mean, m);
    if (is_std) n.save(n.result, y, /*is_output=*/true);
    n.dims = d, n.keepdim = keepdim, n.denom = denom, n.is_std = is_std;
  }, x);
}
}  // namespace

Tensor var(const Tensor& x, const Shape& dims, bool unbiased, bool keepdim) {
  return var_or_std(x, dims, unbiased, keepdim, false, "var");
}

Tensor std(const Tensor& x, const Shape& dims, bool unbiased, bool keepdim) {
  return var_or_std(x, dims, unbiased, keepdim, true, "std");
}

namespace {
struct NormBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor x, y;
  Shape dims;
  bool keepdim = false;
  double p = 2;
  variable_list apply(variable_list&& grads) override {
    Tensor xv = x.unpack(this);
    Tensor g = expand_back(grads[0], xv.shape(), dims, keepdim);
    if (p == 0) return {zeros_like(xv)};
    if (p == 1) return {mul(g, sign(xv))};
    Tensor yv = expand_back(y.unpack(this), xv.shape(), dims, keepdim);
    if (std::isinf(p)) {
      // The extreme entries (ties share the gradient evenly; NaN entries count), as torch's norm_backward.
      Tensor ax = abs(xv);
      Tensor hit = kernels::cast(logical_or(eq(ax, yv), isnan(ax)), xv.dtype());
      Tensor share = expand_back(sum(hit, dims, true), xv.shape(), dims, true);
      return {mul(mul(g, sign(xv)), div(hit, share))};
    }
    // d ||x||_p / dx = sign(x) |x|^(p-1) / ||x||^(p-1); taken as 0 where the norm is 0.
    Tensor num = p == 2 ? xv : mul(sign(xv), pow(abs(xv), p - 1));
    if (p < 1) num = masked_fill(num, eq(xv, 0), 0);  // |x|^(p-1) is inf at 0: torch takes 0 there
    Tensor den = p == 2 ? yv : pow(yv, p - 1);
    Tensor d = masked_fill(div(num, den), eq(yv, 0), 0);
    return {mul(g, d)};
  }
  std::string name() const override { return "NormBackward"; }
};

Tensor norm_value(const Tensor& x, double p, const Shape& d, bool keepdim) {
  NoGradGuard no_grad;
  if (p == 2) return sqrt(sum(mul(x, x), d, keepdim));
  if (p == 1) return sum(abs(x), d, keepdim);
  if (p == 0) return kernels::cast(sum(ne(x, 0), d, keepdim), x.dtype());
  if (std::isinf(p)) return kernels::reduce(p > 0 ? ReduceOp::Max : ReduceOp::Min, abs(x), d, keepdim);
  return pow(sum(pow(abs(x), p), d, keepdim), 1.0 / p);
}
}  // namespace

Tensor norm(const Tensor& x, double p, const Shape& dims, bool keepdim) {
  detail::check_plain(x, "norm");
  WEFT_CHECK(is_floating(x.dtype()), "norm: expected a floating point tensor but got ", x.dtype());
  WEFT_CHECK(!std::isnan(p), "norm: p must be a number but got NaN");
  Shape d = normalize_dims(dims, x.dim(), "norm");
  if (std::isinf(p) || p < 0) {
    // torch gives 0 for every norm of an empty extent; max/min have no identity and 0^(1/p) is inf
    // for p < 0, so those are computed as p = 1 (the sum of nothing).
    bool empty = d.empty() ? x.numel() == 0 : std::any_of(d.begin(), d.end(), [&](int64_t k) { return x.size(k) == 0; });
    if (empty) p = 1;
  }
  Tensor y = norm_value(x, p, d, keepdim);
  return autograd::record<NormBackward>(y, [&](NormBackward& n) {
    n.save(n.x, x);
    n.save(n.y, y, true);
    n.dims = d, n.keepdim = keepdim, n.p = p;
  }, x);
}

Tensor norm(const Tensor& x, const std::string& p, const Shape& dims, bool keepdim) {
  WEFT_CHECK(p == "fro", "norm: p must be a number or \"fro\" but got \"", p, "\" (the nuclear norm is not supported)");
  return norm(x, 2.0, dims, keepdim);
}

namespace {
struct LogsumexpBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor x, y;  // y with keepdim
  Shape dims;
  bool keepdim = false;
  variable_list apply(variable_list&& grads) override {
    Tensor xv = x.unpack(this);
    Tensor g = expand_back(grads[0], xv.shape(), dims, keepdim);
    // y is saved with keepdim, so it is not quite this node's output: create_graph recomputes it
    // as a function of x instead of re-attaching it (Note [Saved tensors and create_graph]).
    Tensor yk = GradMode::is_enabled() ? logsumexp(xv, dims, true) : y.unpack(this);
    return {mul(g, exp(sub(xv, yk)))};
  }
  std::string name() const override { return "LogsumexpBackward"; }
};
}  // namespace

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
  detail::check_plain(x, "logsumexp");
  Tensor xf = is_floating(x.dtype()) ? x : kernels::cast(x, kFloat32);
  Shape d = normalize_dims(dims, x.dim(), "logsumexp");
  Tensor yk;
  {
    NoGradGuard no_grad;
    // Subtracting the max keeps exp finite; an infinite max (all -inf, or +inf) is replaced by 0
    // so that inf - inf never appears.
    Tensor m = xf.numel() == 0 ? zeros(kernels::reduced_shape(xf.shape(), d, true), xf.dtype())
                               : kernels::reduce(ReduceOp::Max, xf, d, true);
    m = masked_fill(m, eq(abs(m), INFINITY), 0);
    yk = add(log(sum(exp(sub(xf, m)), d, true)), m);
  }
  Tensor y = keepdim ? yk : reshaped(yk, kernels::reduced_shape(xf.shape(), d, false));
  return autograd::record<LogsumexpBackward>(y, [&](LogsumexpBackward& n) {
    n.save(n.x, xf);
    n.save(n.y, yk, /*is_output=*/true);  // yk is y (or y before the reshape): no cycle
    n.dims = d, n.keepdim = keepdim;
  }, x);
}

namespace {
Tensor logical(const Tensor& x, ReduceOp op, std::optional<int64_t> dim, bool keepdim, const char* name) {
  detail::check_plain(x, name);
  Tensor b = x.dtype() == kBool ? x : ne(x, 0);
  Shape d = dim && x.dim() > 0 ? Shape{wrap_dim(*dim, x.dim(), name)} : Shape{};
  Tensor y = kernels::reduce(op, b, d, dim ? keepdim : false);
  return x.dtype() == kUInt8 ? kernels::cast(y, kUInt8) : y;  // torch keeps uint8 (its old bool)
}
}  // namespace

Tensor all(const Tensor& x) { return logical(x, ReduceOp::All, std::nullopt, false, "all"); }
Tensor any(const Tensor& x) { return logical(x, ReduceOp::Any, std::nullopt, false, "any"); }
Tensor all(const Tensor& x, int64_t dim, bool keepdim) { return logical(x, ReduceOp::All, dim, keepdim, "all"); }
Tensor any(const Tensor& x, int64_t dim, bool keepdim) { return logical(x, ReduceOp::Any, dim, keepdim, "any"); }

bool equal(const Tensor& a, const Tensor& b) {
  detail::check_plain(a, "equal");
  detail::check_plain(b, "equal");
  if (a.shape() != b.shape()) return false;
  NoGradGuard no_grad;
  return all(eq(a, b)).item<bool>();
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  detail::check_plain(a, "allclose");
  detail::check_plain(b, "allclose");
  WEFT_CHECK(a.dtype() == b.dtype(), "allclose: expected both tensors to have the same dtype but got ", a.dtype(),
             " and ", b.dtype());
  broadcast_shapes(a.shape(), b.shape(), "allclose");  // both ways, as in torch; throws otherwise
  NoGradGuard no_grad;
  Tensor a64 = kernels::cast(a, kFloat64), b64 = kernels::cast(b, kFloat64);
  Tensor close = le(abs(sub(a64, b64)), add(mul(abs(b64), rtol), atol));
  close = kernels::binary(kernels::BinaryOp::Add, close, kernels::binary(kernels::BinaryOp::Eq, a64, b64));
  return all(close).item<bool>();  // equal infinities count as close; NaN never does
}

namespace {
struct SumToBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape in_shape;
  variable_list apply(variable_list&& grads) override {
    if (GradMode::is_enabled()) [[unlikely]] return {contiguous(expand(grads[0], in_shape))};  // create_graph
    Tensor out = kernels::make_empty(in_shape, grads[0].dtype());
    kernels::copy_into(out, grads[0]);  // broadcast back
    return {out};
  }
  std::string name() const override { return "SumToBackward"; }
};

}  // namespace

Tensor sum_to(const Tensor& x, const Shape& shape) {
  Tensor y = kernels::sum_to(x, shape);
  if (y.is_same(x)) return x;
  return autograd::record<SumToBackward>(std::move(y), [&](SumToBackward& n) { n.in_shape = x.shape(); }, x);
}

}  // namespace weft
