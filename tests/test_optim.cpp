// The training kit: parameter groups, optimizers and schedulers against PyTorch (tests/optim_oracle.py,
// tag [torch]), clip_grad_value_, the initialisers' statistics and bounds, inference mode.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/python_oracle.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

Tensor f64(const std::vector<double>& values, const Shape& shape) { return tensor(values, shape, dtype(kFloat64)); }
std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }

// |got - want| <= tol * (1 + |want|) elementwise.
void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  test::require_within(got, want, [&](size_t i) { return tol * (1.0 + std::fabs(want[i])); });
}

// Every parameter group case of optim_oracle.py: parameters 0 and 1 in group 0, 2 in group 1 with
// lr 0.02 and no weight decay.
std::vector<optim::ParamGroup> two_groups(const std::vector<Tensor>& p) {
  return {{{p[0], p[1]}}, {{p[2]}, 0.02, 0.0}};
}

// The optimizers of optim_oracle.py's OPTIMIZERS, by name.
std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& name, const std::vector<optim::ParamGroup>& g) {
  using namespace optim;
  static const std::map<std::string, std::function<std::unique_ptr<Optimizer>(const std::vector<ParamGroup>&)>> made = {
      {"sgd", [](auto& g) { return std::make_unique<SGD>(g, SGDOptions{.lr = 0.1}); }},
      {"sgd_momentum_dampening",
       [](auto& g) {
         return std::make_unique<SGD>(g, SGDOptions{.lr = 0.1, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.05});
       }},
      {"sgd_nesterov",
       [](auto& g) {
         return std::make_unique<SGD>(g, SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
       }},
      {"adam", [](auto& g) { return std::make_unique<Adam>(g, AdamOptions{.lr = 0.05}); }},
      {"adam_amsgrad_decay",
       [](auto& g) {
         return std::make_unique<Adam>(g, AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-6,
                                                      .weight_decay = 0.1, .amsgrad = true});
       }},
      {"adamw", [](auto& g) { return std::make_unique<AdamW>(g, AdamWOptions{.lr = 0.05}); }},
      {"adamw_amsgrad",
       [](auto& g) {
         return std::make_unique<AdamW>(
             g, AdamWOptions{.lr = 0.05, .beta1 = 0.85, .beta2 = 0.95, .weight_decay = 0.2, .amsgrad = true});
       }},
      {"rmsprop", [](auto& g) { return std::make_unique<RMSprop>(g, RMSpropOptions{}); }},
      {"rmsprop_centered_momentum",
       [](auto& g) {
         return std::make_unique<RMSprop>(g, RMSpropOptions{.lr = 0.02, .alpha = 0.9, .eps = 1e-6, .weight_decay = 0.1,
                                                            .momentum = 0.7, .centered = true});
       }},
      {"adagrad", [](auto& g) { return std::make_unique<Adagrad>(g, AdagradOptions{}); }},
      {"adagrad_decay",
       [](auto& g) {
         return std::make_unique<Adagrad>(g, AdagradOptions{.lr = 0.1, .lr_decay = 0.2, .weight_decay = 0.1,
                                                            .initial_accumulator_value = 0.5, .eps = 1e-8});
       }},
  };
  auto it = made.find(name);
  if (it == made.end()) FAIL("optim_oracle.py has an optimizer case test_optim.cpp does not know: " << name);
  return it->second(g);
}

