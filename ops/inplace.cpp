// The in-place Tensor methods (add_, sub_, mul_, div_, zero_, fill_, copy_, clamp_): they write into
// the tensor's own, possibly strided, memory, bump its version, and rebase its autograd history.
#include "autograd/engine.h"
#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/shape_internal.h"
#include "ops/shape_ops.h"
#include "kernels/elementwise.h"
#include "ops/unary.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::BinaryOp;

// Note [In-place autograd]
// A leaf that requires grad may not be modified under grad mode: its .grad would describe a value
// that no longer exists. Any other tensor takes the in-place op's node as its new grad_fn, whose
// edge for "self" points at the old history, so backward flows through both versions. Saved
// copies of the old value are taken before writing; the version bump makes every earlier saved
// reference to this storage fail loudly when unpacked. An operand sharing self's storage is saved
// as an output is (a detached alias; Note [Saved tensors]): held as it is, it would hold self or
// self's base, whose new history holds the node, a cycle that would outlive the graph (backward
// refuses such a graph anyway: the op itself modified the operand). A view is rebased through its
// base: see Note [In-place on views].

// Note [In-place on views]
// Every differentiable view op marks its result a view and records its base (the root: a view of
// a view shares its first base), whether or not the base requires grad, and under no-grad too. An
// in-place op on a view v of base B writes B's memory too, so B's history must change, as in
// PyTorch's CopySlices and rebase_history:
//  - the op's node N is made as for any tensor (edge 0: v's old history), but is not attached to v;
//  - B gets a CopySlices node: B's gradient goes to B's old history (none if B did not require
//    grad), except the part under v's geometry, which goes through N (N's gradient for self lands
//    there; N's other gradients go to its other inputs);
//  - v's grad_fn becomes an as_strided view of B's new history.
// So a base that did not require grad comes to, and its later uses carry the op. Other views of B
// keep a grad_fn built from B's older history (or none). Each view remembers the storage version
// its grad_fn was made at; when that version moved (any in-place write to the storage), the next
// gradient_edge or grad_fn of the view rebuilds its grad_fn as an as_strided view of B's current
// history (refresh_view_history), and a view without history requires grad once B does
// (view_requires_grad). A base that is a leaf requiring grad cannot be rebased, so an in-place op
// through its view is refused, like on the leaf itself.
// A view made under no-grad is a constant. With grad mode on, an in-place op on it that needs grad
// (an operand or its base requires grad) is refused, and so is its use after its base, requiring
// grad, was modified in place: whether its gradient should describe the old value or the new one
// is ambiguous (PyTorch refuses both). Under no-grad nothing is recorded and every in-place op is
// allowed, as on any tensor.
// The price: a view op makes its result's AutogradMeta (from the object pool) even when nothing
// requires grad, about 180 instructions on a view op of 660 (callgrind, bench_autograd's
// BM_view_ops loop). A view must find its base however it was made; PyTorch pays the same.
void check_no_grad_view(const Tensor& self, const Tensor& base, const Tensor& other, const char* op) {
  WEFT_CHECK(!autograd::requires_grad_fast(other) && !autograd::requires_grad_fast(base), op, ": a view (shape ",
             self.shape(), ") made under NoGradGuard is being modified in place with grad mode on, and ",
             autograd::requires_grad_fast(other) ? "the other operand" : "its base", " requires grad; whether "
             "the op should be recorded is ambiguous, so this is refused: make both the view and the in-place "
             "op under NoGradGuard (not recorded), or both outside it (recorded)");
}

// `other`: the op's tensor operand, if any.
void check_inplace(const Tensor& self, const char* op, const Tensor& other = Tensor()) {
  detail::check_plain(self, op);
  // See Note [Inference tensors].
  WEFT_CHECK(!self.is_inference() || InferenceMode::is_enabled(), op, ": an inference tensor (shape ",
             self.shape(), ", made under InferenceModeGuard) cannot be updated in place outside inference "
             "mode; clone it to get a normal tensor");
  if (!GradMode::is_enabled()) return;
  const AutogradMeta* meta = self.impl()->autograd.get();
  const bool is_view = meta != nullptr && meta->is_view;
  if (is_view) {
    const Tensor& base = meta->view_base;
    if (meta->no_grad_view) check_no_grad_view(self, base, other, op);
    // PyTorch's test: a view that requires grad (through its base, or given requires_grad_ itself)
    // of a base without history.
    WEFT_CHECK(!(self.requires_grad() && base.is_leaf()), op, ": a view (shape ", self.shape(), ") of a leaf "
               "tensor that requires grad (shape ", base.shape(), ") is being used in an in-place operation; wrap "
               "the update in NoGradGuard or use an out-of-place op");
  }
  WEFT_CHECK(!(self.requires_grad() && self.is_leaf()), op, ": a leaf tensor that requires grad is being used in "
             "an in-place operation (shape ", self.shape(), "); wrap the update in NoGradGuard or use an "
             "out-of-place op");
  // CopySlices cannot take an overlapping view; unrecorded, the write is the kernel's business.
  if (!is_view || !(self.requires_grad() || autograd::requires_grad_fast(other))) return;
  for (int64_t d = 0; d < self.dim(); ++d)
    WEFT_CHECK(self.size(d) <= 1 || self.stride(d) != 0, op, ": in-place modification of an expanded view (shape ",
               self.shape(), ", strides ", self.strides(), ") is not supported: more than one element of it "
               "refers to a single memory location; clone it first");
}

