// test_inplace_views: in-place ops through views under autograd (CopySlices and the views that go
// stale with it; see Note [In-place on views] in ops/inplace.cpp), checked against hand-worked
// values, the same computation out of place, and gradcheck.
#include <catch2/catch.hpp>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"
#include "tests/test_util.h"

using namespace weft;
using test::require_error;

namespace {

Tensor leaf(const std::vector<double>& values) {
  return tensor(values, {static_cast<int64_t>(values.size())}, dtype(kFloat64).requires_grad());
}
std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }
void require_close(const std::vector<double>& got, const std::vector<double>& want) {
  test::require_within(got, want, [&](size_t i) { return 1e-12 * (1 + std::fabs(want[i])); });
}

// The identity, returning a fresh tensor that is strided, with gaps and an offset: a base that is
// not contiguous for CopySlices.
struct StridedCopy : autograd::Function<StridedCopy> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) {
    Tensor buf = zeros({x.size(1), x.size(0) + 2}, x.dtype());
    Tensor region = buf.narrow(1, 1, x.size(0));
    region.copy_(x.transpose(0, 1));
    return region.transpose(0, 1);
  }
  static autograd::variable_list backward(autograd::AutogradContext*, autograd::variable_list grads) {
    return {grads[0]};
  }
};
}  // namespace

