// Elementwise unary ops: forward through kernels::unary, backward next to each op.
#include "ops/unary.h"

#include <cmath>
#include <limits>

#include "autograd/node.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "ops/logical.h"
#include "kernels/elementwise.h"
#include "kernels/toolkit.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::BinaryOp;
using kernels::UnaryOp;

// Float-only ops read integral and bool inputs as float32 (PyTorch's int-to-float promotion).
Tensor as_floating(const Tensor& x) { return is_floating(x.dtype()) ? x : kernels::cast(x, kFloat32); }

// gelu and silu, unlike the other float ops, take no integral input (torch has no kernel for one).
void check_floating(const Tensor& x, const char* op) {
  WEFT_CHECK(is_floating(x.dtype()), op, ": expected a floating tensor but got shape ", x.shape(), ", dtype ",
             dtype_name(x.dtype()));
}

void check_not_bool(const Tensor& x, const char* op) {
  WEFT_CHECK(x.dtype() != kBool, op, ": not supported for bool tensors (got shape ", x.shape(), ", dtype bool)");
}

Tensor unary_op(UnaryOp op, const Tensor& x, const char* name, const kernels::UnaryParams& p = {}) {
  detail::check_plain(x, name);
  return kernels::unary(op, x, p);
}

Tensor float_unary_op(UnaryOp op, const Tensor& x, const char* name) {
  detail::check_plain(x, name);
  return kernels::unary(op, as_floating(x));
}

// The backward of a unary op whose gradient is formula(g, s) for one saved tensor s, the op's input
// or its output: the ops differ only in the formula and the name.
struct SavedBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;  // every formula is ops under grad mode
  using Formula = Tensor (*)(const Tensor& g, const Tensor& s);
  SavedTensor saved;
  Formula formula = nullptr;
  const char* name_ = "";
  variable_list apply(variable_list&& grads) override { return {formula(grads[0], saved.unpack(this))}; }
  std::string name() const override { return name_; }
};

// record<SavedBackward>'s init: saves `s` (is_output when it is the op's result).
auto saving(const char* name, const Tensor& s, bool is_output, SavedBackward::Formula formula) {
  return [name, &s, is_output, formula](SavedBackward& n) {
    n.name_ = name;
    n.formula = formula;
    n.save(n.saved, s, is_output);
  };
}

// A fused formula: grad * f'(s) in one pass (see kernels::BinaryOp's *Grad entries). Under grad
// mode (a backward with create_graph) the same product spelled in ops, `derivative(s)` being f'
// (Note [create_graph] in autograd/engine.cpp): it records, so it differentiates again.
template <BinaryOp OP, Tensor (*derivative)(const Tensor&)>
Tensor fused(const Tensor& g, const Tensor& s) {
  if (GradMode::is_enabled()) [[unlikely]] return mul(g, derivative(s));
  return kernels::binary(OP, kernels::cast(g, s.dtype()), s);
}

// f'(s) of the fused formulas, in ops. s is y for tanh, sigmoid and relu; x for gelu and silu.
Tensor tanh_derivative(const Tensor& y) { return 1.0 - mul(y, y); }
Tensor sigmoid_derivative(const Tensor& y) { return mul(y, 1.0 - y); }
Tensor relu_derivative(const Tensor& y) { return gt(y, 0).to(y.dtype()); }
Tensor gelu_derivative(const Tensor& x) {  // Phi(x) + x phi(x)
  constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;
  Tensor cdf = mul(add(erf(mul(x, kInvSqrt2)), 1.0), 0.5);
  return add(cdf, mul(x, mul(exp(mul(mul(x, x), -0.5)), kInvSqrt2Pi)));
}
Tensor gelu_tanh_derivative(const Tensor& x) {  // y = x (1 + tanh(u)) / 2, u = k (x + c x^3)
  constexpr double kSqrt2OverPi = 0.79788456080286535588, kC = 0.044715;
  Tensor x2 = mul(x, x);
  Tensor t = tanh(mul(mul(x, add(mul(x2, kC), 1.0)), kSqrt2OverPi));
  Tensor du = mul(add(mul(x2, 3.0 * kC), 1.0), kSqrt2OverPi);
  return add(mul(add(t, 1.0), 0.5), mul(mul(mul(x, 1.0 - mul(t, t)), du), 0.5));
}
Tensor silu_derivative(const Tensor& x) {  // sigma(x) (1 + x (1 - sigma(x)))
  Tensor sg = sigmoid(x);
  return mul(sg, add(mul(x, 1.0 - sg), 1.0));
}

