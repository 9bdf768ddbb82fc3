// test_no_leaks: a thousand forward/backward calls of each differentiable op leave no object and no
// byte behind. A node that holds its own output (a reference cycle, as logsumexp(keepdim) once did:
// Note [Saved tensors]) keeps a tensor, its storage and the node alive per call, which shows in the
// object pool's and the allocator's counts of live objects and bytes.
#include <functional>

#include "framework/allocator.h"
#include "test_util.h"
#include "weft.h"

using namespace weft;

namespace {

struct Live {
  int64_t objects;
  uint64_t bytes;
};
Live live() { return {detail::pool_live_objects(), allocator::stats().bytes_in_use}; }

// Runs `forward` (x's op, giving a tensor to differentiate) 1000 times after two warm-up calls, which
// create the gradient buffers a steady state keeps, alternately with a backward pass (which frees
// what the nodes saved) and without one (the graph is only dropped: a cycle would keep it);
// requires the same live counts before and after.
void require_no_growth(const std::string& op, const std::function<Tensor(const Tensor&)>& forward) {
  Tensor x = (randn({3, 4}, kFloat64) * 0.5 + 1.5).detach().requires_grad_();
  auto step = [&](int i) {
    Tensor y = forward(x);
    if (i % 2 == 0) sum(y).backward();
  };
  step(0), step(1);
  const Live before = live();
  for (int i = 0; i < 1000; ++i) step(i);
  const Live after = live();
  INFO(op << ": " << after.objects - before.objects << " objects and "
          << static_cast<int64_t>(after.bytes - before.bytes) << " bytes more after 1000 calls");
  CHECK(after.objects == before.objects);
  CHECK(after.bytes == before.bytes);
  CHECK(x.grad().defined());
}

}  // namespace

TEST_CASE("no leaks: reductions, including every one that saves its output") {
  require_no_growth("logsumexp keepdim", [](const Tensor& x) { return logsumexp(x, {1}, true); });
  require_no_growth("logsumexp", [](const Tensor& x) { return logsumexp(x, {0}, false); });
  require_no_growth("norm keepdim", [](const Tensor& x) { return norm(x, 2.0, {1}, true); });
  require_no_growth("std keepdim", [](const Tensor& x) { return weft::std(x, {1}, true, true); });
  require_no_growth("var", [](const Tensor& x) { return var(x, {0}); });
  require_no_growth("prod", [](const Tensor& x) { return prod(x, {1}, true); });
  require_no_growth("max dim", [](const Tensor& x) { return max(x, 1, true).first; });
  require_no_growth("min", [](const Tensor& x) { return min(x); });
  require_no_growth("mean", [](const Tensor& x) { return mean(x, {0, 1}, true); });
}

TEST_CASE("no leaks: unary and binary ops, including those that save their output") {
  require_no_growth("exp", [](const Tensor& x) { return exp(x); });
  require_no_growth("tanh", [](const Tensor& x) { return tanh(x); });
  require_no_growth("sigmoid", [](const Tensor& x) { return sigmoid(x); });
  require_no_growth("sqrt", [](const Tensor& x) { return sqrt(x); });
  require_no_growth("rsqrt", [](const Tensor& x) { return rsqrt(x); });
  require_no_growth("log/abs/gelu/silu/relu", [](const Tensor& x) {
    return add(add(log(abs(x)), gelu(x)), add(silu(x), relu(x)));
  });
  require_no_growth("clamp/pow/reciprocal", [](const Tensor& x) {
    return add(clamp(x, 1.0, 2.0), add(pow(x, 3.0), reciprocal(x)));
  });
  require_no_growth("pow tensor", [](const Tensor& x) { return pow(x, x); });
  require_no_growth("div/mul/sub", [](const Tensor& x) { return div(mul(x, x), sub(x, 0.25)); });
  require_no_growth("maximum/where/masked_fill", [](const Tensor& x) {
    Tensor m = gt(x, 1.5);
    return add(maximum(x, mul(x, 0.5)), add(where(m, x, mul(x, x)), masked_fill(x, m, 0.0)));
  });
}

