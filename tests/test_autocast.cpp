// test_autocast.cpp: bfloat16 autocast (ops/autocast.h): the dtypes each op category runs in, values
// and gradients equal to writing the casts by hand, the scope's weight-cast cache, nesting and
// disabling, the bfloat16 products on oneDNN against a float64 reference, and a GPT trained under
// autocast against the same GPT trained in float32.
#include <catch2/catch.hpp>

#include <cmath>
#include <thread>
#include <vector>

#include "kernels/matmul.h"
#include "test_util.h"
#include "weft.h"

using namespace weft;

namespace {

Tensor leaf(const Shape& shape, Generator& gen, double scale = 1.0) {
  return mul(randn(shape, {}, &gen), scale).requires_grad_();
}

// Bitwise equality (same dtype, same values, NaN-free inputs): the autocast result must be exactly
// what the hand-written casts give, since both run the same kernels on the same operands.
void require_identical(const Tensor& got, const Tensor& want) {
  REQUIRE(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(max(abs(sub(got.to(kFloat64), want.to(kFloat64)))).item<double>() == 0.0);
}

Tensor bf16(const Tensor& t) { return t.to(kBFloat16); }
Tensor f32(const Tensor& t) { return t.to(kFloat32); }

}  // namespace

TEST_CASE("autocast: the products run in bfloat16, the listed reductions in float32, the rest as given") {
  Generator gen(1);
  Tensor a = randn({5, 24}, {}, &gen), b = randn({24, 7}, {}, &gen), w = randn({7, 24}, {}, &gen);
  Tensor bias = randn({7}, {}, &gen), a3 = randn({2, 5, 24}, {}, &gen), b3 = randn({2, 24, 7}, {}, &gen);
  Tensor q = randn({2, 3, 6, 8}, {}, &gen), img = randn({1, 2, 6, 6}, {}, &gen), kern = randn({3, 2, 3, 3}, {}, &gen);
  Tensor h = bf16(randn({4, 10}, {}, &gen));
  Tensor target = from_vector(std::vector<int64_t>{1, 0, 9, 3});
  REQUIRE_FALSE(autocast_enabled());
  {
    AutocastGuard guard(kBFloat16);
    REQUIRE(autocast_enabled());
    REQUIRE(autocast_dtype() == kBFloat16);
    SECTION("lower precision") {
      CHECK(matmul(a, b).dtype() == kBFloat16);
      CHECK(mm(a, b).dtype() == kBFloat16);
      CHECK(bmm(a3, b3).dtype() == kBFloat16);
      CHECK(addmm(zeros({5, 7}), a, b).dtype() == kBFloat16);
      CHECK(linear(a, w, bias).dtype() == kBFloat16);
      CHECK(linear(a3, w).dtype() == kBFloat16);
      CHECK(scaled_dot_product_attention(q, q, q, Tensor(), true).dtype() == kBFloat16);
      CHECK(conv2d(img, kern).dtype() == kBFloat16);
    }
    SECTION("float32") {
      CHECK(softmax(h, -1).dtype() == kFloat32);
      CHECK(log_softmax(h, -1).dtype() == kFloat32);
      CHECK(layer_norm(h, {10}).dtype() == kFloat32);
      CHECK(cross_entropy(h, target).dtype() == kFloat32);
      CHECK(mse_loss(h, zeros({4, 10})).dtype() == kFloat32);
      CHECK(sum(h).dtype() == kFloat32);
      CHECK(h.sum().dtype() == kFloat32);
      CHECK(mean(h, {1}).dtype() == kFloat32);
    }
    SECTION("unlisted ops keep their dtypes and promote as usual; float64 and integers are never cast") {
      CHECK(relu(h).dtype() == kBFloat16);
      CHECK(add(h, zeros({4, 10})).dtype() == kFloat32);  // bfloat16 + float32 promotes
      CHECK(matmul(a.to(kFloat64), b.to(kFloat64)).dtype() == kFloat64);
      CHECK(softmax(h.to(kFloat64), -1).dtype() == kFloat64);
      CHECK(sum(target).dtype() == kInt64);
    }
  }
  REQUIRE_FALSE(autocast_enabled());
  CHECK(matmul(a, b).dtype() == kFloat32);  // after the scope, nothing is cast
  CHECK(softmax(h, -1).dtype() == kBFloat16);
}

TEST_CASE("autocast: values equal the casts written by hand") {
  Generator gen(2);
  Tensor x = randn({6, 32}, {}, &gen), w = randn({12, 32}, {}, &gen), bias = randn({12}, {}, &gen);
  Tensor q = randn({2, 2, 9, 16}, {}, &gen), k = randn({2, 2, 9, 16}, {}, &gen), v = randn({2, 2, 9, 16}, {}, &gen);
  Tensor h = bf16(randn({6, 12}, {}, &gen));
  Tensor target = from_vector(std::vector<int64_t>{0, 3, 11, 5, 5, 2});
  Tensor by_hand_linear = linear(bf16(x), bf16(w), bf16(bias));
  Tensor by_hand_mm = matmul(bf16(x), bf16(w.t()));
  Tensor by_hand_attention = scaled_dot_product_attention(bf16(q), bf16(k), bf16(v), Tensor(), true);
  Tensor by_hand_softmax = softmax(f32(h), 1), by_hand_norm = layer_norm(f32(h), {12});
  Tensor by_hand_loss = cross_entropy(f32(h), target), by_hand_mean = mean(f32(h));
  AutocastGuard guard;
  require_identical(linear(x, w, bias), by_hand_linear);
  require_identical(matmul(x, w.t()), by_hand_mm);
  require_identical(scaled_dot_product_attention(q, k, v, Tensor(), true), by_hand_attention);
  require_identical(softmax(h, 1), by_hand_softmax);
  require_identical(layer_norm(h, {12}), by_hand_norm);
  require_identical(cross_entropy(h, target), by_hand_loss);
  require_identical(mean(h), by_hand_mean);
}

TEST_CASE("bfloat16 products, on oneDNN or widened, round the float64 product once, to a bfloat16 step") {
  // Both routes on every host (Note [bfloat16 products on oneDNN]): oneDNN's bfloat16 matmul,
  // emulated where the CPU lacks AVX512-BF16, and the float32 route over widened operands.
  const auto route = GENERATE(kernels::Bf16ProductRoute::kOneDnn, kernels::Bf16ProductRoute::kWidened);
  kernels::set_bf16_product_route(route);
  Generator gen(3);
  // Sizes above kOneDnnMinWork, so that oneDNN (not the reference loop) runs them; a batch, a
  // transposed operand, a linear with bias.
  Tensor x = bf16(randn({33, 70}, {}, &gen)), w = bf16(randn({45, 70}, {}, &gen)), bias = bf16(randn({45}, {}, &gen));
  Tensor a3 = bf16(randn({3, 17, 40}, {}, &gen)), b3 = bf16(randn({3, 40, 21}, {}, &gen));
  auto check = [](const Tensor& got, const Tensor& exact) {
    REQUIRE(got.dtype() == kBFloat16);
    std::vector<double> g = got.to(kFloat64).contiguous().reshape({-1}).to_vector<double>();
    std::vector<double> e = exact.contiguous().reshape({-1}).to_vector<double>();
    // float32 accumulation then one rounding to bfloat16 (8 significant bits): within one step of
    // the exact product, 2^-7 of its magnitude, plus float32's accumulated error over K terms.
    test::require_within(g, e, [&](size_t i) { return std::ldexp(std::fabs(e[i]), -7) + 1e-4; });
  };
  auto f64 = [](const Tensor& t) { return t.to(kFloat64); };
  check(linear(x, w, bias), linear(f64(x), f64(w), f64(bias)));
  check(matmul(x, w.t()), matmul(f64(x), f64(w).t()));
  check(bmm(a3, b3), bmm(f64(a3), f64(b3)));
  check(bmm(a3, b3.transpose(1, 2).contiguous().transpose(1, 2)), bmm(f64(a3), f64(b3)));
  kernels::set_bf16_product_route(kernels::Bf16ProductRoute::kAuto);
}

TEST_CASE("autocast: gradients reach float32 leaves in float32, equal to the casts by hand") {
  Generator gen(4);
  Tensor x = leaf({5, 3, 16}, gen), w1 = leaf({24, 16}, gen, 0.3), b1 = leaf({24}, gen);
  Tensor w2 = leaf({10, 24}, gen, 0.3), g = leaf({10}, gen), q = leaf({2, 7, 8}, gen);
  Tensor target = from_vector(std::vector<int64_t>{1, 0, 9, 3, 2, 7, 4, 4, 5, 6, 8, 0, 1, 2, 3}).reshape({5, 3});
  // linear, gelu, linear, layer_norm, attention, cross_entropy: every category and a promotion.
  auto model = [&](auto cast_low, auto cast_high) {
    Tensor h = gelu(linear(cast_low(x), cast_low(w1), cast_low(b1)));
    Tensor y = linear(cast_low(h), cast_low(w2));
    Tensor n = layer_norm(cast_high(y), {10}, cast_high(g));
    Tensor ql = cast_low(q);  // one cast for three uses, as autocast's cache makes (Note [Autocast cache])
    Tensor att = scaled_dot_product_attention(ql, ql, ql);
    Tensor logits = add(n, cast_high(sum(cast_high(att))));
    return cross_entropy(cast_high(logits).reshape({-1, 10}), target.reshape({-1}));
  };
  std::vector<Tensor> leaves{x, w1, b1, w2, g, q};
  auto grads = [&](bool autocast, bool backward_inside) {
    for (Tensor& t : leaves) t.set_grad(Tensor());
    Tensor loss;
    {
      AutocastGuard guard(kBFloat16, autocast);
      loss = autocast ? model([](const Tensor& t) { return t; }, [](const Tensor& t) { return t; })
                      : model(bf16, f32);
      if (backward_inside) loss.backward();
    }
    if (!backward_inside) loss.backward();
    std::vector<Tensor> out;
    for (const Tensor& t : leaves) out.push_back(t.grad());
    return std::make_pair(loss, out);
  };
  auto [want_loss, want] = grads(false, false);
  auto [loss, got] = grads(true, false);
  require_identical(loss, want_loss);
  for (size_t i = 0; i < leaves.size(); ++i) {
    INFO("leaf " << i);
    REQUIRE(got[i].dtype() == kFloat32);
    require_identical(got[i], want[i]);
  }
  SECTION("backward called inside the scope runs as outside it") {
    auto [inside_loss, inside] = grads(true, true);
    for (size_t i = 0; i < leaves.size(); ++i) require_identical(inside[i], want[i]);
  }
}

TEST_CASE("autocast: a float32 leaf is cast once per scope, and again once it changes") {
  Generator gen(5);
  Tensor w = leaf({8, 8}, gen), x = randn({3, 8}, {}, &gen);
  SECTION("one cast serves every use, and the gradient sums over them") {
    {
      AutocastGuard guard;
      Tensor y1 = linear(x, w), y2 = linear(y1, w);
      CHECK(detail::autocast_cache_size() == 1);
      {
        AutocastGuard inner;  // nested scopes share the cache; only the outermost drops it
        linear(x, w);
        CHECK(detail::autocast_cache_size() == 1);
      }
      CHECK(detail::autocast_cache_size() == 1);
      f32(y2).sum().backward();
    }
    CHECK(detail::autocast_cache_size() == 0);
    Tensor by_hand = w.grad().clone();
    w.set_grad(Tensor());
    Tensor wb = bf16(w);
    f32(linear(linear(bf16(x), wb), wb)).sum().backward();
    require_identical(by_hand, w.grad());
  }
  SECTION("a weight written in the scope is cast again") {
    AutocastGuard guard;
    Tensor before = linear(x, w);
    {
      NoGradGuard no_grad;
      w.mul_(2.0);
    }
    require_identical(linear(x, w), linear(bf16(x), bf16(w)));
    CHECK_FALSE(max(abs(sub(f32(linear(x, w)), f32(before)))).item<double>() == 0.0);
  }
  SECTION("an optimizer step inside the scope (in place, its version bumped) is seen by the next cast") {
    optim::SGD opt({w}, {.lr = 0.5});
    AutocastGuard guard;
    Tensor before = linear(x, w);
    f32(before).sum().backward();
    opt.step();
    Tensor after = linear(x, w);
    require_identical(after, linear(bf16(x), bf16(w)));
    CHECK_FALSE(max(abs(sub(f32(after), f32(before)))).item<double>() == 0.0);
  }
  SECTION("a cast made under no_grad does not cut the weight off from its gradient later") {
    AutocastGuard guard;
    {
      NoGradGuard no_grad;
      linear(x, w);
    }
    f32(linear(x, w)).sum().backward();
    REQUIRE(w.grad().defined());
    CHECK(w.grad().dtype() == kFloat32);
  }
}

TEST_CASE("autocast: guards nest, autocast(enabled=false) turns it off inside, and the state is per thread") {
  Tensor a = ones({4, 4}), b = ones({4, 4});
  {
    AutocastGuard outer;
    CHECK(matmul(a, b).dtype() == kBFloat16);
    {
      AutocastGuard off(false);
      CHECK_FALSE(autocast_enabled());
      CHECK(matmul(a, b).dtype() == kFloat32);
      {
        AutocastGuard on_again;
        CHECK(matmul(a, b).dtype() == kBFloat16);
      }
      CHECK(matmul(a, b).dtype() == kFloat32);
    }
    CHECK(autocast_enabled());
    CHECK(matmul(a, b).dtype() == kBFloat16);
    bool other_thread_enabled = true;
    std::thread([&] { other_thread_enabled = autocast_enabled(); }).join();
    CHECK_FALSE(other_thread_enabled);
  }
  CHECK_FALSE(autocast_enabled());
  CHECK(AutocastMode::depth() == 0);
}

TEST_CASE("autocast: nn::checkpoint recomputes under the autocast state its forward ran in") {
  Generator gen(6);
  Tensor x = leaf({4, 16}, gen), w = leaf({16, 16}, gen, 0.3);
  auto block = [&](const std::vector<Tensor>& in) { return gelu(linear(in[0], in[1])); };
  auto grads = [&](bool checkpointed) {
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    Tensor loss;
    {
      AutocastGuard guard;
      Tensor y = checkpointed ? nn::checkpoint(block, {x, w}) : block({x, w});
      REQUIRE(y.dtype() == kBFloat16);
      loss = mean(y);
    }
    loss.backward();  // the recomputation runs here, outside the scope
    return std::make_pair(x.grad(), w.grad());
  };
  auto [gx, gw] = grads(true);
  auto [want_x, want_w] = grads(false);
  require_identical(gx, want_x);
  require_identical(gw, want_w);
}

TEST_CASE("autocast: an unsupported dtype is an error naming autocast, the dtype given and the one expected") {
  WEFT_REQUIRE_ERROR(AutocastGuard(kInt32), Catch::Contains("autocast") && Catch::Contains("int32") &&
                                                Catch::Contains("bfloat16"));
  WEFT_REQUIRE_ERROR(AutocastGuard(kFloat64), Catch::Contains("autocast") && Catch::Contains("float64"));
  CHECK_FALSE(autocast_enabled());  // a refused guard changed nothing
  CHECK(AutocastMode::depth() == 0);
}

namespace {

// The train_gpt model (smaller) trained with AdamW on sequences that count up by a per-sequence
// stride: a task it learns in a few dozen steps. Returns the loss of every step.
std::vector<double> train_gpt(bool autocast, int steps) {
  manual_seed(7);
  auto model = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 16, .block_size = 16, .n_layer = 2, .n_head = 2,
                                                       .n_embd = 32, .dropout = 0.0});
  optim::AdamW opt(model->parameters(), {.lr = 1e-2});
  Generator gen(11);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    Tensor start = randint(0, 16, {8, 1}, dtype(kInt64), &gen), stride = randint(1, 4, {8, 1}, dtype(kInt64), &gen);
    Tensor tokens = remainder(add(start, mul(stride, arange(17).reshape({1, 17}))), 16);
    Tensor inputs = tokens.narrow(1, 0, 16).contiguous(), targets = tokens.narrow(1, 1, 16).contiguous();
    Tensor loss;
    {
      AutocastGuard guard(kBFloat16, autocast);
      Tensor logits = model->forward(inputs);
      loss = cross_entropy(logits.reshape({-1, 16}), targets.reshape({-1}));
    }
    REQUIRE(loss.dtype() == kFloat32);
    opt.zero_grad();
    loss.backward();
    for (const Tensor& p : model->parameters()) REQUIRE(p.grad().dtype() == kFloat32);
    opt.step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

}  // namespace

