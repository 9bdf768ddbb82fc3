// Elementwise unary ops: forward through kernels::unary, backward next to each op.
#include "ops/unary.h"

#include <cmath>

#include "autograd/node.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "kernels/elementwise.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::BinaryOp;
using kernels::UnaryOp;

// Float-only ops read integral and bool inputs as float32 (PyTorch's int-to-float promotion).
Tensor as_floating(const Tensor& x) { return is_floating(x.dtype()) ? x : kernels::cast(x, kFloat32); }

void check_not_bool(const Tensor& x, const char* op) {
  WEFT_CHECK(x.dtype() != kBool, op, ": not supported for bool tensors (got shape ", x.shape(), ", dtype bool)");
}

// The common shape of an op whose backward needs one saved tensor: the input or the output.
template <class NodeT>
Tensor record(const Tensor& x, const Tensor& y, const Tensor& saved, bool saved_is_output) {
  if (auto node = autograd::make_node<NodeT>(x)) {
    node->save(node->saved, saved, saved_is_output);
    autograd::set_history(y, node);
  }
  return y;
}

Tensor unary_op(UnaryOp op, const Tensor& x, const char* name, const kernels::UnaryParams& p = {}) {
  detail::check_plain(x, name);
  return kernels::unary(op, x, p);
}

Tensor float_unary_op(UnaryOp op, const Tensor& x, const char* name) {
  detail::check_plain(x, name);
  return kernels::unary(op, as_floating(x));
}

// Fused backward: grad * f'(saved), one pass (see kernels::BinaryOp's *Grad entries).
template <BinaryOp OP>
struct FusedBackward : autograd::Node {
  SavedTensor saved;
  const char* name_ = "";
  variable_list apply(variable_list&& grads) override {
    Tensor s = saved.unpack(this);
    return {kernels::binary(OP, kernels::cast(grads[0], s.dtype()), s)};
  }
  std::string name() const override { return name_; }
};

template <BinaryOp OP>
Tensor record_fused(const Tensor& x, const Tensor& y, const Tensor& saved, bool is_output, const char* name) {
  if (auto node = autograd::make_node<FusedBackward<OP>>(x)) {
    node->name_ = name;
    node->save(node->saved, saved, is_output);
    autograd::set_history(y, node);
  }
  return y;
}

struct NegBackward final : autograd::Node {
  variable_list apply(variable_list&& grads) override { return {neg(grads[0])}; }
  std::string name() const override { return "NegBackward"; }
};

#define WEFT_SAVED_NODE(NAME, FORMULA)                                             \
  struct NAME final : autograd::Node {                                             \
    SavedTensor saved;                                                             \
    variable_list apply(variable_list&& grads) override {                          \
      const Tensor& g = grads[0];                                                  \
      Tensor s = saved.unpack(this);                                               \
      return {FORMULA};                                                            \
    }                                                                              \
    std::string name() const override { return #NAME; }                            \
  };

WEFT_SAVED_NODE(AbsBackward, mul(g, sign(s)))                      // s = x
WEFT_SAVED_NODE(ExpBackward, mul(g, s))                            // s = y
WEFT_SAVED_NODE(LogBackward, div(g, s))                            // s = x
WEFT_SAVED_NODE(SqrtBackward, div(g, mul(s, 2.0)))                 // s = y
WEFT_SAVED_NODE(RsqrtBackward, mul(g, mul(pow(s, 3.0), -0.5)))     // s = y
WEFT_SAVED_NODE(SinBackward, mul(g, cos(s)))                       // s = x
WEFT_SAVED_NODE(CosBackward, neg(mul(g, sin(s))))                  // s = x
WEFT_SAVED_NODE(ReciprocalBackward, neg(mul(g, mul(s, s))))        // s = y
#undef WEFT_SAVED_NODE

}  // namespace

Tensor neg(const Tensor& x) {
  detail::check_plain(x, "neg");
  WEFT_CHECK(x.dtype() != kBool, "neg: negation, the `-` operator, on a bool tensor is not supported; "
             "use logical not instead");
  Tensor y = kernels::unary(UnaryOp::Neg, x);
  if (auto node = autograd::make_node<NegBackward>(x)) autograd::set_history(y, node);
  return y;
}

Tensor abs(const Tensor& x) {
  check_not_bool(x, "abs");
  Tensor y = unary_op(UnaryOp::Abs, x, "abs");
  return record<AbsBackward>(x, y, x, false);
}

Tensor exp(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Exp, x, "exp");
  return record<ExpBackward>(x, y, y, true);
}

Tensor log(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Log, x, "log");
  return record<LogBackward>(x, y, x, false);
}

Tensor sqrt(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Sqrt, x, "sqrt");
  return record<SqrtBackward>(x, y, y, true);
}

Tensor rsqrt(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Rsqrt, x, "rsqrt");
  return record<RsqrtBackward>(x, y, y, true);
}

