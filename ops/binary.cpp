// Elementwise binary ops: type promotion, broadcasting, and each op's backward. The engine reduces
// broadcast gradients to the input's shape and casts them to its dtype (see
// Note [Gradient arithmetic] in autograd/engine.h), so backward formulas return gradients of the output's shape.
#include "ops/binary.h"

#include <cmath>
#include <limits>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/toolkit.h"
#include "ops/reduce.h"
#include "ops/unary.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::BinaryOp;

// The dtype a number takes next to a tensor; a bool number keeps the tensor's dtype.
DType scalar_result_dtype(DType t, Scalar s) { return s.is_bool() ? t : promote_with_scalar(t, s.is_floating()); }

// Shape equality without a memcmp call: shapes have a handful of dims.
inline bool same_shape(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Runs `op` on a and b promoted to `dt` and broadcast; the result is contiguous.
Tensor run(BinaryOp op, const Tensor& a, const Tensor& b, DType dt, const char* name, double alpha = 1.0) {
  DType out_dtype = kernels::is_comparison(op) ? kBool : dt;
  const Shape &sa = a.shape(), &sb = b.shape();
  Tensor out = same_shape(sa, sb) ? kernels::make_empty(sa, out_dtype, name)  // no copy of the shape on the common path
                        : kernels::make_empty(broadcast_shapes(sa, sb, name), out_dtype, name);
  if (a.dtype() == dt && b.dtype() == dt) kernels::binary_out(op, out, a, b, alpha);  // no handle copies
  else kernels::binary_out(op, out, kernels::cast(a, dt), kernels::cast(b, dt), alpha);
  return out;
}

// torch's combine_categories(dimensioned, zero-dim) for one operand of each standing.
DType combine_categories(DType dimensioned, DType zero_dim) {
  if (is_floating(dimensioned)) return dimensioned;
  if (dimensioned == kBool || is_floating(zero_dim)) return promote_types(dimensioned, zero_dim);
  return dimensioned;
}

Tensor run_scalar(BinaryOp op, const Tensor& a, Scalar s, DType dt, double alpha = 1.0) {
  return kernels::binary_scalar(op, kernels::cast(a, dt), s, false, alpha);
}

void check_inputs(const Tensor& a, const Tensor& b, const char* name) {
  detail::check_plain(a, name);
  detail::check_plain(b, name);
}

void check_alpha(DType dt, Scalar alpha, const char* name) {
  WEFT_CHECK(is_floating(dt) || !alpha.is_floating(), name, ": for integral input tensors, alpha must not be "
             "a floating point number (got ", alpha.to_double(), " with dtype ", dt, ")");
}

}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  bool a_dims = a.dim() > 0, b_dims = b.dim() > 0;
  if (a_dims == b_dims) return promote_types(a.dtype(), b.dtype());
  return a_dims ? combine_categories(a.dtype(), b.dtype()) : combine_categories(b.dtype(), a.dtype());
}

DType result_type(const Tensor& a, Scalar b) { return scalar_result_dtype(a.dtype(), b); }

namespace {

struct AddBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  double alpha = 1;  // b's gradient is alpha * grad (negative for sub)
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor gb;
    if (needs_input_grad(1)) gb = alpha == 1 ? g : mul(g, alpha);
    return {needs_input_grad(0) ? g : Tensor(), gb};
  }
  std::string name() const override { return alpha == 1 ? "AddBackward" : "SubBackward"; }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
  check_inputs(a, b, "add");
  DType dt = result_type(a, b);
  check_alpha(dt, alpha, "add");
  Tensor y = run(BinaryOp::Add, a, b, dt, "add", alpha.to_double());
  return autograd::record<AddBackward>(std::move(y), [&](AddBackward& n) { n.alpha = alpha.to_double(); }, a, b);
}

Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
  check_inputs(a, b, "sub");
  DType dt = result_type(a, b);
  // torch refuses a bool operand even when the other one promotes the result (bool - int64).
  WEFT_CHECK(a.dtype() != kBool && b.dtype() != kBool, "sub: subtraction, the `-` operator, with a bool tensor is "
             "not supported (got ", a.dtype(), " and ", b.dtype(), "); use logical_xor instead");
  check_alpha(dt, alpha, "sub");
  Tensor y = run(BinaryOp::Sub, a, b, dt, "sub", alpha.to_double());
  return autograd::record<AddBackward>(std::move(y), [&](AddBackward& n) { n.alpha = -alpha.to_double(); }, a, b);
}