TEST_CASE("autocast: a GPT trained under autocast follows float32's loss curve to bfloat16 tolerance") {
  const int steps = 40;
  std::vector<double> reference = train_gpt(false, steps), mixed = train_gpt(true, steps);
  // Tolerance: bfloat16 keeps 8 significant bits, a relative rounding of 2^-9 (0.2%) per cast; the
  // logits pass about a dozen rounded products and activations, so the first loss differs by well
  // under 1%. Training then compounds the differences through the weights (AdamW's normalised steps
  // turn small gradient differences into equal-sized weight differences), so the curves may drift
  // apart by more as they go (here by at most 1.8%, at step 35). 5% of the loss plus 0.02 nats holds
  // every step with about 5x margin, while a run that failed to learn (loss stuck near ln 16 = 2.77
  // while float32's falls to about 1.2) or one with lost gradients would break it by far.
  for (int s = 0; s < steps; ++s) {
    INFO("step " << s << ": float32 " << reference[s] << ", autocast " << mixed[s]);
    CHECK(std::fabs(mixed[s] - reference[s]) <= 0.05 * reference[s] + 0.02);
  }
  CHECK(std::fabs(mixed[0] - reference[0]) <= 0.01 * reference[0]);
  CHECK(reference.back() < 0.5 * reference.front());  // it learned
  CHECK(mixed != reference);  // and autocast really changed the arithmetic
}
