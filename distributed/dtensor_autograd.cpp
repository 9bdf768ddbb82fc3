// dtensor_autograd.cpp: the nodes behind to_local and from_local (distributed/dtensor_nodes.h), the
// autograd Function behind redistribute, and the gradient arithmetic that adds DTensor gradients
// (DTensorSpec::add_gradients and add_gradient_in_place, called by the engine).
#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/node.h"
#include "distributed/dtensor.h"
#include "distributed/dtensor_nodes.h"
#include "distributed/redistribute.h"

namespace weft::dist::detail {

namespace {

using autograd::AutogradContext;
using autograd::variable_list;

// What backward needs to rebuild a DTensor: mesh, placements and global shape. Each Function below
// keeps it in its node (Note [Function state]), and leaves absent gradients undefined rather than
// materialised: one output, so an undefined gradient means none at all.
struct SpecMeta {
  DeviceMesh mesh;
  Placements placements;
  Shape global_shape;
};

SpecMeta& meta_of(AutogradContext* ctx) { return ctx->state<SpecMeta>(); }

struct Redistribute : autograd::Function<Redistribute> {
  // DTensors, not typed local tensors: no SPMD rule applies (Note [Local SPMD types]).
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;
  using State = SpecMeta;
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Placements& target) {
    DTensor x(input);
    const DTensorSpec& spec = x.spec();
    meta_of(ctx) = SpecMeta{spec.mesh, spec.placements, spec.global_shape};
    ctx->set_materialize_grads(false);
    Tensor local = redistribute_local(spec.local, spec.mesh, spec.placements, target, spec.global_shape);
    return make_dtensor(local, spec.mesh, target, spec.global_shape);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {Tensor()};
    const SpecMeta& meta = meta_of(ctx);
    DTensor g = as_dtensor_gradient(grads[0], meta.mesh, meta.global_shape, "redistribute");
    Placements target = redistribute_backward_target(meta.placements, g.placements());
    return {gradient_to(std::move(g), target, /*async=*/true)};
  }
};

// Note [DTensor gradient arithmetic]
// The engine adds two gradients through the spec of whichever is a DTensor, DTensorSpec::add_gradients
// (see Note [Gradient arithmetic] in autograd/engine.h). A DTensor pair is added by redistributing
// the second to the first's placements (Partial allowed) and adding the locals as plain gradients.
Tensor plain_add(const Tensor& a, const Tensor& b) { return autograd::accumulate_gradients(a, b); }

Tensor dtensor_add(const Tensor& a, const Tensor& b) {
  WEFT_CHECK(a.is_dtensor() && b.is_dtensor(), "gradient accumulation: can not add a ",
             a.is_dtensor() ? "DTensor" : "plain tensor", " gradient and a ", b.is_dtensor() ? "DTensor" : "plain tensor",
             " gradient of shape ", b.shape());
  DTensor x(a), y(b);
  WEFT_CHECK(x.device_mesh() == y.device_mesh() && x.shape() == y.shape(), "gradient accumulation: DTensor "
             "gradients on ", x.device_mesh().to_string(), " with shape ", x.shape(), " and on ",
             y.device_mesh().to_string(), " with shape ", y.shape(), " can not be added");
  NoGradGuard no_grad;
  DTensor other = gradient_to(std::move(y), x.placements(), /*async=*/false);  // the sum reads it at once
  return make_dtensor(plain_add(x.spec().local, other.spec().local), x.device_mesh(), x.placements(), x.shape());
}

// sum += grad into sum's local shard (Note [In-place gradient accumulation] in autograd/node.cpp).
// A DTensor gradient is stored as it arrives, so its local shard may be the very tensor another
// leaf's .grad holds (an add passes one gradient to both inputs): the sum is made in place only
// when nothing else holds sum, its spec or its shard. Otherwise the out-of-place sum gives this
// .grad a shard of its own, and the next accumulation is in place.
bool dtensor_add_in_place(const Tensor& sum, const Tensor& grad) {
  if (!grad.is_dtensor() || sum.impl_ptr().use_count() > 1 || sum.impl()->dist.use_count() > 1) return false;
  const auto& x = static_cast<const DTensorSpec&>(*sum.impl()->dist);
  const auto& y = static_cast<const DTensorSpec&>(*grad.impl()->dist);
  const TensorImpl& shard = *x.local.impl();
  if (x.local.impl_ptr().use_count() > 1 || (shard.storage && shard.storage.use_count() > 1) ||
      !(x.mesh == y.mesh && x.global_shape == y.global_shape))
    return false;  // the out-of-place sum copies, or raises for the mismatch
  NoGradGuard no_grad;
  // gradient_to returns the gradient itself when the placements already agree.
  DTensor other = gradient_to(DTensor(grad), x.placements, /*async=*/false);  // the sum reads it at once
  return autograd::accumulate_gradients_in_place(x.local, other.spec().local);
}

}  // namespace