TEST_CASE("in-place ops through a view rebase the base's history (CopySlices)", "[autograd][views]") {
  const std::vector<double> xv{1, 2, 3, 4}, wv{5, 6}, cv{1, 2, 3, 4};
  Tensor c = tensor(cv, {4}, kFloat64);

  SECTION("mul_ through narrow; the base used after it") {
    Tensor x = leaf(xv), w = leaf(wv);
    Tensor y = mul(x, 1.0);
    Tensor v = y.narrow(0, 1, 2);
    v.mul_(w);
    REQUIRE(y.grad_fn()->name() == "CopySlices");
    require_close(values_of(y), {1, 2 * 5, 3 * 6, 4});
    sum(mul(y, c)).backward();
    // y = [x0, x1 w0, x2 w1, x3]
    require_close(values_of(x.grad()), {cv[0], cv[1] * wv[0], cv[2] * wv[1], cv[3]});
    require_close(values_of(w.grad()), {cv[1] * xv[1], cv[2] * xv[2]});
    // The same computation out of place.
    Tensor x2 = leaf(xv), w2 = leaf(wv);
    Tensor y2 = cat({x2.narrow(0, 0, 1), mul(x2.narrow(0, 1, 2), w2), x2.narrow(0, 3, 1)});
    sum(mul(y2, c)).backward();
    require_close(values_of(x.grad()), values_of(x2.grad()));
    require_close(values_of(w.grad()), values_of(w2.grad()));
  }

  SECTION("the view used after the in-place op: its gradient reaches x") {
    Tensor x = leaf(xv), w = leaf(wv);
    Tensor y = mul(x, 1.0);
    Tensor v = y.narrow(0, 1, 2);
    v.mul_(w);
    sum(mul(v, v)).backward();  // v = [x1 w0, x2 w1]
    require_close(values_of(x.grad()), {0, 2 * xv[1] * wv[0] * wv[0], 2 * xv[2] * wv[1] * wv[1], 0});
    require_close(values_of(w.grad()), {2 * xv[1] * xv[1] * wv[0], 2 * xv[2] * xv[2] * wv[1]});
  }

  SECTION("add_ with alpha through a select of a transpose (a view of a view)") {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype(kFloat64).requires_grad());
    Tensor z = leaf({10, 20});
    Tensor c2 = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
    Tensor y = mul(x, 1.0);
    Tensor col = y.transpose(0, 1).select(0, 2);  // [y02, y12], stride 3
    col.add_(z, 2);
    require_close(values_of(y), {1, 2, 3 + 20, 4, 5, 6 + 40});
    sum(mul(y, c2)).backward();
    require_close(values_of(x.grad()), {1, 2, 3, 4, 5, 6});
    require_close(values_of(z.grad()), {2 * 3, 2 * 6});
  }

  SECTION("mul_ through a strided row of a transpose") {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype(kFloat64).requires_grad());
    Tensor w = leaf(wv);
    Tensor c2 = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
    Tensor y = mul(x, 2.0);
    Tensor row = y.transpose(0, 1).select(0, 1);  // [y01, y11]
    row.mul_(w);
    sum(mul(y, c2)).backward();
    // d/dx_ij = 2 c_ij, times w at (0,1) and (1,1)
    require_close(values_of(x.grad()), {2, 4 * wv[0], 6, 8, 10 * wv[1], 12});
    require_close(values_of(w.grad()), {2 * 2 * 2, 5 * 2 * 5});
  }

  SECTION("a base that is itself strided, with an offset") {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype(kFloat64).requires_grad());
    Tensor w = leaf(wv);
    Tensor c2 = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
    Tensor r = StridedCopy::apply(x);
    REQUIRE(!r.is_contiguous());
    REQUIRE(r.storage_offset() == 1);
    r.select(1, 2).mul_(w);  // [r02, r12]
    require_close(values_of(r), {1, 2, 3 * wv[0], 4, 5, 6 * wv[1]});
    sum(mul(r, c2)).backward();
    require_close(values_of(x.grad()), {1, 2, 3 * wv[0], 4, 5, 6 * wv[1]});
    require_close(values_of(w.grad()), {3 * 3, 6 * 6});
  }

  SECTION("zero_, fill_, copy_ and clamp_ through views") {
    Tensor x = leaf(xv), src = leaf({7});
    Tensor y = mul(x, 1.0);
    y.narrow(0, 1, 2).zero_();
    sum(mul(y, c)).backward();
    require_close(values_of(x.grad()), {cv[0], 0, 0, cv[3]});

    Tensor x2 = leaf(xv);
    Tensor y2 = mul(x2, 1.0);
    y2.narrow(0, 1, 2).copy_(src);  // broadcast: src's gradient sums over the view
    require_close(values_of(y2), {1, 7, 7, 4});
    sum(mul(y2, c)).backward();
    require_close(values_of(x2.grad()), {cv[0], 0, 0, cv[3]});
    require_close(values_of(src.grad()), {cv[1] + cv[2]});

    Tensor x3 = leaf(xv);
    Tensor y3 = mul(x3, 1.0);
    y3.narrow(0, 0, 3).clamp_(1.5, 2.5);  // x0 and x2 clamped, x1 passes
    require_close(values_of(y3), {1.5, 2, 2.5, 4});
    sum(mul(y3, c)).backward();
    require_close(values_of(x3.grad()), {0, cv[1], 0, cv[3]});
  }

  SECTION("two in-place ops on two views of the same base, made before either") {
    const std::vector<double> zv{7, 8};
    Tensor x = leaf(xv), w = leaf(wv), z = leaf(zv);
    Tensor y = mul(x, 1.0);
    Tensor v1 = y.narrow(0, 0, 2), v2 = y.narrow(0, 2, 2);
    v1.mul_(w);
    v2.add_(z);  // v2 was made before v1's op: its history is rebuilt from y's
    sum(add(sum(mul(y, c)), sum(mul(v1, v2)))).backward();
    // y = [x0 w0, x1 w1, x2 + z0, x3 + z1]; loss = sum(y c) + sum(v1 v2)
    const double a0 = xv[2] + zv[0], a1 = xv[3] + zv[1];
    require_close(values_of(x.grad()), {cv[0] * wv[0] + wv[0] * a0, cv[1] * wv[1] + wv[1] * a1,
                                        cv[2] + xv[0] * wv[0], cv[3] + xv[1] * wv[1]});
    require_close(values_of(w.grad()), {cv[0] * xv[0] + xv[0] * a0, cv[1] * xv[1] + xv[1] * a1});
    require_close(values_of(z.grad()), {cv[2] + xv[0] * wv[0], cv[3] + xv[1] * wv[1]});
    // Out of place.
    Tensor x2 = leaf(xv), w2 = leaf(wv), z2 = leaf(zv);
    Tensor u1 = mul(x2.narrow(0, 0, 2), w2), u2 = add(x2.narrow(0, 2, 2), z2);
    Tensor y2 = cat({u1, u2});
    sum(add(sum(mul(y2, c)), sum(mul(u1, u2)))).backward();
    require_close(values_of(x.grad()), values_of(x2.grad()));
    require_close(values_of(w.grad()), values_of(w2.grad()));
    require_close(values_of(z.grad()), values_of(z2.grad()));
  }

  SECTION("an overlapping view made before the in-place op sees it") {
    Tensor x = leaf(xv), w = leaf(wv);
    Tensor y = mul(x, 1.0);
    Tensor v1 = y.narrow(0, 0, 2), v2 = y.narrow(0, 1, 2);
    v1.mul_(w);
    sum(mul(v2, tensor({1, 2}, {2}, kFloat64))).backward();  // v2 = [x1 w1, x2]
    require_close(values_of(x.grad()), {0, 1 * wv[1], 2, 0});
    require_close(values_of(w.grad()), {0, 1 * xv[1]});
  }

  SECTION("a tensor saved before the in-place op still fails loudly") {
    Tensor x = leaf(xv);
    Tensor y = mul(x, 1.0);
    Tensor s = mul(y, y);  // saves y
    y.narrow(0, 0, 2).mul_(3.0);
    require_error([&] { sum(s).backward(); }, "modified by an inplace operation");
  }

  SECTION("gradcheck through in-place ops on views") {
    std::function<Tensor(const autograd::variable_list&)> fn = [](const autograd::variable_list& in) {
      Tensor y = mul(in[0], 1.0);
      Tensor a = y.narrow(0, 0, 3), b = y.narrow(0, 1, 3);  // overlapping, both made first
      Tensor t = reshape(y, {2, 2}).transpose(0, 1);         // a view of a view
      a.mul_(in[1]);
      b.add_(mul(in[2], in[2]));
      t.select(0, 1).div_(add(in[1].narrow(0, 0, 2), 3.0));  // y[1] and y[3]
      return cat({mul(y, y), mul(b, 2.0)});
    };
    REQUIRE(autograd::gradcheck(fn, {leaf({0.5, -1.2, 2.0, 0.7}), leaf({1.5, -0.4, 0.9}), leaf({0.3, -0.8, 1.1})}));
  }
}

