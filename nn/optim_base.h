// weft::optim: the Optimizer base: parameter groups, the step loop, the state dict.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace weft::optim {

// A set of parameters with its own hyperparameters (torch.optim's param_groups), e.g. norms and
// biases without weight decay. An unset lr or weight_decay takes the optimizer's option.
struct ParamGroup {
  std::vector<Tensor> params;
  std::optional<double> lr = std::nullopt;  // initialised, so ParamGroup{params} names every field
  std::optional<double> weight_decay = std::nullopt;
};

// Per-parameter state: the number of steps taken and named buffers ("momentum_buffer", "exp_avg", ...).
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> buffers;
};

// One parameter of a step, as Optimizer::step() hands it to update_group: what update() takes.
struct ParamUpdate {
  Tensor data, grad;
  ParamState* state;
};

// A hyperparameter of a group by name, as the state dict saves it.
using NamedHyper = std::pair<std::string, double*>;

// Note [Optimizer update hooks]
// step() never touches a parameter directly: it asks param_data(p) for the plain tensor to update
// in place and prepare_grad(p) for the plain gradient to use (undefined: skip the parameter).
// The defaults return the parameter and its .grad(), or for a DTensor parameter its local shard and
// its gradient brought to the parameter's placements (see Note [DTensor parameters in optimizers] in
// nn/optim_dist.h), so the update rules run unchanged on local data.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, under NoGradGuard. Refused while the
  // optimizer runs in backward (nn/optim_in_backward.h): the parameters were updated already.
  void step();
  // One update of parameter i alone (params() order) from its gradient, as step() would make it;
  // does nothing when it has none. The optimizer-in-backward hooks call it as each gradient completes.
  void step_param(size_t i);
  // Sets every parameter's gradient to undefined.
  void zero_grad();

  // Group 0's learning rate; set_lr sets every group's.
  double lr() const { return const_cast<Optimizer*>(this)->group_lr(0); }
  void set_lr(double lr);
  size_t num_groups() const { return group_begin_.size(); }
  // The learning rate of group g, which schedulers read and write.
  virtual double& group_lr(size_t g) = 0;
  // Group g's momentum (SGD's and RMSprop's momentum, Adam's beta1), or nullptr for an optimizer
  // without one; OneCycleLR cycles it.
  virtual double* group_momentum(size_t) { return nullptr; }
  // Each group's lr when the first scheduler was attached (PyTorch's "initial_lr"), recorded then.
  std::vector<double>& initial_lrs();

  // Every parameter, group after group; state(i) and the state dict's "state.<i>" use this order.
  const std::vector<Tensor>& params() const { return params_; }
  const ParamState& state(size_t i) const { return state_.at(i); }
  const std::string& name() const { return name_; }
  // Whether an OptimizerInBackward runs this optimizer's updates in backward (nn/optim_in_backward.h).
  bool runs_in_backward() const { return in_backward_; }

  // "state.<i>.step", "state.<i>.<buffer>" (copies) and "param_groups.<g>.<hyperparameter>",
  // all tensors, so that a checkpoint can hold the model's and the optimizer's dicts alike.
  nn::StateDict state_dict() const;
  // Restores what state_dict() wrote, checking the parameter and group counts and buffer shapes.
  void load_state_dict(const nn::StateDict& state);

 protected:
  Optimizer(std::string name, const std::vector<ParamGroup>& groups);
  // See Note [Optimizer update hooks].
  virtual Tensor param_data(const Tensor& param);
  virtual Tensor prepare_grad(const Tensor& param);
  // Updates `data` in place from `grad` (both plain, contiguous, same shape and dtype) with group g's
  // hyperparameters.
  virtual void update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) = 0;
  // Updates every parameter of group g that has a gradient (their steps already counted). The
  // default calls update() on each; a fused optimizer overrides it to make one pass over all of
  // them (AdamW: one parallel region for the whole model instead of one loop per parameter).
  virtual void update_group(size_t g, const std::vector<ParamUpdate>& updates);
  // Group g's hyperparameters by name, lr first, as saved in the state dict.
  virtual std::vector<NamedHyper> hyperparameters(size_t g) = 0;

 private:
  friend class OptimizerInBackward;  // sets in_backward_
  // The group parameter i belongs to.
  size_t group_of(size_t i) const;
  // Parameter i's update as update_group takes it (its step counted), or none without a gradient.
  std::optional<ParamUpdate> prepare_update(size_t i);

  std::string name_;
  std::vector<Tensor> params_;
  std::vector<size_t> group_begin_;  // index in params_ of each group's first parameter
  std::vector<ParamState> state_;
  std::vector<double> initial_lrs_;
  bool in_backward_ = false;
};

// An optimizer whose hyperparameters are an Options struct (with lr and weight_decay members): one
// copy per group, made from `options` with the group's overrides.
template <class Options>
class OptimizerWith : public Optimizer {
 public:
  Options options;  // the defaults the groups were made from

  Options& group_options(size_t g) {
    WEFT_CHECK(g < groups_.size(), name(), ": group ", g, " requested but there are ", groups_.size(), " groups");
    return groups_[g];
  }
  double& group_lr(size_t g) override { return group_options(g).lr; }

 protected:
  OptimizerWith(std::string name, const std::vector<ParamGroup>& groups, const Options& defaults)
      : Optimizer(std::move(name), groups), options(defaults) {
    for (const ParamGroup& group : groups) {
      Options o = defaults;
      if (group.lr) o.lr = *group.lr;
      if (group.weight_decay) o.weight_decay = *group.weight_decay;
      WEFT_CHECK(o.lr >= 0.0 && o.weight_decay >= 0.0, this->name(), ": group ", groups_.size(), " has lr ", o.lr,
                 " and weight_decay ", o.weight_decay, "; expected both >= 0");
      groups_.push_back(o);
    }
  }
  std::vector<Options> groups_;
};

// The parameters in one group, as an optimizer built from a parameter list holds them.
inline std::vector<ParamGroup> one_group(std::vector<Tensor> params) { return {ParamGroup{std::move(params)}}; }

}  // namespace weft::optim
