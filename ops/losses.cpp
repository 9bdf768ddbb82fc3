// losses.cpp: cross_entropy (fused log-softmax + nll + label smoothing), nll_loss and mse_loss.
#include "ops/losses.h"
#include "ops/reduced_float.h"
#include "autograd/node.h"
#include "ops/autocast.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/nn_kernels.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/softmax.h"
#include "ops/unary.h"

namespace weft {
namespace {

enum class Reduction { None, Mean, Sum };

Reduction parse_reduction(const std::string& reduction, const char* op) {
  if (reduction == "none") return Reduction::None;
  if (reduction == "mean") return Reduction::Mean;
  if (reduction == "sum") return Reduction::Sum;
  WEFT_ERROR(op, ": reduction must be \"none\", \"mean\" or \"sum\" but got \"", reduction, "\"");
}

// Checks (C) with a 0-dim target, or (N, C, d...) with a target (N, d...); returns the class dim.
int64_t check_class_target(const Tensor& input, const Tensor& target, const char* op) {
  detail::check_plain(input, op);
  detail::check_plain(target, op);
  WEFT_CHECK(input.is_floating_point(), op, ": expected floating point input (float32 or float64) but got ",
             input.dtype());
  WEFT_CHECK(target.dtype() == kInt64, op, ": expected target of dtype int64 (class indices) but got ",
             target.dtype(), " of shape ", target.shape());
  WEFT_CHECK(input.dim() >= 1, op, ": expected input of shape (C), (N, C) or (N, C, d1, ...) but got a 0-dim tensor");
  Shape expected;
  for (int64_t d = 0; d < input.dim(); ++d)
    if (d != (input.dim() == 1 ? 0 : 1)) expected.push_back(input.size(d));
  WEFT_CHECK(target.shape() == expected, op, ": input of shape ", input.shape(), " expects a target of shape ",
             expected, " but got ", target.shape());
  WEFT_CHECK(input.size(input.dim() == 1 ? 0 : 1) > 0 || input.numel() == 0, op, ": no classes in input of shape ",
             input.shape());
  return input.dim() == 1 ? 0 : 1;
}

// The per-position losses viewed in the target's shape, or their sum / mean over counted targets.
Tensor reduce_losses(const Tensor& loss, const Shape& target_shape, Reduction reduction, int64_t count) {
  if (reduction == Reduction::None)
    return kernels::make_alias(loss, target_shape, contiguous_strides(target_shape), 0);
  double total = 0.0;
  for (double v : loss.to_vector<double>()) total += v;
  // Mean over non-ignored targets: 0/0 is NaN when every target is ignored, as in PyTorch.
  if (reduction == Reduction::Mean) total /= static_cast<double>(count);
  Tensor out = kernels::make_empty({}, loss.dtype());
  kernels::copy_into(out, tensor({total}, {}, dtype(kFloat64)));
  return out;
}

// The scale that reduction applies to every position's gradient.
double reduction_scale(Reduction reduction, int64_t count) {
  return reduction == Reduction::Mean ? 1.0 / static_cast<double>(count) : 1.0;
}

// create_graph (Note [create_graph] in autograd/engine.cpp): the fused backward kernels record
// nothing, so the same gradients are spelled in ops. `q` is the target distribution over the class
// dim (the one-hot target, smoothed), `weight` the incoming gradient per position times the
// reduction's scale, zero where the target is ignored; both broadcast against the input.
struct ClassGradientParts {
  Tensor q, weight;
};
ClassGradientParts class_gradient_parts(const Tensor& g, const Tensor& target, const Shape& input_shape, DType dt,
                                        int64_t class_dim, int64_t ignore_index, double label_smoothing,
                                        double scale, bool per_position) {
  const int64_t classes = input_shape[class_dim];
  Shape class_shape(input_shape.size(), 1);
  class_shape[class_dim] = classes;
  Tensor t = unsqueeze(target, class_dim);
  Tensor q = eq(t, reshape(arange(classes), class_shape)).to(dt);
  if (label_smoothing > 0) q = add(mul(q, 1.0 - label_smoothing), label_smoothing / static_cast<double>(classes));
  Tensor valid = ne(t, ignore_index).to(dt);
  Tensor w = per_position ? unsqueeze(g, class_dim) : g;
  return {q, mul(mul(valid, w), scale)};
}

struct CrossEntropyBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;  // through ops under create_graph
  autograd::SavedTensor logits, target;
  int64_t class_dim = 1, ignore_index = -100, count = 0;
  double label_smoothing = 0.0;
  Reduction reduction = Reduction::Mean;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    if (GradMode::is_enabled()) [[unlikely]] {  // create_graph: (softmax(x) - q) * weight, recorded
      Tensor x = logits.unpack(this);
      auto [q, weight] = class_gradient_parts(grads[0], target.unpack(this), x.shape(), x.dtype(), class_dim,
                                              ignore_index, label_smoothing, reduction_scale(reduction, count),
                                              reduction == Reduction::None);
      return {mul(sub(softmax(x, class_dim), q), weight)};
    }
    return {kernels::cross_entropy_backward(grads[0], reduction_scale(reduction, count), logits.unpack(this),
                                            target.unpack(this), class_dim, ignore_index, label_smoothing)};
  }
  std::string name() const override { return "CrossEntropyBackward"; }
};
}  // namespace