// The schedulers of optim_oracle.py's SCHEDULERS, by name.
std::shared_ptr<optim::LRScheduler> make_scheduler(const std::string& name, optim::Optimizer& o) {
  using namespace optim;
  if (name == "step") return std::make_shared<StepLR>(o, 3, 0.5);
  if (name == "multistep") return std::make_shared<MultiStepLR>(o, std::vector<int64_t>{2, 5, 5, 9}, 0.3);
  if (name == "exponential") return std::make_shared<ExponentialLR>(o, 0.9);
  if (name == "cosine") return std::make_shared<CosineAnnealingLR>(o, 7, 0.001);
  if (name == "linear_default") return std::make_shared<LinearLR>(o);
  if (name == "linear") return std::make_shared<LinearLR>(o, 0.25, 0.5, 4);
  if (name == "lambda") return std::make_shared<LambdaLR>(o, [](int64_t e) { return 1.0 / (1.0 + double(e)); });
  if (name == "lambda_per_group")
    return std::make_shared<LambdaLR>(o, std::vector<LambdaLR::Lambda>{[](int64_t e) { return std::pow(0.95, e); },
                                                                       [](int64_t e) { return 1.0 / (1.0 + double(e)); }});
  if (name == "onecycle") return std::make_shared<OneCycleLR>(o, OneCycleOptions{.max_lr = {1.0, 0.5}, .total_steps = 12});
  if (name.rfind("onecycle_three_phase_linear", 0) == 0)
    return std::make_shared<OneCycleLR>(o, OneCycleOptions{.max_lr = {0.3}, .total_steps = 12, .pct_start = 0.25,
                                                           .cos_anneal = false, .base_momentum = 0.8,
                                                           .max_momentum = 0.9, .div_factor = 10,
                                                           .final_div_factor = 100, .three_phase = true});
  if (name == "sequential") {
    auto warmup = std::make_shared<LinearLR>(o, 0.1, 1.0, 3);
    auto decay = std::make_shared<ExponentialLR>(o, 0.8);
    return std::make_shared<SequentialLR>(o, std::vector<std::shared_ptr<LRScheduler>>{warmup, decay},
                                          std::vector<int64_t>{3});
  }
  if (name == "sequential_three") {
    auto a = std::make_shared<LinearLR>(o, 0.5, 1.0, 2);
    auto b = std::make_shared<CosineAnnealingLR>(o, 5);
    auto c = std::make_shared<StepLR>(o, 2, 0.5);
    return std::make_shared<SequentialLR>(o, std::vector<std::shared_ptr<LRScheduler>>{a, b, c},
                                          std::vector<int64_t>{2, 6});
  }
  FAIL("optim_oracle.py has a scheduler case test_optim.cpp does not know: " << name);
  return nullptr;
}

// optim_oracle.py's output, written once per run.
const json& oracle() {
  static const json data = test::run_python_oracle(WEFT_TESTS_DIR "/optim_oracle.py");
  return data;
}


}  // namespace

TEST_CASE("every optimizer follows PyTorch's trajectory with two parameter groups", "[optim][torch]") {
  test::skip_without_torch();
  for (const auto& [name, c] : oracle()["optimizers"].items()) {
    INFO("optimizer case " << name);
    std::vector<Tensor> params;
    for (size_t i = 0; i < c["shapes"].size(); ++i)
      params.push_back(f64(c["params"][i].get<std::vector<double>>(), to_shape(c["shapes"][i].get<std::vector<int64_t>>()))
                           .requires_grad_());
    auto opt = make_optimizer(name, two_groups(params));
    REQUIRE(opt->num_groups() == 2);
    for (const json& step : c["steps"]) {
      for (size_t i = 0; i < params.size(); ++i)
        params[i].set_grad(f64(step["grads"][i].get<std::vector<double>>(), params[i].shape()));
      opt->step();
      for (size_t i = 0; i < params.size(); ++i)
        check_close(values_of(params[i]), step["params"][i].get<std::vector<double>>(), 1e-12);
    }
  }
}