namespace {
// add/sub of a scalar shift every rank's term (NonLinear for a Partial: the shift would be summed
// once per rank); mul/div by one scale it (Linear).
template <spmd::Linearity L>
struct ScalarAffineBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = L;
  double scale = 1;  // d out / d a: 1 for add and sub, s for mul, 1/s for div
  const char* name_ = "AddBackward";
  variable_list apply(variable_list&& grads) override {
    return {scale == 1 ? grads[0] : mul(grads[0], scale)};
  }
  std::string name() const override { return name_; }
};

// record<ScalarAffineBackward>'s init.
template <spmd::Linearity L>
auto affine(double scale, const char* name) {
  return [scale, name](ScalarAffineBackward<L>& n) {
    n.scale = scale;
    n.name_ = name;
  };
}
}  // namespace

Tensor add(const Tensor& a, Scalar b) {
  detail::check_plain(a, "add");
  Tensor y = run_scalar(BinaryOp::Add, a, b, scalar_result_dtype(a.dtype(), b));
  return autograd::record<ScalarAffineBackward<spmd::Linearity::NonLinear>>(std::move(y), affine<spmd::Linearity::NonLinear>(1, "AddBackward"), a);
}

Tensor sub(const Tensor& a, Scalar b) {
  detail::check_plain(a, "sub");
  DType dt = scalar_result_dtype(a.dtype(), b);
  WEFT_CHECK(a.dtype() != kBool && !b.is_bool(), "sub: subtraction, the `-` operator, with a bool tensor or number "
             "is not supported (got a tensor of dtype ", a.dtype(), ")");
  Tensor y = run_scalar(BinaryOp::Sub, a, b, dt);
  return autograd::record<ScalarAffineBackward<spmd::Linearity::NonLinear>>(std::move(y), affine<spmd::Linearity::NonLinear>(1, "SubBackward"), a);
}

Tensor mul(const Tensor& a, Scalar b) {
  detail::check_plain(a, "mul");
  Tensor y = run_scalar(BinaryOp::Mul, a, b, scalar_result_dtype(a.dtype(), b));
  return autograd::record<ScalarAffineBackward<spmd::Linearity::Linear>>(std::move(y), affine<spmd::Linearity::Linear>(b.to_double(), "MulBackward"), a);
}

Tensor div(const Tensor& a, Scalar b) {
  detail::check_plain(a, "div");
  DType dt = promote_with_scalar(a.dtype(), true);  // true division always gives a float
  Tensor y = run_scalar(BinaryOp::Div, a, b, dt);
  return autograd::record<ScalarAffineBackward<spmd::Linearity::Linear>>(std::move(y), affine<spmd::Linearity::Linear>(1.0 / b.to_double(), "DivBackward"), a);
}

namespace {
struct MulBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Multilinear;
  SavedTensor a, b;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    return {needs_input_grad(0) ? mul(g, b.unpack(this)) : Tensor(),
            needs_input_grad(1) ? mul(g, a.unpack(this)) : Tensor()};
  }
  std::string name() const override { return "MulBackward"; }
};

struct DivBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::LinearInFirst;
  SavedTensor a, b;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor bv = b.unpack(this);
    Tensor ga = needs_input_grad(0) ? div(g, bv) : Tensor();
    Tensor gb = needs_input_grad(1) ? neg(div(mul(g, a.unpack(this)), mul(bv, bv))) : Tensor();
    return {ga, gb};
  }
  std::string name() const override { return "DivBackward"; }
};

