// weft::optim: the Optimizer base with its state dict, SGD, AdamW and clip_grad_norm_.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "nn/optim_dist.h"

namespace weft::optim {

// Per-parameter state: the number of steps taken and named buffers ("momentum_buffer", "exp_avg", ...).
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> buffers;
};

// Note [Optimizer update hooks]
// step() never touches a parameter directly: it asks param_data(p) for the plain tensor to update
// in place and prepare_grad(p) for the plain gradient to use (undefined: skip the parameter).
// The defaults return the parameter and its .grad(), or for a DTensor parameter its local shard and
// its gradient brought to the parameter's placements (see Note [DTensor parameters in optimizers] in
// nn/optim_dist.h), so the update rules below run unchanged on local data.
class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, under NoGradGuard.
  void step();
  // Sets every parameter's gradient to undefined.
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  const std::vector<Tensor>& params() const { return params_; }
  const ParamState& state(size_t i) const { return state_.at(i); }

  // "state.<i>.step", "state.<i>.<buffer>" (copies) and "param_groups.0.<hyperparameter>",
  // all tensors, so that a checkpoint can hold the model's and the optimizer's dicts alike.
  nn::StateDict state_dict() const;
  // Restores what state_dict() wrote, checking the parameter count and buffer shapes.
  void load_state_dict(const nn::StateDict& state);

  virtual std::string name() const = 0;

 protected:
  // See Note [Optimizer update hooks].
  virtual Tensor param_data(const Tensor& param);
  virtual Tensor prepare_grad(const Tensor& param);
  // Updates `data` in place from `grad` (both plain, contiguous, same shape and dtype).
  virtual void update(const Tensor& data, const Tensor& grad, ParamState& state) = 0;
  // The hyperparameters saved in the state dict besides lr, by name.
  virtual std::vector<std::pair<std::string, double*>> hyperparameters() { return {}; }

  std::vector<Tensor> params_;
  std::vector<ParamState> state_;
  double lr_;
};

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.SGD: g += wd*p; buf = g (first step) or momentum*buf + (1-dampening)*g;
// g = g + momentum*buf (nesterov) or buf; p -= lr*g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  std::string name() const override { return "SGD"; }
  SGDOptions options;

 protected:
  void update(const Tensor& data, const Tensor& grad, ParamState& state) override;
  std::vector<std::pair<std::string, double*>> hyperparameters() override;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// torch.optim.AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options);
  std::string name() const override { return "AdamW"; }
  AdamWOptions options;

 protected:
  void update(const Tensor& data, const Tensor& grad, ParamState& state) override;
  std::vector<std::pair<std::string, double*>> hyperparameters() override;
};

// Scales every gradient by max_norm / (total + 1e-6) when the global 2-norm of all gradients,
// `total`, exceeds max_norm (torch.nn.utils.clip_grad_norm_). Returns total. DTensor gradients are
// first brought to their parameters' placements (stored), and `total` is the norm of the global
// gradients, the same on every rank (see Note [DTensor parameters in optimizers], nn/optim_dist.h).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace weft::optim