struct NegBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  variable_list apply(variable_list&& grads) override { return {neg(grads[0])}; }
  std::string name() const override { return "NegBackward"; }
};

}  // namespace

Tensor neg(const Tensor& x) {
  detail::check_plain(x, "neg");
  WEFT_CHECK(x.dtype() != kBool, "neg: negation, the `-` operator, on a bool tensor is not supported; "
             "use logical not instead");
  Tensor y = kernels::unary(UnaryOp::Neg, x);
  return autograd::record<NegBackward>(std::move(y), x);
}

Tensor abs(const Tensor& x) {
  check_not_bool(x, "abs");
  Tensor y = unary_op(UnaryOp::Abs, x, "abs");
  return autograd::record<SavedBackward>(y, saving("AbsBackward", x, false, [](const Tensor& g, const Tensor& s) {
    return mul(g, sign(s));  // s = x
  }), x);
}

Tensor exp(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Exp, x, "exp");
  return autograd::record<SavedBackward>(y, saving("ExpBackward", y, true, [](const Tensor& g, const Tensor& s) {
    return mul(g, s);  // s = y
  }), x);
}

Tensor log(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Log, x, "log");
  return autograd::record<SavedBackward>(y, saving("LogBackward", x, false, [](const Tensor& g, const Tensor& s) {
    return div(g, s);  // s = x
  }), x);
}

Tensor sqrt(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Sqrt, x, "sqrt");
  return autograd::record<SavedBackward>(y, saving("SqrtBackward", y, true, [](const Tensor& g, const Tensor& s) {
    return div(g, mul(s, 2.0));  // s = y
  }), x);
}

Tensor rsqrt(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Rsqrt, x, "rsqrt");
  return autograd::record<SavedBackward>(y, saving("RsqrtBackward", y, true, [](const Tensor& g, const Tensor& s) {
    return mul(g, mul(pow(s, 3.0), -0.5));  // s = y
  }), x);
}

Tensor sin(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Sin, x, "sin");
  return autograd::record<SavedBackward>(y, saving("SinBackward", x, false, [](const Tensor& g, const Tensor& s) {
    return mul(g, cos(s));  // s = x
  }), x);
}

Tensor cos(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Cos, x, "cos");
  return autograd::record<SavedBackward>(y, saving("CosBackward", x, false, [](const Tensor& g, const Tensor& s) {
    return neg(mul(g, sin(s)));  // s = x
  }), x);
}

Tensor tanh(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Tanh, x, "tanh");
  return autograd::record<SavedBackward>(y, saving("TanhBackward", y, true, fused<BinaryOp::TanhGrad, tanh_derivative>), x);
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Sigmoid, x, "sigmoid");
  return autograd::record<SavedBackward>(y, saving("SigmoidBackward", y, true, fused<BinaryOp::SigmoidGrad, sigmoid_derivative>), x);
}

Tensor relu(const Tensor& x) {
  check_not_bool(x, "relu");
  Tensor y = unary_op(UnaryOp::Relu, x, "relu");
  return autograd::record<SavedBackward>(y, saving("ReluBackward", y, true, fused<BinaryOp::ReluGrad, relu_derivative>), x);
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  WEFT_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\" "
             "but got \"", approximate, "\"");
  bool tanh_form = approximate == "tanh";
  check_floating(x, "gelu");
  Tensor y = float_unary_op(tanh_form ? UnaryOp::GeluTanh : UnaryOp::Gelu, x, "gelu");
  SavedBackward::Formula formula = tanh_form ? fused<BinaryOp::GeluTanhGrad, gelu_tanh_derivative>
                                                 : fused<BinaryOp::GeluGrad, gelu_derivative>;
  return autograd::record<SavedBackward>(y, saving("GeluBackward", x, false, formula), x);
}

