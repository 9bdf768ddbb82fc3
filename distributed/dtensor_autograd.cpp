// dtensor_autograd.cpp: the autograd Functions behind from_local / to_local / redistribute, and the
// gradient arithmetic that adds DTensor gradients (registered with the engine).
#include "autograd/function.h"
#include "distributed/dtensor.h"
#include "distributed/redistribute.h"
#include "ops/binary.h"

namespace weft::dist::detail {

void ensure_gradient_arithmetic();

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

struct ToLocal : autograd::Function<ToLocal> {
  using State = SpecMeta;
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const std::optional<Placements>& grad_placements) {
    DTensor x(input);
    const DTensorSpec& spec = x.spec();
    Placements target = grad_placements ? normalize(*grad_placements, x.dim()) : partial_to_replicate(spec.placements);
    WEFT_CHECK(target.size() == spec.placements.size(), "DTensor.to_local: grad_placements ", to_string(target),
               " must have one placement per mesh dim (", spec.placements.size(), ")");
    meta_of(ctx) = SpecMeta{spec.mesh, std::move(target), spec.global_shape};
    ctx->set_materialize_grads(false);
    return spec.local.detach();  // an alias: autograd history goes on it, never on the spec's local
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {Tensor()};
    const SpecMeta& meta = meta_of(ctx);
    WEFT_CHECK(!grads[0].is_dtensor(), "DTensor.to_local backward: expected a plain local gradient");
    return {make_dtensor(grads[0], meta.mesh, meta.placements, meta.global_shape)};
  }
};

// Note [DTensor gradient arithmetic]
// The engine adds gradients through gradient_arithmetic().add. Plain tensors go to the function
// that was registered before ours (ops/); a DTensor pair is added by redistributing the second to
// the first's placements (Partial allowed) and adding the locals. ops/ installs its add only when
// none is registered, so whichever loads first, plain adds end up in ops.
Tensor (*previous_add)(const Tensor&, const Tensor&) = nullptr;

Tensor plain_add(const Tensor& a, const Tensor& b) {
  if (previous_add) return previous_add(a, b);
  NoGradGuard no_grad;
  return weft::add(a, b);
}

Tensor dtensor_add(const Tensor& a, const Tensor& b) {
  if (!a.is_dtensor() && !b.is_dtensor()) return plain_add(a, b);
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

[[maybe_unused]] const bool registered = (ensure_gradient_arithmetic(), true);

}  // namespace

void ensure_gradient_arithmetic() {
  auto& arithmetic = autograd::gradient_arithmetic();
  if (arithmetic.add == &dtensor_add) return;
  // Someone wrapped us after we found a previous add: leave their chain alone.
  if (previous_add != nullptr) return;
  previous_add = arithmetic.add;
  arithmetic.add = &dtensor_add;
}

Tensor apply_from_local(const Tensor& local, const std::optional<Tensor>& data, const DeviceMesh& mesh,
                        const Placements& placements, const Shape& global_shape,
                        const std::optional<Placements>& grad_placements) {
  return FromLocal::apply(local, data, mesh, placements, global_shape, grad_placements);
}

Tensor apply_to_local(const DTensor& x, const std::optional<Placements>& grad_placements) {
  return ToLocal::apply(static_cast<const Tensor&>(x), grad_placements);
}

Tensor apply_redistribute(const DTensor& x, const Placements& target) {
  return Redistribute::apply(static_cast<const Tensor&>(x), target);
}

}  // namespace weft::dist::detail
