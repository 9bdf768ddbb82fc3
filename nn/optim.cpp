// weft::optim: the update rules as loops over contiguous float32/float64 data, run under NoGradGuard.
#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "autograd/grad_mode.h"
#include "distributed/collectives.h"
#include "distributed/dtensor.h"
#include "framework/factories.h"
#include "kernels/optim_kernels.h"
#include "kernels/threads.h"
#include "kernels/toolkit.h"
#include "nn/optim_in_backward.h"

namespace weft::optim {

namespace {

// The optimizer state buffer `key`, made filled with `init` on first use.
Tensor buffer(ParamState& state, const char* key, const Tensor& like, double init = 0.0) {
  auto it = state.buffers.find(key);
  if (it != state.buffers.end()) return it->second;
  Tensor made = init == 0.0 ? zeros(like.shape(), dtype(like.dtype())) : full(like.shape(), init, dtype(like.dtype()));
  return state.buffers[key] = made;
}

// Large tensors are updated by every thread; small ones are not worth waking them.
constexpr int64_t kParallelUpdate = 1 << 16;

// Adam's and AdamW's rules in one loop, specialized so that the plain AdamW step (the hot case)
// stays the four lines it was. kDecoupled: AdamW's p *= 1 - lr*wd instead of g += wd*p.
template <bool kDecoupled, bool kAmsgrad, class Options>
void adam_update(const Options& o, const Tensor& data, const Tensor& grad, ParamState& state, const char* who) {
  Tensor exp_avg = buffer(state, "exp_avg", data), exp_avg_sq = buffer(state, "exp_avg_sq", data);
  Tensor max_sq = kAmsgrad ? buffer(state, "max_exp_avg_sq", data) : Tensor();
  const double t = static_cast<double>(state.step);
  const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, t));
  visit_floating(data.dtype(), who, [&](auto tag) {
    using T = decltype(tag);
    T* p = data.template data_ptr<T>();
    const T* g = grad.template data_ptr<T>();
    T* m = exp_avg.template data_ptr<T>();
    T* v = exp_avg_sq.template data_ptr<T>();
    T* vmax = kAmsgrad ? max_sq.template data_ptr<T>() : nullptr;
    const T decay = T(1.0 - o.lr * o.weight_decay), wd = T(o.weight_decay);
    const T b1 = T(o.beta1), b2 = T(o.beta2), eps = T(o.eps);
    const T step_size = T(o.lr / bias_correction1), bc2 = T(bias_correction2_sqrt);
    const int64_t n = data.numel();
#pragma omp parallel for if (n > kParallelUpdate) num_threads(get_num_threads())
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i];
      if constexpr (kDecoupled) p[i] *= decay;
      else if (wd != T(0)) gi += wd * p[i];
      m[i] += (T(1) - b1) * (gi - m[i]);  // PyTorch's exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      T denom_sq = v[i];
      if constexpr (kAmsgrad) denom_sq = vmax[i] = std::max(vmax[i], v[i]);
      p[i] -= step_size * m[i] / (std::sqrt(denom_sq) / bc2 + eps);
    }
  });
}

// Adam's and AdamW's rule over every parameter of a group at once (kernels::adam_step); parameters of
// a dtype the fused kernel does not take go through `one`, the per-parameter rule.
template <class Options, class One>
void fused_adam_update(const Options& o, bool decoupled, const std::vector<ParamUpdate>& updates, One one) {
  std::vector<kernels::AdamSpan<float>> f32;
  std::vector<kernels::AdamSpan<double>> f64;
  auto span = [&](auto* tag, const ParamUpdate& u) {
    using T = std::remove_pointer_t<decltype(tag)>;
    Tensor m = buffer(*u.state, "exp_avg", u.data), v = buffer(*u.state, "exp_avg_sq", u.data);
    const double t = static_cast<double>(u.state->step);
    return kernels::AdamSpan<T>{u.data.template data_ptr<T>(), u.grad.template data_ptr<T>(), m.template data_ptr<T>(),
                                v.template data_ptr<T>(), u.data.numel(), o.lr / (1.0 - std::pow(o.beta1, t)),
                                std::sqrt(1.0 - std::pow(o.beta2, t))};
  };
  for (const auto& u : updates) {
    if (u.data.dtype() == kFloat32) f32.push_back(span(static_cast<float*>(nullptr), u));
    else if (u.data.dtype() == kFloat64) f64.push_back(span(static_cast<double*>(nullptr), u));
    else one(u);
  }
  const kernels::AdamScalars s{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, decoupled};
  if (!f32.empty()) kernels::adam_step(f32, s);
  if (!f64.empty()) kernels::adam_step(f64, s);
}

