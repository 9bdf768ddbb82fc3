// test_autograd: the engine (issue 3) exercised through real ops: shared inputs, accumulation,
// retain_graph, no-grad, hooks, retain_grad, version checks, custom Functions, grad(), detach,
// deep graphs and allocator stability over a training-style loop.
#include <catch2/catch.hpp>

#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "framework/allocator.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "ops/softmax.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"
#include "tests/test_util.h"

using namespace weft;
using test::require_error;

namespace {

Tensor leaf(const std::vector<double>& values, DType dt = kFloat64) {
  return tensor(values, {static_cast<int64_t>(values.size())}, dtype(dt).requires_grad());
}

// Two inputs, two outputs: (a * b, a + b). Backward receives a zero gradient for an unused output.
struct MulAdd : autograd::Function<MulAdd> {
  static autograd::variable_list forward(autograd::AutogradContext* ctx, const Tensor& a, const Tensor& b) {
    ctx->save_for_backward({a, b});
    return {mul(a, b), add(a, b)};
  }
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    REQUIRE(grads.size() == 2);
    REQUIRE(grads[1].defined());  // materialised zeros by default
    REQUIRE(sum(abs(grads[1])).item<double>() == 0);
    return {add(mul(grads[0], saved[1]), grads[1]), add(mul(grads[0], saved[0]), grads[1])};
  }
};

}  // namespace

TEST_CASE("diamond graphs sum the contributions of a tensor used several times", "[autograd]") {
  Tensor x = leaf({1, 2, 3});
  Tensor a = mul(x, 2.0), b = mul(x, 3.0);
  Tensor y = sum(add(mul(a, b), x));  // 6 x^2 + x
  y.backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{13, 25, 37});
  Tensor z = leaf({2});
  sum(mul(add(z, z), z)).backward();  // 2 z^2
  REQUIRE(z.grad().item<double>() == 8);
  REQUIRE(autograd::gradcheck([](auto& v) { return mul(exp(v[0]), add(v[0], sin(v[0]))); }, {leaf({0.1, 0.7})}));
}

TEST_CASE("gradients accumulate over backward calls; retain_graph", "[autograd]") {
  Tensor x = leaf({1, 2});
  Tensor y = sum(mul(x, x));
  y.backward({}, /*retain_graph=*/true);
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{2, 4});
  y.backward();  // the graph was retained once
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{4, 8});
  // PyTorch's wording; the node whose saved tensors are gone is named.
  require_error([&] { y.backward(); },
                "backward through the graph a second time (or to use tensors saved by MulBackward");
  // A fresh graph keeps accumulating into the same .grad.
  sum(mul(x, 3.0)).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{7, 11});
  require_error([&] { mul(x, 2.0).backward(); },
                "backward: grad can be implicitly created only for outputs with one element, "
                "but output 0 has shape [2]");
}

// Note [In-place gradient accumulation]: as PyTorch's AccumulateGrad, a second gradient is added
// into the .grad tensor already there, so a handle to it sees the sum.
TEST_CASE("a second gradient is added into .grad in place", "[autograd]") {
  Tensor x = leaf({1, 2});
  sum(mul(x, x)).backward();
  Tensor held = x.grad();
  sum(mul(x, 3.0)).backward();
  REQUIRE(held.to_vector<double>() == std::vector<double>{5, 7});
  REQUIRE(x.grad().shares_storage(held));

  // add passes one gradient to both inputs: each .grad gets its own copy first, so the in-place
  // sums that follow never show in the other.
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  for (int i = 0; i < 3; ++i) sum(mul(add(a, b), 2.0)).backward();
  REQUIRE(a.grad().to_vector<double>() == std::vector<double>{6, 6});
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{6, 6});
  REQUIRE_FALSE(a.grad().shares_storage(b.grad()));

  // A .grad that can not hold the sum in place (a broadcast view a user assigned) is replaced by
  // the out-of-place sum; the tensor it viewed is left alone.
  Tensor c = leaf({1, 2, 3});
  Tensor base = from_vector<double>({10}, {1});
  c.set_grad(base.expand({3}));
  sum(mul(c, c)).backward();
  REQUIRE(c.grad().to_vector<double>() == std::vector<double>{12, 14, 16});
  REQUIRE(base.to_vector<double>() == std::vector<double>{10});
}