TEST_CASE("no leaks: softmax, losses, normalisation, linear algebra") {
  require_no_growth("softmax", [](const Tensor& x) { return mul(softmax(x, 1), x); });
  require_no_growth("log_softmax", [](const Tensor& x) { return mul(log_softmax(x, 0), x); });
  require_no_growth("cross_entropy", [](const Tensor& x) {
    return cross_entropy(x, from_vector<int64_t>({0, 3, 1}, {3}));
  });
  require_no_growth("mse_loss", [](const Tensor& x) { return mse_loss(x, zeros_like(x)); });
  require_no_growth("layer_norm", [](const Tensor& x) { return mul(layer_norm(x, {4}), x); });
  require_no_growth("rms_norm", [](const Tensor& x) { return mul(rms_norm(x, {4}), x); });
  require_no_growth("matmul/linear/addmm", [](const Tensor& x) {
    return add(matmul(x, transpose(x, 0, 1)), addmm(zeros({3, 3}, kFloat64), x, transpose(x, 0, 1)));
  });
  require_no_growth("attention", [](const Tensor& x) {
    Tensor q = reshape(x, {1, 3, 4});
    return scaled_dot_product_attention(q, q, q, Tensor(), true);
  });
  require_no_growth("embedding", [](const Tensor& x) {
    return embedding(x, from_vector<int64_t>({2, 0, 2}, {3}));
  });
}

TEST_CASE("no leaks: views, copies and in-place ops") {
  require_no_growth("views", [](const Tensor& x) {
    return add(narrow(transpose(x, 0, 1), 0, 1, 2), expand(select(x, 1, 0), {2, 3}));
  });
  require_no_growth("cat/stack/index ops", [](const Tensor& x) {
    Tensor idx = from_vector<int64_t>({1, 0}, {2});
    return add(cat({x, x}, 0).sum(), stack({x, x}, 1).sum()) + index_select(x, 0, idx).sum() +
           gather(x, 1, zeros({3, 2}, kInt64)).sum();
  });
  require_no_growth("as_strided/reshape/triu", [](const Tensor& x) {
    return add(as_strided(x, {2, 2}, {4, 1}, 1), reshape(triu(x), {2, 6}).narrow(1, 0, 2));
  });
  require_no_growth("in-place on a view", [](const Tensor& x) {
    Tensor y = mul(x, 2.0);
    y.narrow(0, 0, 1).mul_(3.0);
    return y;
  });
}

TEST_CASE("no leaks: create_graph, second derivatives and refused double backward") {
  // A first-order gradient with create_graph holds the forward graph through re-attached saved
  // outputs (exp, tanh, softmax, logsumexp save theirs) and the engine's recorded sums; a second
  // grad through it, or none, must leave nothing behind: the weak and re-attached histories of
  // Note [Saved tensors and create_graph] make no cycle. Every other step makes prod's refusing
  // node (Note [create_graph]) and drops it.
  Tensor x = (randn({3, 4}, kFloat64) * 0.5 + 1.5).detach().requires_grad_();
  auto step = [&](int i) {
    Tensor y = add(sum(mul(exp(x), tanh(x))), sum(logsumexp(x, {1}, false)));
    y = add(y, sum(mul(softmax(x, 1), x)));
    y = add(y, cross_entropy(x, from_vector<int64_t>({0, 3, 1}, {3})));
    y = add(y, sum(mul(layer_norm(x, {4}), x)));  // its backward differentiates a recomputation
    Tensor g = autograd::grad({y}, {x}, {}, false, false, /*create_graph=*/true)[0];
    if (i % 2 == 0) (void)autograd::grad({sum(mul(g, g))}, {x});
    else {
      Tensor p = autograd::grad({prod(x)}, {x}, {}, false, false, true)[0];  // refusing history, dropped
      (void)p;
    }
  };
  step(0), step(1);
  const Live before = live();
  for (int i = 0; i < 200; ++i) step(i);
  const Live after = live();
  INFO(after.objects - before.objects << " objects and " << static_cast<int64_t>(after.bytes - before.bytes)
                                      << " bytes more after 200 steps");
  CHECK(after.objects == before.objects);
  CHECK(after.bytes == before.bytes);
}