TEST_CASE("every scheduler follows PyTorch's lr (and momentum) trajectory per group", "[optim][torch]") {
  test::skip_without_torch();
  for (const auto& [name, c] : oracle()["schedulers"].items()) {
    INFO("scheduler case " << name);
    Tensor p = zeros({2}).requires_grad_(), q = zeros({1}).requires_grad_();
    std::vector<optim::ParamGroup> groups = {{{p}, 0.1}, {{q}, 0.02}};
    const bool adam = name.ends_with("_adam");
    std::unique_ptr<optim::Optimizer> opt;
    if (adam) opt = std::make_unique<optim::Adam>(groups, optim::AdamOptions{});
    else opt = std::make_unique<optim::SGD>(groups, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    auto sched = make_scheduler(name, *opt);
    for (size_t t = 0; t < c["trajectory"].size(); ++t) {
      INFO("epoch " << t);
      if (t > 0) sched->step();
      const json& want = c["trajectory"][t];
      std::vector<double> lrs = {opt->group_lr(0), opt->group_lr(1)};
      check_close(lrs, want["lr"].get<std::vector<double>>(), 1e-12);
      check_close(sched->last_lr(), want["lr"].get<std::vector<double>>(), 1e-12);
      check_close({*opt->group_momentum(0), *opt->group_momentum(1)}, want["momentum"].get<std::vector<double>>(),
                  1e-12);
    }
  }
}

TEST_CASE("parameter groups: per-group lr and weight decay, state dict per group", "[optim]") {
  // No decay on the bias: its group updates as an AdamW without weight decay would.
  Tensor w = f64({0.5, -1.0, 2.0}, {3}).requires_grad_(), b = f64({0.25, -0.5}, {2}).requires_grad_();
  Tensor w_ref = w.detach().clone().requires_grad_(), b_ref = b.detach().clone().requires_grad_();
  optim::AdamW grouped({{{w}}, {{b}, 0.03, 0.0}}, {.lr = 0.01, .weight_decay = 0.1});
  optim::AdamW alone_w({w_ref}, {.lr = 0.01, .weight_decay = 0.1});
  optim::AdamW alone_b({b_ref}, {.lr = 0.03, .weight_decay = 0.0});
  for (int s = 0; s < 3; ++s) {
    for (Tensor t : {w, w_ref}) t.set_grad(f64({0.1 * s, -0.2, 0.3}, {3}));
    for (Tensor t : {b, b_ref}) t.set_grad(f64({0.4, -0.1 * s}, {2}));
    grouped.step();
    alone_w.step();
    alone_b.step();
  }
  REQUIRE(values_of(w) == values_of(w_ref));
  REQUIRE(values_of(b) == values_of(b_ref));
  REQUIRE(grouped.params().size() == 2);
  REQUIRE(grouped.state(1).step == 3);

  nn::StateDict saved = grouped.state_dict();
  REQUIRE(saved["param_groups.0.weight_decay"].item<double>() == 0.1);
  REQUIRE(saved["param_groups.1.lr"].item<double>() == 0.03);
  REQUIRE(saved["param_groups.1.weight_decay"].item<double>() == 0.0);
  Tensor w2 = w.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
  optim::AdamW other(std::vector<optim::ParamGroup>{{{w2}}, {{b2}}}, {.lr = 1.0});
  other.load_state_dict(saved);
  REQUIRE(other.group_lr(1) == 0.03);
  REQUIRE(other.group_options(1).weight_decay == 0.0);
  for (Tensor t : {w, w2}) t.set_grad(f64({0.3, 0.3, -0.3}, {3}));
  for (Tensor t : {b, b2}) t.set_grad(f64({-0.2, 0.1}, {2}));
  grouped.step();
  other.step();
  REQUIRE(values_of(w2) == values_of(w));
  REQUIRE(values_of(b2) == values_of(b));

  SECTION("set_lr sets every group; errors name the optimizer and the group") {
    grouped.set_lr(0.5);
    REQUIRE(grouped.group_lr(0) == 0.5);
    REQUIRE(grouped.group_lr(1) == 0.5);
    Tensor x = f64({1.0}, {1}).requires_grad_();
    WEFT_REQUIRE_ERROR(optim::Adam({{{w2}}, {{x}, -0.1}}, {}), Contains("Adam: group 1 has lr -0.1"));
    WEFT_REQUIRE_ERROR(optim::RMSprop(std::vector<optim::ParamGroup>{{{x}}, {{x}}}, {}), Contains("RMSprop: parameter 1 appears twice"));
    WEFT_REQUIRE_ERROR(optim::SGD(std::vector<optim::ParamGroup>{}, {}), Contains("SGD: expected at least one"));
    WEFT_REQUIRE_ERROR(grouped.group_options(2), Contains("AdamW: group 2 requested but there are 2 groups"));
    nn::StateDict extra = saved;
    extra.insert("param_groups.2.lr", scalar_tensor(1.0, dtype(kFloat64)));
    WEFT_REQUIRE_ERROR(other.load_state_dict(extra), Contains("names group 2 but this optimizer has 2 groups"));
    WEFT_REQUIRE_ERROR(optim::Adam({x}, {.beta2 = 1.0}), Contains("Adam: betas must be in [0, 1) but got (0.9, 1)"));
    WEFT_REQUIRE_ERROR(optim::Adagrad({x}, {.lr_decay = -1}), Contains("Adagrad: expected lr_decay"));
    WEFT_REQUIRE_ERROR(optim::RMSprop({x}, {.momentum = -1}), Contains("RMSprop: expected alpha, eps and momentum"));
    WEFT_REQUIRE_ERROR(optim::SGD({x}, {.nesterov = true}), Contains("SGD: nesterov momentum requires a momentum"));
  }
}

TEST_CASE("AdamW amsgrad keeps the running maximum of the second moment", "[optim]") {
  Tensor p = f64({1.0, -1.0}, {2}).requires_grad_();
  optim::AdamW opt({p}, {.lr = 0.1, .beta1 = 0.5, .beta2 = 0.5, .eps = 0.0, .weight_decay = 0.0, .amsgrad = true});
  // A large gradient then small ones: v falls, vmax stays, so the step uses vmax.
  std::vector<double> ref = {1.0, -1.0}, m(2), v(2), vmax(2);
  const double grads[3][2] = {{2.0, -1.0}, {0.1, 0.1}, {0.1, -0.2}};
  for (int t = 1; t <= 3; ++t) {
    p.set_grad(f64({grads[t - 1][0], grads[t - 1][1]}, {2}));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      double g = grads[t - 1][i];
      m[i] = 0.5 * m[i] + 0.5 * g;
      v[i] = 0.5 * v[i] + 0.5 * g * g;
      vmax[i] = std::max(vmax[i], v[i]);
      ref[i] -= 0.1 / (1 - std::pow(0.5, t)) * m[i] / (std::sqrt(vmax[i]) / std::sqrt(1 - std::pow(0.5, t)));
    }
    check_close(values_of(p), ref, 1e-14);
  }
  check_close(values_of(opt.state(0).buffers.at("max_exp_avg_sq")), vmax, 1e-15);
}