TEST_CASE("in-place ops through views: what stays refused", "[autograd][views]") {
  Tensor x = tensor({1, 2, 3, 4}, {4}, dtype(kFloat64).requires_grad());
  // A view of a leaf that requires grad: the leaf's .grad would describe a value that is gone.
  require_error([&] { x.narrow(0, 1, 2).mul_(3.0); }, "mul_: a view (shape [2]) of a leaf tensor that requires grad");
  require_error([&] { x.select(0, 0).zero_(); }, "fill_: a view (shape []) of a leaf tensor that requires grad");
  require_error([&] { x.transpose(0, 0).copy_(x.detach()); }, "copy_: a view");
  // An expanded view writes one memory location from several elements.
  Tensor y = mul(x.narrow(0, 0, 1), 1.0);
  require_error([&] { expand(y, {3}).add_(1.0); }, "add_: in-place modification of an expanded view");
  REQUIRE(y.grad_fn()->name() != "CopySlices");
  // Under no-grad nothing is recorded and the update is allowed, as on the leaf itself.
  {
    NoGradGuard no_grad;
    x.narrow(0, 1, 2).mul_(3.0);
  }
  REQUIRE(x.is_leaf());
  REQUIRE(values_of(x) == std::vector<double>{1, 6, 9, 4});
  mul(x, x).sum().backward();
  REQUIRE(values_of(x.grad()) == std::vector<double>{2, 12, 18, 8});
}

