// weft::optim: the update rules as loops over contiguous float32/float64 data, run under NoGradGuard.
#include "nn/optim.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "distributed/collectives.h"
#include "distributed/dtensor.h"
#include "framework/factories.h"
#include "kernels/threads.h"
#include "kernels/toolkit.h"
#include "nn/optim_dist.h"

namespace weft::optim {

namespace {


// A zero-filled tensor shaped like `t` (optimizer state starts at zero).
Tensor zeros_shaped(const Tensor& t) { return zeros(t.shape(), dtype(t.dtype())); }

}  // namespace

// --- Optimizer ---

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  WEFT_CHECK(lr >= 0.0, "optimizer: invalid learning rate ", lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    WEFT_CHECK(params_[i].defined(), "optimizer: parameter ", i, " is undefined");
    WEFT_CHECK(params_[i].is_floating_point(), "optimizer: parameter ", i, " has dtype ", params_[i].dtype(),
               "; only float32 and float64 parameters can be optimized");
    for (size_t j = 0; j < i; ++j)
      WEFT_CHECK(!params_[i].is_same(params_[j]), "optimizer: parameter ", i, " appears twice (also at ", j, ")");
  }
  state_.resize(params_.size());
}

// See Note [DTensor parameters in optimizers] (nn/optim_dist.h).
Tensor Optimizer::param_data(const Tensor& param) { return local_param(param, name()); }

Tensor Optimizer::prepare_grad(const Tensor& param) { return local_grad(param, name()); }

void Optimizer::step() {
  NoGradGuard no_grad;
  sync_grads(params_);  // DTensor gradients to their parameters' placements, all-reduces coalesced
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor grad = prepare_grad(params_[i]);
    if (!grad.defined()) continue;
    Tensor data = param_data(params_[i]);
    WEFT_CHECK(grad.shape() == data.shape(), name(), ": gradient of parameter ", i, " has shape ", grad.shape(),
               " but the parameter has shape ", data.shape());
    if (grad.dtype() != data.dtype() || !grad.is_contiguous()) {
      Tensor fixed = kernels::contiguous_copy(grad, data.dtype());
      grad = fixed;
    }
    state_[i].step += 1;
    update(data, grad, state_[i]);
    data.bump_version();
  }
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
  out.insert("param_groups.0.lr", scalar_tensor(lr_, dtype(kFloat64)));
  for (auto& [key, value] : const_cast<Optimizer*>(this)->hyperparameters())
    out.insert("param_groups.0." + key, scalar_tensor(*value, dtype(kFloat64)));
  return out;
}

void Optimizer::load_state_dict(const nn::StateDict& state) {
  std::vector<ParamState> loaded(params_.size());
  const std::string state_prefix = "state.";
  for (const auto& [key, value] : state) {
    if (key.rfind(state_prefix, 0) != 0) continue;
    size_t dot = key.find('.', state_prefix.size());
    WEFT_CHECK(dot != std::string::npos, name(), ".load_state_dict: malformed key '", key, "'");
    size_t index = std::stoul(key.substr(state_prefix.size(), dot - state_prefix.size()));
    WEFT_CHECK(index < params_.size(), name(), ".load_state_dict: key '", key, "' names parameter ", index,
               " but this optimizer has ", params_.size(), " parameters");
    std::string field = key.substr(dot + 1);
    if (field == "step") {
      loaded[index].step = value.item<int64_t>();
      continue;
    }
    const Shape want = param_data(params_[index]).shape();  // a DTensor's state is shaped as its shard
    WEFT_CHECK(value.shape() == want, name(), ".load_state_dict: size mismatch for '", key, "': the state dict has",
               " shape ", value.shape(), " but parameter ", index, " has shape ", want);
    Tensor buf = kernels::make_empty(want, params_[index].dtype());
    kernels::copy_into(buf, value);
    loaded[index].buffers[field] = buf;
  }
  // Hyperparameters are read last so that a bad state entry leaves the optimizer unchanged.
  if (const Tensor* lr = state.find("param_groups.0.lr")) lr_ = lr->item<double>();
  for (auto& [key, slot] : hyperparameters())
    if (const Tensor* v = state.find("param_groups.0." + key)) *slot = v->item<double>();
  state_ = std::move(loaded);
}

// --- SGD ---

SGD::SGD(std::vector<Tensor> params, SGDOptions opts) : Optimizer(std::move(params), opts.lr), options(opts) {
  WEFT_CHECK(opts.momentum >= 0.0 && opts.weight_decay >= 0.0, "SGD: invalid momentum ", opts.momentum,
             " or weight_decay ", opts.weight_decay);
  WEFT_CHECK(!opts.nesterov || (opts.momentum > 0.0 && opts.dampening == 0.0),
             "SGD: nesterov momentum requires a momentum and zero dampening");
}

