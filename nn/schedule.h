// weft::optim learning-rate schedulers with PyTorch's formulas, and cosine decay with linear warmup.
#pragma once

#include <cmath>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "framework/error.h"
#include "nn/optim.h"

namespace weft::optim {

// Note [Closed-form schedules]
// A scheduler sets each group's lr from its epoch count alone, with the closed forms of
// torch.optim.lr_scheduler (PyTorch's chainable get_lr() updates give the same values up to
// rounding when nothing else writes the lr). Like PyTorch's, the constructor applies epoch 0 and
// every step() the next epoch; base lrs are the groups' lrs when the optimizer's first scheduler was
// made (PyTorch's "initial_lr"), so schedulers made one after another all start from them.
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch and sets the optimizer's lrs.
  void step();
  int64_t last_epoch() const { return last_epoch_; }
  // The lrs the last step set, one per group (PyTorch's get_last_lr()).
  const std::vector<double>& last_lr() const { return last_lr_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // Group g's lr at `epoch`.
  virtual double lr_at(int64_t epoch, size_t g) const = 0;
  // Sets the optimizer's lrs (and whatever else the schedule drives) for `epoch`.
  virtual void apply(int64_t epoch);
  const std::string& name() const { return name_; }
  const Optimizer& optimizer() const { return optimizer_; }

 protected:
  LRScheduler(Optimizer& optimizer, std::string name);
  // Applies epoch 0; each constructor calls it last, once its own fields are set.
  void start();

  Optimizer& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = -1;
};

// base * gamma^(epoch / step_size), integer division.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch, size_t g) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// base * gamma^(number of milestones <= epoch); a milestone given twice counts twice.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(int64_t epoch, size_t g) const override;

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

// base * gamma^epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  double lr_at(int64_t epoch, size_t g) const override;

 private:
  double gamma_;
};

// eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2 (SGDR without restarts; past
// t_max the cosine goes on, as PyTorch's does).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);
  double lr_at(int64_t epoch, size_t g) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// base * (start + (end - start) * min(epoch, total_iters) / total_iters).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3.0, double end_factor = 1.0, int64_t total_iters = 5);
  double lr_at(int64_t epoch, size_t g) const override;

 private:
  double start_, end_;
  int64_t total_;
};

// base * lambda(epoch), one function for every group or one per group.
class LambdaLR : public LRScheduler {
 public:
  using Lambda = std::function<double(int64_t)>;
  LambdaLR(Optimizer& optimizer, Lambda lambda);
  LambdaLR(Optimizer& optimizer, std::vector<Lambda> lambdas);
  double lr_at(int64_t epoch, size_t g) const override;

 private:
  std::vector<Lambda> lambdas_;
};

struct OneCycleOptions {
  std::vector<double> max_lr;  // one for every group, or one per group
  int64_t total_steps = 0;
  double pct_start = 0.3;
  bool cos_anneal = true;  // anneal_strategy "cos"; false: "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

// The 1cycle policy (torch.optim.lr_scheduler.OneCycleLR): lr from max_lr/div_factor up to max_lr
// over pct_start of total_steps, then down to max_lr/div_factor/final_div_factor (three_phase: back
// to the start first), and momentum (SGD's and RMSprop's momentum, Adam's beta1) the other way
// between max_momentum and base_momentum. Stepping past total_steps is an error.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, OneCycleOptions options);
  double lr_at(int64_t epoch, size_t g) const override;
  double momentum_at(int64_t epoch) const;
  void apply(int64_t epoch) override;

 private:
  enum Level { kInitial, kMax, kMin };  // a group's lr levels, and momentum's (kMax, kMin: base)
  struct Phase {
    double end_step;
    Level lr_from, lr_to, momentum_from, momentum_to;
  };
  // The phase `epoch` is in and its fraction done.
  std::pair<const Phase*, double> locate(int64_t epoch) const;
  double anneal(double from, double to, double pct) const;

  OneCycleOptions options_;
  std::vector<std::array<double, 3>> lr_levels_;  // per group, by Level
  std::vector<Phase> phases_;
};

// Runs `schedulers` one after another, switching at the epochs in `milestones` (one fewer); each
// restarts from its own epoch 0 (torch.optim.lr_scheduler.SequentialLR). All must drive `optimizer`.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  double lr_at(int64_t epoch, size_t g) const override;
  void apply(int64_t epoch) override;

 private:
  // The scheduler running at `epoch` and its own epoch.
  std::pair<LRScheduler*, int64_t> locate(int64_t epoch) const;

  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

// Linear warmup from base_lr/warmup_steps to base_lr over steps [0, warmup_steps), then a half
// cosine from base_lr down to min_lr at total_steps, and min_lr after that:
//   step < warmup:          base_lr * (step + 1) / warmup_steps
//   warmup <= step <= total: min_lr + (base_lr - min_lr) * (1 + cos(pi * r)) / 2,
//                            r = (step - warmup) / (total - warmup)
class CosineWarmupSchedule {
 public:
  CosineWarmupSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0)
      : base_lr_(base_lr), min_lr_(min_lr), warmup_(warmup_steps), total_(total_steps) {
    WEFT_CHECK(warmup_steps >= 0 && total_steps >= warmup_steps, "CosineWarmupSchedule: expected 0 <= "
               "warmup_steps <= total_steps but got warmup_steps=", warmup_steps, ", total_steps=", total_steps);
  }

  // The learning rate for the 0-based `step`.
  double lr_at(int64_t step) const {
    if (step < warmup_) return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
    if (step >= total_ || total_ == warmup_) return step >= total_ ? min_lr_ : base_lr_;
    double r = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
    return min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * r));
  }

  // Sets the optimizer's learning rate for `step` and returns it.
  double apply(Optimizer& optimizer, int64_t step) const {
    double lr = lr_at(step);
    optimizer.set_lr(lr);
    return lr;
  }

 private:
  double base_lr_, min_lr_;
  int64_t warmup_, total_;
};

}  // namespace weft::optim
