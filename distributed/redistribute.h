// redistribute.h: the executor of redistribute plans on local tensors (no autograd), and the one
// path by which every DTensor gradient reaches its placements.
#pragma once

#include <span>

#include "distributed/device_mesh.h"
#include "distributed/dtensor.h"
#include "distributed/placement.h"
#include "framework/tensor.h"

namespace weft::dist {

// This rank's local tensor after moving from `source` to `target` placements (a plan from
// cached_redistribute_plan, executed step by step). Records no autograd; `local` is not modified.
// Ranks outside the mesh get `local` back. With `async`, the last step's collective is started
// and not waited for: the result waits on its first data access (see Note [Gradients in flight]).
Tensor redistribute_local(const Tensor& local, const DeviceMesh& mesh, const Placements& source,
                          const Placements& target, const Shape& global_shape, bool async = false);

// The gradient of a DTensor output (on `mesh`, of `global_shape`) as a DTensor. A plain gradient of
// the global shape (a user's y.backward(g)) is the full gradient on every rank: all Replicate.
DTensor as_dtensor_gradient(const Tensor& grad, const DeviceMesh& mesh, const Shape& global_shape, const char* op);

// `grad` moved to `target` placements (Partial allowed), records no autograd. With `async` its last
// collective stays in flight (Note [Gradients in flight]). See Note [One gradient path].
DTensor gradient_to(DTensor grad, std::span<const Placement> target, bool async);

// Where the gradient of a redistribute goes, per mesh dim: to Replicate when the forward input was
// Partial and the gradient is Shard or Replicate, else to the forward input's placement.
Placements redistribute_backward_target(const Placements& forward_source, const Placements& grad_placements);

// Placements with every Partial replaced by Replicate (the default gradient placements).
Placements partial_to_replicate(Placements placements);

}  // namespace weft::dist
