// weft::optim: the optimizer step fused into backward (Note [Optimizer in backward]).
#include "nn/optim_in_backward.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "framework/autograd_meta.h"

namespace weft::optim {

namespace {

// The parameters armed OptimizerInBackwards update, so that clipping and other optimizers can refuse
// them. Weak: a parameter dies whenever its model does, and a new tensor at its address is not it.
struct Registry {
  std::mutex mutex;
  std::unordered_map<const TensorImpl*, std::weak_ptr<TensorImpl>> params;
  std::atomic<size_t> size{0};  // read without the lock: the common case is an empty registry
};

Registry& registry() {
  static Registry r;  // made on first use, not at load time
  return r;
}

}  // namespace

struct OptimizerInBackward::State {
  Optimizer* optimizer;
  InBackwardOptions options;
  std::atomic<bool> armed{true};
  std::atomic<int64_t> updates{0};
  std::vector<std::weak_ptr<TensorImpl>> params;
};

bool updated_in_backward(const Tensor& param) {
  Registry& r = registry();
  if (r.size.load(std::memory_order_relaxed) == 0 || !param.defined()) return false;
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.params.find(param.impl());
  return it != r.params.end() && it->second.lock() == param.impl_ptr();
}

void require_not_in_backward(const std::vector<Tensor>& params, const char* who) {
  if (registry().size.load(std::memory_order_relaxed) == 0) return;
  for (size_t i = 0; i < params.size(); ++i)
    WEFT_CHECK(!updated_in_backward(params[i]), who, ": parameter ", i,
               " is updated in backward by an optimizer (apply_in_backward), which applies and releases each ",
               "gradient as soon as it is complete, so ", who, " cannot see every gradient first; use the ",
               "ordinary step() to clip");
}

OptimizerInBackward::OptimizerInBackward(Optimizer& optimizer, InBackwardOptions options)
    : state_(std::make_shared<State>()) {
  const std::string& who = optimizer.name();
  WEFT_CHECK(!optimizer.in_backward_, "apply_in_backward: ", who,
             " already runs in backward; disarm the first OptimizerInBackward before making another");
  const std::vector<Tensor>& params = optimizer.params();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    WEFT_CHECK(!p.is_dtensor(), "apply_in_backward: ", who, "'s parameter ", i,
               " is a DTensor; its gradient's all-reduce is coalesced with the others' by step(), so only ",
               "plain parameters can be updated in backward");
    WEFT_CHECK(p.requires_grad() && p.is_leaf(), "apply_in_backward: ", who, "'s parameter ", i,
               " is not a leaf that requires grad, so backward never completes a gradient for it");
    WEFT_CHECK(!updated_in_backward(p), "apply_in_backward: ", who, "'s parameter ", i,
               " is already updated in backward by another optimizer");
  }
  state_->optimizer = &optimizer;
  state_->options = options;
  std::shared_ptr<State> state = state_;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    // The hooks live in the parameter's autograd meta, so the raw impl is alive whenever they run;
    // they hold the state, never the parameter (that would be a cycle).
    const TensorImpl* impl = p.impl();
    p.register_hook([state, impl, i](const Tensor&) {
      if (!state->armed.load(std::memory_order_relaxed)) return Tensor();
      const bool has_grad = impl->autograd && impl->autograd->grad.defined();
      WEFT_CHECK(!has_grad, "apply_in_backward: ", state->optimizer->name(), "'s parameter ", i,
                 " already has a gradient when backward reaches it; with the step in backward each backward ",
                 "is one step and gradients cannot be accumulated over several (call zero_grad() after a ",
                 "keep_grad step, or use the ordinary step())");
      return Tensor();  // the gradient unchanged
    });
    p.register_post_accumulate_grad_hook([state, i](const Tensor& param) {
      if (!state->armed.load(std::memory_order_relaxed)) return;
      WEFT_CHECK(!GradMode::is_enabled(), "apply_in_backward: backward with create_graph reached ",
                 state->optimizer->name(), "'s parameter ", i, "; a step in backward would change the ",
                 "parameter the new graph differentiates, so create_graph is not supported with it");
      state->optimizer->step_param(i);
      state->updates.fetch_add(1, std::memory_order_relaxed);
      if (!state->options.keep_grad) param.set_grad(Tensor());
    });
    state_->params.push_back(p.impl_ptr());
  }
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const Tensor& p : params) r.params[p.impl()] = p.impl_ptr();
    r.size.store(r.params.size());
  }
  optimizer.in_backward_ = true;
}

OptimizerInBackward::~OptimizerInBackward() { disarm(); }

OptimizerInBackward& OptimizerInBackward::operator=(OptimizerInBackward&& other) noexcept {
  if (this != &other) {
    disarm();
    state_ = std::move(other.state_);
  }
  return *this;
}

Optimizer& OptimizerInBackward::optimizer() const {
  WEFT_CHECK(state_, "OptimizerInBackward: used after it was moved from");
  return *state_->optimizer;
}

int64_t OptimizerInBackward::updates() const { return state_ ? state_->updates.load() : 0; }

void OptimizerInBackward::disarm() {
  if (!state_ || !state_->armed.exchange(false)) return;
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const std::weak_ptr<TensorImpl>& weak : state_->params) {
      std::shared_ptr<TensorImpl> p = weak.lock();
      if (!p) continue;  // died: its entry (if still there) is expired and ignored
      auto it = r.params.find(p.get());
      if (it != r.params.end() && it->second.lock() == p) r.params.erase(it);
    }
    std::erase_if(r.params, [](const auto& entry) { return entry.second.expired(); });
    r.size.store(r.params.size());
  }
  state_->optimizer->in_backward_ = false;
}

}  // namespace weft::optim
