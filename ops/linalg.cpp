// linalg.cpp: mm, bmm, matmul, addmm, linear, outer: forward on kernels::bmm, backward with ops.
#include "ops/linalg.h"

#include <utility>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "framework/factories.h"
#include "ops/autocast.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "kernels/matmul.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

// t [..., C] as [R, C] (R the product of the leading dims; no -1, which is ambiguous when C == 0).
Tensor as_rows(const Tensor& t) {
  return reshape(t, {numel_of(Shape(t.shape().begin(), t.shape().end() - 1)), t.size(-1)});
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  WEFT_CHECK(a.dtype() == b.dtype(), op, ": expected both operands to have the same dtype but got ",
             dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  WEFT_CHECK(a.dtype() != kBool, op, ": expected numeric operands but got bool");
}

// Operands that are expanded views can multiply into a product too large to count or allocate;
// refused here so that the error names `op` (see Note [Checked shape arithmetic]).
void check_result_size(const Shape& shape, const Tensor& a, const char* op) {
  checked_nbytes(checked_numel(shape, op), a.element_size(), shape, op);
}

void check_mm(const Tensor& a, const Tensor& b, const char* op) {
  detail::check_plain(a, op);
  detail::check_plain(b, op);
  WEFT_CHECK(a.dim() == 2 && b.dim() == 2, op, ": expected two 2-D matrices but got shapes ", a.shape(),
             " and ", b.shape());
  WEFT_CHECK(a.size(1) == b.size(0), op, ": the shapes ", a.shape(), " and ", b.shape(),
             " cannot be multiplied (", a.size(1), " != ", b.size(0), ")");
  check_same_dtype(a, b, op);
  check_result_size({a.size(0), b.size(1)}, a, op);
}

// d(alpha * a @ b): alpha * grad @ b^T and alpha * a^T @ grad, each only when wanted. The
// transposes are views: the kernel reads them through strides.
std::pair<Tensor, Tensor> mm_grads(const Tensor& g, const autograd::Node* node, const autograd::SavedTensor& a,
                                   const autograd::SavedTensor& b, bool want_a, bool want_b, Scalar alpha) {
  Tensor ga = want_a ? mm(g, b.unpack(node).t()) : Tensor();
  Tensor gb = want_b ? mm(a.unpack(node).t(), g) : Tensor();
  if (alpha.to_double() != 1.0) {
    if (ga.defined()) ga = mul(ga, alpha);
    if (gb.defined()) gb = mul(gb, alpha);
  }
  return {ga, gb};
}

struct MmBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Multilinear;
  autograd::SavedTensor a, b;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    auto [ga, gb] = mm_grads(grads[0], this, a, b, needs_input_grad(0), needs_input_grad(1), 1);
    return {ga, gb};
  }
  std::string name() const override { return "MmBackward"; }
};

struct AddmmBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  autograd::SavedTensor a, b;
  Scalar alpha = 1, beta = 1;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor gi;  // the engine sums it down to the input's (broadcast) shape
    if (needs_input_grad(0)) gi = beta.to_double() == 1.0 ? g : mul(g, beta);
    auto [ga, gb] = mm_grads(g, this, a, b, needs_input_grad(1), needs_input_grad(2), alpha);
    return {gi, ga, gb};
  }
  std::string name() const override { return "AddmmBackward"; }
};

struct BmmBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Multilinear;
  autograd::SavedTensor a, b;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = bmm(g, b.unpack(this).transpose(1, 2));
    if (needs_input_grad(1)) gb = bmm(a.unpack(this).transpose(1, 2), g);
    return {ga, gb};
  }
  std::string name() const override { return "BmmBackward"; }
};

// db = the sum of g2's rows. float32 (outside create_graph) as ones[1, R] @ g2, a product on
// oneDNN: the generic reduction adds each column in double one element at a time, 53 us for the
// MLP step's [64, 2048] on an Ice Lake core, where the product takes 35 us.
Tensor bias_grad(const Tensor& g2) {
  if (g2.dtype() != kFloat32 || GradMode::is_enabled()) return sum(g2, {0});
  Tensor ones = full({1, g2.size(0)}, 1.0f);
  return reshape(kernels::bmm(ones, g2), {g2.size(1)});
}

// x [..., in] flattened to x2 [R, in]: dx = g2 W, dW = g2^T x2, db = sum of g2's rows.
struct LinearBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Affine;
  autograd::SavedTensor x, weight;
  Shape x_shape;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    Tensor g2 = as_rows(grads[0]);
    Tensor gx, gw, gb;
    if (needs_input_grad(0)) gx = reshape(mm(g2, weight.unpack(this)), x_shape);
    if (needs_input_grad(1)) {
      Tensor xv = x.unpack(this);
      gw = mm(g2.t(), as_rows(xv));
    }
    if (needs_input_grad(2)) gb = bias_grad(g2);
    return {gx, gw, gb};
  }
  std::string name() const override { return "LinearBackward"; }
};