TEST_CASE("clip_grad_value_ clamps every gradient elementwise", "[optim]") {
  Tensor a = zeros({3}, dtype(kFloat64)).requires_grad_(), b = zeros({2}).requires_grad_();
  Tensor c = zeros({1}).requires_grad_();  // no gradient: left alone
  a.set_grad(f64({-3.0, 0.5, 2.0}, {3}));
  b.set_grad(tensor({0.75, -0.25}, {2}));
  optim::clip_grad_value_({a, b, c}, 1.0);
  REQUIRE(values_of(a.grad()) == std::vector<double>{-1.0, 0.5, 1.0});
  REQUIRE(values_of(b.grad()) == std::vector<double>{0.75, -0.25});
  REQUIRE(!c.grad().defined());
  // A non-contiguous gradient is replaced by a clamped contiguous copy.
  Tensor m = zeros({2, 2}, dtype(kFloat64)).requires_grad_();
  m.set_grad(f64({5, -5, 0.1, 0.2}, {2, 2}).t());
  optim::clip_grad_value_({m}, 0.15);
  REQUIRE(values_of(m.grad()) == std::vector<double>{0.15, 0.1, -0.15, 0.15});
  WEFT_REQUIRE_ERROR(optim::clip_grad_value_({a}, -1.0), Contains("clip_grad_value_: expected clip_value >= 0 but got -1"));
}