namespace {
// A class weight must be (C) of the input's dtype.
void check_class_weight(const Tensor& weight, const Tensor& input, int64_t class_dim, const char* op) {
  if (!weight.defined()) return;
  detail::check_plain(weight, op);
  const int64_t classes = input.dim() == 0 ? 0 : input.size(class_dim);
  WEFT_CHECK(weight.dim() == 1 && weight.size(0) == classes, op, ": expected a weight of shape [", classes,
             "] (one per class) but got ", weight.shape());
  WEFT_CHECK(weight.dtype() == input.dtype(), op, ": expected a weight of the input's dtype ", input.dtype(),
             " but got ", weight.dtype());
}

// Class-index targets with a class weight, composed of ops (their backward is the ops'), as PyTorch's:
// -w[t] log_probs[t] per counted position, the mean divided by the summed w[t]; label smoothing mixes
// in eps / C of -sum_c w_c log_probs_c, under the same divisor. The fused kernels serve the unweighted
// case.
Tensor weighted_class_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight, int64_t class_dim,
                           int64_t ignore_index, double label_smoothing, Reduction reduction, const char* op) {
  const int64_t classes = log_probs.size(class_dim);
  for (int64_t t : target.contiguous().to_vector<int64_t>())
    WEFT_CHECK(t == ignore_index || (t >= 0 && t < classes), op, ": target ", t, " is out of bounds for ", classes,
               " classes");
  const DType dt = log_probs.dtype();
  Shape class_shape(static_cast<size_t>(log_probs.dim()), 1);
  class_shape[class_dim] = classes;
  Tensor valid = ne(target, ignore_index).to(dt);
  Tensor q = mul(eq(unsqueeze(target, class_dim), reshape(arange(classes), class_shape)).to(dt),
                 unsqueeze(valid, class_dim));
  Tensor wc = reshape(weight, class_shape);
  Tensor loss = neg(sum(mul(mul(q, wc), log_probs), Shape{class_dim}));
  if (label_smoothing > 0) {
    Tensor smooth = mul(neg(sum(mul(wc, log_probs), Shape{class_dim})), valid);
    loss = add(mul(loss, 1.0 - label_smoothing), mul(smooth, label_smoothing / static_cast<double>(classes)));
  }
  if (reduction == Reduction::None) return loss;
  if (reduction == Reduction::Sum) return sum(loss);
  return div(sum(loss), sum(mul(q, wc)));  // 0/0 = NaN when every target is ignored, as in PyTorch
}