Tensor sin(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Sin, x, "sin");
  return record<SinBackward>(x, y, x, false);
}

Tensor cos(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Cos, x, "cos");
  return record<CosBackward>(x, y, x, false);
}

Tensor tanh(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Tanh, x, "tanh");
  return record_fused<BinaryOp::TanhGrad>(x, y, y, true, "TanhBackward");
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Sigmoid, x, "sigmoid");
  return record_fused<BinaryOp::SigmoidGrad>(x, y, y, true, "SigmoidBackward");
}

Tensor relu(const Tensor& x) {
  check_not_bool(x, "relu");
  Tensor y = unary_op(UnaryOp::Relu, x, "relu");
  return record_fused<BinaryOp::ReluGrad>(x, y, y, true, "ReluBackward");
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  WEFT_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\" "
             "but got \"", approximate, "\"");
  bool tanh_form = approximate == "tanh";
  Tensor y = float_unary_op(tanh_form ? UnaryOp::GeluTanh : UnaryOp::Gelu, x, "gelu");
  if (tanh_form) return record_fused<BinaryOp::GeluTanhGrad>(x, y, x, false, "GeluBackward");
  return record_fused<BinaryOp::GeluGrad>(x, y, x, false, "GeluBackward");
}

Tensor silu(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Silu, x, "silu");
  return record_fused<BinaryOp::SiluGrad>(x, y, x, false, "SiluBackward");
}

Tensor reciprocal(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Reciprocal, x, "reciprocal");
  return record<ReciprocalBackward>(x, y, y, true);
}

namespace {
struct PowScalarBackward final : autograd::Node {
  SavedTensor x;
  double exponent = 1;
  variable_list apply(variable_list&& grads) override {
    Tensor base = x.unpack(this);
    if (exponent == 0) return {zeros_like(grads[0])};
    return {mul(grads[0], mul(pow(base, exponent - 1), exponent))};
  }
  std::string name() const override { return "PowBackward0"; }
};
}  // namespace

Tensor pow(const Tensor& x, Scalar exponent) {
  detail::check_plain(x, "pow");
  DType dt = promote_with_scalar(x.dtype(), exponent.is_floating());
  WEFT_CHECK(is_floating(dt) || exponent.to_int() >= 0, "pow: integers to negative integer powers are not "
             "allowed (tensor of dtype ", x.dtype(), ", exponent ", exponent.to_int(), ")");
  Tensor y = kernels::unary(UnaryOp::Pow, kernels::cast(x, dt), {.a = exponent.to_double()});
  if (auto node = autograd::make_node<PowScalarBackward>(x)) {
    node->save(node->x, x);
    node->exponent = exponent.to_double();
    autograd::set_history(y, node);
  }
  return y;
}

namespace {
struct ClampBackward final : autograd::Node {
  SavedTensor outside;  // bool: where x was clamped (or NaN), so the gradient is zero
  variable_list apply(variable_list&& grads) override {
    return {masked_fill(grads[0], outside.unpack(this), 0)};
  }
  std::string name() const override { return "ClampBackward"; }
};
}  // namespace

std::shared_ptr<autograd::Node> detail::clamp_node(const Tensor& x, const Tensor& values, std::optional<Scalar> min,
                                                   std::optional<Scalar> max) {
  auto node = autograd::make_node<ClampBackward>(x);
  if (!node) return nullptr;
  Tensor inside = ones(values.shape(), kBool);
  if (min) inside = kernels::binary(BinaryOp::Mul, inside, ge(values, *min));  // bool mul is "and"
  if (max) inside = kernels::binary(BinaryOp::Mul, inside, le(values, *max));
  node->save(node->outside, eq(inside, false));
  return node;
}

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  detail::check_plain(x, "clamp");
  check_not_bool(x, "clamp");
  WEFT_CHECK(min || max, "clamp: at least one of min and max must be given");
  bool floating_bound = (min && min->is_floating()) || (max && max->is_floating());
  DType dt = promote_with_scalar(x.dtype(), floating_bound);
  Tensor xc = kernels::cast(x, dt);
  kernels::UnaryParams p{.a = min ? min->to_double() : 0, .b = max ? max->to_double() : 0,
                         .has_a = min.has_value(), .has_b = max.has_value()};
  Tensor y = kernels::unary(UnaryOp::Clamp, xc, p);
  if (auto node = detail::clamp_node(x, xc, min, max)) autograd::set_history(y, node);
  return y;
}

namespace {
struct SignBackward final : autograd::Node {
  variable_list apply(variable_list&& grads) override { return {zeros_like(grads[0])}; }
  std::string name() const override { return "SignBackward"; }
};
}  // namespace

Tensor sign(const Tensor& x) {
  Tensor y = unary_op(UnaryOp::Sign, x, "sign");
  if (auto node = autograd::make_node<SignBackward>(x)) autograd::set_history(y, node);
  return y;
}

}  // namespace weft