TEST_CASE("scheduler errors name the scheduler and what was expected", "[optim]") {
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
  optim::OneCycleLR cycle(sgd, {.max_lr = {1.0}, .total_steps = 2});
  cycle.step();
  cycle.step();
  WEFT_REQUIRE_ERROR(cycle.step(), Contains("OneCycleLR: tried to step 3 times but total_steps is 2"));
  optim::Adagrad adagrad({p}, {});
  WEFT_REQUIRE_ERROR(optim::OneCycleLR(adagrad, {.max_lr = {1.0}, .total_steps = 5}),
                     Contains("cycle_momentum needs an optimizer with a momentum") && Contains("Adagrad has none"));
  WEFT_REQUIRE_ERROR(optim::OneCycleLR(sgd, {.max_lr = {1.0, 2.0}, .total_steps = 5}),
                     Contains("expected one max_lr or one per group (1) but got 2"));
  auto a = std::make_shared<optim::StepLR>(sgd, 2);
  WEFT_REQUIRE_ERROR(optim::SequentialLR(sgd, {a, a}, {}), Contains("expected 1 milestones") && Contains("got 0"));
  optim::SGD other({zeros({1}).requires_grad_()}, {});
  auto foreign = std::make_shared<optim::StepLR>(other, 2);
  WEFT_REQUIRE_ERROR(optim::SequentialLR(sgd, {a, foreign}, {3}), Contains("scheduler 1 (StepLR) drives another"));
  WEFT_REQUIRE_ERROR(optim::StepLR(sgd, 0), Contains("StepLR: expected step_size > 0 but got 0"));
  WEFT_REQUIRE_ERROR(optim::LambdaLR(sgd, std::vector<optim::LambdaLR::Lambda>{}),
                     Contains("LambdaLR: expected one lambda or one per group (1) but got 0"));
  WEFT_REQUIRE_ERROR(optim::LinearLR(sgd, 0.0), Contains("LinearLR: expected start_factor in (0, 1]"));
}

TEST_CASE("a scheduler made after another starts from the groups' first lrs", "[optim]") {
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD sgd({{{p}, 0.4}}, {});
  optim::ExponentialLR first(sgd, 0.5);
  first.step();
  REQUIRE(sgd.lr() == 0.2);
  optim::StepLR second(sgd, 10, 0.1);  // PyTorch's initial_lr: 0.4, not the current 0.2
  REQUIRE(second.base_lrs() == std::vector<double>{0.4});
  REQUIRE(sgd.lr() == 0.4);
}

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}
double variance_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / double(v.size() - 1);
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Requires the rows (by_rows) or columns of the (rows, cols) matrix `q` to be orthonormal times gain.
void check_orthonormal(const std::vector<double>& q, int64_t rows, int64_t cols, bool by_rows, double gain) {
  const int64_t n = by_rows ? rows : cols, len = by_rows ? cols : rows;
  auto at = [&](int64_t vec, int64_t k) { return by_rows ? q[vec * cols + k] : q[k * cols + vec]; };
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < len; ++k) dot += at(i, k) * at(j, k);
      INFO("vectors " << i << ", " << j);
      REQUIRE(std::fabs(dot - (i == j ? gain * gain : 0.0)) < 1e-12);
    }
}

}  // namespace