TEST_CASE("a view of a tensor that does not require grad records its base", "[autograd][views]") {
  const std::vector<double> xv{1, 2, 3, 4}, wv{5, 6}, cv{1, 2, 3, 4};
  Tensor c = tensor(cv, {4}, kFloat64);

  SECTION("mul_ through narrow gives the base a CopySlices history; w gets its gradient") {
    Tensor x = tensor(xv, {4}, kFloat64), w = leaf(wv);
    Tensor v = x.narrow(0, 0, 2);
    REQUIRE(!v.requires_grad());
    v.mul_(w);
    REQUIRE(x.requires_grad());
    REQUIRE(x.grad_fn()->name() == "CopySlices");
    REQUIRE(v.grad_fn()->name() == "AsStridedBackward");
    require_close(values_of(x), {1 * 5, 2 * 6, 3, 4});
    sum(mul(x, c)).backward();
    require_close(values_of(w.grad()), {cv[0] * xv[0], cv[1] * xv[1]});
    REQUIRE(!x.grad().defined());  // x is not a leaf now
    // Out of place, x a constant.
    Tensor x2 = tensor(xv, {4}, kFloat64), w2 = leaf(wv);
    sum(mul(cat({mul(x2.narrow(0, 0, 2), w2), x2.narrow(0, 2, 2)}), c)).backward();
    require_close(values_of(w.grad()), values_of(w2.grad()));
  }

  SECTION("later uses of the base carry its new history") {
    Tensor x = tensor(xv, {4}, kFloat64), w = leaf(wv);
    x.narrow(0, 0, 2).mul_(w);  // the view is a temporary; x's history outlives it
    Tensor z = mul(x, x);
    REQUIRE(z.requires_grad());
    sum(z).backward();  // z_i = (x_i w_i)^2 for i < 2: dz_i/dw_i = 2 x_i^2 w_i
    require_close(values_of(w.grad()), {2 * xv[0] * xv[0] * wv[0], 2 * xv[1] * xv[1] * wv[1]});
  }

  SECTION("a view made before an in-place op through another view requires grad after it") {
    Tensor x = tensor(xv, {4}, kFloat64), w = leaf(wv);
    Tensor v1 = x.narrow(0, 0, 2), v2 = x.narrow(0, 1, 2);  // overlapping at x1
    REQUIRE(!v2.requires_grad());
    v1.mul_(w);
    REQUIRE(v2.requires_grad());
    sum(mul(v2, tensor({1, 2}, {2}, kFloat64))).backward();  // v2 = [x1 w1, x2]
    require_close(values_of(w.grad()), {0, 1 * xv[1]});
  }

  SECTION("an in-place op on the base itself reaches the views made before it") {
    Tensor x = tensor(xv, {4}, kFloat64), s = leaf({3});
    Tensor v = x.narrow(0, 2, 2);
    x.mul_(s);
    REQUIRE(v.grad_fn()->name() == "AsStridedBackward");
    sum(mul(v, v)).backward();  // v = [x2 s, x3 s]: d/ds = 2 (x2^2 + x3^2) s
    require_close(values_of(s.grad()), {2 * (xv[2] * xv[2] + xv[3] * xv[3]) * 3});
  }

  SECTION("views of views share the root base") {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64), w = leaf(wv);
    Tensor t = x.transpose(0, 1);  // [3, 2]
    Tensor col = t.select(0, 2);   // [x02, x12]: a view of t, whose base is x
    col.mul_(w);
    REQUIRE(x.grad_fn()->name() == "CopySlices");
    require_close(values_of(x), {1, 2, 3 * 5, 4, 5, 6 * 6});
    // t, made before the op, sees it through x's new history: t[2] = [x02 w0, x12 w1].
    sum(mul(t, tensor({1, 2, 3, 4, 5, 6}, {3, 2}, kFloat64))).backward();
    require_close(values_of(w.grad()), {5 * 3, 6 * 6});
  }

  SECTION("gradcheck: in-place ops through views of a constant buffer") {
    std::function<Tensor(const autograd::variable_list&)> fn = [](const autograd::variable_list& in) {
      Tensor buf = tensor({0.5, -1, 2, 0.25, 3, -0.75}, {2, 3}, kFloat64);  // made anew: fn runs many times
      Tensor rows = buf.transpose(0, 1);                                   // made before any op
      buf.select(0, 1).mul_(in[0]);
      rows.narrow(0, 0, 2).add_(mul(in[1], in[1]));  // buf[:, 0:2], transposed
      buf.select(1, 2).div_(add(mul(in[0].narrow(0, 0, 2), in[0].narrow(0, 0, 2)), 1.0));
      return cat({reshape(mul(buf, buf), {-1}), reshape(rows, {-1})});
    };
    Tensor b = tensor({0.3, -0.8, 1.1, 0.6}, {2, 2}, dtype(kFloat64).requires_grad());
    REQUIRE(autograd::gradcheck(fn, {leaf({1.5, -0.4, 0.9}), b}));
  }
}

