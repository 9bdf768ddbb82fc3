// test_nn: Module registry and state dicts, layers against hand-written loops, optimizers against
// hand-computed updates, clip_grad_norm_, the cosine schedule, and small models that learn.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;

namespace {

Tensor f64(const std::vector<double>& values, const Shape& shape) { return tensor(values, shape, dtype(kFloat64)); }

void check_close(const Tensor& actual, const std::vector<double>& expected, double tol = 1e-10) {
  std::vector<double> got = actual.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(got[i] == Approx(expected[i]).margin(tol).epsilon(tol));
  }
}

// A module with a parameter, a buffer, an absent parameter and two children, for registry tests.
struct Net : nn::UnaryModule {
  Net() : nn::UnaryModule("Net") {
    scale = register_parameter("scale", ones({3}));
    register_parameter("absent", Tensor());
    register_buffer("steps", zeros({1}));
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 2));
    head = register_module("head", std::make_shared<nn::Sequential>(
                                       std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
                                           std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(2, 1, false)}));
  }
  Tensor forward(const Tensor& x) override { return head->forward(fc->forward(x * scale)); }
  Tensor scale;
  std::shared_ptr<nn::Linear> fc;
  std::shared_ptr<nn::Sequential> head;
};

std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

TEST_CASE("Module registration, names and traversal", "[nn]") {
  auto net = std::make_shared<Net>();
  SECTION("named_parameters are dotted and in registration order") {
    std::vector<std::string> names;
    for (auto& [name, p] : net->named_parameters()) {
      names.push_back(name);
      REQUIRE(p.requires_grad());
      REQUIRE(p.is_leaf());
    }
    REQUIRE(names == std::vector<std::string>{"scale", "fc.weight", "fc.bias", "head.1.weight"});
    REQUIRE(net->parameters().size() == 4);
    REQUIRE(net->parameters(/*recurse=*/false).size() == 1);
    REQUIRE(net->num_parameters() == 3 + 6 + 2 + 2);
    REQUIRE(net->named_buffers().size() == 1);
    REQUIRE(net->children().size() == 2);
  }
  SECTION("names are checked") {
    WEFT_REQUIRE_ERROR(net->register_parameter("scale", ones({1})), Contains("already registered"));
    WEFT_REQUIRE_ERROR(net->register_buffer("fc", ones({1})), Contains("already registered"));
    WEFT_REQUIRE_ERROR(net->register_parameter("a.b", ones({1})), Contains("must not contain '.'"));
    WEFT_REQUIRE_ERROR(net->register_parameter("", ones({1})), Contains("empty"));
  }
  SECTION("train and eval reach every descendant") {
    net->eval();
    REQUIRE(!net->is_training());
    REQUIRE(!net->head->children()[1]->is_training());
    net->train();
    REQUIRE(net->fc->is_training());
  }
  SECTION("zero_grad sets gradients to undefined") {
    net->forward(ones({4, 3})).sum().backward();
    REQUIRE(net->fc->weight.grad().defined());
    net->zero_grad();
    for (const Tensor& p : net->parameters()) REQUIRE(!p.grad().defined());
  }
  SECTION("printing shows the tree with parameter counts") {
    std::ostringstream out;
    out << *net;
    std::string text = out.str();
    REQUIRE_THAT(text, Contains("Net(  # 13 parameters"));
    REQUIRE_THAT(text, Contains("(fc): Linear(in_features=3, out_features=2, bias=true)  # 8 parameters"));
    REQUIRE_THAT(text, Contains("(1): Linear(in_features=2, out_features=1, bias=false)  # 2 parameters"));
    REQUIRE_THAT(text, Contains("(0): ReLU()"));
  }
  SECTION("to(float64) converts in place and layer references follow") {
    net->to(kFloat64);
    REQUIRE(net->fc->weight.dtype() == kFloat64);
    REQUIRE(net->fc->weight.is_same(net->named_parameters()[1].second));
    REQUIRE(net->fc->weight.requires_grad());
    REQUIRE(net->forward(ones({2, 3}, dtype(kFloat64))).dtype() == kFloat64);
  }
}