// B's node after an in-place op through its view: see Note [In-place on views]. Its edges are B's
// old history, then fn's edges 1.. (fn's other inputs).
struct CopySlices final : autograd::Node {
  Shape base_shape, base_strides, view_shape, view_strides;
  int64_t base_offset = 0, view_offset = 0;
  std::shared_ptr<autograd::Node> fn;

  variable_list apply(variable_list&& grads) override {
    // B's gradient laid out over storage positions, so the view's geometry applies as it is.
    const Tensor& g = grads[0];
    int64_t len = std::max(detail::storage_extent(base_shape, base_strides, base_offset),
                           detail::storage_extent(view_shape, view_strides, view_offset));
    Tensor flat = zeros({len}, g.dtype());
    Tensor base_grad = as_strided(flat, base_shape, base_strides, base_offset);
    base_grad.copy_(g);
    Tensor slice = as_strided(flat, view_shape, view_strides, view_offset);
    // Under create_graph (Note [create_graph] in autograd/engine.cpp) the copy records, like every step here.
    variable_list res = fn->apply({GradMode::is_enabled() ? clone(slice) : kernels::contiguous_copy(slice)});
    if (res[0].defined()) slice.copy_(res[0]);
    else slice.zero_();
    res[0] = contiguous(base_grad);
    return res;
  }
  void release_saved() override {
    Node::release_saved();
    fn->release_saved();
  }
  std::string name() const override { return "CopySlices"; }
};

// Attaches the in-place op's node to a view: see Note [In-place on views].
void rebase_view(const Tensor& view, const std::shared_ptr<autograd::Node>& node) {
  AutogradMeta& meta = *view.impl()->autograd;
  const Tensor base = meta.view_base;
  auto copy_slices = std::make_shared<CopySlices>();
  copy_slices->base_shape = base.shape(), copy_slices->base_strides = base.strides();
  copy_slices->base_offset = base.storage_offset();
  copy_slices->view_shape = view.shape(), copy_slices->view_strides = view.strides();
  copy_slices->view_offset = view.storage_offset();
  copy_slices->fn = node;
  copy_slices->supports_double_backward = node->supports_double_backward;  // its formula is fn's
  copy_slices->next_edges.reserve(node->next_edges.size());
  copy_slices->next_edges.push_back(autograd::gradient_edge(base));
  for (size_t i = 1; i < node->next_edges.size(); ++i) copy_slices->next_edges.push_back(node->next_edges[i]);
  autograd::set_history(base, copy_slices);
  autograd::set_history(view, detail::as_strided_history(base, view));
  meta.view_version = view.version();
}

// PyTorch's can_cast: a result may be written into self unless that goes float -> integral or
// integral -> bool.
void check_result_dtype(DType result, const Tensor& self, const char* op) {
  // (Not by enum order: the codes are appended as dtypes are added, so int8 sorts after float64.)
  const bool castable = is_floating(self.dtype()) || (!is_floating(result) && (self.dtype() != kBool || result == kBool));
  WEFT_CHECK(castable, op, ": result type ", result,
             " can't be cast to the desired output type ", self.dtype());
}

void check_other(const Tensor& self, const Tensor& other, const char* op) {
  detail::check_plain(other, op);
  WEFT_CHECK(is_broadcastable_to(other.shape(), self.shape()), op, ": the other tensor's shape ", other.shape(),
             " cannot be broadcast to the in-place target's shape ", self.shape());
}

struct InplaceAddBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  double alpha = 1;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    return {g, needs_input_grad(1) ? (alpha == 1 ? g : mul(g, alpha)) : Tensor()};
  }
  std::string name() const override { return "AddBackward"; }
};

struct InplaceDivBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor other, self_before;  // the old value is copied: later in-place ops may change self
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor o = other.unpack(this);
    return {needs_input_grad(0) ? div(g, o) : Tensor(),
            needs_input_grad(1) ? neg(div(mul(g, self_before.unpack(this)), mul(o, o))) : Tensor()};
  }
  std::string name() const override { return "DivBackward"; }
};

