// weft::optim learning-rate schedules: cosine decay with linear warmup.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "framework/error.h"
#include "nn/optim.h"

namespace weft::optim {

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