TEST_CASE("state_dict round trip and load errors", "[nn]") {
  manual_seed(1);
  auto a = std::make_shared<Net>();
  auto b = std::make_shared<Net>();
  nn::StateDict state = a->state_dict();
  REQUIRE(state.keys() == std::vector<std::string>{"scale", "steps", "fc.weight", "fc.bias", "head.1.weight"});
  REQUIRE(!state["fc.weight"].requires_grad());
  REQUIRE(values_of(a->fc->weight) != values_of(b->fc->weight));

  SECTION("load copies values in place") {
    Tensor b_weight = b->fc->weight;
    b->load_state_dict(state);
    REQUIRE(b->fc->weight.is_same(b_weight));  // same parameter object, new values
    for (auto& [name, t] : b->state_dict()) REQUIRE(values_of(t) == values_of(state[name]));
    REQUIRE(b->fc->weight.requires_grad());
  }
  SECTION("a missing key is named") {
    nn::StateDict partial;
    for (auto& [name, t] : state)
      if (name != "fc.bias") partial.insert(name, t);
    WEFT_REQUIRE_ERROR(b->load_state_dict(partial), Contains("missing key 'fc.bias'"));
  }
  SECTION("a shape mismatch names the key and both shapes") {
    nn::StateDict bad;
    for (auto& [name, t] : state) bad.insert(name, name == "fc.weight" ? zeros({3, 2}) : t);
    WEFT_REQUIRE_ERROR(b->load_state_dict(bad), Contains("'fc.weight'") && Contains("[3, 2]") && Contains("[2, 3]"));
    REQUIRE(values_of(b->fc->bias) != values_of(a->fc->bias));  // nothing was copied
  }
  SECTION("unexpected keys fail only when strict") {
    state.insert("extra", zeros({1}));
    WEFT_REQUIRE_ERROR(b->load_state_dict(state), Contains("unexpected key 'extra'"));
    b->load_state_dict(state, /*strict=*/false);
    REQUIRE(values_of(b->fc->weight) == values_of(a->fc->weight));
  }
}

TEST_CASE("Embedding's padding_idx: the row starts at zero and gets no gradient; negative counts from the end",
          "[nn]") {
  nn::Embedding emb(5, 3, /*padding_idx=*/-2);
  REQUIRE(emb.padding_idx == 3);
  for (int64_t j = 0; j < 3; ++j) REQUIRE(emb.weight.index({3, j}).item<float>() == 0.0f);
  REQUIRE(emb.extra_repr() == "5, 3, padding_idx=3");
  Tensor idx = from_vector<int64_t>({3, 1, 3, 0, 1}, {5});
  Tensor out = emb(idx);
  // Row k of the output is row idx[k] of the table; the gradient of a row is the sum of the output
  // gradients of the positions that read it, except for the padding row.
  Tensor g = arange(15, dtype(kFloat32)).reshape({5, 3});
  out.backward(g);
  const std::vector<float> got = emb.weight.grad().to_vector<float>();
  for (int64_t j = 0; j < 3; ++j) {
    REQUIRE(got[0 * 3 + j] == static_cast<float>(9 + j));               // position 3
    REQUIRE(got[1 * 3 + j] == static_cast<float>((3 + j) + (12 + j)));  // positions 1 and 4
    REQUIRE(got[2 * 3 + j] == 0.0f);
    REQUIRE(got[3 * 3 + j] == 0.0f);  // the padding row, read twice
    REQUIRE(got[4 * 3 + j] == 0.0f);
  }
  WEFT_REQUIRE_ERROR(nn::Embedding(5, 3, 5), Catch::Contains("Embedding") && Catch::Contains("padding_idx"));
  WEFT_REQUIRE_ERROR(nn::Embedding(5, 3, -6), Catch::Contains("Embedding") && Catch::Contains("-6"));
}

