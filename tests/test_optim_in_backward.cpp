// The optimizer step in backward (nn/optim_in_backward.h) against the ordinary step: the same
// parameters after several steps, bit for bit (the same update kernels run on the same gradients),
// for SGD's variants, Adam, AdamW, RMSprop and Adagrad in float32 and float64, with groups, a tied
// weight and an lr scheduler; gradients released or kept; the combinations it refuses, by their
// errors; and SGD's fused float32 pass (kernels::sgd_step) against a double loop.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;

namespace {

// A 2-layer MLP 5 -> 7 -> 3 written with ops, its first weight also used transposed by a third
// product (a tied weight: two gradients meet at its leaf), every parameter made from one seed.
struct Net {
  std::vector<Tensor> params;  // w1 [7, 5], b1 [7], w2 [3, 7], b2 [3]

  explicit Net(DType dt) {
    manual_seed(11);
    for (const Shape& s : {Shape{7, 5}, Shape{7}, Shape{3, 7}, Shape{3}})
      params.push_back(randn(s, dtype(dt)).mul_(0.5).requires_grad_());
  }
  Tensor loss(const Tensor& x, const Tensor& y) const {
    Tensor h = gelu(linear(x, params[0], params[1]));
    Tensor out = linear(h, params[2], params[3]);
    Tensor back = matmul(h, params[0]);  // [n, 5]: w1 again, so its leaf waits for both products
    return add(mse_loss(out, y), mul(mean(mul(back, back)), 0.01));
  }
};

struct Batch {
  Tensor x, y;
};

std::vector<Batch> batches(DType dt, int count) {
  Generator gen(5);
  std::vector<Batch> out;
  for (int i = 0; i < count; ++i)
    out.push_back({randn({6, 5}, dtype(dt), &gen), randn({6, 3}, dtype(dt), &gen)});
  return out;
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&)>;

std::vector<std::pair<std::string, MakeOptimizer>> optimizers() {
  using namespace optim;
  return {
      {"sgd", [](auto& p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1}); }},
      {"sgd momentum weight_decay dampening",
       [](auto& p) {
         return std::make_unique<SGD>(
             p, SGDOptions{.lr = 0.1, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.05});
       }},
      {"sgd nesterov",
       [](auto& p) {
         return std::make_unique<SGD>(
             p, SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
       }},
      {"sgd groups",  // w1 and b1 at the default lr, w2 and b2 at 0.02 without decay
       [](auto& p) {
         return std::make_unique<SGD>(std::vector<ParamGroup>{{{p[0], p[1]}}, {{p[2], p[3]}, 0.02, 0.0}},
                                      SGDOptions{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.1});
       }},
      {"adamw",
       [](auto& p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.05, .weight_decay = 0.1}); }},
      {"adamw amsgrad",
       [](auto& p) {
         return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.05, .weight_decay = 0.1, .amsgrad = true});
       }},
      {"adam weight_decay",
       [](auto& p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.05, .weight_decay = 0.1}); }},
      {"rmsprop centered momentum",
       [](auto& p) {
         return std::make_unique<RMSprop>(
             p, RMSpropOptions{.lr = 0.01, .weight_decay = 0.1, .momentum = 0.5, .centered = true});
       }},
      {"adagrad",
       [](auto& p) { return std::make_unique<Adagrad>(p, AdagradOptions{.lr = 0.1, .lr_decay = 0.01}); }},
  };
}