TEST_CASE("a graph that saved a .grad refuses it after an in-place accumulation", "[autograd]") {
  Tensor x = leaf({1, 2});
  sum(mul(x, x)).backward();
  Tensor w = leaf({3, 4});
  Tensor z = sum(mul(w, x.grad()));  // saves x.grad for w's gradient
  sum(mul(x, x)).backward();         // x.grad += 2x, in place
  require_error([&] { z.backward(); }, "modified by an inplace operation");
}

TEST_CASE("no-grad records nothing; detach", "[autograd]") {
  Tensor x = leaf({1, 2});
  {
    NoGradGuard no_grad;
    Tensor y = exp(mul(x, 2.0));
    REQUIRE(y.grad_fn() == nullptr);
    REQUIRE_FALSE(y.requires_grad());
  }
  Tensor y = mul(x, 2.0);
  REQUIRE(y.grad_fn() != nullptr);
  REQUIRE(y.grad_fn()->name() == "MulBackward");
  Tensor d = y.detach();
  REQUIRE(d.grad_fn() == nullptr);
  REQUIRE_FALSE(d.requires_grad());
  REQUIRE(d.shares_storage(y));
  sum(add(mul(d, x), y)).backward();  // d is a constant: grad = d + 2
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{4, 6});
  // Integer inputs never require grad: an op mixing them records edges for the float input only.
  Tensor i = from_vector<int64_t>({1, 2}, {2});
  Tensor w = leaf({0.5, 0.5});
  sum(mul(i, w)).backward();
  REQUIRE(w.grad().to_vector<double>() == std::vector<double>{1, 2});
}

TEST_CASE("hooks and retain_grad", "[autograd]") {
  Tensor x = leaf({1, 2});
  Tensor h = mul(x, 2.0);
  std::vector<double> seen;
  h.register_hook([&](const Tensor& g) {
    seen = g.to_vector<double>();
    return mul(g, 10.0);  // replaces the gradient flowing on
  });
  h.retain_grad();
  int leaf_hook_calls = 0, post_calls = 0;
  x.register_hook([&](const Tensor& g) {
    ++leaf_hook_calls;
    return add(g, 1.0);
  });
  std::vector<double> after;
  x.register_post_accumulate_grad_hook([&](const Tensor& t) {
    ++post_calls;
    after = t.grad().to_vector<double>();
  });
  sum(mul(h, 3.0)).backward();
  REQUIRE(seen == std::vector<double>{3, 3});
  REQUIRE(h.grad().defined());
  REQUIRE(h.retains_grad());
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{61, 61});  // 3 * 10 * 2 + 1
  REQUIRE(leaf_hook_calls == 1);
  REQUIRE(post_calls == 1);
  REQUIRE(after == std::vector<double>{61, 61});
  // autograd::grad sees the leaf's gradient after its hooks too (as in PyTorch), but accumulates
  // nothing and runs no post-accumulate hook.
  autograd::variable_list g = autograd::grad({sum(mul(x, 5.0))}, {x});
  REQUIRE(g[0].to_vector<double>() == std::vector<double>{6, 6});  // 5 + 1
  REQUIRE(leaf_hook_calls == 2);
  REQUIRE(post_calls == 1);
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{61, 61});
  require_error([] { zeros({2}).register_hook([](const Tensor& g) { return g; }); },
                "register_hook: cannot register a hook on a tensor that doesn't require gradient");
  require_error([&] { h.register_post_accumulate_grad_hook([](const Tensor&) {}); },
                "register_post_accumulate_grad_hook: only leaf tensors");
}

TEST_CASE("in-place modification of a saved tensor is detected", "[autograd]") {
  Tensor x = leaf({1, 2});
  Tensor a = mul(x, 1.0);
  Tensor b = mul(a, a);  // MulBackward saves a
  a.add_(1.0);
  require_error([&] { sum(b).backward(); },
                "modified by an inplace operation: MulBackward saved a tensor of shape [2] at version 0, "
                "but it is now at version 1");
  Tensor c = mul(x, 1.0);
  Tensor e = exp(c);  // ExpBackward saves its output
  e.mul_(2.0);
  require_error([&] { sum(e).backward(); }, "modified by an inplace operation: ExpBackward saved");
}

TEST_CASE("custom Function with two inputs and two outputs", "[autograd]") {
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  auto outs = MulAdd::apply(a, b);
  REQUIRE(outs.size() == 2);
  REQUIRE(outs[0].to_vector<double>() == std::vector<double>{3, 8});
  REQUIRE(outs[1].to_vector<double>() == std::vector<double>{4, 6});
  REQUIRE(outs[0].grad_fn() == outs[1].grad_fn());
  sum(outs[0]).backward();  // outs[1] gets no gradient
  REQUIRE(a.grad().to_vector<double>() == std::vector<double>{3, 4});
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{1, 2});
}

