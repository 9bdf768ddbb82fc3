// nn/activation_checkpoint.cpp: checkpoint() as one custom autograd Function whose backward
// recomputes the forward with grad enabled and runs a nested backward through it.
#include "nn/activation_checkpoint.h"

#include <mutex>

#include "autograd/autocast_mode.h"
#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "framework/generator.h"

namespace weft::nn {
namespace {

Generator::State generator_state() {
  Generator& g = default_generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.state();
}

void set_generator_state(const Generator::State& s) {
  Generator& g = default_generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(s);
}

struct Checkpoint : autograd::Function<Checkpoint> {
  struct State {
    CheckpointFn fn;
    Generator::State rng;  // the default generator before the forward: the recomputation replays it
    bool autocast = false;  // and autocast as the forward found it (backward runs with it suspended)
    DType autocast_dtype = kBFloat16;
  };

  static Tensor forward(autograd::AutogradContext* ctx, const TensorList& inputs, const CheckpointFn& fn) {
    State& st = ctx->state<State>();
    st.fn = fn;
    st.rng = generator_state();
    st.autocast = autocast_enabled();
    st.autocast_dtype = autocast_dtype();
    ctx->save_for_backward(inputs);
    return fn(inputs);  // under no-grad (Function::apply): nothing inside is recorded or kept
  }

  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list grads) {
    State& st = ctx->state<State>();
    autograd::variable_list inputs = ctx->get_saved_variables();
    for (size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = inputs[i].detach();
      if (ctx->needs_input_grad(i)) inputs[i].requires_grad_();
    }
    // Recompute with the generator as the forward found it, then give the caller's draws back.
    const Generator::State now = generator_state();
    set_generator_state(st.rng);
    Tensor out;
    try {
      EnableGradGuard enable;
      AutocastGuard autocast(st.autocast_dtype, st.autocast);
      out = st.fn(inputs);
    } catch (...) {
      set_generator_state(now);
      throw;
    }
    set_generator_state(now);
    if (out.requires_grad()) autograd::backward({out}, {grads[0]});
    autograd::variable_list result;
    for (size_t i = 0; i < inputs.size(); ++i) result.push_back(ctx->needs_input_grad(i) ? inputs[i].grad() : Tensor());
    return result;
  }
};

}  // namespace

Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  WEFT_CHECK(fn != nullptr, "checkpoint: expected a function to run but got an empty one");
  WEFT_CHECK(!inputs.empty(), "checkpoint: expected at least one input tensor (the recomputation starts from the "
             "inputs) but got none");
  bool any = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    WEFT_CHECK(inputs[i].defined(), "checkpoint: input ", i, " is an undefined tensor; expected defined inputs");
    any = any || inputs[i].requires_grad();
  }
  if (!GradMode::is_enabled() || !any) return fn(inputs);
  return Checkpoint::apply(inputs, fn);
}

}  // namespace weft::nn
