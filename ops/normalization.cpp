// normalization.cpp: layer_norm and rms_norm over trailing dims, forward and backward on fused kernels.
#include <limits>

#include "ops/normalization.h"
#include "ops/reduced_float.h"
#include "autograd/engine.h"
#include "autograd/node.h"
#include "ops/autocast.h"
#include "framework/factories.h"
#include "kernels/nn_kernels.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/reduce.h"
#include "ops/unary.h"

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

// The norm spelled in ops, for create_graph: (x - mean) / sqrt(var + eps) * weight + bias over the
// trailing dims (rms_norm: x / sqrt(mean(x^2) + eps) * weight).
Tensor norm_in_ops(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t dims, double eps,
                   bool subtract_mean) {
  Shape trailing;
  for (int64_t d = x.dim() - dims; d < x.dim(); ++d) trailing.push_back(d);
  Tensor centred = subtract_mean ? sub(x, mean(x, trailing, true)) : x;
  Tensor y = mul(centred, rsqrt(add(mean(mul(centred, centred), trailing, true), eps)));
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

// Shared by both norms: subtract_mean tells which one.
struct NormBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;  // through ops under create_graph
  autograd::SavedTensor x, weight;
  Tensor mean, rstd;
  Shape normalized_shape;
  int64_t n = 1;
  double eps = 0;
  bool subtract_mean = true, has_bias = false;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor()};
    if (GradMode::is_enabled()) [[unlikely]] return recorded(grads[0]);
    auto g = kernels::norm_backward(grads[0], x.unpack(this), mean, rstd, weight.unpack(this), n, subtract_mean,
                                    needs_input_grad(0), needs_input_grad(1), needs_input_grad(2));
    // The kernel returns flat (n) parameter gradients; give them normalized_shape.
    for (Tensor* p : {&g.dweight, &g.dbias})
      if (p->defined()) *p = kernels::make_alias(*p, normalized_shape, contiguous_strides(normalized_shape), 0);
    return {g.dx, g.dweight, g.dbias};
  }
  std::string name() const override { return subtract_mean ? "LayerNormBackward" : "RmsNormBackward"; }

  // create_graph (Note [create_graph] in autograd/engine.cpp): the fused kernel records nothing, so
  // the norm is recomputed in ops on recorded copies of its inputs and differentiated there, with
  // create_graph: the gradients are then functions of g, x and weight. The copies (clone) make
  // grad() stop at them, so no gradient leaks into x's own history.
  autograd::variable_list recorded(const Tensor& g) {
    Tensor xs = clone(x.unpack(this)), w = weight.unpack(this);
    Tensor ws = w.defined() ? clone(w) : Tensor();
    Tensor bs = has_bias ? zeros(normalized_shape, xs.dtype()).requires_grad_() : Tensor();  // y is b-affine: db is g summed
    Tensor y = norm_in_ops(xs, ws, bs, static_cast<int64_t>(normalized_shape.size()), eps, subtract_mean);
    autograd::variable_list wrt{xs}, out(3);
    if (ws.defined()) wrt.push_back(ws);
    if (bs.defined()) wrt.push_back(bs);
    autograd::variable_list got = autograd::grad({y}, wrt, {g}, /*retain_graph=*/true, /*allow_unused=*/true,
                                                 /*create_graph=*/true);
    out[0] = needs_input_grad(0) ? got[0] : Tensor();
    if (ws.defined() && needs_input_grad(1)) out[1] = got[1];
    if (bs.defined() && needs_input_grad(2)) out[2] = got.back();
    return out;
  }
};

Tensor norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps,
            bool subtract_mean) {
  const char* op = subtract_mean ? "layer_norm" : "rms_norm";
  if (detail::any_reduced_float({&x, &weight, &bias})) {
    const Tensor y = norm(detail::widened(x), normalized_shape, detail::widened(weight), detail::widened(bias), eps,
                          subtract_mean);
    return y.to(x.dtype());
  }
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
    n.eps = eps, n.has_bias = bias.defined();
  }, x, weight, bias);
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kLayerNorm, layer_norm, x, normalized_shape, weight, bias, eps);
  return norm(x, normalized_shape, weight, bias, eps, /*subtract_mean=*/true);
}

// eps defaults to the machine epsilon of x's dtype, as torch.nn.functional.rms_norm does.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kRmsNorm, rms_norm, x, normalized_shape, weight, eps);
  detail::check_plain(x, "rms_norm");
  double e = eps ? *eps
                 : (x.dtype() == kFloat64 ? std::numeric_limits<double>::epsilon()
                                          : static_cast<double>(std::numeric_limits<float>::epsilon()));
  return norm(x, normalized_shape, weight, Tensor(), e, /*subtract_mean=*/false);
}

}  // namespace weft