struct PowBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor a, b, y;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor av = a.unpack(this), bv = b.unpack(this);
    Tensor ga, gb;
    // d/da a^b = b a^(b-1), taken as 0 wherever b == 0 (at a == 0 it would be 0 * inf), as in torch.
    if (needs_input_grad(0)) ga = masked_fill(mul(g, mul(bv, pow(av, sub(bv, 1)))), eq(bv, 0), 0);
    if (needs_input_grad(1)) {
      // d/db a^b = a^b log a, taken as 0 where a == 0 and b >= 0 (the limit from above).
      Tensor d = mul(y.unpack(this), log(av));
      Tensor zero_base = kernels::binary(BinaryOp::Mul, eq(av, 0), ge(bv, 0));
      gb = mul(g, masked_fill(d, zero_base, 0));
    }
    return {ga, gb};
  }
  std::string name() const override { return "PowBackward1"; }
};

// maximum/minimum: the gradient goes to the selected input, split evenly on ties.
struct ExtremumBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor wins;  // float weight of a: 1 where a was selected, 0.5 on ties, else 0
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor ga = mul(g, wins.unpack(this));
    Tensor gb = needs_input_grad(1) ? sub(g, ga) : Tensor();
    return {needs_input_grad(0) ? ga : Tensor(), gb};
  }
  std::string name() const override { return "MaximumBackward"; }
};

Tensor extremum(const Tensor& a, const Tensor& b, bool is_max, const char* name) {
  check_inputs(a, b, name);
  DType dt = result_type(a, b);
  Tensor y = run(is_max ? BinaryOp::Max : BinaryOp::Min, a, b, dt, name);
  return autograd::record<ExtremumBackward>(std::move(y), [&](ExtremumBackward& n) {
    NoGradGuard no_grad;
    Tensor ac = kernels::cast(a, dt), bc = kernels::cast(b, dt);
    Tensor selected = kernels::cast(is_max ? gt(ac, bc) : lt(ac, bc), dt);
    Tensor tie = mul(kernels::cast(eq(ac, bc), dt), 0.5);
    n.save(n.wins, add(selected, tie));
  }, a, b);
}
}  // namespace

std::shared_ptr<autograd::Node> detail::mul_node(const Tensor& a, const Tensor& b, bool in_place) {
  auto node = autograd::make_node<MulBackward>(a, b);
  if (!node) return nullptr;
  if (node->needs_input_grad(1)) {
    if (in_place) node->save_value_of(node->a, kernels::contiguous_copy(a), a);  // a is about to change
    else node->save(node->a, a);
  }
  if (node->needs_input_grad(0)) node->save(node->b, b, in_place && b.shares_storage(a));
  return node;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_inputs(a, b, "mul");
  Tensor y = run(BinaryOp::Mul, a, b, result_type(a, b), "mul");
  auto node = detail::mul_node(a, b, /*in_place=*/false);
  spmd::check_op(spmd::Linearity::Multilinear, "mul", y, {&a, &b});
  if (node) autograd::set_history(y, std::move(node));
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  check_inputs(a, b, "div");
  DType dt = result_type(a, b);
  if (!is_floating(dt)) dt = kFloat32;  // true division
  Tensor y = run(BinaryOp::Div, a, b, dt, "div");
  return autograd::record<DivBackward>(std::move(y), [&](DivBackward& n) {
    if (n.needs_input_grad(1)) n.save(n.a, a);
    n.save(n.b, b);
  }, a, b);
}

Tensor pow(const Tensor& a, const Tensor& b) {
  check_inputs(a, b, "pow");
  WEFT_CHECK(result_type(a, b) != kBool, "pow: not supported for two bool tensors");
  Tensor y = run(BinaryOp::Pow, a, b, result_type(a, b), "pow");
  return autograd::record<PowBackward>(y, [&](PowBackward& n) {
    n.save(n.a, a);
    n.save(n.b, b);
    if (n.needs_input_grad(1)) n.save(n.y, y, /*is_output=*/true);
  }, a, b);
}

namespace {
struct PowScalarBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
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
  DType dt = scalar_result_dtype(x.dtype(), exponent);
  WEFT_CHECK(dt != kBool, "pow: not supported for a bool tensor with a bool exponent");
  WEFT_CHECK(is_floating(dt) || exponent.to_int() >= 0, "pow: integers to negative integer powers are not "
             "allowed (tensor of dtype ", x.dtype(), ", exponent ", exponent.to_int(), ")");
  Tensor y = kernels::unary(kernels::UnaryOp::Pow, kernels::cast(x, dt), {.a = exponent.to_double()});
  return autograd::record<PowScalarBackward>(std::move(y), [&](PowScalarBackward& n) {
    n.save(n.x, x);
    n.exponent = exponent.to_double();
  }, x);
}

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true, "maximum"); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false, "minimum"); }