struct InplaceScaleBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  double scale = 1;
  variable_list apply(variable_list&& grads) override { return {scale == 1 ? grads[0] : mul(grads[0], scale)}; }
  std::string name() const override { return "ScaleBackward"; }
};

// fill_, zero_ and copy_ overwrite self: its old value gets a zero gradient (torch's zeros_like(grad),
// so a leaf reached only through it ends with zeros, not with no gradient); copy_'s source gets all.
struct OverwriteBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  variable_list apply(variable_list&& grads) override {
    variable_list out(next_edges.size());
    if (needs_input_grad(0)) out[0] = zeros_like(grads[0]);
    if (out.size() > 1) out[1] = grads[0];
    return out;
  }
  std::string name() const override { return next_edges.size() > 1 ? "CopyBackward" : "FillBackward"; }
};

// Note [Recording an in-place op]
// autograd::record makes an op's node after the forward (Note [Recording a node]). An in-place op
// makes it before it writes: the node's edge for self must be self's history before the write, and
// what the node saves of self (div_'s old value, clamp_'s mask, mul_'s old self) must be read
// before the kernel overwrites it. Then the write, the version bump, and the node becomes self's
// history (through its base when self is a view: Note [In-place on views]). record_inplace is that
// one sequence, in record's form: `init` (optional) fills the node, `write` runs the kernel, and the
// node's inputs are self, then `others` (the order its apply() returns their gradients). Ops sharing
// a node with their out-of-place form pass the node that form's factory made (mul_node, clamp_node).
template <class Write>
Tensor& record_inplace(Tensor& self, const std::shared_ptr<autograd::Node>& node, Write&& write) {
  write();
  self.bump_version();
  if (!node) return self;
  const AutogradMeta* meta = self.impl()->autograd.get();
  if (meta && meta->is_view && meta->view_base.defined()) rebase_view(self, node);
  else autograd::set_history(self, node);
  return self;
}

template <class NodeT, class Init, class Write, autograd::RecordInput... Others>
  requires std::invocable<Init&, NodeT&>
Tensor& record_inplace(Tensor& self, Init&& init, Write&& write, const Others&... others) {
  auto node = autograd::make_node<NodeT>(self, others...);
  if (node) init(*node);
  return record_inplace(self, node, write);
}

template <class NodeT, class Write, autograd::RecordInput... Others>
Tensor& record_inplace(Tensor& self, Write&& write, const Others&... others) {
  return record_inplace(self, autograd::make_node<NodeT>(self, others...), write);
}

Tensor& add_impl(Tensor& self, const Tensor& other, Scalar alpha, bool subtract, const char* op) {
  check_inplace(self, op, other);
  check_other(self, other, op);
  DType result = promote_types(self.dtype(), other.dtype());
  check_result_dtype(result, self, op);
  WEFT_CHECK(!subtract || result != kBool, op, ": subtraction with bool tensors is not supported");
  WEFT_CHECK(is_floating(result) || !alpha.is_floating(), op, ": for integral tensors alpha must not be a "
             "floating point number");
  double a = subtract ? -alpha.to_double() : alpha.to_double();
  spmd::check_op(spmd::Linearity::Linear, op, self, {&self, &other});
  return record_inplace<InplaceAddBackward>(
      self, [&](InplaceAddBackward& n) { n.alpha = a; },
      [&] { kernels::binary_out(BinaryOp::Add, self, self, kernels::cast(other, self.dtype()), a); }, other);
}

Tensor& scalar_impl(Tensor& self, BinaryOp op, Scalar s, double scale, const char* name) {
  check_inplace(self, name);
  DType result = op == BinaryOp::Div ? promote_with_scalar(self.dtype(), true)
                                     : (s.is_bool() ? self.dtype() : promote_with_scalar(self.dtype(), s.is_floating()));
  check_result_dtype(result, self, name);
  WEFT_CHECK(op != BinaryOp::Sub || self.dtype() != kBool, name, ": subtraction with a bool tensor is not supported");
  // A shift is summed once per rank on a Partial; a scale is linear.
  const bool shift = op == BinaryOp::Add || op == BinaryOp::Sub;
  spmd::check_op(shift ? spmd::Linearity::NonLinear : spmd::Linearity::Linear, name, self, {&self});
  return record_inplace<InplaceScaleBackward>(self, [&](InplaceScaleBackward& n) { n.scale = scale; },
                                              [&] { kernels::binary_scalar_out(op, self, self, s); });
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, Scalar alpha) { return add_impl(*this, other, alpha, false, "add_"); }
Tensor& Tensor::sub_(const Tensor& other, Scalar alpha) { return add_impl(*this, other, alpha, true, "sub_"); }
Tensor& Tensor::add_(Scalar other) { return scalar_impl(*this, BinaryOp::Add, other, 1, "add_"); }
Tensor& Tensor::sub_(Scalar other) { return scalar_impl(*this, BinaryOp::Sub, other, 1, "sub_"); }
Tensor& Tensor::mul_(Scalar other) { return scalar_impl(*this, BinaryOp::Mul, other, other.to_double(), "mul_"); }
Tensor& Tensor::div_(Scalar other) {
  return scalar_impl(*this, BinaryOp::Div, other, 1.0 / other.to_double(), "div_");
}

Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace(*this, "mul_", other);
  check_other(*this, other, "mul_");
  check_result_dtype(promote_types(dtype(), other.dtype()), *this, "mul_");
  spmd::check_op(spmd::Linearity::Multilinear, "mul_", *this, {this, &other});
  return record_inplace(*this, detail::mul_node(*this, other, /*in_place=*/true),
                        [&] { kernels::binary_out(BinaryOp::Mul, *this, *this, kernels::cast(other, dtype())); });
}

