// The two nodes at the border between DTensors and their local tensors: to_local's (a local alias
// whose gradient goes back as a DTensor) and from_local's (a DTensor whose gradient goes back as a
// local tensor). DTensor.to_local, DTensor.from_local and local_map's inputs and outputs record
// them (Note [local_map on the outer tape] in local_map.cpp). Internal to distributed/.
#pragma once

#include "autograd/node.h"
#include "distributed/dtensor.h"

namespace weft::dist::detail {

// The spec of `t`, which the caller has seen is a DTensor (t.is_dtensor()): no check, no copy.
inline const DTensorSpec& spec_of(const Tensor& t) { return static_cast<const DTensorSpec&>(*t.impl()->dist); }

// The default gradient placements of from_local and to_local: every Partial becomes Replicate.
inline Placements& replicate_partials(Placements& placements) {
  for (Placement& p : placements)
    if (p.is_partial()) p = Replicate();
  return placements;
}

// What both nodes keep: where their gradient goes (mesh, normalised placements, global shape), and
// the op their errors name. Their inputs or outputs are DTensors, not typed local tensors, so no
// SPMD rule applies (Note [Local SPMD types]).
struct BorderNode : autograd::Node {
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;
  DeviceMesh mesh;
  Placements grad_placements;
  Shape global_shape;
  const char* op = "";
};

// to_local's node: its input is a DTensor, its output the local tensor's alias. The local
// gradient goes back wrapped with grad_placements, no communication.
struct ToLocalBackward final : BorderNode {
  ToLocalBackward() { op = "DTensor.to_local"; }
  autograd::variable_list apply(autograd::variable_list&& grads) override;
  std::string name() const override { return "ToLocalBackward"; }
};

// from_local's node: its input is a local tensor, its output a DTensor. The DTensor gradient is
// brought to grad_placements, any collective started at once (Note [Gradients in flight]), and
// its local part goes back.
struct FromLocalBackward final : BorderNode {
  FromLocalBackward() { op = "DTensor.from_local"; }
  autograd::variable_list apply(autograd::variable_list&& grads) override;
  std::string name() const override { return "FromLocalBackward"; }
};

}  // namespace weft::dist::detail