// Runs `steps` training steps of Net, with the optimizer in backward or the ordinary step, and a
// StepLR halving the lr every 2 steps; returns every parameter's values after each step.
std::vector<std::vector<double>> train(DType dt, const MakeOptimizer& make, bool in_backward, int steps) {
  Net net(dt);
  std::unique_ptr<optim::Optimizer> opt = make(net.params);
  optim::StepLR schedule(*opt, 2, 0.5);
  std::optional<optim::OptimizerInBackward> fused;
  if (in_backward) fused.emplace(optim::apply_in_backward(*opt));
  std::vector<std::vector<double>> trace;
  for (const Batch& b : batches(dt, steps)) {
    if (!in_backward) opt->zero_grad();
    net.loss(b.x, b.y).backward();
    if (in_backward) {
      for (const Tensor& p : net.params) REQUIRE_FALSE(p.grad().defined());  // released after its update
    } else {
      opt->step();
    }
    schedule.step();
    std::vector<double> all;
    for (const Tensor& p : net.params) {
      std::vector<double> v = p.to_vector<double>();
      all.insert(all.end(), v.begin(), v.end());
    }
    trace.push_back(all);
  }
  if (in_backward) REQUIRE(fused->updates() == 4 * steps);
  return trace;
}

}  // namespace

TEST_CASE("a step in backward gives the ordinary step's parameters", "[optim_in_backward]") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (const auto& [name, make] : optimizers()) {
      INFO(name << ", " << dt);
      auto fused = train(dt, make, true, 5);
      auto ordinary = train(dt, make, false, 5);
      REQUIRE(fused.size() == ordinary.size());
      for (size_t s = 0; s < fused.size(); ++s) {
        INFO("after step " << s + 1);
        REQUIRE(fused[s] == ordinary[s]);  // the same kernels on the same gradients: bit for bit
      }
      // And the run changed the parameters at all.
      Net fresh(dt);
      std::vector<double> start;
      for (const Tensor& p : fresh.params) {
        std::vector<double> v = p.to_vector<double>();
        start.insert(start.end(), v.begin(), v.end());
      }
      REQUIRE(fused.back() != start);
    }
  }
}

TEST_CASE("a step in backward, hand-worked", "[optim_in_backward]") {
  // loss = sum(p^2): gradient 2p. SGD lr 0.1, momentum 0.5: buf = 2p, p1 = p - 0.2p = 0.8p;
  // then g = 1.6p, buf = 0.5 * 2p + 1.6p = 2.6p, p2 = 0.8p - 0.26p = 0.54p.
  Tensor p = tensor({1.0, -2.0}, {2}, dtype(kFloat64)).requires_grad_();
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.5});
  auto in_backward = optim::apply_in_backward(opt);
  sum(mul(p, p)).backward();
  REQUIRE(p.to_vector<double>() == std::vector<double>{0.8, -1.6});
  sum(mul(p, p)).backward();
  test::require_within(p.to_vector<double>(), {0.54, -1.08}, [](size_t) { return 1e-15; });
  REQUIRE(opt.state(0).step == 2);
  REQUIRE(in_backward.updates() == 2);
}

TEST_CASE("keep_grad keeps the gradient; accumulating over backward passes is refused",
          "[optim_in_backward]") {
  Net net(kFloat64), reference(kFloat64);
  optim::AdamW opt(net.params, {.lr = 0.01});
  auto in_backward = optim::apply_in_backward(opt, {.keep_grad = true});
  const Batch b = batches(kFloat64, 1)[0];
  net.loss(b.x, b.y).backward();
  reference.loss(b.x, b.y).backward();  // the gradients at the same starting point, no step
  for (size_t i = 0; i < net.params.size(); ++i) {
    REQUIRE(net.params[i].grad().defined());
    REQUIRE(net.params[i].grad().to_vector<double>() == reference.params[i].grad().to_vector<double>());
  }
  // A second backward would add to the kept gradient and step with the sum: refused.
  test::require_error([&] { net.loss(b.x, b.y).backward(); },
                      "already has a gradient when backward reaches it");
  opt.zero_grad();
  net.loss(b.x, b.y).backward();  // after zero_grad, the next step runs
  REQUIRE(opt.state(0).step == 2);
}