Tensor silu(const Tensor& x) {
  check_floating(x, "silu");
  Tensor y = float_unary_op(UnaryOp::Silu, x, "silu");
  return autograd::record<SavedBackward>(y, saving("SiluBackward", x, false, fused<BinaryOp::SiluGrad, silu_derivative>), x);
}

Tensor reciprocal(const Tensor& x) {
  Tensor y = float_unary_op(UnaryOp::Reciprocal, x, "reciprocal");
  auto formula = [](const Tensor& g, const Tensor& s) { return neg(mul(g, mul(s, s))); };  // s = y
  return autograd::record<SavedBackward>(y, saving("ReciprocalBackward", y, true, formula), x);
}

namespace {
struct ClampBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
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

namespace {
// A clamp bound as the kernel of dtype `dt` reads it: one the dtype cannot hold (300 for int8, 1e300
// for float32) raises, as in torch, rather than converting with undefined behaviour; uint8 takes
// -255..-1 too, wrapping (-1 is 255). See detail::checked_scalar.
double bound_in(Scalar bound, DType dt) { return detail::checked_scalar(bound, dt, "clamp").to_double(); }
}  // namespace

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  detail::check_plain(x, "clamp");
  WEFT_CHECK(min || max, "clamp: at least one of min and max must be given");
  bool floating_bound = (min && min->is_floating()) || (max && max->is_floating());
  bool int_bound = (min && !min->is_floating() && !min->is_bool()) || (max && !max->is_floating() && !max->is_bool());
  // A bool tensor goes up to the bounds' category (int64 or float32), as in torch; bool bounds on
  // a bool tensor have no kernel there.
  DType dt = x.dtype() == kBool && !floating_bound && !int_bound ? kBool
                                                                 : promote_with_scalar(x.dtype(), floating_bound);
  WEFT_CHECK(dt != kBool, "clamp: not supported for bool tensors with bool bounds (got shape ", x.shape(), ")");
  Tensor xc = kernels::cast(x, dt);
  kernels::UnaryParams p{.a = min ? bound_in(*min, dt) : 0, .b = max ? bound_in(*max, dt) : 0,
                         .has_a = min.has_value(), .has_b = max.has_value()};
  Tensor y;
  if (dt == kInt64) {  // int64 bounds past 2^53 are not exact as the kernel's double parameters
    y = xc;
    if (min) y = kernels::binary(BinaryOp::Max, y, full({}, *min, kInt64));
    if (max) y = kernels::binary(BinaryOp::Min, y, full({}, *max, kInt64));
  } else {
    y = kernels::unary(UnaryOp::Clamp, xc, p);
  }
  auto node = detail::clamp_node(x, xc, min, max);
  spmd::note_op("clamp", y, {&x});
  if (node) autograd::set_history(y, std::move(node));
  return y;
}

namespace {
// The zero gradient of the piecewise-constant ops (sign and rounding).
struct ZeroBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  const char* name_ = "";
  variable_list apply(variable_list&& grads) override { return {zeros_like(grads[0])}; }
  std::string name() const override { return name_; }
};

Tensor zero_gradient(Tensor y, const Tensor& x, const char* node_name) {
  return autograd::record<ZeroBackward>(std::move(y), [&](ZeroBackward& n) { n.name_ = node_name; }, x);
}
}  // namespace

Tensor sign(const Tensor& x) {
  return zero_gradient(unary_op(UnaryOp::Sign, x, "sign"), x, "SignBackward");
}

// --- the rest of the elementwise math: each gradient spelled in differentiable ops ---