// linear of an input with more than 2 dims: its leading dims as rows, and back.
Tensor linear_of_rows(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  NoGradGuard guard;
  Shape y_shape = x.shape();
  y_shape.back() = weight.size(0);
  return reshape(kernels::linear(as_rows(x), weight, bias), y_shape);
}

// mm once its operands are checked (matmul checks them itself and comes here directly).
Tensor checked_mm(const Tensor& a, const Tensor& b) {
  Tensor y = kernels::bmm(a, b);
  return autograd::record<MmBackward>(std::move(y), [&](MmBackward& n) {
    if (n.needs_input_grad(1)) n.save(n.a, a);
    if (n.needs_input_grad(0)) n.save(n.b, b);
  }, a, b);
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kMm, mm, a, b);
  check_mm(a, b, "mm");
  return checked_mm(a, b);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kBmm, bmm, a, b);
  detail::check_plain(a, "bmm");
  detail::check_plain(b, "bmm");
  WEFT_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected two 3-D tensors but got shapes ", a.shape(), " and ",
             b.shape());
  WEFT_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(1), "bmm: the shapes ", a.shape(), " and ",
             b.shape(), " cannot be multiplied (expected [B, M, K] and [B, K, N])");
  check_same_dtype(a, b, "bmm");
  check_result_size({a.size(0), a.size(1), b.size(2)}, a, "bmm");
  Tensor y = kernels::bmm(a, b);
  return autograd::record<BmmBackward>(std::move(y), [&](BmmBackward& n) {
    if (n.needs_input_grad(1)) n.save(n.a, a);
    if (n.needs_input_grad(0)) n.save(n.b, b);
  }, a, b);
}

Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kAddmm, addmm, input, a, b, beta, alpha);
  check_mm(a, b, "addmm");
  detail::check_plain(input, "addmm");
  Shape out_shape{a.size(0), b.size(1)};
  WEFT_CHECK(is_broadcastable_to(input.shape(), out_shape), "addmm: the input of shape ", input.shape(),
             " cannot be broadcast to the product's shape ", out_shape);
  WEFT_CHECK(input.dtype() == a.dtype(), "addmm: expected the input to have the operands' dtype ",
             dtype_name(a.dtype()), " but got ", dtype_name(input.dtype()));
  // PyTorch truncates a fractional beta or alpha for integer operands; weft refuses it instead.
  auto whole = [](Scalar s) { return s.to_double() == static_cast<double>(s.to_int()); };
  WEFT_CHECK(is_floating(a.dtype()) || (whole(beta) && whole(alpha)), "addmm: integer operands (",
             dtype_name(a.dtype()), ") take whole-number beta and alpha but got beta ", beta.to_double(),
             " and alpha ", alpha.to_double());
  if (!is_floating(a.dtype())) beta = Scalar(beta.to_int()), alpha = Scalar(alpha.to_int());  // keep the dtype
  Tensor y;
  if (beta.to_double() == 1.0 && alpha.to_double() == 1.0) {
    y = kernels::bmm(a, b, input);  // the kernel adds the bias
  } else {
    NoGradGuard guard;
    Tensor prod = kernels::bmm(a, b);
    if (alpha.to_double() != 1.0) prod = mul(prod, alpha);
    // beta == 0 ignores the input entirely (NaN in it does not propagate), as in PyTorch.
    y = beta.to_double() == 0.0 ? prod : add(prod, input, beta);
    if (!y.is_contiguous() || y.shape() != out_shape) y = contiguous(expand(y, out_shape));
  }
  return autograd::record<AddmmBackward>(std::move(y), [&](AddmmBackward& n) {
    n.alpha = alpha;
    n.beta = beta;
    if (n.needs_input_grad(2)) n.save(n.a, a);
    if (n.needs_input_grad(1)) n.save(n.b, b);
  }, input, a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kLinear, linear, x, weight, bias);
  detail::check_plain(x, "linear");
  detail::check_plain(weight, "linear");
  const Shape& xs = x.shape();  // read once: a 64^3 linear is a few microseconds, its checks count
  const Shape& ws = weight.shape();
  if (ws.size() == 1) {  // one output feature, its dim dropped (torch's x @ weight)
    WEFT_CHECK(!xs.empty() && xs.back() == ws[0], "linear: the input of shape ", xs,
               " does not match the 1-D weight of shape ", ws);
    check_same_dtype(x, weight, "linear");
    WEFT_CHECK(!bias.defined(), "linear: a 1-D weight takes no bias (as torch's)");
    return matmul(x, weight);
  }
  WEFT_CHECK(!xs.empty() && ws.size() == 2, "linear: expected an input of at least 1 dim and a 2-D weight "
             "but got shapes ", xs, " and ", ws);
  const int64_t in = ws[1], out = ws[0];
  WEFT_CHECK(xs.back() == in, "linear: the input's last dim is ", xs.back(), " (shape ", xs,
             ") but the weight of shape ", ws, " expects ", in);
  check_same_dtype(x, weight, "linear");
  if (bias.defined()) {
    detail::check_plain(bias, "linear");
    WEFT_CHECK(bias.dim() == 1 && bias.shape()[0] == out, "linear: expected a bias of shape [", out,
               "] but got ", bias.shape());
    WEFT_CHECK(bias.dtype() == x.dtype(), "linear: expected the bias to have dtype ", dtype_name(x.dtype()),
               " but got ", dtype_name(bias.dtype()));
  }
  // Initialised, not assigned: the result is built in the caller's return slot, with no load of
  // what the slot held (after a large kernel, a cache miss on the way out).
  Tensor y = xs.size() == 2 ? kernels::linear(x, weight, bias) : linear_of_rows(x, weight, bias);
  return autograd::record<LinearBackward>(std::move(y), [&](LinearBackward& n) {
    n.x_shape = x.shape();
    if (n.needs_input_grad(1)) n.save(n.x, x);
    if (n.needs_input_grad(0)) n.save(n.weight, weight);
  }, x, weight, bias);
}