TEST_CASE("a step in backward refuses what needs every gradient first", "[optim_in_backward]") {
  Net net(kFloat64);
  optim::SGD opt(net.params, {.lr = 0.1});
  const Batch b = batches(kFloat64, 1)[0];
  {
    auto in_backward = optim::apply_in_backward(opt);
    REQUIRE(opt.runs_in_backward());
    REQUIRE(optim::updated_in_backward(net.params[2]));
    test::require_error([&] { opt.step(); }, "SGD.step: this optimizer updates its parameters in backward");
    test::require_error([&] { optim::clip_grad_norm_(net.params, 1.0); },
                        "clip_grad_norm_: parameter 0 is updated in backward by an optimizer");
    test::require_error([&] { optim::clip_grad_value_(net.params, 1.0); },
                        "clip_grad_value_: parameter 0 is updated in backward");
    test::require_error([&] { optim::apply_in_backward(opt); },
                        "apply_in_backward: SGD already runs in backward");
    optim::SGD other(net.params, {.lr = 0.1});
    test::require_error(
        [&] { optim::apply_in_backward(other); },
        "apply_in_backward: SGD's parameter 0 is already updated in backward by another optimizer");
    test::require_error([&] { net.loss(b.x, b.y).backward({}, false, /*create_graph=*/true); },
                        "apply_in_backward: backward with create_graph reached SGD's parameter");
  }
  // Destroyed: the hooks are inert and the ordinary step, clipping included, works again.
  REQUIRE_FALSE(opt.runs_in_backward());
  REQUIRE_FALSE(optim::updated_in_backward(net.params[0]));
  opt.zero_grad();
  for (const Tensor& p : net.params) p.set_grad(Tensor());
  std::vector<double> before = net.params[0].to_vector<double>();
  net.loss(b.x, b.y).backward();
  REQUIRE(net.params[0].to_vector<double>() == before);  // backward alone updates nothing now
  REQUIRE(optim::clip_grad_norm_(net.params, 1e9) > 0.0);
  opt.step();
  REQUIRE(net.params[0].to_vector<double>() != before);

  Tensor frozen = zeros({3}, dtype(kFloat64));
  optim::SGD frozen_opt({frozen}, {.lr = 0.1});
  test::require_error([&] { optim::apply_in_backward(frozen_opt); },
                      "apply_in_backward: SGD's parameter 0 is not a leaf that requires grad");
}

TEST_CASE("SGD's fused float32 pass against a double loop", "[optim_in_backward][sgd]") {
  // Sizes across kernels::sgd_step's 16K-element pieces and vector remainders, over three steps
  // (the momentum buffer's first step and two more), for each rule.
  for (const optim::SGDOptions& o :
       {optim::SGDOptions{.lr = 0.1}, optim::SGDOptions{.lr = 0.1, .weight_decay = 0.05},
        optim::SGDOptions{.lr = 0.1, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.05},
        optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}}) {
    INFO("momentum " << o.momentum << " weight_decay " << o.weight_decay << " nesterov " << o.nesterov);
    manual_seed(2);
    std::vector<Tensor> params = {randn({(1 << 15) + 7}), randn({5}), randn({3, 17})};
    std::vector<std::vector<double>> p, buf(params.size());
    for (const Tensor& t : params) p.push_back(t.to_vector<double>());
    optim::SGD opt(params, o);
    for (int step = 0; step < 3; ++step) {
      for (size_t k = 0; k < params.size(); ++k) {
        Tensor g = randn(params[k].shape());
        params[k].set_grad(g);
        std::vector<double> gv = g.to_vector<double>();
        if (buf[k].empty()) buf[k].assign(gv.size(), 0.0);
        for (size_t i = 0; i < gv.size(); ++i) {
          double d = gv[i] + o.weight_decay * p[k][i];
          if (o.momentum != 0.0) {
            buf[k][i] = step == 0 ? d : o.momentum * buf[k][i] + (1.0 - o.dampening) * d;
            d = o.nesterov ? d + o.momentum * buf[k][i] : buf[k][i];
          }
          p[k][i] -= o.lr * d;
        }
      }
      opt.step();
      for (size_t k = 0; k < params.size(); ++k)
        test::require_within(params[k].to_vector<double>(), p[k],
                             [&](size_t i) { return 1e-5 * (1.0 + std::fabs(p[k][i])); });
    }
  }
}