namespace {
constexpr double kTwoOverSqrtPi = 1.12837916709551257390;
constexpr double kSqrtPiOverTwo = 0.88622692545275801365;
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kLn10 = 2.30258509299404568402;

// A float op whose gradient is formula(g, s), s being the op's input x (or its output y when
// `save_output`).
Tensor float_op(UnaryOp op, const Tensor& x, const char* name, const char* node_name, bool save_output,
                SavedBackward::Formula formula) {
  Tensor y = float_unary_op(op, x, name);
  return autograd::record<SavedBackward>(y, saving(node_name, save_output ? y : x, save_output, formula), x);
}

// The rounding family: integral inputs pass through unchanged (a copy, as torch returns), bool is refused.
Tensor rounding_op(UnaryOp op, const Tensor& x, const char* name, const char* node_name) {
  check_not_bool(x, name);
  return zero_gradient(unary_op(op, x, name), x, node_name);
}
}  // namespace

Tensor erf(const Tensor& x) {
  return float_op(UnaryOp::Erf, x, "erf", "ErfBackward", false, [](const Tensor& g, const Tensor& s) {
    return mul(g, mul(exp(neg(mul(s, s))), kTwoOverSqrtPi));
  });
}

Tensor erfinv(const Tensor& x) {
  return float_op(UnaryOp::Erfinv, x, "erfinv", "ErfinvBackward", true, [](const Tensor& g, const Tensor& s) {
    return mul(g, mul(exp(mul(s, s)), kSqrtPiOverTwo));  // s = y
  });
}

Tensor log1p(const Tensor& x) {
  return float_op(UnaryOp::Log1p, x, "log1p", "Log1pBackward", false, [](const Tensor& g, const Tensor& s) {
    return div(g, add(s, 1.0));
  });
}

Tensor expm1(const Tensor& x) {
  return float_op(UnaryOp::Expm1, x, "expm1", "Expm1Backward", true, [](const Tensor& g, const Tensor& s) {
    return mul(g, add(s, 1.0));  // s = y
  });
}

Tensor log2(const Tensor& x) {
  return float_op(UnaryOp::Log2, x, "log2", "Log2Backward", false, [](const Tensor& g, const Tensor& s) {
    return div(g, mul(s, kLn2));
  });
}

Tensor log10(const Tensor& x) {
  return float_op(UnaryOp::Log10, x, "log10", "Log10Backward", false, [](const Tensor& g, const Tensor& s) {
    return div(g, mul(s, kLn10));
  });
}

Tensor sinh(const Tensor& x) {
  return float_op(UnaryOp::Sinh, x, "sinh", "SinhBackward", false,
                  [](const Tensor& g, const Tensor& s) { return mul(g, cosh(s)); });
}

Tensor cosh(const Tensor& x) {
  return float_op(UnaryOp::Cosh, x, "cosh", "CoshBackward", false,
                  [](const Tensor& g, const Tensor& s) { return mul(g, sinh(s)); });
}

Tensor asin(const Tensor& x) {
  return float_op(UnaryOp::Asin, x, "asin", "AsinBackward", false, [](const Tensor& g, const Tensor& s) {
    return mul(g, rsqrt(1.0 - mul(s, s)));
  });
}

Tensor acos(const Tensor& x) {
  return float_op(UnaryOp::Acos, x, "acos", "AcosBackward", false, [](const Tensor& g, const Tensor& s) {
    return neg(mul(g, rsqrt(1.0 - mul(s, s))));
  });
}

Tensor atan(const Tensor& x) {
  return float_op(UnaryOp::Atan, x, "atan", "AtanBackward", false, [](const Tensor& g, const Tensor& s) {
    return div(g, add(mul(s, s), 1.0));
  });
}

Tensor asinh(const Tensor& x) {
  return float_op(UnaryOp::Asinh, x, "asinh", "AsinhBackward", false, [](const Tensor& g, const Tensor& s) {
    return mul(g, rsqrt(add(mul(s, s), 1.0)));
  });
}

Tensor acosh(const Tensor& x) {
  return float_op(UnaryOp::Acosh, x, "acosh", "AcoshBackward", false, [](const Tensor& g, const Tensor& s) {
    return mul(g, rsqrt(sub(mul(s, s), 1.0)));
  });
}