// Probability targets (a floating target of the input's shape): -sum_c target_c * log_softmax(x)_c per
// position, composed of differentiable ops so that the target gets a gradient too, as in torch.
// Label smoothing mixes the target with the uniform distribution; ignore_index does not apply.
Tensor cross_entropy_probabilities(const Tensor& logits, const Tensor& target, Reduction reduction,
                                   double label_smoothing, const Tensor& weight) {
  detail::check_plain(logits, "cross_entropy");
  WEFT_CHECK(logits.is_floating_point() && logits.dim() >= 1, "cross_entropy: expected floating point input of "
             "shape (C), (N, C) or (N, C, d1, ...) but got dtype ", logits.dtype(), " and shape ", logits.shape());
  WEFT_CHECK(target.shape() == logits.shape(), "cross_entropy: a floating target (", target.dtype(), ") holds class "
             "probabilities and must have the input's shape ", logits.shape(), " but got ", target.shape(),
             " (class indices are int64)");
  int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  Tensor t = target.dtype() == logits.dtype() ? target : target.to(logits.dtype());
  if (label_smoothing > 0) {
    double classes = static_cast<double>(logits.size(class_dim));
    t = add(mul(t, 1.0 - label_smoothing), label_smoothing / classes);
  }
  check_class_weight(weight, logits, class_dim, "cross_entropy");
  if (weight.defined()) {
    Shape class_shape(static_cast<size_t>(logits.dim()), 1);
    class_shape[class_dim] = logits.size(class_dim);
    t = mul(t, reshape(weight, class_shape));  // the mean stays over positions, as in PyTorch
  }
  Tensor loss = neg(sum(mul(t, log_softmax(logits, class_dim)), Shape{class_dim}));
  if (reduction == Reduction::Sum) return sum(loss);
  if (reduction == Reduction::Mean) return mean(loss);
  return loss;
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction_name,
                     int64_t ignore_index, double label_smoothing, const Tensor& weight) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kCrossEntropy, cross_entropy, logits, target, reduction_name, ignore_index,
                          label_smoothing, weight);
  if (detail::any_reduced_float({&logits, &target, &weight}))
    return cross_entropy(detail::widened(logits), detail::widened(target), reduction_name, ignore_index,
                         label_smoothing, detail::widened(weight))
        .to(logits.dtype());
  Reduction reduction = parse_reduction(reduction_name, "cross_entropy");
  WEFT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
             "cross_entropy: label_smoothing must be in [0, 1] but got ", label_smoothing);
  if (target.defined() && target.is_floating_point())
    return cross_entropy_probabilities(logits, target, reduction, label_smoothing, weight);
  int64_t class_dim = check_class_target(logits, target, "cross_entropy");
  check_class_weight(weight, logits, class_dim, "cross_entropy");
  if (weight.defined()) {
    Tensor y = weighted_class_loss(log_softmax(logits, class_dim), target, weight, class_dim, ignore_index,
                                   label_smoothing, reduction, "cross_entropy");
    spmd::note_op("cross_entropy", y, {&y, &target});
    return y;
  }
  auto fwd = kernels::cross_entropy_forward(logits, target, class_dim, ignore_index, label_smoothing, "cross_entropy");
  Tensor out = reduce_losses(fwd.loss, target.shape(), reduction, fwd.count);
  Tensor y = autograd::record<CrossEntropyBackward>(std::move(out), [&](CrossEntropyBackward& n) {
    n.save(n.logits, logits);
    n.save(n.target, target);
    n.class_dim = class_dim;
    n.ignore_index = ignore_index;
    n.count = fwd.count;
    n.label_smoothing = label_smoothing;
    n.reduction = reduction;
  }, logits);
  spmd::note_op("cross_entropy", y, {&y, &target});  // per-rank targets make a per-rank loss
  return y;
}

namespace {
struct NllLossBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;  // through ops under create_graph
  autograd::SavedTensor target;
  Shape input_shape;
  DType input_dtype = kFloat32;
  int64_t class_dim = 1, ignore_index = -100, count = 0;
  Reduction reduction = Reduction::Mean;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    if (GradMode::is_enabled()) [[unlikely]] {  // create_graph: -q * weight, recorded (linear in the gradient)
      auto [q, weight] = class_gradient_parts(grads[0], target.unpack(this), input_shape, input_dtype, class_dim,
                                              ignore_index, 0.0, reduction_scale(reduction, count),
                                              reduction == Reduction::None);
      return {neg(mul(q, weight))};
    }
    return {kernels::nll_loss_backward(grads[0], reduction_scale(reduction, count), input_shape, input_dtype,
                                       target.unpack(this), class_dim, ignore_index)};
  }
  std::string name() const override { return "NllLossBackward"; }
};
}  // namespace

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const std::string& reduction_name,
                int64_t ignore_index, const Tensor& weight) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kNllLoss, nll_loss, log_probs, target, reduction_name, ignore_index, weight);
  if (detail::any_reduced_float({&log_probs, &weight}))  // computed in float32, as cross_entropy
    return nll_loss(detail::widened(log_probs), target, reduction_name, ignore_index, detail::widened(weight))
        .to(log_probs.dtype());
  Reduction reduction = parse_reduction(reduction_name, "nll_loss");
  int64_t class_dim = check_class_target(log_probs, target, "nll_loss");
  check_class_weight(weight, log_probs, class_dim, "nll_loss");
  if (weight.defined()) {
    Tensor y = weighted_class_loss(log_probs, target, weight, class_dim, ignore_index, 0.0, reduction, "nll_loss");
    spmd::note_op("nll_loss", y, {&y, &target});
    return y;
  }
  auto fwd = kernels::nll_loss_forward(log_probs, target, class_dim, ignore_index, "nll_loss");
  Tensor out = reduce_losses(fwd.loss, target.shape(), reduction, fwd.count);
  Tensor y = autograd::record<NllLossBackward>(std::move(out), [&](NllLossBackward& n) {
    n.save(n.target, target);
    n.input_shape = log_probs.shape();
    n.input_dtype = log_probs.dtype();
    n.class_dim = class_dim;
    n.ignore_index = ignore_index;
    n.count = fwd.count;
    n.reduction = reduction;
  }, log_probs);
  spmd::note_op("nll_loss", y, {&y, &target});  // per-rank targets make a per-rank loss
  return y;
}