namespace {

// The placements a gradient is brought to: `grad_placements` as given (normalised, one per mesh
// dim), or by default the tensor's own with every Partial as Replicate.
Placements grad_target(const std::optional<Placements>& grad_placements, const Placements& placements,
                       int64_t tensor_rank, const char* op) {
  if (grad_placements) {
    Placements target = normalize(*grad_placements, tensor_rank);
    WEFT_CHECK(target.size() == placements.size(), op, ": grad_placements ", to_string(target),
               " must have one placement per mesh dim (", placements.size(), ")");
    return target;
  }
  Placements target = placements;
  return replicate_partials(target);
}

}  // namespace

autograd::variable_list ToLocalBackward::apply(autograd::variable_list&& grads) {
  if (!grads[0].defined()) return {Tensor()};
  WEFT_CHECK(!grads[0].is_dtensor(), op, " backward: expected a plain local gradient, got a DTensor");
  return {wrap_checked(grads[0], mesh, grad_placements, global_shape)};
}

autograd::variable_list FromLocalBackward::apply(autograd::variable_list&& grads) {
  if (!grads[0].defined()) return {Tensor()};
  DTensor g = as_dtensor_gradient(grads[0], mesh, global_shape, op);
  return {gradient_to(std::move(g), grad_placements, /*async=*/true).spec().local};
}

Tensor apply_from_local(const Tensor& local, const std::optional<Tensor>& data, const DeviceMesh& mesh,
                        const Placements& placements, const Shape& global_shape,
                        const std::optional<Placements>& grad_placements) {
  Placements target = grad_target(grad_placements, placements, local.dim(), "DTensor.from_local");
  return autograd::record<FromLocalBackward>(make_dtensor(data ? *data : local, mesh, placements, global_shape),
                                             [&](FromLocalBackward& node) {
                                               node.mesh = mesh;
                                               node.grad_placements = target;
                                               node.global_shape = global_shape;
                                             }, local);
}

Tensor apply_to_local(const DTensor& x, const std::optional<Placements>& grad_placements) {
  const DTensorSpec& spec = x.spec();
  // Checked whether or not a node is recorded.
  Placements target = grad_target(grad_placements, spec.placements, x.dim(), "DTensor.to_local");
  // An alias: autograd history goes on it, never on the spec's local.
  return autograd::record<ToLocalBackward>(spec.local.detach(), [&](ToLocalBackward& node) {
    node.mesh = spec.mesh;
    node.grad_placements = target;
    node.global_shape = spec.global_shape;
  }, static_cast<const Tensor&>(x));
}

Tensor apply_redistribute(const DTensor& x, const Placements& target) {
  return Redistribute::apply(static_cast<const Tensor&>(x), target);
}

}  // namespace weft::dist::detail

namespace weft::dist {
Tensor DTensorSpec::add_gradients(const Tensor& a, const Tensor& b) const { return detail::dtensor_add(a, b); }
bool DTensorSpec::add_gradient_in_place(const Tensor& sum, const Tensor& grad) const {
  return detail::dtensor_add_in_place(sum, grad);
}
}  // namespace weft::dist