template <class Options>
void check_adam_options(const std::vector<Options>& groups, const std::string& who) {
  for (const Options& o : groups) {
    WEFT_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0 && o.beta2 >= 0.0 && o.beta2 < 1.0, who,
               ": betas must be in [0, 1) but got (", o.beta1, ", ", o.beta2, ")");
    WEFT_CHECK(o.eps >= 0.0, who, ": expected eps >= 0 but got ", o.eps);
  }
}

template <class Options>
std::vector<NamedHyper> adam_hyperparameters(Options& o) {
  return {{"lr", &o.lr}, {"beta1", &o.beta1}, {"beta2", &o.beta2}, {"eps", &o.eps}, {"weight_decay", &o.weight_decay}};
}

}  // namespace

// --- SGD ---

SGD::SGD(const std::vector<ParamGroup>& groups, SGDOptions opts) : OptimizerWith("SGD", groups, opts) {
  for (const SGDOptions& o : groups_) {
    WEFT_CHECK(o.momentum >= 0.0, "SGD: expected momentum >= 0 but got ", o.momentum);
    WEFT_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), "SGD: nesterov momentum requires a "
               "momentum > 0 and zero dampening but got momentum ", o.momentum, " and dampening ", o.dampening);
  }
}

std::vector<NamedHyper> SGD::hyperparameters(size_t g) {
  SGDOptions& o = group_options(g);
  return {{"lr", &o.lr}, {"momentum", &o.momentum}, {"dampening", &o.dampening}, {"weight_decay", &o.weight_decay}};
}

void SGD::update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) {
  update_group(g, {ParamUpdate{data, grad, &state}});
}

void SGD::update_group(size_t group, const std::vector<ParamUpdate>& updates) {
  const SGDOptions& o = groups_[group];
  std::vector<kernels::SgdSpan<float>> f32;
  std::vector<kernels::SgdSpan<double>> f64;
  for (const ParamUpdate& u : updates) {
    const bool first = !u.state->buffers.count("momentum_buffer");
    Tensor buf = o.momentum != 0.0 ? buffer(*u.state, "momentum_buffer", u.data) : Tensor();
    visit_floating(u.data.dtype(), "SGD", [&](auto tag) {
      using T = decltype(tag);
      kernels::SgdSpan<T> span{u.data.template data_ptr<T>(), u.grad.template data_ptr<T>(),
                               buf.defined() ? buf.template data_ptr<T>() : nullptr, u.data.numel(), first};
      if constexpr (std::is_same_v<T, float>) f32.push_back(span);
      else f64.push_back(span);  // visit_floating: float32 or float64
    });
  }
  const kernels::SgdScalars s{o.lr, o.momentum, o.dampening, o.weight_decay, o.nesterov};
  if (!f32.empty()) kernels::sgd_step(f32, s);
  if (!f64.empty()) kernels::sgd_step(f64, s);
}

// --- Adam, AdamW ---

Adam::Adam(const std::vector<ParamGroup>& groups, AdamOptions opts) : OptimizerWith("Adam", groups, opts) {
  check_adam_options(groups_, name());
}

std::vector<NamedHyper> Adam::hyperparameters(size_t g) { return adam_hyperparameters(group_options(g)); }

void Adam::update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) {
  if (groups_[g].amsgrad) adam_update<false, true>(groups_[g], data, grad, state, "Adam");
  else adam_update<false, false>(groups_[g], data, grad, state, "Adam");
}

void Adam::update_group(size_t g, const std::vector<ParamUpdate>& updates) {
  if (groups_[g].amsgrad) return Optimizer::update_group(g, updates);
  fused_adam_update(groups_[g], false, updates, [&](const ParamUpdate& u) { update(g, u.data, u.grad, *u.state); });
}