TEST_CASE("a view made under NoGradGuard refuses in-place ops that need grad", "[autograd][views]") {
  using Catch::Matchers::Contains;
  SECTION("an operand that requires grad") {
    Tensor x = tensor({1, 2, 3, 4}, {4}, kFloat64), w = leaf({5, 6});
    Tensor v;
    {
      NoGradGuard no_grad;
      v = x.narrow(0, 0, 2);
    }
    WEFT_REQUIRE_ERROR(v.mul_(w), Contains("mul_: a view (shape [2]) made under NoGradGuard") &&
                                      Contains("both outside it"));
    REQUIRE(!x.requires_grad());
    REQUIRE(values_of(x) == std::vector<double>{1, 2, 3, 4});  // refused before writing
    Tensor part = v.narrow(0, 1, 1);                            // a view of it, made with grad on, inherits this
    WEFT_REQUIRE_ERROR(part.add_(w.narrow(0, 0, 1)), Contains("add_: a view (shape [1]) made under NoGradGuard"));
    // Nothing that needs grad: allowed, nothing recorded.
    v.mul_(2.0);
    REQUIRE(!x.requires_grad());
    // Under NoGradGuard, as for any tensor.
    {
      NoGradGuard no_grad;
      v.mul_(w);
    }
    REQUIRE(values_of(x) == std::vector<double>{10, 24, 3, 4});
    REQUIRE(!x.requires_grad());
  }

  SECTION("a base that requires grad") {
    Tensor x = leaf({1, 2, 3, 4});
    Tensor y = mul(x, 1.0);
    Tensor v;
    {
      NoGradGuard no_grad;
      v = y.narrow(0, 1, 2);
    }
    WEFT_REQUIRE_ERROR(v.zero_(), Contains("fill_: a view (shape [2]) made under NoGradGuard"));
    // Read out of place it is a constant, as anything made under NoGradGuard.
    REQUIRE(!v.requires_grad());
    REQUIRE(!mul(v, 2.0).requires_grad());
  }

  SECTION("its base modified in place with grad afterwards: the view's next use is refused") {
    Tensor x = tensor({1, 2, 3, 4}, {4}, kFloat64), w = leaf({5, 6, 7, 8});
    Tensor v;
    {
      NoGradGuard no_grad;
      v = x.narrow(0, 0, 2);
    }
    x.mul_(w);  // x is no view: allowed, and x's own gradient is right
    sum(x).backward();
    require_close(values_of(w.grad()), {1, 2, 3, 4});
    WEFT_REQUIRE_ERROR(mul(v, 2.0), Contains("a view (shape [2]) made under NoGradGuard") &&
                                        Contains("was modified in place"));
    REQUIRE(!mul(v.detach(), 2.0).requires_grad());  // what the message suggests
    NoGradGuard no_grad;                             // and under NoGradGuard it reads as any tensor
    REQUIRE(values_of(mul(v, 1.0)) == std::vector<double>{5, 12});
  }
}