TEST_CASE("autograd::grad on a subgraph", "[autograd]") {
  Tensor x = leaf({1, 2}), y = leaf({3}), unused = leaf({5});
  Tensor h = mul(x, 2.0);
  Tensor out = sum(mul(h, y));
  auto g = autograd::grad({out}, {h, x, unused}, {}, /*retain_graph=*/true, /*allow_unused=*/true);
  REQUIRE(g[0].to_vector<double>() == std::vector<double>{3, 3});
  REQUIRE(g[1].to_vector<double>() == std::vector<double>{6, 6});
  REQUIRE_FALSE(g[2].defined());
  REQUIRE_FALSE(x.grad().defined());  // grad() returns, never accumulates
  REQUIRE_FALSE(y.grad().defined());
  require_error([&] { autograd::grad({out}, {unused}); },
                "autograd::grad: one of the differentiated tensors (input 0) appears to not have been used");
  require_error([&] { autograd::grad({out}, {unused}); }, "allow_unused=true");
}

TEST_CASE("a deep chain backprops and frees without recursion", "[autograd]") {
  Tensor x = leaf({1.0});
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 1e-5);
  y.backward();
  REQUIRE(x.grad().item<double>() == 1.0);
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = mul(z, 1.0);
  z = Tensor();  // teardown of an un-run 100k-node graph is iterative too
  REQUIRE(x.grad().item<double>() == 1.0);
}

TEST_CASE("allocator stats stay flat over a training-style loop", "[autograd][allocator]") {
  Generator gen(5);
  Tensor data = randn({32, 16}, kFloat32, &gen), target = randn({32, 1}, kFloat32, &gen);
  Tensor w = randn({1, 16}, dtype(kFloat32).requires_grad(), &gen), bias = zeros({1}, requires_grad());
  auto train_step = [&] {
    Tensor pred = add(sum(mul(data, w), {1}, true), bias);
    Tensor loss = mean(pow(sub(pred, target), 2.0));
    loss.backward();
    {
      NoGradGuard no_grad;
      w.sub_(w.grad(), 0.01);
      bias.sub_(bias.grad(), 0.01);
    }
    w.mutable_grad() = Tensor();
    bias.mutable_grad() = Tensor();
    return loss.item<float>();
  };
  float first = train_step();
  for (int step = 0; step < 10; ++step) train_step();
  AllocatorStats warm = allocator::stats();
  float last = 0;
  for (int step = 0; step < 10000; ++step) last = train_step();
  REQUIRE(last < first);  // it trains
  AllocatorStats end = allocator::stats();
  REQUIRE(end.bytes_in_use == warm.bytes_in_use);
  REQUIRE(end.misses == warm.misses);
}

TEST_CASE("a graph dropped without backward is freed, also by ops that save their output", "[autograd]") {
  // Each of these ops saves its own output for backward (Note [Saved tensors]); none may keep
  // its node alive through it.
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops{
      {"tanh", [](const Tensor& t) { return tanh(t); }},
      {"exp", [](const Tensor& t) { return exp(t); }},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
      {"sqrt", [](const Tensor& t) { return sqrt(t); }},
      {"pow", [](const Tensor& t) { return pow(t, t); }},
      {"max", [](const Tensor& t) { return max(t); }},
      {"norm", [](const Tensor& t) { return norm(t); }},
      {"softmax", [](const Tensor& t) { return softmax(t, 0); }},
      {"log_softmax", [](const Tensor& t) { return log_softmax(t, 0); }},
  };
  Tensor x = rand({16}, requires_grad());
  for (const auto& [name, op] : ops) {
    INFO(name);
    std::weak_ptr<autograd::Node> node;
    {
      Tensor y = op(add(x, 1.0));
      node = y.grad_fn();
      REQUIRE(!node.expired());
    }
    CHECK(node.expired());
  }
  // And a loop of such graphs leaves the allocator where it was.
  auto forward_only = [&] {
    Tensor y = x;
    for (int i = 0; i < 50; ++i) y = tanh(exp(mul(y, 0.5)));
  };
  forward_only();
  const uint64_t in_use = allocator::stats().bytes_in_use;
  for (int i = 0; i < 100; ++i) forward_only();
  CHECK(allocator::stats().bytes_in_use == in_use);
}