// The number is read as a 0-d tensor of the dtype it promotes to, so ties and NaN behave as above.
Tensor maximum(const Tensor& a, Scalar b) {
  detail::check_plain(a, "maximum");
  return extremum(a, full({}, b, scalar_result_dtype(a.dtype(), b)), true, "maximum");
}
Tensor minimum(const Tensor& a, Scalar b) {
  detail::check_plain(a, "minimum");
  return extremum(a, full({}, b, scalar_result_dtype(a.dtype(), b)), false, "minimum");
}

namespace {
// Comparisons: computed in the promoted dtype, bool results, never differentiable.
Tensor compare(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_inputs(a, b, name);
  Tensor y = run(op, a, b, result_type(a, b), name);
  spmd::note_op(name, y, {&a, &b});
  return y;
}
Tensor compare(BinaryOp op, const Tensor& a, Scalar b, const char* name) {
  detail::check_plain(a, name);
  Tensor y = run_scalar(op, a, b, scalar_result_dtype(a.dtype(), b));
  spmd::note_op(name, y, {&a});
  return y;
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ge, a, b, "ge"); }
Tensor eq(const Tensor& a, Scalar b) { return compare(BinaryOp::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, Scalar b) { return compare(BinaryOp::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, Scalar b) { return compare(BinaryOp::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, Scalar b) { return compare(BinaryOp::Le, a, b, "le"); }
Tensor gt(const Tensor& a, Scalar b) { return compare(BinaryOp::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, Scalar b) { return compare(BinaryOp::Ge, a, b, "ge"); }

namespace {
struct WhereBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  SavedTensor cond;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor c = cond.unpack(this);
    Tensor ga = needs_input_grad(1) ? masked_fill(g, eq(c, false), 0) : Tensor();
    Tensor gb = needs_input_grad(2) ? masked_fill(g, c, 0) : Tensor();
    return {Tensor(), ga, gb};
  }
  std::string name() const override { return "WhereBackward"; }
};

struct MaskedFillBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor mask;
  variable_list apply(variable_list&& grads) override { return {masked_fill(grads[0], mask.unpack(this), 0)}; }
  std::string name() const override { return "MaskedFillBackward"; }
};
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_plain(cond, "where");
  check_inputs(a, b, "where");
  WEFT_CHECK(cond.dtype() == kBool, "where: expected a bool condition but got ", cond.dtype());
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType dt = result_type(a, b);
  Tensor y = kernels::make_empty(shape, dt);
  kernels::where_out(y, cond, kernels::cast(a, dt), kernels::cast(b, dt));
  y = autograd::record<WhereBackward>(std::move(y), [&](WhereBackward& n) {
    n.save(n.cond, cond);
  }, Tensor(), a, b);
  // Linear in (a, b) jointly; the condition selects per element, a factor as in mul.
  spmd::check_op(spmd::Linearity::Multilinear, "where", y, {&cond, &y});
  return y;
}

Scalar detail::checked_scalar(Scalar value, DType dtype, const char* op) {
  if (dtype == kBool) return value;
  const double v = value.to_double();
  double lo = 0, hi = 0;
  visit<kAllDTypes>(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    lo = static_cast<double>(std::numeric_limits<T>::lowest());
    hi = static_cast<double>(std::numeric_limits<T>::max());
  });
  if (is_floating(dtype)) {
    WEFT_CHECK(std::isinf(v) || std::isnan(v) || (v >= lo && v <= hi), op, ": the value ", v,
               " cannot be converted to ", dtype, " without overflow (expected ", lo, " to ", hi, ")");
    return value;
  }
  if (!value.is_floating() && dtype == kUInt8) {  // two's complement wrap for -255..-1, as torch
    const int64_t i = value.to_int();
    WEFT_CHECK(i >= -255 && i <= 255, op, ": the value ", i, " cannot be converted to uint8 without overflow "
               "(expected -255 to 255)");
    return Scalar(static_cast<int64_t>(static_cast<uint8_t>(i)));
  }
  if (!value.is_floating()) {  // exact: int64 bounds as integers (2^63 - 1 is not a double)
    const int64_t i = value.to_int();
    WEFT_CHECK(dtype == kInt64 || (static_cast<double>(i) >= lo && static_cast<double>(i) <= hi), op, ": the value ",
               i, " cannot be converted to ", dtype, " without overflow (expected ", lo, " to ", hi, ")");
    return value;
  }
  // A floating value into an integer dtype must lie in [lowest, max] (torch's test, before truncation;
  // max of int64 is 2^63 as a double, which would not convert, so that end is open).
  WEFT_CHECK(!std::isnan(v) && v >= lo && v <= hi && v < 0x1p63, op, ": the value ", v, " cannot be converted to ", dtype,
             " without overflow (expected ", lo, " to ", hi, ")");
  return value;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  check_inputs(x, mask, "masked_fill");
  value = detail::checked_scalar(value, x.dtype(), "masked_fill");
  WEFT_CHECK(mask.dtype() == kBool, "masked_fill: expected a bool mask but got ", mask.dtype());
  // x and the mask broadcast both ways, as in torch; the engine sums x's gradient back to its shape.
  Tensor y = kernels::make_empty(same_shape(x.shape(), mask.shape()) ? x.shape()
                                    : broadcast_shapes(x.shape(), mask.shape(), "masked_fill"),
                                x.dtype());
  kernels::masked_fill_out(y, x, mask, value);
  y = autograd::record<MaskedFillBackward>(std::move(y), [&](MaskedFillBackward& n) {
    n.save(n.mask, mask);
  }, x);
  spmd::note_op("masked_fill", y, {&y, &mask});  // a per-rank mask makes a per-rank result
  return y;
}