TEST_CASE("Xavier and Kaiming initialisers: bounds and moments", "[init]") {
  manual_seed(23);
  using namespace nn::init;
  REQUIRE(calculate_gain("tanh") == 5.0 / 3.0);
  REQUIRE(calculate_gain("relu") == std::sqrt(2.0));
  REQUIRE(calculate_gain("leaky_relu") == std::sqrt(2.0 / (1.0 + 0.01 * 0.01)));
  REQUIRE(calculate_gain("leaky_relu", 0.2) == std::sqrt(2.0 / 1.04));
  REQUIRE(calculate_gain("conv2d") == 1.0);
  REQUIRE(fans(zeros({64, 32, 3, 3})) == std::pair<int64_t, int64_t>{288, 576});

  Tensor w = zeros({200, 300}, dtype(kFloat64));
  const double n = 60000;
  SECTION("xavier_uniform_") {
    xavier_uniform_(w, 2.0);
    double bound = 2.0 * std::sqrt(6.0 / 500.0);
    std::vector<double> v = values_of(w);
    REQUIRE(max_abs(v) <= bound);
    REQUIRE(max_abs(v) > 0.999 * bound);
    REQUIRE(std::fabs(mean_of(v)) < 5 * bound / std::sqrt(3 * n));
    REQUIRE(variance_of(v) == Approx(bound * bound / 3).epsilon(0.03));
  }
  SECTION("xavier_normal_") {
    xavier_normal_(w);
    REQUIRE(variance_of(values_of(w)) == Approx(2.0 / 500.0).epsilon(0.03));
  }
  SECTION("kaiming_uniform_, fan_in, leaky_relu with a = 0") {
    kaiming_uniform_(w);
    double bound = std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(300.0);
    std::vector<double> v = values_of(w);
    REQUIRE(max_abs(v) <= bound);
    REQUIRE(max_abs(v) > 0.999 * bound);
    REQUIRE(variance_of(v) == Approx(2.0 / 300.0).epsilon(0.03));
  }
  SECTION("kaiming_normal_, fan_out, tanh, on a conv weight") {
    Tensor k = zeros({64, 32, 3, 3});
    kaiming_normal_(k, 0.0, "fan_out", "tanh");
    std::vector<double> v = values_of(k);
    REQUIRE(std::fabs(mean_of(v)) < 5 * std::sqrt(1.0 / 576.0 / double(v.size())) * 5.0 / 3.0);
    REQUIRE(variance_of(v) == Approx(25.0 / 9.0 / 576.0).epsilon(0.03));
  }
  SECTION("errors name the initialiser and what it needs") {
    WEFT_REQUIRE_ERROR(xavier_uniform_(zeros({5})), Contains("init::xavier_uniform_: fan in and fan out need a tensor "
                                                             "with at least 2 dimensions"));
    WEFT_REQUIRE_ERROR(kaiming_normal_(w, 0.0, "fan_avg"), Contains("init::kaiming_normal_: mode must be \"fan_in\" or "
                                                                   "\"fan_out\" but got \"fan_avg\""));
    WEFT_REQUIRE_ERROR(kaiming_uniform_(w, 0.0, "fan_in", "gelu"), Contains("unsupported nonlinearity 'gelu'"));
    WEFT_REQUIRE_ERROR(xavier_uniform_(zeros({4, 4}, dtype(kInt64))),
                       Contains("init::xavier_uniform_: expected a float32 or float64 tensor but got int64"));
  }
}

TEST_CASE("orthogonal_ makes orthonormal rows or columns", "[init]") {
  manual_seed(5);
  using nn::init::orthogonal_;
  Tensor wide = zeros({6, 10}, dtype(kFloat64)), tall = zeros({10, 6}, dtype(kFloat64));
  Tensor conv = zeros({4, 3, 2, 2}, dtype(kFloat64)), square = zeros({7, 7}, dtype(kFloat64));
  check_orthonormal(values_of(orthogonal_(wide, 1.5)), 6, 10, /*by_rows=*/true, 1.5);
  check_orthonormal(values_of(orthogonal_(tall)), 10, 6, /*by_rows=*/false, 1.0);
  check_orthonormal(values_of(orthogonal_(conv)), 4, 12, /*by_rows=*/true, 1.0);
  std::vector<double> sq = values_of(orthogonal_(square));
  check_orthonormal(sq, 7, 7, true, 1.0);
  check_orthonormal(sq, 7, 7, false, 1.0);
  // Uniform over orthogonal matrices (Haar): a column's entries have mean 0 and variance 1/m.
  Tensor big = zeros({400, 50}, dtype(kFloat64));
  std::vector<double> v = values_of(orthogonal_(big));
  REQUIRE(variance_of(v) == Approx(1.0 / 400.0).epsilon(0.03));
  WEFT_REQUIRE_ERROR(orthogonal_(zeros({3})), Contains("init::orthogonal_: expected a tensor with at least 2"));
}

