// nn/optim_dist.h: what the optimizers need for DTensor parameters: the local shard to update, the
// gradient brought to the parameter's placements (coalesced all-reduces), and the global gradient norm.
#pragma once

#include <string>
#include <vector>

#include "framework/tensor.h"

namespace weft::optim {

// Note [DTensor parameters in optimizers]
// A DTensor parameter is updated through its local shard (DTensorSpec::local, in place), and its
// optimizer state lives beside that shard with the shard's shape. Before the update its gradient is
// brought to the parameter's placements: a P(sum) gradient of a Replicate weight (data parallel) is
// all-reduced, a Shard gradient of a Shard weight (tensor parallel) is used as it is, with no
// communication. Gradients are never all-reduced twice: sync_grads() stores the result as the
// parameter's gradient, so clip_grad_norm_ followed by step() communicates once. A data-parallel
// model with overlap_grad_reduce hands over gradients already Replicate, their sums possibly still
// in flight (nn/parallel.h, Note [Overlapped gradient reduction]): nothing moves, and reading a
// gradient's data waits for its all_reduce.

// The plain tensor an update writes into: the parameter itself or a DTensor's local shard.
// `who` names the optimizer in errors.
Tensor local_param(const Tensor& param, const std::string& who);

// The parameter's gradient as a plain tensor in the parameter's placements (undefined when there is
// no gradient). Redistributes a DTensor gradient whose placements differ; does not store it.
Tensor local_grad(const Tensor& param, const std::string& who);

// Brings every DTensor gradient of `params` to its parameter's placements and stores it as the
// parameter's gradient. Gradients that only need Partial -> Replicate on some mesh dims are
// flattened into one buffer per (mesh, dtype, reduce op, mesh dims) and all-reduced together: a
// data-parallel step costs one all_reduce, not one per parameter. Returns how many gradients moved.
int64_t sync_grads(const std::vector<Tensor>& params);

// The squared global 2-norm of the parameters' gradients after sync_grads: each local shard's sum of
// squares, summed over the mesh dims where some gradient is Shard, with Replicate copies counted once.
// Plain gradients count as replicated. Accumulated in double.
double global_grad_norm_sq(const std::vector<Tensor>& params);

}  // namespace weft::optim