AdamW::AdamW(const std::vector<ParamGroup>& groups, AdamWOptions opts) : OptimizerWith("AdamW", groups, opts) {
  check_adam_options(groups_, name());
}

std::vector<NamedHyper> AdamW::hyperparameters(size_t g) { return adam_hyperparameters(group_options(g)); }

void AdamW::update(size_t g, const Tensor& data, const Tensor& grad, ParamState& state) {
  if (groups_[g].amsgrad) adam_update<true, true>(groups_[g], data, grad, state, "AdamW");
  else adam_update<true, false>(groups_[g], data, grad, state, "AdamW");
}

void AdamW::update_group(size_t g, const std::vector<ParamUpdate>& updates) {
  if (groups_[g].amsgrad) return Optimizer::update_group(g, updates);
  fused_adam_update(groups_[g], true, updates, [&](const ParamUpdate& u) { update(g, u.data, u.grad, *u.state); });
}

// --- RMSprop ---

RMSprop::RMSprop(const std::vector<ParamGroup>& groups, RMSpropOptions opts) : OptimizerWith("RMSprop", groups, opts) {
  for (const RMSpropOptions& o : groups_)
    WEFT_CHECK(o.alpha >= 0.0 && o.eps >= 0.0 && o.momentum >= 0.0, "RMSprop: expected alpha, eps and momentum >= 0",
               " but got alpha ", o.alpha, ", eps ", o.eps, ", momentum ", o.momentum);
}

std::vector<NamedHyper> RMSprop::hyperparameters(size_t g) {
  RMSpropOptions& o = group_options(g);
  return {{"lr", &o.lr}, {"alpha", &o.alpha}, {"eps", &o.eps}, {"weight_decay", &o.weight_decay},
          {"momentum", &o.momentum}};
}

void RMSprop::update(size_t group, const Tensor& data, const Tensor& grad, ParamState& state) {
  const RMSpropOptions& o = groups_[group];
  Tensor square_avg = buffer(state, "square_avg", data);
  Tensor grad_avg = o.centered ? buffer(state, "grad_avg", data) : Tensor();
  Tensor momentum_buffer = o.momentum > 0.0 ? buffer(state, "momentum_buffer", data) : Tensor();
  visit_floating(data.dtype(), "RMSprop", [&](auto tag) {
    using T = decltype(tag);
    T* p = data.template data_ptr<T>();
    const T* g = grad.template data_ptr<T>();
    T* s = square_avg.template data_ptr<T>();
    T* a = grad_avg.defined() ? grad_avg.template data_ptr<T>() : nullptr;
    T* buf = momentum_buffer.defined() ? momentum_buffer.template data_ptr<T>() : nullptr;
    const T lr = T(o.lr), alpha = T(o.alpha), eps = T(o.eps), wd = T(o.weight_decay), mom = T(o.momentum);
    const int64_t n = data.numel();
#pragma omp parallel for if (n > kParallelUpdate) num_threads(get_num_threads())
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i];
      if (wd != T(0)) gi += wd * p[i];
      s[i] = alpha * s[i] + (T(1) - alpha) * gi * gi;
      T avg;
      if (a) {
        a[i] = alpha * a[i] + (T(1) - alpha) * gi;
        avg = std::sqrt(s[i] - a[i] * a[i]) + eps;
      } else {
        avg = std::sqrt(s[i]) + eps;
      }
      if (buf) {
        buf[i] = mom * buf[i] + gi / avg;
        p[i] -= lr * buf[i];
      } else {
        p[i] -= lr * gi / avg;
      }
    }
  });
}

// --- Adagrad ---

Adagrad::Adagrad(const std::vector<ParamGroup>& groups, AdagradOptions opts) : OptimizerWith("Adagrad", groups, opts) {
  for (const AdagradOptions& o : groups_)
    WEFT_CHECK(o.lr_decay >= 0.0 && o.eps >= 0.0 && o.initial_accumulator_value >= 0.0, "Adagrad: expected lr_decay, "
               "eps and initial_accumulator_value >= 0 but got lr_decay ", o.lr_decay, ", eps ", o.eps,
               ", initial_accumulator_value ", o.initial_accumulator_value);
}

