// weft::optim learning-rate schedulers: closed forms of torch.optim.lr_scheduler's schedules.
#include "nn/schedule.h"

#include <algorithm>

namespace weft::optim {

// --- LRScheduler ---

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name)
    : optimizer_(optimizer), name_(std::move(name)), base_lrs_(optimizer.initial_lrs()) {}

void LRScheduler::start() {
  last_epoch_ = 0;
  apply(0);
}

void LRScheduler::step() {
  apply(last_epoch_ + 1);
  last_epoch_ += 1;
}

void LRScheduler::apply(int64_t epoch) {
  last_lr_.resize(optimizer_.num_groups());
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) optimizer_.group_lr(g) = last_lr_[g] = lr_at(epoch, g);
}

// --- StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, LambdaLR ---

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  WEFT_CHECK(step_size > 0, "StepLR: expected step_size > 0 but got ", step_size);
  start();
}

double StepLR::lr_at(int64_t epoch, size_t g) const {
  return base_lrs_[g] * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  start();
}

double MultiStepLR::lr_at(int64_t epoch, size_t g) const {
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lrs_[g] * std::pow(gamma_, static_cast<double>(passed));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  start();
}

double ExponentialLR::lr_at(int64_t epoch, size_t g) const {
  return base_lrs_[g] * std::pow(gamma_, static_cast<double>(epoch));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), t_max_(t_max), eta_min_(eta_min) {
  WEFT_CHECK(t_max > 0, "CosineAnnealingLR: expected t_max > 0 but got ", t_max);
  start();
}

double CosineAnnealingLR::lr_at(int64_t epoch, size_t g) const {
  double r = static_cast<double>(epoch) / static_cast<double>(t_max_);
  return eta_min_ + (base_lrs_[g] - eta_min_) * (1.0 + std::cos(std::numbers::pi * r)) / 2.0;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"), start_(start_factor), end_(end_factor), total_(total_iters) {
  WEFT_CHECK(start_factor > 0.0 && start_factor <= 1.0 && end_factor >= 0.0 && end_factor <= 1.0, "LinearLR: expected "
             "start_factor in (0, 1] and end_factor in [0, 1] but got ", start_factor, " and ", end_factor);
  WEFT_CHECK(total_iters > 0, "LinearLR: expected total_iters > 0 but got ", total_iters);
  start();
}

double LinearLR::lr_at(int64_t epoch, size_t g) const {
  double done = static_cast<double>(std::min(epoch, total_)) / static_cast<double>(total_);
  return base_lrs_[g] * (start_ + (end_ - start_) * done);
}

LambdaLR::LambdaLR(Optimizer& optimizer, Lambda lambda)
    : LambdaLR(optimizer, std::vector<Lambda>(optimizer.num_groups(), std::move(lambda))) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<Lambda> lambdas)
    : LRScheduler(optimizer, "LambdaLR"), lambdas_(std::move(lambdas)) {
  WEFT_CHECK(lambdas_.size() == optimizer.num_groups(), "LambdaLR: expected one lambda or one per group (",
             optimizer.num_groups(), ") but got ", lambdas_.size());
  for (size_t g = 0; g < lambdas_.size(); ++g) WEFT_CHECK(bool(lambdas_[g]), "LambdaLR: lambda ", g, " is empty");
  start();
}

double LambdaLR::lr_at(int64_t epoch, size_t g) const { return base_lrs_[g] * lambdas_[g](epoch); }

// --- OneCycleLR ---

