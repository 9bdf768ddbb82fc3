// weft::optim: the update rules (SGD, Adam, AdamW, RMSprop, Adagrad) and gradient clipping.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "nn/optim_base.h"
#include "nn/optim_dist.h"

namespace weft::optim {

// Every optimizer takes either a parameter list (one group) or parameter groups, and PyTorch's
// defaults; a group's lr and weight_decay override the options' (see ParamGroup).

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.SGD: g += wd*p; buf = g (first step) or momentum*buf + (1-dampening)*g;
// g = g + momentum*buf (nesterov) or buf; p -= lr*g.
class SGD : public OptimizerWith<SGDOptions> {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options) : SGD(one_group(std::move(params)), options) {}
  SGD(const std::vector<ParamGroup>& groups, SGDOptions options);
  double* group_momentum(size_t g) override { return &group_options(g).momentum; }

 protected:
  void update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) override;
  // One fused, vectorised pass over the group's parameters (kernels::sgd_step).
  void update_group(size_t g, const std::vector<ParamUpdate>& updates) override;
  std::vector<NamedHyper> hyperparameters(size_t g) override;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};

// AdamW's options: Adam's with PyTorch's AdamW default weight decay.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

// torch.optim.Adam: g += wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; vmax = max(vmax, v)
// (amsgrad, then used for v); p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
class Adam : public OptimizerWith<AdamOptions> {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options) : Adam(one_group(std::move(params)), options) {}
  Adam(const std::vector<ParamGroup>& groups, AdamOptions options);
  double* group_momentum(size_t g) override { return &group_options(g).beta1; }

 protected:
  void update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) override;
  // As AdamW's: one fused pass over the group (amsgrad: per parameter).
  void update_group(size_t g, const std::vector<ParamUpdate>& updates) override;
  std::vector<NamedHyper> hyperparameters(size_t g) override;
};

// torch.optim.AdamW: Adam with decoupled decay, p *= 1 - lr*wd before the update instead of g += wd*p.
class AdamW : public OptimizerWith<AdamWOptions> {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options) : AdamW(one_group(std::move(params)), options) {}
  AdamW(const std::vector<ParamGroup>& groups, AdamWOptions options);
  double* group_momentum(size_t g) override { return &group_options(g).beta1; }

 protected:
  void update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) override;
  // One fused, vectorised pass over the group's float32 and float64 parameters (amsgrad: per parameter).
  void update_group(size_t g, const std::vector<ParamUpdate>& updates) override;
  std::vector<NamedHyper> hyperparameters(size_t g) override;
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

// torch.optim.RMSprop: g += wd*p; s = alpha s + (1-alpha) g^2; avg = sqrt(s - a^2) + eps with
// a = alpha a + (1-alpha) g (centered) or sqrt(s) + eps; buf = momentum buf + g/avg, p -= lr buf
// (momentum > 0) or p -= lr g/avg.
class RMSprop : public OptimizerWith<RMSpropOptions> {
 public:
  RMSprop(std::vector<Tensor> params, RMSpropOptions options) : RMSprop(one_group(std::move(params)), options) {}
  RMSprop(const std::vector<ParamGroup>& groups, RMSpropOptions options);
  double* group_momentum(size_t g) override { return &group_options(g).momentum; }

 protected:
  void update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) override;
  std::vector<NamedHyper> hyperparameters(size_t g) override;
};

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

// torch.optim.Adagrad: g += wd*p; sum += g^2 (starting at initial_accumulator_value);
// p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(sum) + eps).
class Adagrad : public OptimizerWith<AdagradOptions> {
 public:
  Adagrad(std::vector<Tensor> params, AdagradOptions options) : Adagrad(one_group(std::move(params)), options) {}
  Adagrad(const std::vector<ParamGroup>& groups, AdagradOptions options);

 protected:
  void update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) override;
  std::vector<NamedHyper> hyperparameters(size_t g) override;
};

// Scales every gradient by max_norm / (total + 1e-6) when the global 2-norm of all gradients,
// `total`, exceeds max_norm (torch.nn.utils.clip_grad_norm_). Returns total. DTensor gradients are
// first brought to their parameters' placements (stored), and `total` is the norm of the global
// gradients, the same on every rank (see Note [DTensor parameters in optimizers], nn/optim_dist.h).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

// Clamps every gradient into [-clip_value, clip_value] in place (torch.nn.utils.clip_grad_value_).
// DTensor gradients are first brought to their parameters' placements (a Partial sum has no
// elements to clamp).
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace weft::optim
