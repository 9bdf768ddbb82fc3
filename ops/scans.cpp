// cumsum, cumprod and logcumsumexp on the lane kernels (kernels/lanes.h), each backward beside it.
#include "ops/scans.h"

#include "autograd/node.h"
#include "kernels/elementwise.h"
#include "kernels/lanes.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/logical.h"
#include "ops/rearrange.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::Scan;

// bool and integers accumulate in int64 (and stay int64, as in torch); bfloat16 and float16 in
// float32 (torch's accumulate type), the running values rounded back to the input's dtype.
bool reduced_float(DType d) { return d == kBFloat16 || d == kFloat16; }
Tensor accumulating(const Tensor& x) {
  if (!is_floating(x.dtype())) return kernels::cast(x, kInt64);
  return reduced_float(x.dtype()) ? kernels::cast(x, kFloat32) : x;
}
Tensor in_float32_if_reduced(const Tensor& t) { return reduced_float(t.dtype()) ? kernels::cast(t, kFloat32) : t; }

// A 0-dim input is one lane of one element.
Tensor scan_op(Scan op, const Tensor& x, int64_t dim, const char* name, int64_t* wrapped) {
  detail::check_plain(x, name);
  *wrapped = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), name);
  Tensor in = accumulating(x);
  Tensor y = x.dim() == 0 ? kernels::contiguous_copy(in) : kernels::scan(op, in, *wrapped);
  return reduced_float(x.dtype()) ? kernels::cast(y, x.dtype()) : y;
}

// Reverse running sum along dim: the gradient of cumsum.
Tensor reverse_cumsum(const Tensor& g, int64_t dim) {
  return g.dim() == 0 ? g : kernels::scan(Scan::Sum, g, dim, /*reverse=*/true);
}

struct CumsumBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  int64_t dim = 0;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    if (GradMode::is_enabled() && g.dim() > 0) [[unlikely]]  // create_graph: the reversed scan in ops
      return {flip(cumsum(flip(g, {dim}), dim), {dim})};
    return {reverse_cumsum(g, dim)};
  }
  std::string name() const override { return "CumsumBackward"; }
};

struct CumprodBackward final : autograd::Node {
  SavedTensor x, y;
  int64_t dim = 0;
  variable_list apply(variable_list&& grads) override {
    Tensor xv = x.unpack(this);
    if (xv.dim() == 0) return {grads[0]};
    return {kernels::cumprod_backward(in_float32_if_reduced(grads[0]), in_float32_if_reduced(xv),
                                      in_float32_if_reduced(y.unpack(this)), dim)};
  }
  std::string name() const override { return "CumprodBackward"; }
};

// d y_k / d x_i = exp(x_i - y_k) for k >= i, so grad_i = sum_{k >= i} g_k exp(x_i - y_k). g may have
// either sign: its positive and negative parts are summed separately in log space (a reversed
// logcumsumexp of log|g_k| - y_k), so no exponent overflows.
struct LogcumsumexpBackward final : autograd::Node {
  SavedTensor x, y;
  int64_t dim = 0;
  variable_list apply(variable_list&& grads) override {
    Tensor xv = x.unpack(this), yv = y.unpack(this), g = grads[0];
    if (xv.dim() == 0) return {g};
    xv = in_float32_if_reduced(xv), yv = in_float32_if_reduced(yv), g = in_float32_if_reduced(g);
    auto part = [&](const Tensor& gp) {
      Tensor terms = sub(log(gp), yv);
      return exp(add(xv, kernels::scan(Scan::LogSumExp, terms, dim, /*reverse=*/true)));
    };
    return {sub(part(relu(g)), part(relu(neg(g))))};
  }
  std::string name() const override { return "LogcumsumexpBackward"; }
};

}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim) {
  int64_t d = 0;
  Tensor y = scan_op(Scan::Sum, x, dim, "cumsum", &d);
  return autograd::record<CumsumBackward>(std::move(y), [&](CumsumBackward& n) { n.dim = d; }, x);
}

Tensor cumprod(const Tensor& x, int64_t dim) {
  int64_t d = 0;
  Tensor y = scan_op(Scan::Prod, x, dim, "cumprod", &d);
  return autograd::record<CumprodBackward>(y, [&](CumprodBackward& n) {
    n.save(n.x, x), n.save(n.y, y, /*is_output=*/true), n.dim = d;
  }, x);
}

Tensor logcumsumexp(const Tensor& x, int64_t dim) {
  WEFT_CHECK(!x.defined() || is_floating(x.dtype()), "logcumsumexp: expected a floating point tensor but got ",
             x.dtype(), " of shape ", x.shape());
  int64_t d = 0;
  Tensor y = scan_op(Scan::LogSumExp, x, dim, "logcumsumexp", &d);
  return autograd::record<LogcumsumexpBackward>(y, [&](LogcumsumexpBackward& n) {
    n.save(n.x, x), n.save(n.y, y, /*is_output=*/true), n.dim = d;
  }, x);
}

}  // namespace weft