std::vector<NamedHyper> Adagrad::hyperparameters(size_t g) {
  AdagradOptions& o = group_options(g);
  return {{"lr", &o.lr}, {"lr_decay", &o.lr_decay}, {"weight_decay", &o.weight_decay}, {"eps", &o.eps},
          {"initial_accumulator_value", &o.initial_accumulator_value}};
}

void Adagrad::update(size_t group, const Tensor& data, const Tensor& grad, ParamState& state) {
  const AdagradOptions& o = groups_[group];
  Tensor sum = buffer(state, "sum", data, o.initial_accumulator_value);
  const double clr = o.lr / (1.0 + static_cast<double>(state.step - 1) * o.lr_decay);
  visit_floating(data.dtype(), "Adagrad", [&](auto tag) {
    using T = decltype(tag);
    T* p = data.template data_ptr<T>();
    const T* g = grad.template data_ptr<T>();
    T* s = sum.template data_ptr<T>();
    const T lr = T(clr), eps = T(o.eps), wd = T(o.weight_decay);
    const int64_t n = data.numel();
#pragma omp parallel for if (n > kParallelUpdate) num_threads(get_num_threads())
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i];
      if (wd != T(0)) gi += wd * p[i];
      s[i] += gi * gi;
      p[i] -= lr * gi / (std::sqrt(s[i]) + eps);
    }
  });
}

// --- gradient clipping ---

namespace {

// The gradients of `params` brought to their parameters' placements, as contiguous plain tensors
// (local shards) that scaling or clamping in place writes into the stored gradients.
std::vector<Tensor> local_grads_in_place(const std::vector<Tensor>& params) {
  sync_grads(params);  // a Partial gradient has no local elements; this also spares step() the all-reduce
  std::vector<Tensor> locals;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    Tensor local = dist::funcol::wait_tensor(g.is_dtensor() ? dist::DTensor(g).spec().local : g);
    if (!local.is_contiguous()) {
      local = kernels::contiguous_copy(local);
      p.set_grad(g.is_dtensor() ? Tensor(dist::make_dtensor(local, dist::DTensor(g).device_mesh(),
                                                             dist::DTensor(g).placements(), g.shape()))
                                : local);
    }
    locals.push_back(local);
  }
  return locals;
}

// Multiplies every gradient in `locals` by coef, in place.
void scale_grads(const std::vector<Tensor>& locals, double coef) {
  for (const Tensor& g : locals) {
    if (g.dtype() == kFloat32) kernels::scale_in_place(g.data_ptr<float>(), g.numel(), static_cast<float>(coef));
    else if (g.dtype() == kFloat64) kernels::scale_in_place(g.data_ptr<double>(), g.numel(), coef);
    else visit_floating(g.dtype(), "clip_grad_norm_", [&](auto tag) {
      using T = decltype(tag);
      T* d = g.template data_ptr<T>();
      for (int64_t i = 0, n = g.numel(); i < n; ++i) d[i] = d[i] * T(coef);
    });
    g.bump_version();
  }
}

// Applies f to every element of every gradient in `locals`, in place.
template <class F>
void for_each_grad_element(const std::vector<Tensor>& locals, const char* who, F f) {
  for (const Tensor& g : locals) {
    visit_floating(g.dtype(), who, [&](auto tag) {
      using T = decltype(tag);
      T* d = g.template data_ptr<T>();
      for (int64_t i = 0, n = g.numel(); i < n; ++i) d[i] = f(d[i]);
    });
    g.bump_version();
  }
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  require_not_in_backward(params, "clip_grad_norm_");
  NoGradGuard no_grad;
  std::vector<Tensor> locals = local_grads_in_place(params);
  // The global norm: over every shard of every gradient, each replicated copy counted once.
  double total = std::sqrt(global_grad_norm_sq(params));
  double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) scale_grads(locals, coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  WEFT_CHECK(clip_value >= 0.0, "clip_grad_value_: expected clip_value >= 0 but got ", clip_value);
  require_not_in_backward(params, "clip_grad_value_");
  NoGradGuard no_grad;
  std::vector<Tensor> locals = local_grads_in_place(params);
  for_each_grad_element(locals, "clip_grad_value_", [clip_value](auto x) {
    using T = decltype(x);
    return std::clamp(x, T(-clip_value), T(clip_value));
  });
}

}  // namespace weft::optim