std::vector<std::pair<std::string, double*>> SGD::hyperparameters() {
  return {{"momentum", &options.momentum}, {"dampening", &options.dampening},
          {"weight_decay", &options.weight_decay}};
}

void SGD::update(const Tensor& data, const Tensor& grad, ParamState& state) {
  bool first = !state.buffers.count("momentum_buffer");
  Tensor buffer;
  if (options.momentum != 0.0) {
    if (first) state.buffers["momentum_buffer"] = zeros_shaped(data);
    buffer = state.buffers["momentum_buffer"];
  }
  visit_floating(data.dtype(), "SGD", [&](auto tag) {
    using T = decltype(tag);
    T* p = data.template data_ptr<T>();
    const T* g = grad.template data_ptr<T>();
    T* buf = buffer.defined() ? buffer.template data_ptr<T>() : nullptr;
    const T lr = T(lr_), wd = T(options.weight_decay), mom = T(options.momentum);
    const T damp = T(1.0 - options.dampening);
    const bool nesterov = options.nesterov;
    const int64_t n = data.numel();
#pragma omp parallel for if (n > (1 << 16)) num_threads(get_num_threads())
    for (int64_t i = 0; i < n; ++i) {
      T d = g[i];
      if (wd != T(0)) d += wd * p[i];
      if (buf) {
        // The first step copies the gradient into the buffer, undamped (PyTorch's clone).
        buf[i] = first ? d : mom * buf[i] + damp * d;
        d = nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  });
}

// --- AdamW ---

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions opts) : Optimizer(std::move(params), opts.lr), options(opts) {
  WEFT_CHECK(opts.beta1 >= 0.0 && opts.beta1 < 1.0 && opts.beta2 >= 0.0 && opts.beta2 < 1.0,
             "AdamW: betas must be in [0, 1) but got (", opts.beta1, ", ", opts.beta2, ")");
  WEFT_CHECK(opts.eps >= 0.0 && opts.weight_decay >= 0.0, "AdamW: invalid eps ", opts.eps, " or weight_decay ",
             opts.weight_decay);
}

std::vector<std::pair<std::string, double*>> AdamW::hyperparameters() {
  return {{"beta1", &options.beta1}, {"beta2", &options.beta2}, {"eps", &options.eps},
          {"weight_decay", &options.weight_decay}};
}

void AdamW::update(const Tensor& data, const Tensor& grad, ParamState& state) {
  if (!state.buffers.count("exp_avg")) {
    state.buffers["exp_avg"] = zeros_shaped(data);
    state.buffers["exp_avg_sq"] = zeros_shaped(data);
  }
  Tensor exp_avg = state.buffers["exp_avg"], exp_avg_sq = state.buffers["exp_avg_sq"];
  const double t = static_cast<double>(state.step);
  const double bias_correction1 = 1.0 - std::pow(options.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(options.beta2, t));
  visit_floating(data.dtype(), "AdamW", [&](auto tag) {
    using T = decltype(tag);
    T* p = data.template data_ptr<T>();
    const T* g = grad.template data_ptr<T>();
    T* m = exp_avg.template data_ptr<T>();
    T* v = exp_avg_sq.template data_ptr<T>();
    const T decay = T(1.0 - lr_ * options.weight_decay);
    const T b1 = T(options.beta1), b2 = T(options.beta2), eps = T(options.eps);
    const T step_size = T(lr_ / bias_correction1), bc2 = T(bias_correction2_sqrt);
    const int64_t n = data.numel();
#pragma omp parallel for if (n > (1 << 16)) num_threads(get_num_threads())
    for (int64_t i = 0; i < n; ++i) {
      p[i] *= decay;
      m[i] += (T(1) - b1) * (g[i] - m[i]);  // PyTorch's exp_avg.lerp_(grad, 1 - beta1)
      v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2 + eps);
    }
  });
}

// --- clip_grad_norm_ ---

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  sync_grads(params);  // a Partial gradient has no local norm; this also spares step() the all-reduce
  std::vector<Tensor> locals;  // contiguous, scaled below in place
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
  // The global norm: over every shard of every gradient, each replicated copy counted once.
  double total = std::sqrt(global_grad_norm_sq(params));
  double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const Tensor& g : locals) {
      visit_floating(g.dtype(), "clip_grad_norm_", [&](auto tag) {
        using T = decltype(tag);
        T* d = g.template data_ptr<T>();
        for (int64_t i = 0, n = g.numel(); i < n; ++i) d[i] *= T(coef);
      });
      g.bump_version();
    }
  }
  return total;
}

}  // namespace weft::optim