TEST_CASE("Linear, Embedding and activations match hand-written loops", "[nn]") {
  manual_seed(2);
  SECTION("Linear = x W^T + b, initialised within 1/sqrt(in)") {
    nn::Linear lin(5, 3);
    REQUIRE(lin.weight.shape() == Shape{3, 5});
    for (double w : values_of(lin.weight)) REQUIRE(std::abs(w) <= 1.0 / std::sqrt(5.0));
    for (double w : values_of(lin.bias)) REQUIRE(std::abs(w) <= 1.0 / std::sqrt(5.0));
    lin.to(kFloat64);
    Tensor x = randn({2, 4, 5}, dtype(kFloat64));
    auto xv = values_of(x), wv = values_of(lin.weight), bv = values_of(lin.bias);
    std::vector<double> expected;
    for (int r = 0; r < 8; ++r)
      for (int o = 0; o < 3; ++o) {
        double s = bv[o];
        for (int i = 0; i < 5; ++i) s += xv[r * 5 + i] * wv[o * 5 + i];
        expected.push_back(s);
      }
    Tensor y = lin(x);
    REQUIRE(y.shape() == Shape{2, 4, 3});
    check_close(y, expected);
    WEFT_REQUIRE_ERROR(lin(zeros({2, 4}, dtype(kFloat64))), Contains("last dim 5"));
  }
  SECTION("Embedding picks rows") {
    nn::Embedding emb(6, 3);
    Tensor idx = from_vector<int64_t>({4, 0, 4}, {3});
    auto w = values_of(emb.weight);
    std::vector<double> expected;
    for (int64_t i : {4, 0, 4})
      for (int j = 0; j < 3; ++j) expected.push_back(w[i * 3 + j]);
    check_close(emb(idx), expected, 1e-6);
  }
  SECTION("activations") {
    Tensor x = f64({-2.0, -0.5, 0.0, 0.7, 3.0}, {5});
    std::vector<double> relu_v, gelu_v, silu_v;
    for (double v : values_of(x)) {
      relu_v.push_back(v > 0 ? v : 0);
      gelu_v.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
      silu_v.push_back(v / (1 + std::exp(-v)));
    }
    check_close(nn::ReLU()(x), relu_v);
    check_close(nn::GELU()(x), gelu_v, 1e-9);
    check_close(nn::SiLU()(x), silu_v, 1e-9);
  }
  SECTION("Dropout is the identity in eval and zeroes about p of the elements in training") {
    nn::Dropout drop(0.25);
    Tensor x = ones({4000});
    drop.eval();
    check_close(drop(x), std::vector<double>(4000, 1.0));
    drop.train();
    int zeros_seen = 0;
    for (double v : values_of(drop(x))) {
      if (v == 0.0) ++zeros_seen;
      else REQUIRE(v == Approx(1.0 / 0.75));
    }
    REQUIRE(zeros_seen > 850);
    REQUIRE(zeros_seen < 1150);
  }
}

TEST_CASE("LayerNorm and RMSNorm match hand-written loops", "[nn]") {
  manual_seed(3);
  Tensor x = randn({3, 4}, dtype(kFloat64));
  auto xv = values_of(x);
  Tensor w = f64({0.5, -1.0, 2.0, 1.5}, {4}), b = f64({0.1, 0.2, -0.3, 0.0}, {4});
  auto wv = values_of(w), bv = values_of(b);
  SECTION("LayerNorm") {
    nn::LayerNorm ln(4);
    ln.to(kFloat64);
    {
      NoGradGuard g;
      ln.weight.copy_(w);
      ln.bias.copy_(b);
    }
    std::vector<double> expected;
    for (int r = 0; r < 3; ++r) {
      double mean = 0, var = 0;
      for (int j = 0; j < 4; ++j) mean += xv[r * 4 + j] / 4;
      for (int j = 0; j < 4; ++j) var += (xv[r * 4 + j] - mean) * (xv[r * 4 + j] - mean) / 4;
      for (int j = 0; j < 4; ++j) expected.push_back((xv[r * 4 + j] - mean) / std::sqrt(var + 1e-5) * wv[j] + bv[j]);
    }
    check_close(ln(x), expected, 1e-9);
  }
  SECTION("RMSNorm") {
    nn::RMSNorm rms(4, 1e-6);
    rms.to(kFloat64);
    {
      NoGradGuard g;
      rms.weight.copy_(w);
    }
    std::vector<double> expected;
    for (int r = 0; r < 3; ++r) {
      double ms = 0;
      for (int j = 0; j < 4; ++j) ms += xv[r * 4 + j] * xv[r * 4 + j] / 4;
      for (int j = 0; j < 4; ++j) expected.push_back(xv[r * 4 + j] / std::sqrt(ms + 1e-6) * wv[j]);
    }
    check_close(rms(x), expected, 1e-9);
  }
}