namespace {
// Integral remainder and fmod by zero raise, as torch's ZeroDivisionError; floating ones give NaN.
void check_integral_divisor(const Tensor& b, DType dt, const char* name) {
  if (is_floating(dt)) return;
  NoGradGuard no_grad;
  WEFT_CHECK(!any(kernels::binary_scalar(BinaryOp::Eq, kernels::cast(b, dt), 0)).item<bool>(), name,
             ": integer division by zero (a divisor of dtype ", dt, " holds 0)");
}

DType numeric_result(const Tensor& a, const Tensor& b, const char* name) {
  check_inputs(a, b, name);
  DType dt = result_type(a, b);
  WEFT_CHECK(dt != kBool, name, ": not supported for bool tensors (got shapes ", a.shape(), " and ", b.shape(), ")");
  return dt;
}

// The gradient of a - b * q(a / b), q being floor (remainder) or trunc (fmod): g for a, -g * q for b.
struct ModuloBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor a, b;
  bool floor_sign = true;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor gb;
    if (needs_input_grad(1)) {
      Tensor q = div(a.unpack(this), b.unpack(this));
      gb = neg(mul(g, floor_sign ? floor(q) : trunc(q)));
    }
    return {needs_input_grad(0) ? g : Tensor(), gb};
  }
  std::string name() const override { return floor_sign ? "RemainderBackward" : "FmodBackward"; }
};

Tensor modulo(const Tensor& a, const Tensor& b, bool floor_sign, const char* name) {
  DType dt = numeric_result(a, b, name);
  check_integral_divisor(b, dt, name);
  Tensor y = run(floor_sign ? BinaryOp::Remainder : BinaryOp::Fmod, a, b, dt, name);
  return autograd::record<ModuloBackward>(std::move(y), [&](ModuloBackward& n) {
    n.floor_sign = floor_sign;
    if (n.needs_input_grad(1)) n.save(n.a, a), n.save(n.b, b);
  }, a, b);
}

struct Atan2Backward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor a, b;
  variable_list apply(variable_list&& grads) override {
    Tensor av = a.unpack(this), bv = b.unpack(this);
    Tensor scale = div(grads[0], add(mul(av, av), mul(bv, bv)));
    return {needs_input_grad(0) ? mul(scale, bv) : Tensor(), needs_input_grad(1) ? neg(mul(scale, av)) : Tensor()};
  }
  std::string name() const override { return "Atan2Backward"; }
};