Tensor& Tensor::div_(const Tensor& other) {
  check_inplace(*this, "div_", other);
  check_other(*this, other, "div_");
  const DType promoted = promote_types(dtype(), other.dtype());
  check_result_dtype(is_floating(promoted) ? promoted : kFloat32, *this, "div_");  // true division
  spmd::check_op(spmd::Linearity::LinearInFirst, "div_", *this, {this, &other});
  return record_inplace<InplaceDivBackward>(
      *this,
      [&](InplaceDivBackward& n) {
        n.save(n.other, other, other.shares_storage(*this));
        if (n.needs_input_grad(1)) n.save_value_of(n.self_before, kernels::contiguous_copy(*this), *this);
      },
      [&] { kernels::binary_out(BinaryOp::Div, *this, *this, kernels::cast(other, dtype())); }, other);
}

Tensor& Tensor::zero_() { return fill_(0); }

Tensor& Tensor::fill_(Scalar value) {
  check_inplace(*this, "fill_");
  value = detail::checked_scalar(value, dtype(), "fill_");
  spmd::check_op(spmd::Linearity::Linear, "fill_", *this, {});  // a constant: untyped
  return record_inplace<OverwriteBackward>(*this, [&] { kernels::fill_out(*this, value); });
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_", src);
  check_other(*this, src, "copy_");
  spmd::check_op(spmd::Linearity::Linear, "copy_", *this, {&src});  // self becomes what src is
  return record_inplace<OverwriteBackward>(*this, [&] { kernels::copy_into(*this, src); }, src);
}

Tensor& Tensor::clamp_(std::optional<Scalar> min, std::optional<Scalar> max) {
  check_inplace(*this, "clamp_");
  WEFT_CHECK(min || max, "clamp_: at least one of min and max must be given");
  bool floating_bound = (min && min->is_floating()) || (max && max->is_floating());
  // A bool tensor refuses as in torch 1.13: number bounds promote it to int64 or float32, which
  // cannot be written back; bool bounds have no clamp kernel for bool.
  const bool bool_bounds = (!min || min->is_bool()) && (!max || max->is_bool());
  WEFT_CHECK(dtype() != kBool || !bool_bounds, "clamp_: not implemented for bool tensors with bool bounds (got shape ",
             shape(), ")");
  check_result_dtype(promote_with_scalar(dtype(), floating_bound), *this, "clamp_");
  // Bounds the dtype cannot hold raise (as clamp's; a conversion would be undefined behaviour).
  std::optional<Scalar> lo = min ? std::optional(detail::checked_scalar(*min, dtype(), "clamp_")) : std::nullopt;
  std::optional<Scalar> hi = max ? std::optional(detail::checked_scalar(*max, dtype(), "clamp_")) : std::nullopt;
  kernels::UnaryParams p{.a = lo ? lo->to_double() : 0, .b = hi ? hi->to_double() : 0,
                         .has_a = lo.has_value(), .has_b = hi.has_value()};
  spmd::note_op("clamp_", *this, {this});
  // The node's mask reads the values before clamping.
  return record_inplace(*this, detail::clamp_node(*this, *this, min, max), [&] {
    if (dtype() != kInt64) return kernels::unary_out(kernels::UnaryOp::Clamp, *this, *this, p);
    // int64 bounds past 2^53 are not exact as the kernel's double parameters: compare as int64.
    if (lo) kernels::binary_out(kernels::BinaryOp::Max, *this, *this, full({}, *lo, kInt64));
    if (hi) kernels::binary_out(kernels::BinaryOp::Min, *this, *this, full({}, *hi, kInt64));
  });
}

}  // namespace weft