TEST_CASE("a broadcast gradient reaching a leaf is stored dense", "[autograd]") {
  Tensor a = randn({1, 3}, TensorOptions(kFloat64).requires_grad());
  Tensor b = randn({4, 3}, kFloat64);
  add(a.expand({4, 3}), b).sum().backward();   // expand's backward sums to [1, 3]
  Tensor w = randn({3}, TensorOptions(kFloat64).requires_grad());
  w.expand({5, 3}).sum({0}).sum().backward();
  REQUIRE(w.grad().is_contiguous());
  REQUIRE(a.grad().is_contiguous());
  for (double v : w.grad().to_vector<double>()) REQUIRE(v == Approx(5.0));
}

TEST_CASE("a hook may run grad() on a graph sharing nodes with the running backward", "[autograd]") {
  // See Note [Task scratch]: the inner task stamps x's accumulator too and must give it back.
  Tensor x = tensor({1.0, 2.0, 3.0}, {3}, TensorOptions(kFloat64).requires_grad());
  Tensor other = mul(x, 3.0).sum();  // a second graph ending in x's accumulator
  Tensor y = mul(x, x);
  std::vector<double> inner;
  y.register_hook([&](const Tensor& g) {
    inner = autograd::grad({other}, {x}, {}, /*retain_graph=*/true)[0].to_vector<double>();
    return g;
  });
  add(y.sum(), x.sum()).backward();
  REQUIRE(inner == std::vector<double>{3.0, 3.0, 3.0});
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{3.0, 5.0, 7.0});  // 2x + 1
  // The accumulator's stamp is free again: a later backward over both graphs still works.
  x.set_grad(Tensor());
  add(other, mul(x, x).sum()).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{5.0, 7.0, 9.0});
}

TEST_CASE("gradients meeting at a node are summed whether or not the buffer is shared", "[autograd]") {
  // add passes one gradient tensor to both inputs, so x's buffer first holds a shared tensor
  // (summed out of place); later arrivals sum into a buffer only the engine holds (in place).
  Tensor x = tensor({1.0, -2.0}, {2}, TensorOptions(kFloat64).requires_grad());
  Tensor y = add(x, x);
  Tensor z = add(mul(y, 2.0), mul(x, 5.0));
  Tensor keep = y;  // a user handle on an intermediate must not see any of this
  z.sum().backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{9.0, 9.0});
  REQUIRE(keep.to_vector<double>() == std::vector<double>{2.0, -4.0});
}

TEST_CASE("saved tensor hooks: packed tensors are unpacked in backward, others saved as usual",
          "[autograd]") {
  // Keeps every saved tensor as its values doubled and halves them back in backward: the gradients
  // are unchanged, and pack/unpack each ran once per saved tensor. See Note [Saved tensor hooks].
  struct Halving final : autograd::PackedTensor {
    Tensor doubled;
    int* unpacked;
    Tensor unpack() override {
      ++*unpacked;
      return mul(doubled, 0.5);
    }
  };
  struct Doubling final : autograd::SavedTensorHooks {
    int packed = 0, unpacked = 0;
    const TensorImpl* skip = nullptr;  // saved as usual
    std::shared_ptr<autograd::PackedTensor> pack(const Tensor& t) override {
      if (t.impl() == skip) return nullptr;
      ++packed;
      auto p = std::make_shared<Halving>();
      p->doubled = mul(t.detach(), 2.0);
      p->unpacked = &unpacked;
      return p;
    }
  };
  Tensor a = tensor({1.0, 2.0, 3.0}, {3}, TensorOptions(kFloat64).requires_grad());
  Tensor b = tensor({4.0, -1.0, 0.5}, {3}, TensorOptions(kFloat64).requires_grad());
  Doubling hooks;
  hooks.skip = b.impl();
  Tensor y;
  {
    autograd::SavedTensorHooksGuard guard(&hooks);
    REQUIRE(autograd::SavedTensorHooksGuard::current() == &hooks);
    y = mul(a, b);  // saves a (packed) and b (not)
  }
  REQUIRE(autograd::SavedTensorHooksGuard::current() == nullptr);
  REQUIRE(hooks.packed == 1);
  y.sum().backward();
  REQUIRE(hooks.unpacked == 1);
  REQUIRE(a.grad().to_vector<double>() == std::vector<double>{4.0, -1.0, 0.5});
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{1.0, 2.0, 3.0});
  // Freed like any saved tensor: a second backward is refused.
  WEFT_REQUIRE_ERROR(y.sum().backward(), Catch::Contains("a second time"));
}
