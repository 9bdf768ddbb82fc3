// normalization.cpp: layer_norm and rms_norm over trailing dims, forward and backward on fused kernels.
#include <limits>

#include "ops/normalization.h"
#include "autograd/node.h"
#include "kernels/nn_kernels.h"
#include "kernels/toolkit.h"

namespace weft {
namespace {

// Checks that normalized_shape is x's trailing dims and that weight/bias (if given) have that
// shape and x's dtype; returns the number of elements normalised together.
int64_t check_norm_args(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                        const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ", x.dtype());
  WEFT_CHECK(!normalized_shape.empty(), op, ": normalized_shape must name at least one dim, but it is empty");
  auto rank = static_cast<int64_t>(normalized_shape.size());
  bool trailing = rank <= x.dim();
  for (int64_t i = 0; trailing && i < rank; ++i) trailing = x.size(x.dim() - rank + i) == normalized_shape[i];
  WEFT_CHECK(trailing, op, ": normalized_shape ", normalized_shape, " must equal the trailing dims of the input, ",
             "but the input has shape ", x.shape());
  for (const Tensor* param : {&weight, &bias}) {
    if (!param->defined()) continue;
    const char* what = param == &weight ? "weight" : "bias";
    detail::check_plain(*param, op);
    WEFT_CHECK(param->shape() == normalized_shape, op, ": expected ", what, " of shape ", normalized_shape,
               " (normalized_shape) but got ", param->shape());
    WEFT_CHECK(param->dtype() == x.dtype(), op, ": expected ", what, " of dtype ", x.dtype(),
               " (the input's) but got ", param->dtype());
  }
  return numel_of(normalized_shape);
}

// Shared by both norms: subtract_mean tells which one.
struct NormBackward final : autograd::Node {
  autograd::SavedTensor x, weight;
  Tensor mean, rstd;
  Shape normalized_shape;
  int64_t n = 1;
  bool subtract_mean = true;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor()};
    auto g = kernels::norm_backward(grads[0], x.unpack(this), mean, rstd, weight.unpack(this), n, subtract_mean,
                                    needs_input_grad(0), needs_input_grad(1), needs_input_grad(2));
    // The kernel returns flat (n) parameter gradients; give them normalized_shape.
    for (Tensor* p : {&g.dweight, &g.dbias})
      if (p->defined()) *p = kernels::make_alias(*p, normalized_shape, contiguous_strides(normalized_shape), 0);
    return {g.dx, g.dweight, g.dbias};
  }
  std::string name() const override { return subtract_mean ? "LayerNormBackward" : "RmsNormBackward"; }
};

Tensor norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps,
            bool subtract_mean) {
  const char* op = subtract_mean ? "layer_norm" : "rms_norm";
  int64_t count = check_norm_args(x, normalized_shape, weight, bias, op);
  auto r = kernels::norm_forward(x, count, weight, bias, eps, subtract_mean);
  return autograd::record<NormBackward>(std::move(r.y), [&](NormBackward& n) {
    n.save(n.x, x);
    n.save(n.weight, weight);
    n.mean = r.mean;
    n.rstd = r.rstd;
    n.n = count;
    n.normalized_shape = normalized_shape;
    n.subtract_mean = subtract_mean;
  }, x, weight, bias);
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  return norm(x, normalized_shape, weight, bias, eps, /*subtract_mean=*/true);
}

// eps defaults to the machine epsilon of x's dtype, as torch.nn.functional.rms_norm does.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  detail::check_plain(x, "rms_norm");
  double e = eps ? *eps
                 : (x.dtype() == kFloat64 ? std::numeric_limits<double>::epsilon()
                                          : static_cast<double>(std::numeric_limits<float>::epsilon()));
  return norm(x, normalized_shape, weight, Tensor(), e, /*subtract_mean=*/false);
}

}  // namespace weft