TEST_CASE("retain_grad follows an in-place op's new history; earlier hooks see the old value's gradient",
          "[autograd][views]") {
  const std::vector<double> cv{1, 2, 3, 4};
  Tensor c = tensor(cv, {4}, kFloat64);
  // A hook that keeps the gradient it sees.
  auto record_gradient = [](const Tensor& t, std::vector<double>& seen) {
    t.register_hook([&seen](const Tensor& g) {
      seen = values_of(g);
      return Tensor();
    });
  };

  SECTION("in place on a plain tensor") {
    Tensor x = leaf({1, 2});
    Tensor y = mul(x, 2.0);
    y.retain_grad();
    std::vector<double> seen;
    record_gradient(y, seen);
    y.mul_(3.0);
    sum(mul(y, tensor({1, 2}, {2}, kFloat64))).backward();
    REQUIRE(y.retains_grad());
    require_close(values_of(y.grad()), {1, 2});  // d loss / d y's final value
    require_close(seen, {3, 6});                  // d loss / d y's value when the hook was registered
    require_close(values_of(x.grad()), {6, 12});
  }

  SECTION("in place through a view: the base's .grad is of its final value") {
    Tensor x = leaf({1, 2, 3, 4}), w = leaf({5, 6});
    Tensor y = mul(x, 1.0);
    y.retain_grad();
    std::vector<double> seen;
    record_gradient(y, seen);
    y.narrow(0, 1, 2).mul_(w);
    sum(mul(y, c)).backward();
    require_close(values_of(y.grad()), cv);
    require_close(seen, {cv[0], cv[1] * 5, cv[2] * 6, cv[3]});
  }

  SECTION(".grad is stored after every hook, also one registered after retain_grad (as in PyTorch)") {
    Tensor x = leaf({1, 2});
    Tensor y = mul(x, 2.0);
    y.retain_grad();
    y.register_hook([](const Tensor& g) { return mul(g, 10.0); });
    sum(y).backward();
    require_close(values_of(y.grad()), {10, 10});
    require_close(values_of(x.grad()), {20, 20});
  }

  SECTION("a view's .grad, after an in-place op on it and then on its base") {
    Tensor x = leaf({1, 2, 3, 4}), w = leaf({5, 6});
    Tensor y = mul(x, 1.0);
    Tensor v = y.narrow(0, 1, 2);
    v.retain_grad();
    v.mul_(w);    // v's grad_fn: a view of y's CopySlices
    y.mul_(2.0);  // v goes stale; its next use rebuilds its grad_fn from y's
    sum(mul(v, tensor({1, 2}, {2}, kFloat64))).backward();  // v = 2 [x1 w0, x2 w1]
    require_close(values_of(v.grad()), {1, 2});
    require_close(values_of(w.grad()), {2 * 1 * 2, 2 * 2 * 3});
    require_close(values_of(x.grad()), {0, 2 * 1 * 5, 2 * 2 * 6, 0});
  }
}

TEST_CASE("a saved tensor that views an in-place op's target leaves no reference cycle", "[autograd][views]") {
  // mul_ and div_ save their other operand, and any op may save a view; one that views the target's
  // storage would hold the base whose new history holds the node. Backward refuses these graphs
  // (the saved tensor was modified in place since), so a cycle would leak both when backward is
  // never called and when it fails.
  const std::vector<std::pair<const char*, std::function<void(Tensor&)>>> cases{
      {"v1.mul_(v2)", [](Tensor& y) { y.narrow(0, 0, 2).mul_(y.narrow(0, 2, 2)); }},
      {"v1.div_(v2)", [](Tensor& y) { y.narrow(0, 0, 2).div_(y.narrow(0, 2, 2)); }},
      {"v.mul_(v)", [](Tensor& y) {
         Tensor v = y.narrow(0, 1, 2);
         v.mul_(v);
       }},
      {"y.mul_(y)", [](Tensor& y) { y.mul_(y); }},
      {"a view saved by mul, then its base written through another view", [](Tensor& y) {
         Tensor z = mul(y.narrow(0, 0, 2), y.narrow(0, 2, 2));
         y.narrow(0, 2, 2).copy_(z);
       }},
      {"views of a base that came to require grad through a view", [](Tensor& y) {
         Tensor z = tensor({1, 2, 3, 4}, {4}, kFloat64);
         z.narrow(0, 2, 2).mul_(y.narrow(0, 0, 2));
         z.narrow(0, 0, 2).mul_(z.narrow(0, 2, 2));
         y = z;
       }},
  };
  for (bool run_backward : {false, true}) {
    for (const auto& [name, op] : cases) {
      INFO(name << (run_backward ? ", then backward" : ", no backward"));
      std::weak_ptr<autograd::Node> node;
      std::weak_ptr<TensorImpl> impl;
      {
        Tensor x = leaf({1, 2, 3, 4});
        Tensor y = mul(x, 1.0);
        op(y);
        node = y.grad_fn();
        impl = y.impl_ptr();
        REQUIRE(!node.expired());
        if (run_backward) require_error([&] { sum(y).backward(); }, "modified by an inplace operation");
      }
      CHECK(node.expired());
      CHECK(impl.expired());
    }
  }
}
