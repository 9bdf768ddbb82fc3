// dtensor_autograd.cpp: the autograd Functions behind from_local and redistribute, to_local's node, and the
// gradient arithmetic that adds DTensor gradients (DTensorSpec::add_gradients, called by the engine).
#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/node.h"
#include "distributed/dtensor.h"
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

struct FromLocal : autograd::Function<FromLocal> {
  // DTensors, not typed local tensors: no SPMD rule applies (Note [Local SPMD types]).
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;
  using State = SpecMeta;
  static Tensor forward(AutogradContext* ctx, const Tensor& local, const std::optional<Tensor>& data,
                        const DeviceMesh& mesh, const Placements& placements, const Shape& global_shape,
                        const std::optional<Placements>& grad_placements) {
    Placements target = grad_placements ? normalize(*grad_placements, local.dim()) : partial_to_replicate(placements);
    WEFT_CHECK(target.size() == placements.size(), "DTensor.from_local: grad_placements ", to_string(target),
               " must have one placement per mesh dim (", placements.size(), ")");
    meta_of(ctx) = SpecMeta{mesh, std::move(target), global_shape};
    ctx->set_materialize_grads(false);
    return make_dtensor(data ? *data : local, mesh, placements, global_shape);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {Tensor()};
    const SpecMeta& meta = meta_of(ctx);
    DTensor g = as_dtensor_gradient(grads[0], meta.mesh, meta.global_shape, "DTensor.from_local");
    return {gradient_to(std::move(g), meta.placements, /*async=*/true).spec().local};
  }
};

// to_local is on every local_map call's path, so it records a plain node rather than a Function
// (no input list, context or output bookkeeping): the local tensor's alias, whose gradient is
// wrapped back with the grad placements, no communication.
struct ToLocalBackward final : autograd::Node {
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;  // a DTensor, not a typed local
  SpecMeta meta;
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    WEFT_CHECK(!grads[0].is_dtensor(), "DTensor.to_local backward: expected a plain local gradient");
    return {make_dtensor(grads[0], meta.mesh, meta.placements, meta.global_shape)};
  }
  std::string name() const override { return "ToLocalBackward"; }
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

}  // namespace

Tensor apply_from_local(const Tensor& local, const std::optional<Tensor>& data, const DeviceMesh& mesh,
                        const Placements& placements, const Shape& global_shape,
                        const std::optional<Placements>& grad_placements) {
  return FromLocal::apply(local, data, mesh, placements, global_shape, grad_placements);
}

Tensor apply_to_local(const DTensor& x, const std::optional<Placements>& grad_placements) {
  const DTensorSpec& spec = x.spec();
  std::optional<Placements> target;  // checked whether or not a node is recorded
  if (grad_placements) {
    target = normalize(*grad_placements, x.dim());
    WEFT_CHECK(target->size() == spec.placements.size(), "DTensor.to_local: grad_placements ", to_string(*target),
               " must have one placement per mesh dim (", spec.placements.size(), ")");
  }
  // An alias: autograd history goes on it, never on the spec's local.
  return autograd::record<ToLocalBackward>(spec.local.detach(), [&](ToLocalBackward& node) {
    node.meta = SpecMeta{spec.mesh, target ? std::move(*target) : partial_to_replicate(spec.placements),
                         spec.global_shape};
  }, static_cast<const Tensor&>(x));
}

Tensor apply_redistribute(const DTensor& x, const Placements& target) {
  return Redistribute::apply(static_cast<const Tensor&>(x), target);
}

}  // namespace weft::dist::detail

namespace weft::dist {
Tensor DTensorSpec::add_gradients(const Tensor& a, const Tensor& b) const { return detail::dtensor_add(a, b); }
}  // namespace weft::dist