TEST_CASE("Sequential and MLP compose their modules", "[nn]") {
  manual_seed(4);
  auto mlp = std::make_shared<nn::MLP>(3, 8, 2);
  mlp->to(kFloat64);
  Tensor x = randn({5, 3}, dtype(kFloat64));
  Tensor expected = linear(gelu(linear(x, mlp->fc1->weight, mlp->fc1->bias)), mlp->fc2->weight, mlp->fc2->bias);
  check_close((*mlp)(x), values_of(expected));
  nn::Sequential seq{mlp->fc1, mlp->act, mlp->fc2};
  REQUIRE(seq.size() == 3);
  check_close(seq(x), values_of(expected));
}

TEST_CASE("CausalSelfAttention matches softmax(QK^T/sqrt(d)) V with a causal mask", "[nn]") {
  manual_seed(5);
  const int64_t B = 2, T = 4, C = 6, H = 2, D = C / H;
  nn::CausalSelfAttention attn(C, H);
  attn.to(kFloat64);
  Tensor x = randn({B, T, C}, dtype(kFloat64));
  auto xv = values_of(x), wq = values_of(attn.qkv->weight), bq = values_of(attn.qkv->bias);
  auto wp = values_of(attn.proj->weight), bp = values_of(attn.proj->bias);
  // qkv[b][t][j] for j in [0, 3C)
  std::vector<double> qkv(B * T * 3 * C);
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t j = 0; j < 3 * C; ++j) {
      double s = bq[j];
      for (int64_t i = 0; i < C; ++i) s += xv[r * C + i] * wq[j * C + i];
      qkv[r * 3 * C + j] = s;
    }
  auto at = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) {
    return qkv[(b * T + t) * 3 * C + part * C + h * D + d];
  };
  std::vector<double> merged(B * T * C), expected;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> score(t + 1);  // keys s <= t only: the causal mask
        double mx = -1e300, total = 0;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += at(b, t, 0, h, d) * at(b, s, 1, h, d);
          score[s] = dot / std::sqrt(double(D));
          mx = std::max(mx, score[s]);
        }
        for (auto& s : score) total += (s = std::exp(s - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s) acc += score[s] / total * at(b, s, 2, h, d);
          merged[(b * T + t) * C + h * D + d] = acc;
        }
      }
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t o = 0; o < C; ++o) {
      double s = bp[o];
      for (int64_t i = 0; i < C; ++i) s += merged[r * C + i] * wp[o * C + i];
      expected.push_back(s);
    }
  Tensor y = attn(x);
  REQUIRE(y.shape() == Shape{B, T, C});
  check_close(y, expected, 1e-9);
}