Tensor atanh(const Tensor& x) {
  return float_op(UnaryOp::Atanh, x, "atanh", "AtanhBackward", false, [](const Tensor& g, const Tensor& s) {
    return div(g, 1.0 - mul(s, s));
  });
}

Tensor floor(const Tensor& x) { return rounding_op(UnaryOp::Floor, x, "floor", "FloorBackward"); }
Tensor ceil(const Tensor& x) { return rounding_op(UnaryOp::Ceil, x, "ceil", "CeilBackward"); }
Tensor round(const Tensor& x) { return rounding_op(UnaryOp::Round, x, "round", "RoundBackward"); }
Tensor trunc(const Tensor& x) { return rounding_op(UnaryOp::Trunc, x, "trunc", "TruncBackward"); }

Tensor frac(const Tensor& x) {
  check_not_bool(x, "frac");
  WEFT_CHECK(is_floating(x.dtype()), "frac: expected a floating point tensor but got ", x.dtype(), " of shape ",
             x.shape());
  Tensor y = unary_op(UnaryOp::Frac, x, "frac");
  return autograd::record<SavedBackward>(y, saving("FracBackward", x, false, [](const Tensor& g, const Tensor&) {
    return g;
  }), x);
}

Tensor isnan(const Tensor& x) {
  detail::check_plain(x, "isnan");
  if (!is_floating(x.dtype())) return zeros(x.shape(), kBool);
  Tensor y = kernels::binary(BinaryOp::Ne, x, x);  // NaN is the one value unequal to itself
  spmd::note_op("isnan", y, {&x});
  return y;
}

Tensor isinf(const Tensor& x) {
  detail::check_plain(x, "isinf");
  if (!is_floating(x.dtype())) return zeros(x.shape(), kBool);
  Tensor y = kernels::binary_scalar(BinaryOp::Eq, kernels::unary(UnaryOp::Abs, x), INFINITY);
  spmd::note_op("isinf", y, {&x});
  return y;
}

Tensor isfinite(const Tensor& x) {
  detail::check_plain(x, "isfinite");
  if (!is_floating(x.dtype())) return ones(x.shape(), kBool);
  Tensor y = kernels::binary_scalar(BinaryOp::Lt, kernels::unary(UnaryOp::Abs, x), INFINITY);  // false for NaN too
  spmd::note_op("isfinite", y, {&x});
  return y;
}

namespace {
struct NanToNumBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor finite;  // bool: where x was finite
  variable_list apply(variable_list&& grads) override {
    return {masked_fill(grads[0], logical_not(finite.unpack(this)), 0)};
  }
  std::string name() const override { return "NanToNumBackward"; }
};
}  // namespace

Tensor nan_to_num(const Tensor& x, double nan, std::optional<double> posinf, std::optional<double> neginf) {
  detail::check_plain(x, "nan_to_num");
  if (!is_floating(x.dtype())) return kernels::contiguous_copy(x);  // bool and integers: nothing to replace
  constexpr DTypeSet kFloating = kFloatingStd | dtype_bit(kBFloat16) | dtype_bit(kFloat16);
  Tensor y = visit<kFloating>(x.dtype(), "nan_to_num", [&](auto tag) {
    using T = decltype(tag);
    double hi = posinf.value_or(static_cast<double>(std::numeric_limits<T>::max()));
    double lo = neginf.value_or(static_cast<double>(std::numeric_limits<T>::lowest()));
    Tensor out = kernels::contiguous_copy(x);
    kernels::masked_fill_out(out, out, kernels::binary(BinaryOp::Ne, x, x), nan);
    kernels::masked_fill_out(out, out, kernels::binary_scalar(BinaryOp::Eq, x, INFINITY), hi);
    kernels::masked_fill_out(out, out, kernels::binary_scalar(BinaryOp::Eq, x, -INFINITY), lo);
    return out;
  });
  return autograd::record<NanToNumBackward>(std::move(y), [&](NanToNumBackward& n) {
    n.save(n.finite, isfinite(x));
  }, x);
}

}  // namespace weft