namespace {

// sum((x - t)^2) over dense x and t of one dtype, accumulated in double.
template <class T>
double sum_squared_diff(const T* x, const T* t, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(x[i]) - static_cast<double>(t[i]);
    s += d * d;
  }
  return s;
}

// The fused case: one dtype, one shape, both contiguous, a reduced loss.
bool mse_fusable(const Tensor& input, const Tensor& target, Reduction reduction) {
  return reduction != Reduction::None && input.dtype() == target.dtype() && input.shape() == target.shape() &&
         input.is_contiguous() && target.is_contiguous();
}

// d/dx of scale * sum((x - t)^2) is 2 scale (x - t) g, one pass (kernels::BinaryOp::ScaledSub); the
// target's gradient is its negative. Replaces sub, mul, mean and their three backward passes.
struct MseLossBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;  // through ops under create_graph
  autograd::SavedTensor input, target;
  double scale = 1.0;  // 1 / numel for the mean
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor(), Tensor()};
    Tensor x = input.unpack(this), t = target.unpack(this);
    if (GradMode::is_enabled()) [[unlikely]] {  // create_graph: 2 scale (x - t) g, recorded
      Tensor gx = mul(mul(sub(x, t), 2.0 * scale), grads[0]);
      return {needs_input_grad(0) ? gx : Tensor(), needs_input_grad(1) ? neg(gx) : Tensor()};
    }
    double g = grads[0].item<double>();
    Tensor gx, gt;
    if (needs_input_grad(0)) gx = kernels::binary(kernels::BinaryOp::ScaledSub, x, t, 2.0 * scale * g);
    if (needs_input_grad(1)) gt = kernels::binary(kernels::BinaryOp::ScaledSub, t, x, 2.0 * scale * g);
    return {gx, gt};
  }
  std::string name() const override { return "MseLossBackward"; }
};
}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction_name) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kMseLoss, mse_loss, input, target, reduction_name);
  if (detail::any_reduced_float({&input, &target})) {  // computed in float32, rounded to the promoted dtype
    const DType out = promote_types(input.dtype(), target.dtype());
    return mse_loss(detail::widened(input), detail::widened(target), reduction_name).to(out);
  }
  Reduction reduction = parse_reduction(reduction_name, "mse_loss");
  detail::check_plain(input, "mse_loss");
  detail::check_plain(target, "mse_loss");
  WEFT_CHECK(input.is_floating_point() && target.is_floating_point(),
             "mse_loss: expected floating point input and target but got ", input.dtype(), " and ", target.dtype());
  broadcast_shapes(input.shape(), target.shape(), "mse_loss");  // throws naming mse_loss
  if (!mse_fusable(input, target, reduction)) {
    // Composed from ops, so its backward is theirs: 2 (input - target) scaled by the reduction.
    Tensor diff = sub(input, target);
    Tensor sq = mul(diff, diff);
    if (reduction == Reduction::None) return sq;
    return reduction == Reduction::Mean ? mean(sq) : sum(sq);
  }
  const int64_t n = input.numel();
  double total = visit_floating(input.dtype(), "mse_loss", [&](auto tag) {
    using T = decltype(tag);
    return sum_squared_diff(static_cast<const T*>(input.raw_data()), static_cast<const T*>(target.raw_data()), n);
  });
  // Mean of nothing is NaN (0/0), as in PyTorch.
  double scale = reduction == Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  Tensor out = kernels::make_empty({}, input.dtype());
  kernels::copy_into(out, tensor({total * scale}, {}, dtype(kFloat64)));
  return autograd::record<MseLossBackward>(std::move(out), [&](MseLossBackward& n) {
    n.save(n.input, input);
    n.save(n.target, target);
    n.scale = scale;
  }, input, target);
}

}  // namespace weft