TEST_CASE("SGD with momentum, nesterov and weight decay matches PyTorch's rule", "[optim]") {
  Tensor p = f64({1.0, -2.0}, {2}).requires_grad_();
  const double lr = 0.1, mom = 0.9, wd = 0.01;
  const std::vector<std::vector<double>> grads = {{0.5, -1.0}, {0.25, 0.75}, {-0.5, 0.125}};
  SECTION("nesterov") {
    optim::SGD sgd({p}, {.lr = lr, .momentum = mom, .weight_decay = wd, .nesterov = true});
    std::vector<double> ref = {1.0, -2.0}, buf(2);
    for (size_t step = 0; step < grads.size(); ++step) {
      p.set_grad(f64(grads[step], {2}));
      sgd.step();
      for (int i = 0; i < 2; ++i) {
        double g = grads[step][i] + wd * ref[i];
        buf[i] = step == 0 ? g : mom * buf[i] + g;
        ref[i] -= lr * (g + mom * buf[i]);
      }
      check_close(p, ref, 1e-14);
    }
    check_close(sgd.state(0).buffers.at("momentum_buffer"), buf, 1e-14);
  }
  SECTION("dampened momentum") {
    optim::SGD sgd({p}, {.lr = lr, .momentum = mom, .dampening = 0.3});
    std::vector<double> ref = {1.0, -2.0}, buf(2);
    for (size_t step = 0; step < grads.size(); ++step) {
      p.set_grad(f64(grads[step], {2}));
      sgd.step();
      for (int i = 0; i < 2; ++i) {
        buf[i] = step == 0 ? grads[step][i] : mom * buf[i] + 0.7 * grads[step][i];
        ref[i] -= lr * buf[i];
      }
      check_close(p, ref, 1e-14);
    }
  }
  SECTION("parameters without gradients are skipped; DTensor-free errors are clear") {
    optim::SGD sgd({p}, {.lr = lr});
    sgd.step();
    check_close(p, {1.0, -2.0});
    WEFT_REQUIRE_ERROR(optim::SGD({p}, {.lr = lr, .nesterov = true}), Contains("nesterov"));
    WEFT_REQUIRE_ERROR(optim::SGD({p, p}, {.lr = lr}), Contains("appears twice"));
  }
}

TEST_CASE("AdamW matches PyTorch's rule with bias correction and decoupled decay", "[optim]") {
  Tensor p = f64({0.5, -1.5, 2.0}, {3}).requires_grad_();
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  optim::AdamW adam({p}, {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps, .weight_decay = wd});
  const std::vector<std::vector<double>> grads = {{0.1, -0.2, 0.3}, {-0.4, 0.5, 0.05}, {0.2, 0.2, -0.1}};
  std::vector<double> ref = {0.5, -1.5, 2.0}, m(3, 0.0), v(3, 0.0);
  for (size_t step = 0; step < grads.size(); ++step) {
    p.set_grad(f64(grads[step], {3}));
    adam.step();
    double t = double(step + 1);
    for (int i = 0; i < 3; ++i) {
      double g = grads[step][i];
      ref[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
      ref[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
    check_close(p, ref, 1e-12);
  }
  REQUIRE(adam.state(0).step == 3);

  SECTION("state_dict round trip continues identically") {
    nn::StateDict saved = adam.state_dict();
    REQUIRE(saved.contains("state.0.exp_avg"));
    REQUIRE(saved["state.0.step"].item<int64_t>() == 3);
    REQUIRE(saved["param_groups.0.beta2"].item<double>() == b2);
    Tensor q = p.detach().clone().requires_grad_();
    optim::AdamW other({q}, {.lr = 1.0});
    other.load_state_dict(saved);
    REQUIRE(other.lr() == lr);
    REQUIRE(other.group_options(0).weight_decay == wd);
    p.set_grad(f64({0.3, -0.3, 0.1}, {3}));
    q.set_grad(f64({0.3, -0.3, 0.1}, {3}));
    adam.step();
    other.step();
    check_close(q, values_of(p), 1e-15);
    nn::StateDict bad = saved;
    bad.at("state.0.exp_avg") = zeros({2}, dtype(kFloat64));
    WEFT_REQUIRE_ERROR(other.load_state_dict(bad), Contains("state.0.exp_avg"));
  }
}

TEST_CASE("AdamW in float32 tracks the float64 update", "[optim]") {
  Tensor p32 = tensor({0.5, -1.5}, {2}).requires_grad_();
  Tensor p64 = f64({0.5, -1.5}, {2}).requires_grad_();
  optim::AdamW a32({p32}, {.lr = 0.05}), a64({p64}, {.lr = 0.05});
  for (int s = 0; s < 5; ++s) {
    p32.set_grad(tensor({0.3 - s * 0.1, 0.2}, {2}));
    p64.set_grad(f64({0.3 - s * 0.1, 0.2}, {2}));
    a32.step();
    a64.step();
  }
  check_close(p32, values_of(p64), 1e-5);
}

TEST_CASE("clip_grad_norm_ scales by the global 2-norm", "[optim]") {
  Tensor a = f64({3.0, 0.0}, {2}).requires_grad_(), b = f64({0.0, 0.0, 4.0}, {3}).requires_grad_();
  Tensor c = f64({1.0}, {1}).requires_grad_();  // no gradient: ignored
  a.set_grad(f64({3.0, 0.0}, {2}));
  b.set_grad(f64({0.0, 12.0, 4.0}, {3}));
  double total = optim::clip_grad_norm_({a, b, c}, 2.6);
  REQUIRE(total == Approx(13.0));
  double coef = 2.6 / (13.0 + 1e-6);
  check_close(a.grad(), {3.0 * coef, 0.0}, 1e-12);
  check_close(b.grad(), {0.0, 12.0 * coef, 4.0 * coef}, 1e-12);
  // Below the limit nothing changes.
  double again = optim::clip_grad_norm_({a, b}, 100.0);
  REQUIRE(again == Approx(2.6).epsilon(1e-6));
  check_close(a.grad(), {3.0 * coef, 0.0}, 1e-12);
}

TEST_CASE("cosine schedule with linear warmup", "[optim]") {
  optim::CosineWarmupSchedule schedule(1.0, 10, 110, 0.1);
  REQUIRE(schedule.lr_at(0) == Approx(0.1));
  REQUIRE(schedule.lr_at(4) == Approx(0.5));
  REQUIRE(schedule.lr_at(9) == Approx(1.0));
  REQUIRE(schedule.lr_at(10) == Approx(1.0));
  REQUIRE(schedule.lr_at(60) == Approx(0.55));  // halfway: min + (base - min) / 2
  REQUIRE(schedule.lr_at(35) == Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.25))));
  REQUIRE(schedule.lr_at(110) == Approx(0.1));
  REQUIRE(schedule.lr_at(500) == Approx(0.1));
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD sgd({p}, {.lr = 5.0});
  REQUIRE(schedule.apply(sgd, 4) == Approx(0.5));
  REQUIRE(sgd.lr() == Approx(0.5));
}