Tensor outer(const Tensor& a, const Tensor& b) {
  detail::check_plain(a, "outer");
  detail::check_plain(b, "outer");
  WEFT_CHECK(a.dim() == 1 && b.dim() == 1, "outer: expected two 1-D tensors but got shapes ", a.shape(), " and ",
             b.shape());
  // A broadcast product, as torch's: mixed dtypes promote and bool operands give their logical and.
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));
}

// torch.matmul: 1-D operands gain a dim that the result drops; a stack of matrices times a matrix
// folds the stack into rows (one mm, no copy); otherwise batch dims broadcast and go through bmm.
Tensor matmul(const Tensor& a, const Tensor& b) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kMatmul, matmul, a, b);
  detail::check_plain(a, "matmul");
  detail::check_plain(b, "matmul");
  WEFT_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim but got shapes ", a.shape(),
             " and ", b.shape());
  const int64_t k_a = a.size(-1), k_b = b.dim() == 1 ? b.size(0) : b.size(-2);
  WEFT_CHECK(k_a == k_b, "matmul: the shapes ", a.shape(), " and ", b.shape(), " cannot be multiplied (", k_a,
             " != ", k_b, ")");
  check_same_dtype(a, b, "matmul");
  if (a.dim() == 1 && b.dim() == 1) return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 2 && b.dim() == 1) return squeeze(mm(a, unsqueeze(b, 1)), 1);
  if (a.dim() == 1 && b.dim() == 2) return squeeze(mm(unsqueeze(a, 0), b), 0);
  if (a.dim() == 2 && b.dim() == 2) {
    check_result_size({a.size(0), b.size(1)}, a, "matmul");
    return checked_mm(a, b);
  }
  if (a.dim() >= 3 && b.dim() <= 2) {
    Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;
    Tensor y = mm(as_rows(a), b2);
    Shape y_shape(a.shape().begin(), a.shape().end() - 1);
    if (b.dim() == 2) y_shape.push_back(b.size(1));
    return reshape(y, y_shape);
  }
  // Batched: both operands as [..., M, K] and [..., K, N] with broadcast batch dims.
  Tensor a3 = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b3 = b.dim() == 1 ? unsqueeze(b, 1) : b;
  Shape batch_a(a3.shape().begin(), a3.shape().end() - 2), batch_b(b3.shape().begin(), b3.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t m = a3.size(-2), n = b3.size(-1), nb = checked_numel(batch, "matmul");
  Shape ea = batch, eb = batch;
  ea.push_back(m), ea.push_back(k_a);
  eb.push_back(k_a), eb.push_back(n);
  Tensor y = bmm(reshape(expand(a3, ea), {nb, m, k_a}), reshape(expand(b3, eb), {nb, k_a, n}));
  Shape y_shape = batch;
  if (a.dim() > 1) y_shape.push_back(m);
  if (b.dim() > 1) y_shape.push_back(n);
  return reshape(y, y_shape);
}

}  // namespace weft
