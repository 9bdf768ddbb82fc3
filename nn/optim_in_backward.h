// weft::optim: the optimizer step fused into backward: each parameter updated as its gradient completes.
#pragma once

#include <cstdint>
#include <memory>

#include "nn/optim_base.h"

namespace weft::optim {

// Note [Optimizer in backward]
// PyTorch's "fuse the optimizer step into the backward pass" (its tutorial's post-accumulate-grad
// hook per parameter, torch.distributed.optim._apply_optimizer_in_backward): a separate step() reads
// every parameter and gradient again after backward, when they have left the cache, and keeps every
// gradient alive until then. In backward, the engine runs a leaf's AccumulateGrad as soon as its
// gradient is complete (every node that uses the parameter has run, so nothing still needs its old
// value); a hook there updates that parameter alone with the optimizer's own rule (step_param: the
// same arithmetic as step(), bit for bit) and then releases the gradient. What follows from it:
// - Gradients cannot be accumulated over several backward passes: each backward is a step. A
//   parameter that already has a gradient when backward reaches it raises weft::Error (with
//   keep_grad, call zero_grad() before the next backward; autograd::grad over such a parameter
//   raises it too, since the check runs in the leaf's gradient hook, which both reach).
// - Nothing that needs every gradient first can run: clip_grad_norm_ and clip_grad_value_ raise
//   weft::Error on such parameters, and so does the optimizer's step(). create_graph is refused.
// - DTensor parameters are refused: their gradients' all-reduces are coalesced by step().
// - lr schedulers work unchanged: they set the optimizer's group lrs, which each update reads. So do
//   the state dict and checkpoints (the state is the optimizer's).
// - An error raised in backward (including one of these) leaves the parameters updated so far updated.

struct InBackwardOptions {
  // Keep each gradient in .grad after its update instead of releasing it (PyTorch's tutorial sets it
  // to None: no gradient outlives its update, which is the memory saving).
  bool keep_grad = false;
};

// While alive, runs `optimizer`'s update of each of its parameters inside backward, as soon as that
// parameter's gradient is complete; destroying it (or disarm()) restores ordinary step()s. The
// optimizer must outlive it (as a scheduler's). Movable, not copyable.
class OptimizerInBackward {
 public:
  OptimizerInBackward(Optimizer& optimizer, InBackwardOptions options = {});
  ~OptimizerInBackward();
  OptimizerInBackward(OptimizerInBackward&&) noexcept = default;
  OptimizerInBackward& operator=(OptimizerInBackward&& other) noexcept;
  OptimizerInBackward(const OptimizerInBackward&) = delete;
  OptimizerInBackward& operator=(const OptimizerInBackward&) = delete;

  Optimizer& optimizer() const;
  // Parameter updates run in backward so far.
  int64_t updates() const;
  // Stops updating in backward (the hooks stay on the parameters, inert: weft has no hook removal).
  void disarm();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// PyTorch's spelling: `auto in_backward = optim::apply_in_backward(opt);` then loss.backward() is the
// whole step (no zero_grad(), no step()).
inline OptimizerInBackward apply_in_backward(Optimizer& optimizer, InBackwardOptions options = {}) {
  return OptimizerInBackward(optimizer, options);
}

// Whether an armed OptimizerInBackward updates `param` in backward (so its gradient never waits for
// a step). `who` names the caller in the error require_not_in_backward raises.
bool updated_in_backward(const Tensor& param);
void require_not_in_backward(const std::vector<Tensor>& params, const char* who);

}  // namespace weft::optim