TEST_CASE("trunc_normal_ stays in [a, b] with the truncated normal's moments", "[init]") {
  manual_seed(11);
  auto pdf = [](double x) { return std::exp(-x * x / 2) / std::sqrt(2 * std::numbers::pi); };
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  // (mean, std, a, b): a window around the mean and one far in the tail.
  for (auto [mean, sd, a, b] : {std::array<double, 4>{0.5, 1.5, -1.0, 2.0}, {0.0, 1.0, 3.0, 4.0}}) {
    INFO("N(" << mean << ", " << sd << "^2) on [" << a << ", " << b << "]");
    Tensor t = zeros({100000}, dtype(kFloat64));
    nn::init::trunc_normal_(t, mean, sd, a, b);
    std::vector<double> v = values_of(t);
    for (double x : v) REQUIRE((x >= a && x <= b));
    double al = (a - mean) / sd, be = (b - mean) / sd, z = cdf(be) - cdf(al);
    double shift = (pdf(al) - pdf(be)) / z;
    double want_mean = mean + sd * shift;
    double want_var = sd * sd * (1 + (al * pdf(al) - be * pdf(be)) / z - shift * shift);
    REQUIRE(std::fabs(mean_of(v) - want_mean) < 5 * std::sqrt(want_var / double(v.size())));
    REQUIRE(variance_of(v) == Approx(want_var).epsilon(0.03));
  }
  WEFT_REQUIRE_ERROR(nn::init::trunc_normal_(zeros({2}), 0.0, 1.0, 1.0, -1.0),
                     Contains("init::trunc_normal_: expected std > 0 and a < b but got std 1, a 1, b -1"));
}

TEST_CASE("inference mode records nothing and its tensors count no versions", "[autograd][inference]") {
  Tensor w = f64({1.0, 2.0}, {2}).requires_grad_();
  Tensor normal = f64({1.0, 1.0}, {2});
  Tensor x, y, view;
  {
    InferenceModeGuard guard;
    REQUIRE(InferenceMode::is_enabled());
    REQUIRE(!GradMode::is_enabled());
    x = f64({3.0, 4.0}, {2});
    y = w * 2.0;
    REQUIRE(!y.requires_grad());
    REQUIRE(x.is_inference());
    REQUIRE(y.is_inference());
    REQUIRE(!w.is_inference());
    x.add_(1.0);
    REQUIRE(x.version() == 0);  // no version counting
    normal.add_(1.0);
    REQUIRE(normal.version() == 1);  // a normal tensor still counts, written in the mode or not
    view = x.narrow(0, 1, 1);
    {
      InferenceModeGuard nested;
    }
    REQUIRE(InferenceMode::is_enabled());
  }
  REQUIRE(!InferenceMode::is_enabled());
  REQUIRE(GradMode::is_enabled());
  REQUIRE(values_of(x) == std::vector<double>{4.0, 5.0});
  REQUIRE(values_of(y) == std::vector<double>{2.0, 4.0});

  SECTION("outside the mode an inference tensor is not updated in place, even under no-grad") {
    WEFT_REQUIRE_ERROR(x.add_(1.0), Contains("add_: an inference tensor (shape [2], made under InferenceModeGuard) "
                                             "cannot be updated in place outside inference mode"));
    WEFT_REQUIRE_ERROR(view.mul_(2.0), Contains("mul_: an inference tensor"));
    NoGradGuard no_grad;
    WEFT_REQUIRE_ERROR(x.copy_(normal), Contains("copy_: an inference tensor"));
    REQUIRE(values_of(x) == std::vector<double>{4.0, 5.0});
  }
  SECTION("nor saved for backward; a clone is a normal tensor") {
    WEFT_REQUIRE_ERROR(w * x, Contains("cannot be saved for backward; clone it"));
    Tensor c = x.clone();
    REQUIRE(!c.is_inference());
    REQUIRE(!(x + 1.0).is_inference());  // made outside the mode
    (w * c).sum().backward();
    REQUIRE(values_of(w.grad()) == std::vector<double>{4.0, 5.0});
  }
}
