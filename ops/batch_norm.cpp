// batch_norm.cpp: batch_norm on the fused kernels of kernels/batch_norm.h, with its backward;
// instance_norm and group_norm written with ops (and batch_norm), so their backward composes.
#include "ops/batch_norm.h"

#include <utility>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "kernels/batch_norm.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/reduced_float.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace weft {
namespace {

void check_channel_tensor(const Tensor& t, const Tensor& x, const char* what, const char* op) {
  if (!t.defined()) return;
  detail::check_plain(t, op);
  WEFT_CHECK(t.dim() == 1 && t.size(0) == x.size(1), op, ": expected ", what, " of shape [", x.size(1),
             "] (the input's channels) but got ", t.shape());
  WEFT_CHECK(t.dtype() == x.dtype(), op, ": expected ", what, " of dtype ", x.dtype(), " (the input's) but got ",
             t.dtype());
}

void check_input(const Tensor& x, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ", x.dtype());
  WEFT_CHECK(x.dim() >= 2, op, ": expected an input [N, C, ...] of at least 2 dims but got shape ", x.shape());
}

struct BatchNormBackward final : autograd::Node {
  autograd::SavedTensor x, weight;
  Tensor mean, invstd;
  bool training = true;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor()};
    auto g = kernels::batch_norm_backward(grads[0], x.unpack(this), weight.unpack(this), mean, invstd, training,
                                          needs_input_grad(0), needs_input_grad(1), needs_input_grad(2));
    return {g.dx, g.dweight, g.dbias};
  }
  std::string name() const override { return "BatchNormBackward"; }
};

// The per-channel shape [1, C, 1, ...] of an input of x's rank, for the affine of the composed norms.
Shape channel_shape(const Tensor& x) {
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

Tensor affine(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Tensor out = weight.defined() ? mul(y, reshape(weight, channel_shape(x))) : y;
  return bias.defined() ? add(out, reshape(bias, channel_shape(x))) : out;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  if (input.defined() && is_reduced_float(input.dtype())) {
    // bfloat16 / float16 input: computed in float32, with statistics and affine of the input's dtype
    // or float32 (PyTorch's mixed case); 16-bit running statistics are updated through float32 copies.
    for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
      WEFT_CHECK(!t->defined() || t->dtype() == input.dtype() || t->dtype() == kFloat32, op, ": expected the ",
                 "statistics and affine of a ", input.dtype(), " input to be ", input.dtype(), " or float32 but got ",
                 t->dtype());
    Tensor rm = detail::widened(running_mean), rv = detail::widened(running_var);
    Tensor y = batch_norm(detail::widened(input), rm, rv, detail::widened(weight), detail::widened(bias), training,
                          momentum, eps);
    if (training) {
      NoGradGuard no_grad;
      for (auto [running, updated] : {std::pair{running_mean, rm}, std::pair{running_var, rv}}) {
        if (!running.defined() || running.dtype() == updated.dtype()) continue;
        kernels::copy_into(running, updated);
        running.bump_version();
      }
    }
    return y.to(input.dtype());
  }
  check_input(input, op);
  check_channel_tensor(running_mean, input, "running_mean", op);
  check_channel_tensor(running_var, input, "running_var", op);
  check_channel_tensor(weight, input, "weight", op);
  check_channel_tensor(bias, input, "bias", op);
  WEFT_CHECK(running_mean.defined() == running_var.defined(), op,
             ": expected both running_mean and running_var or neither, but got only one");
  WEFT_CHECK(training || running_mean.defined(), op, ": evaluation (training=false) needs running_mean and "
             "running_var, but none were given");
  const int64_t count = input.numel() / std::max<int64_t>(input.size(1), 1);
  WEFT_CHECK(!training || count > 1, op, ": expected more than 1 value per channel when training, but got input ",
             input.shape());
  auto r = kernels::batch_norm_forward(input, weight, bias, running_mean, running_var, training, eps);
  if (training && running_mean.defined())
    kernels::batch_norm_update_running(running_mean, running_var, r.mean, r.var, momentum, count);
  return autograd::record<BatchNormBackward>(std::move(r.y), [&](BatchNormBackward& n) {
    n.save(n.x, input);
    n.save(n.weight, weight);
    n.mean = r.mean;
    n.invstd = r.invstd;
    n.training = training;
  }, input, weight, bias);
}

// PyTorch's way: the batch as one sample of N * C channels, through batch_norm; the running
// statistics repeated per sample going in and averaged over the samples coming out.
Tensor instance_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                     const Tensor& bias, bool use_input_stats, double momentum, double eps) {
  const char* op = "instance_norm";
  check_input(input, op);
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
    check_channel_tensor(*t, input, t == &weight ? "weight" : t == &bias ? "bias" : "a running statistic", op);
  WEFT_CHECK(running_mean.defined() == running_var.defined(), op,
             ": expected both running_mean and running_var or neither, but got only one");
  WEFT_CHECK(use_input_stats || running_mean.defined(), op, ": use_input_stats=false needs running_mean and "
             "running_var, but none were given");
  WEFT_CHECK(!use_input_stats || input.numel() == 0 || input.numel() / (input.size(0) * input.size(1)) > 1, op,
             ": expected more than 1 spatial element per instance when using the input's statistics, but got input ",
             input.shape());
  const int64_t n = input.size(0), c = input.size(1);
  Shape folded = input.shape();
  folded[0] = 1;
  folded[1] = n * c;
  auto repeated = [&](const Tensor& stat) {
    return stat.defined() ? kernels::contiguous_copy(expand(unsqueeze(stat, 0), {n, c})).view({n * c}) : Tensor();
  };
  Tensor rm = repeated(running_mean), rv = repeated(running_var);
  Tensor y = reshape(batch_norm(reshape(input, folded), rm, rv, Tensor(), Tensor(), use_input_stats, momentum, eps),
                     input.shape());
  if (use_input_stats && running_mean.defined()) {
    NoGradGuard no_grad;
    for (auto [running, folded_stat] : {std::pair{running_mean, rm}, std::pair{running_var, rv}}) {
      kernels::copy_into(running, mean(folded_stat.view({n, c}), {0}));
      running.bump_version();
    }
  }
  return affine(y, input, weight, bias);
}

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  check_input(input, op);
  check_channel_tensor(weight, input, "weight", op);
  check_channel_tensor(bias, input, "bias", op);
  WEFT_CHECK(num_groups > 0 && input.size(1) % num_groups == 0, op, ": expected num_groups (", num_groups,
             ") to be positive and to divide the channels (", input.size(1), ")");
  const int64_t n = input.size(0);
  Tensor x = reshape(input, {n, num_groups, n == 0 ? 0 : -1});
  Tensor centred = sub(x, mean(x, {2}, true));
  Tensor var_ = mean(mul(centred, centred), {2}, true);
  Tensor y = reshape(mul(centred, rsqrt(add(var_, eps))), input.shape());
  return affine(y, input, weight, bias);
}

}  // namespace weft
