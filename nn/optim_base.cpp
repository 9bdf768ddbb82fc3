// weft::optim: the Optimizer base: parameter groups, the step loop over local data, the state dict.
#include "nn/optim_base.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "nn/optim_dist.h"

namespace weft::optim {

Optimizer::Optimizer(std::string name, const std::vector<ParamGroup>& groups) : name_(std::move(name)) {
  WEFT_CHECK(!groups.empty(), name_, ": expected at least one parameter group but got none");
  for (const ParamGroup& group : groups) {
    group_begin_.push_back(params_.size());
    params_.insert(params_.end(), group.params.begin(), group.params.end());
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    WEFT_CHECK(params_[i].defined(), name_, ": parameter ", i, " is undefined");
    WEFT_CHECK(params_[i].is_floating_point(), name_, ": parameter ", i, " has dtype ", params_[i].dtype(),
               "; only float32 and float64 parameters can be optimized");
    for (size_t j = 0; j < i; ++j)
      WEFT_CHECK(!params_[i].is_same(params_[j]), name_, ": parameter ", i, " appears twice (also at ", j,
                 "); a parameter belongs to one group once");
  }
  state_.resize(params_.size());
}

void Optimizer::set_lr(double lr) {
  WEFT_CHECK(lr >= 0.0, name_, ".set_lr: expected a learning rate >= 0 but got ", lr);
  for (size_t g = 0; g < num_groups(); ++g) group_lr(g) = lr;
}

std::vector<double>& Optimizer::initial_lrs() {
  if (initial_lrs_.empty())
    for (size_t g = 0; g < num_groups(); ++g) initial_lrs_.push_back(group_lr(g));
  return initial_lrs_;
}

// See Note [DTensor parameters in optimizers] (nn/optim_dist.h).
Tensor Optimizer::param_data(const Tensor& param) { return local_param(param, name_); }

Tensor Optimizer::prepare_grad(const Tensor& param) { return local_grad(param, name_); }

void Optimizer::update_group(size_t g, const std::vector<ParamUpdate>& updates) {
  for (const ParamUpdate& u : updates) update(g, u.data, u.grad, *u.state);
}

std::optional<ParamUpdate> Optimizer::prepare_update(size_t i) {
  Tensor grad = prepare_grad(params_[i]);
  if (!grad.defined()) return std::nullopt;
  Tensor data = param_data(params_[i]);
  WEFT_CHECK(grad.shape() == data.shape(), name_, ": gradient of parameter ", i, " has shape ", grad.shape(),
             " but the parameter has shape ", data.shape());
  if (grad.dtype() != data.dtype() || !grad.is_contiguous()) {
    Tensor fixed = kernels::contiguous_copy(grad, data.dtype());
    grad = fixed;
  }
  state_[i].step += 1;
  return ParamUpdate{data, grad, &state_[i]};
}

size_t Optimizer::group_of(size_t i) const {
  return static_cast<size_t>(std::upper_bound(group_begin_.begin(), group_begin_.end(), i) - group_begin_.begin()) - 1;
}

void Optimizer::step() {
  WEFT_CHECK(!in_backward_, name_, ".step: this optimizer updates its parameters in backward (apply_in_backward), ",
             "as each gradient completes; step() would update them a second time");
  NoGradGuard no_grad;
  sync_grads(params_);  // DTensor gradients to their parameters' placements, all-reduces coalesced
  std::vector<ParamUpdate> updates;
  auto flush = [&](size_t group) {
    if (updates.empty()) return;
    update_group(group, updates);
    for (const ParamUpdate& u : updates) u.data.bump_version();
    updates.clear();
  };
  size_t g = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    while (g + 1 < group_begin_.size() && group_begin_[g + 1] <= i) flush(g++);
    if (std::optional<ParamUpdate> u = prepare_update(i)) updates.push_back(*u);
  }
  flush(g);
}

void Optimizer::step_param(size_t i) {
  WEFT_CHECK(i < params_.size(), name_, ".step_param: parameter ", i, " requested but there are ", params_.size());
  NoGradGuard no_grad;
  std::optional<ParamUpdate> u = prepare_update(i);
  if (!u) return;
  update_group(group_of(i), {*u});  // a fused optimizer's pass over one parameter: the same arithmetic
  u->data.bump_version();
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_)
    if (p.grad().defined()) p.set_grad(Tensor());
}

nn::StateDict Optimizer::state_dict() const {
  nn::StateDict out;
  for (size_t i = 0; i < state_.size(); ++i) {
    if (state_[i].step == 0) continue;  // no state yet, as in PyTorch
    std::string prefix = "state." + std::to_string(i) + ".";
    out.insert(prefix + "step", scalar_tensor(state_[i].step, dtype(kInt64)));
    for (const auto& [key, buf] : state_[i].buffers) out.insert(prefix + key, kernels::contiguous_copy(buf));
  }
  for (size_t g = 0; g < num_groups(); ++g)
    for (auto& [key, value] : const_cast<Optimizer*>(this)->hyperparameters(g))
      out.insert("param_groups." + std::to_string(g) + "." + key, scalar_tensor(*value, dtype(kFloat64)));
  return out;
}

namespace {

// The <index> and the rest of "<prefix><index>.<rest>", checking index < count.
std::pair<size_t, std::string> split_indexed(const std::string& key, const std::string& prefix, size_t count,
                                             const std::string& who, const char* what) {
  size_t dot = key.find('.', prefix.size());
  WEFT_CHECK(dot != std::string::npos && dot > prefix.size(), who, ".load_state_dict: malformed key '", key, "'");
  size_t index = std::stoul(key.substr(prefix.size(), dot - prefix.size()));
  WEFT_CHECK(index < count, who, ".load_state_dict: key '", key, "' names ", what, " ", index, " but this optimizer",
             " has ", count, " ", what, "s");
  return {index, key.substr(dot + 1)};
}

}  // namespace

void Optimizer::load_state_dict(const nn::StateDict& state) {
  std::vector<ParamState> loaded(params_.size());
  const std::string state_prefix = "state.", group_prefix = "param_groups.";
  for (const auto& [key, value] : state) {
    if (key.rfind(group_prefix, 0) == 0) split_indexed(key, group_prefix, num_groups(), name_, "group");
    if (key.rfind(state_prefix, 0) != 0) continue;
    auto [index, field] = split_indexed(key, state_prefix, params_.size(), name_, "parameter");
    if (field == "step") {
      loaded[index].step = value.item<int64_t>();
      continue;
    }
    const Shape want = param_data(params_[index]).shape();  // a DTensor's state is shaped as its shard
    WEFT_CHECK(value.shape() == want, name_, ".load_state_dict: size mismatch for '", key, "': the state dict has",
               " shape ", value.shape(), " but parameter ", index, " has shape ", want);
    Tensor buf = kernels::make_empty(want, params_[index].dtype());
    kernels::copy_into(buf, value);
    loaded[index].buffers[field] = buf;
  }
  // Hyperparameters are read last so that a bad state entry leaves the optimizer unchanged.
  for (size_t g = 0; g < num_groups(); ++g)
    for (auto& [key, slot] : hyperparameters(g))
      if (const Tensor* v = state.find("param_groups." + std::to_string(g) + "." + key)) *slot = v->item<double>();
  state_ = std::move(loaded);
}

}  // namespace weft::optim