OneCycleLR::OneCycleLR(Optimizer& optimizer, OneCycleOptions options)
    : LRScheduler(optimizer, "OneCycleLR"), options_(std::move(options)) {
  const OneCycleOptions& o = options_;
  const size_t groups = optimizer.num_groups();
  WEFT_CHECK(o.total_steps > 0, "OneCycleLR: expected total_steps > 0 but got ", o.total_steps);
  WEFT_CHECK(o.pct_start >= 0.0 && o.pct_start <= 1.0, "OneCycleLR: expected pct_start in [0, 1] but got ", o.pct_start);
  WEFT_CHECK(o.max_lr.size() == 1 || o.max_lr.size() == groups, "OneCycleLR: expected one max_lr or one per group (",
             groups, ") but got ", o.max_lr.size());
  WEFT_CHECK(!o.cycle_momentum || optimizer.group_momentum(0) != nullptr, "OneCycleLR: cycle_momentum needs an "
             "optimizer with a momentum (SGD, RMSprop, Adam, AdamW) but ", optimizer.name(), " has none; pass "
             "cycle_momentum = false");
  const double t = static_cast<double>(o.total_steps);
  if (o.three_phase)
    phases_ = {{o.pct_start * t - 1, kInitial, kMax, kMax, kMin},
               {2 * o.pct_start * t - 2, kMax, kInitial, kMin, kMax},
               {t - 1, kInitial, kMin, kMax, kMax}};
  else
    phases_ = {{o.pct_start * t - 1, kInitial, kMax, kMax, kMin}, {t - 1, kMax, kMin, kMin, kMax}};
  std::vector<double>& initial = optimizer.initial_lrs();  // the schedule's start is the base lr
  for (size_t g = 0; g < groups; ++g) {
    double max_lr = o.max_lr.size() == 1 ? o.max_lr[0] : o.max_lr[g];
    double first = max_lr / o.div_factor;
    lr_levels_.push_back({first, max_lr, first / o.final_div_factor});
    initial[g] = base_lrs_[g] = first;
  }
  start();
}

std::pair<const OneCycleLR::Phase*, double> OneCycleLR::locate(int64_t epoch) const {
  WEFT_CHECK(epoch <= options_.total_steps, "OneCycleLR: tried to step ", epoch, " times but total_steps is ",
             options_.total_steps);
  double begin = 0.0, e = static_cast<double>(epoch);
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& phase = phases_[i];
    if (e <= phase.end_step || i + 1 == phases_.size()) return {&phase, (e - begin) / (phase.end_step - begin)};
    begin = phase.end_step;
  }
  return {nullptr, 0.0};  // unreachable: the last phase takes every epoch
}

double OneCycleLR::anneal(double from, double to, double pct) const {
  if (options_.cos_anneal) return to + (from - to) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
  return (to - from) * pct + from;
}

double OneCycleLR::lr_at(int64_t epoch, size_t g) const {
  auto [phase, pct] = locate(epoch);
  return anneal(lr_levels_[g][phase->lr_from], lr_levels_[g][phase->lr_to], pct);
}

double OneCycleLR::momentum_at(int64_t epoch) const {
  auto [phase, pct] = locate(epoch);
  auto level = [&](Level l) { return l == kMax ? options_.max_momentum : options_.base_momentum; };
  return anneal(level(phase->momentum_from), level(phase->momentum_to), pct);
}

void OneCycleLR::apply(int64_t epoch) {
  LRScheduler::apply(epoch);
  if (!options_.cycle_momentum) return;
  const double momentum = momentum_at(epoch);
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) *optimizer_.group_momentum(g) = momentum;
}

// --- SequentialLR ---

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer, "SequentialLR"), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  WEFT_CHECK(!schedulers_.empty(), "SequentialLR: expected at least one scheduler but got none");
  WEFT_CHECK(milestones_.size() + 1 == schedulers_.size(), "SequentialLR: expected ", schedulers_.size() - 1,
             " milestones (one fewer than the ", schedulers_.size(), " schedulers) but got ", milestones_.size());
  for (size_t i = 0; i < schedulers_.size(); ++i)
    WEFT_CHECK(schedulers_[i] && &schedulers_[i]->optimizer() == &optimizer, "SequentialLR: scheduler ", i,
               schedulers_[i] ? " (" + schedulers_[i]->name() + ") drives another optimizer" : std::string(" is null"));
  WEFT_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), "SequentialLR: expected increasing milestones");
  start();
}

std::pair<LRScheduler*, int64_t> SequentialLR::locate(int64_t epoch) const {
  size_t idx = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return {schedulers_[idx].get(), idx == 0 ? epoch : epoch - milestones_[idx - 1]};
}

double SequentialLR::lr_at(int64_t epoch, size_t g) const {
  auto [scheduler, own] = locate(epoch);
  return scheduler->lr_at(own, g);
}

void SequentialLR::apply(int64_t epoch) {
  auto [scheduler, own] = locate(epoch);
  scheduler->apply(own);
  last_lr_ = scheduler->last_lr();
}

}  // namespace weft::optim