TEST_CASE("a tiny MLP regression learns", "[nn][train]") {
  manual_seed(6);
  Tensor x = rand({128, 2}) * 2.0 - 1.0;
  auto xv = values_of(x);
  std::vector<double> yv;
  for (int i = 0; i < 128; ++i) yv.push_back(std::sin(2.0 * xv[i * 2]) * xv[i * 2 + 1]);
  Tensor y = tensor(yv, {128, 1});
  nn::Sequential model{std::make_shared<nn::Linear>(2, 32), std::make_shared<nn::SiLU>(),
                       std::make_shared<nn::Linear>(32, 1)};
  optim::AdamW opt(model.parameters(), {.lr = 0.02, .weight_decay = 0.0});
  nn::MSELoss loss_fn;
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    opt.zero_grad();
    Tensor loss = loss_fn(model(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  INFO("first " << first << " last " << last);
  REQUIRE(last < first / 5);
}

TEST_CASE("GPT: logits shape, tied head, and training on a repetitive sequence", "[nn][train]") {
  manual_seed(7);
  nn::GPTConfig cfg{.vocab_size = 8, .block_size = 8, .n_layer = 1, .n_head = 2, .n_embd = 16};
  auto gpt = std::make_shared<nn::GPT>(cfg);
  for (auto& [name, p] : gpt->named_parameters()) REQUIRE(name.find("lm_head") == std::string::npos);
  cfg.tie_weights = false;
  nn::GPT untied(cfg);
  REQUIRE(untied.num_parameters() == gpt->num_parameters() + 8 * 16);

  // Tokens 0 1 2 ... 7 0 1 ...: the next token is always (t + 1) mod 8.
  const int64_t B = 4, T = 8;
  std::vector<int64_t> in, out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      in.push_back((b + t) % 8);
      out.push_back((b + t + 1) % 8);
    }
  Tensor idx = from_vector(in, {B, T}), target = from_vector(out, {B * T});
  Tensor logits = gpt->forward(idx);
  REQUIRE(logits.shape() == Shape{B, T, 8});
  WEFT_REQUIRE_ERROR(gpt->forward(zeros({1, 9}, dtype(kInt64))), Contains("block_size"));

  optim::AdamW opt(gpt->parameters(), {.lr = 1e-2, .weight_decay = 0.0});
  nn::CrossEntropyLoss ce;
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    Tensor loss = ce(gpt->forward(idx).reshape({B * T, 8}), target);
    loss.backward();
    optim::clip_grad_norm_(gpt->parameters(), 1.0);
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  INFO("first " << first << " last " << last);
  REQUIRE(first == Approx(std::log(8.0)).margin(0.3));  // small init: near-uniform predictions
  REQUIRE(last < first / 4);
}

TEST_CASE("shared submodules list their parameters once; GPT state dicts round trip", "[nn]") {
  manual_seed(8);
  auto shared = std::make_shared<nn::Linear>(2, 2);
  nn::Sequential twice{shared, std::make_shared<nn::ReLU>(), shared};
  REQUIRE(twice.parameters().size() == 2);
  REQUIRE(twice.named_parameters()[0].first == "0.weight");
  REQUIRE(twice.state_dict().size() == 4);  // state dicts keep every name, as PyTorch's
  optim::SGD sgd(twice.parameters(), {.lr = 0.1});  // would throw on a duplicate

  nn::GPTConfig cfg{.vocab_size = 5, .block_size = 4, .n_layer = 2, .n_head = 1, .n_embd = 4};
  nn::GPT a(cfg), b(cfg);
  nn::StateDict state = a.state_dict();
  REQUIRE(state.contains("blocks.1.attn.qkv.weight"));
  REQUIRE(state.contains("blocks.0.mlp.fc2.bias"));
  REQUIRE(state.contains("ln_f.weight"));
  b.load_state_dict(state);
  Tensor idx = from_vector<int64_t>({0, 1, 2, 3, 4, 0}, {2, 3});
  check_close(b.forward(idx), values_of(a.forward(idx)), 0.0);
}

namespace {
// An optimizer overriding the gradient hook, as a distributed optimizer will: here it halves every gradient.
struct HalvingSGD : optim::SGD {
  using optim::SGD::SGD;
  Tensor prepare_grad(const Tensor& param) override {
    Tensor g = optim::SGD::prepare_grad(param);
    return g.defined() ? g * 0.5 : g;
  }
};
}  // namespace

TEST_CASE("optimizers take gradients through the prepare_grad hook", "[optim]") {
  Tensor p = f64({1.0, 2.0}, {2}).requires_grad_();
  HalvingSGD sgd({p}, {.lr = 0.5});
  p.set_grad(f64({0.4, -0.8}, {2}));
  sgd.step();
  check_close(p, {1.0 - 0.5 * 0.2, 2.0 + 0.5 * 0.4}, 1e-15);
}

TEST_CASE("forward wrappers run around module(x), outermost first, and not around forward(x)", "[nn]") {
  auto lin = std::make_shared<nn::Linear>(2, 2);
  std::vector<std::string> log;
  lin->add_forward_wrapper("outer", [&](const Tensor& x, const std::function<Tensor(const Tensor&)>& next) {
    log.push_back("outer in");
    Tensor y = next(mul(x, 2.0));  // a wrapper may change the input and the output
    log.push_back("outer out");
    return add(y, 1.0);
  });
  lin->add_forward_wrapper("inner", [&](const Tensor& x, const std::function<Tensor(const Tensor&)>& next) {
    log.push_back("inner");
    return next(x);
  });
  REQUIRE(lin->has_forward_wrapper("inner"));
  REQUIRE(!lin->has_forward_wrapper("fully_shard"));
  Tensor x = randn({3, 2});
  Tensor expected = add(lin->forward(mul(x, 2.0)), 1.0);
  REQUIRE(log.empty());  // forward(x) runs no wrapper
  nn::Sequential seq{lin};  // Sequential calls its modules as module(x)
  REQUIRE(max(abs(sub(seq.forward(x), expected))).item<float>() == 0.0f);
  REQUIRE(log == std::vector<std::string>{"outer in", "inner", "outer out"});
  WEFT_REQUIRE_ERROR(lin->add_forward_wrapper("empty", nullptr), Catch::Contains("is empty"));
}