struct HypotBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor a, b, y;
  variable_list apply(variable_list&& grads) override {
    Tensor scale = div(grads[0], y.unpack(this));
    return {needs_input_grad(0) ? mul(scale, a.unpack(this)) : Tensor(),
            needs_input_grad(1) ? mul(scale, b.unpack(this)) : Tensor()};
  }
  std::string name() const override { return "HypotBackward"; }
};
}  // namespace

Tensor atan2(const Tensor& a, const Tensor& b) {
  check_inputs(a, b, "atan2");
  DType dt = result_type(a, b);
  if (!is_floating(dt)) dt = kFloat32;
  Tensor y = run(BinaryOp::Atan2, a, b, dt, "atan2");
  return autograd::record<Atan2Backward>(std::move(y), [&](Atan2Backward& n) {
    n.save(n.a, a), n.save(n.b, b);
  }, a, b);
}

Tensor hypot(const Tensor& a, const Tensor& b) {
  check_inputs(a, b, "hypot");
  DType dt = result_type(a, b);
  WEFT_CHECK(is_floating(dt), "hypot: expected floating point tensors but got ", a.dtype(), " and ", b.dtype());
  Tensor y = run(BinaryOp::Hypot, a, b, dt, "hypot");
  return autograd::record<HypotBackward>(y, [&](HypotBackward& n) {
    n.save(n.a, a), n.save(n.b, b), n.save(n.y, y, /*is_output=*/true);
  }, a, b);
}

Tensor remainder(const Tensor& a, const Tensor& b) { return modulo(a, b, true, "remainder"); }
Tensor fmod(const Tensor& a, const Tensor& b) { return modulo(a, b, false, "fmod"); }
// A number is a 0-d tensor of the dtype it promotes to, so integral zero raises and floats keep torch's rounding.
Tensor remainder(const Tensor& a, Scalar b) {
  detail::check_plain(a, "remainder");
  return remainder(a, full({}, b, scalar_result_dtype(a.dtype(), b)));
}
Tensor remainder(Scalar a, const Tensor& b) {
  detail::check_plain(b, "remainder");
  return remainder(full({}, a, scalar_result_dtype(b.dtype(), a)), b);
}
Tensor fmod(const Tensor& a, Scalar b) {
  detail::check_plain(a, "fmod");
  return fmod(a, full({}, b, scalar_result_dtype(a.dtype(), b)));
}

namespace {
Tensor rsub_one(const Tensor& w) { return add(neg(w), 1); }  // 1 - w
}  // namespace

Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  check_inputs(start, end, "lerp");
  detail::check_plain(weight, "lerp");
  WEFT_CHECK(is_floating(start.dtype()) && start.dtype() == end.dtype() && weight.dtype() == start.dtype(), "lerp: "
             "expected start, end and weight of one floating dtype but got ", start.dtype(), ", ", end.dtype(), " and ",
             weight.dtype());
  broadcast_shapes(broadcast_shapes(start.shape(), end.shape(), "lerp"), weight.shape(), "lerp");
  // torch's two-sided formula: from the nearer end, so weight 1 gives end exactly and an infinite
  // start with weight >= 0.5 gives that infinity rather than inf - inf.
  Tensor diff = sub(end, start);
  return where(lt(abs(weight), 0.5), add(start, mul(weight, diff)), sub(end, mul(diff, rsub_one(weight))));
}

Tensor lerp(const Tensor& start, const Tensor& end, Scalar weight) {
  check_inputs(start, end, "lerp");
  WEFT_CHECK(is_floating(start.dtype()) && start.dtype() == end.dtype(), "lerp: expected start and end of one "
             "floating dtype but got ", start.dtype(), " and ", end.dtype());
  broadcast_shapes(start.shape(), end.shape(), "lerp");
  const double w = weight.to_double();
  if (std::fabs(w) < 0.5) return add(start, mul(sub(end, start), weight));
  return sub(end, mul(sub(end, start), 1.0 - w));  // from the nearer end, as the tensor form
}

}  // namespace weft
