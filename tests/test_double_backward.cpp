// test_double_backward: create_graph in backward and autograd::grad, gradgradcheck (float64) over
// the elementwise, reduction, matmul, softmax, loss, shape and indexing families, hand-worked
// second derivatives, the engine's recorded gradient arithmetic, and the error of an op whose
// backward cannot be differentiated.
#include <cmath>
#include <functional>

#include "autograd/gradcheck.h"
#include "test_util.h"
#include "weft.h"

using namespace weft;
using autograd::variable_list;

namespace {

// Requires |got[i] - want[i]| <= tol everywhere.
void require_within(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  test::require_within(got, want, [tol](size_t) { return tol; });
}

// A contiguous float64 leaf with values in [lo, hi), seeded.
Tensor leaf(const Shape& shape, double lo = -1.0, double hi = 1.0, uint64_t seed = 7) {
  manual_seed(seed);
  return (rand(shape, kFloat64) * (hi - lo) + lo).detach().requires_grad_();
}

using Fn1 = std::function<Tensor(const Tensor&)>;
using Fn2 = std::function<Tensor(const Tensor&, const Tensor&)>;

void gradgrad1(const std::string& name, const Fn1& f, const Tensor& x) {
  INFO(name);
  CHECK(autograd::gradcheck([&](const variable_list& v) { return f(v[0]); }, {x}));
  CHECK(autograd::gradgradcheck([&](const variable_list& v) { return f(v[0]); }, {x}));
}

void gradgrad2(const std::string& name, const Fn2& f, const Tensor& a, const Tensor& b) {
  INFO(name);
  CHECK(autograd::gradgradcheck([&](const variable_list& v) { return f(v[0], v[1]); }, {a, b}));
}

double value(const Tensor& t) { return t.item<double>(); }

}  // namespace

TEST_CASE("double backward: hand-worked second derivatives", "[double_backward]") {
  Tensor x = tensor({3.0}, {}, dtype(kFloat64)).requires_grad_();
  // y = x^3: dy/dx = 3x^2 = 27, d2y/dx2 = 6x = 18.
  Tensor y = mul(mul(x, x), x);
  Tensor g = autograd::grad({y}, {x}, {}, false, false, /*create_graph=*/true)[0];
  CHECK(value(g) == 27.0);
  REQUIRE(g.requires_grad());
  CHECK(value(autograd::grad({g}, {x})[0]) == 18.0);

  // exp saves its output: the re-attached output carries x's history. d2/dx2 exp(2x) = 4 exp(2x).
  Tensor e = exp(mul(x, 2.0));
  Tensor ge = autograd::grad({e}, {x}, {}, false, false, true)[0];
  CHECK(value(ge) == Approx(2 * std::exp(6.0)));
  CHECK(value(autograd::grad({ge}, {x})[0]) == Approx(4 * std::exp(6.0)));

  // Third derivative of x^4 at 3: 24x = 72 (every order records).
  Tensor q = pow(x, 4.0);
  Tensor g1 = autograd::grad({q}, {x}, {}, false, false, true)[0];
  Tensor g2 = autograd::grad({g1}, {x}, {}, false, false, true)[0];
  CHECK(value(g2) == Approx(108.0));  // 12 x^2
  CHECK(value(autograd::grad({g2}, {x})[0]) == Approx(72.0));

  // sigmoid: s' = s(1-s), s'' = s(1-s)(1-2s), through the fused formula's op form.
  Tensor z = tensor({0.3}, {}, dtype(kFloat64)).requires_grad_();
  Tensor gs = autograd::grad({sigmoid(z)}, {z}, {}, false, false, true)[0];
  double s = 1 / (1 + std::exp(-0.3));
  CHECK(value(gs) == Approx(s * (1 - s)));
  CHECK(value(autograd::grad({gs}, {z})[0]) == Approx(s * (1 - s) * (1 - 2 * s)));
}

TEST_CASE("double backward: without create_graph gradients are constants, as before", "[double_backward]") {
  Tensor x = leaf({3});
  Tensor g = autograd::grad({sum(mul(x, x))}, {x})[0];
  CHECK_FALSE(g.requires_grad());
  require_within(g.to_vector<double>(), (x * 2.0).detach().to_vector<double>(), 1e-15);
}

TEST_CASE("double backward: backward(create_graph) leaves a differentiable .grad", "[double_backward]") {
  Tensor x = tensor({1.0, 2.0}, {2}, dtype(kFloat64)).requires_grad_();
  Tensor w = tensor({0.5, -1.5}, {2}, dtype(kFloat64)).requires_grad_();
  autograd::backward({sum(mul(mul(x, x), w))}, {}, false, /*create_graph=*/true);
  // x.grad = 2 x w; d(sum x.grad)/dw = 2x; d(sum x.grad)/dx = 2w.
  REQUIRE(x.grad().requires_grad());
  require_within(x.grad().to_vector<double>(), {1.0, -6.0}, 0);
  auto gg = autograd::grad({sum(x.grad())}, {x, w}, {}, /*retain_graph=*/true);
  require_within(gg[0].to_vector<double>(), {1.0, -3.0}, 0);
  require_within(gg[1].to_vector<double>(), {2.0, 4.0}, 0);
  // A second backward with create_graph accumulates out of place, keeping the history.
  autograd::backward({sum(mul(x, w))}, {}, false, true);
  require_within(x.grad().to_vector<double>(), {1.5, -7.5}, 0);
  require_within(autograd::grad({sum(x.grad())}, {w})[0].to_vector<double>(), {3.0, 5.0}, 0);
  x.set_grad(Tensor()), w.set_grad(Tensor());  // see engine.h: .grad's history holds x (a cycle)
  // The method spells it as PyTorch's: loss.backward(gradient, retain_graph, create_graph).
  Tensor y = tensor({3.0}, {1}, dtype(kFloat64)).requires_grad_();
  sum(mul(mul(y, y), y)).backward(Tensor(), false, /*create_graph=*/true);
  require_within(y.grad().to_vector<double>(), {27.0}, 0);                                        // 3 y^2
  require_within(autograd::grad({sum(y.grad())}, {y})[0].to_vector<double>(), {18.0}, 0);  // 6 y
  y.set_grad(Tensor());
}

TEST_CASE("double backward: the engine's sums, broadcast reductions and casts record", "[double_backward]") {
  // x (3) broadcast against (2, 3) and used twice: the engine reduces and sums its gradients.
  Tensor x = leaf({3}, 0.5, 1.5);
  Tensor a = leaf({2, 3}, 0.5, 1.5, 9);
  auto f = [&](const variable_list& v) { return sum(add(mul(v[0], v[1]), exp(mul(v[0], v[0])))); };
  CHECK(autograd::gradgradcheck(f, {x, a}));
  // A float32 input used in a float64 product: the engine casts its gradient back, recorded.
  Tensor x32 = tensor({0.5, 1.0}, {2}, dtype(kFloat32)).requires_grad_();
  Tensor y = sum(mul(pow(x32.to(kFloat64), 3.0), 1.0));
  Tensor g = autograd::grad({y}, {x32}, {}, false, false, true)[0];
  CHECK(g.dtype() == kFloat32);
  require_within(autograd::grad({sum(g)}, {x32})[0].to_vector<double>(), {3.0, 6.0}, 1e-6);
  // retain_grad under create_graph keeps a differentiable gradient.
  Tensor h = mul(x, 3.0);
  h.retain_grad();
  autograd::backward({sum(mul(h, h))}, {}, false, true);
  REQUIRE(h.grad().requires_grad());
  require_within(autograd::grad({sum(h.grad())}, {x})[0].to_vector<double>(), {6.0, 6.0, 6.0}, 1e-12);
  x.set_grad(Tensor());
}

TEST_CASE("gradgradcheck: elementwise unary", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({2, 3}, -0.9, 0.9);
  Tensor pos = leaf({2, 3}, 0.2, 0.9, 11);
  gradgrad1("neg", [](const Tensor& t) { return neg(t); }, x);
  gradgrad1("abs", [](const Tensor& t) { return abs(t); }, x);
  gradgrad1("exp", [](const Tensor& t) { return exp(t); }, x);
  gradgrad1("log", [](const Tensor& t) { return log(t); }, pos);
  gradgrad1("sqrt", [](const Tensor& t) { return sqrt(t); }, pos);
  gradgrad1("rsqrt", [](const Tensor& t) { return rsqrt(t); }, pos);
  gradgrad1("sin", [](const Tensor& t) { return sin(t); }, x);
  gradgrad1("cos", [](const Tensor& t) { return cos(t); }, x);
  gradgrad1("tanh", [](const Tensor& t) { return tanh(t); }, x);
  gradgrad1("sigmoid", [](const Tensor& t) { return sigmoid(t); }, x);
  gradgrad1("relu", [](const Tensor& t) { return relu(t); }, x);
  gradgrad1("gelu", [](const Tensor& t) { return gelu(t); }, x);
  gradgrad1("gelu tanh", [](const Tensor& t) { return gelu(t, "tanh"); }, x);
  gradgrad1("silu", [](const Tensor& t) { return silu(t); }, x);
  gradgrad1("reciprocal", [](const Tensor& t) { return reciprocal(t); }, pos);
  gradgrad1("erf", [](const Tensor& t) { return erf(t); }, x);
  gradgrad1("erfinv", [](const Tensor& t) { return erfinv(t); }, x);
  gradgrad1("log1p", [](const Tensor& t) { return log1p(t); }, pos);
  gradgrad1("expm1", [](const Tensor& t) { return expm1(t); }, x);
  gradgrad1("log2/log10", [](const Tensor& t) { return add(log2(t), log10(t)); }, pos);
  gradgrad1("sinh/cosh", [](const Tensor& t) { return mul(sinh(t), cosh(t)); }, x);
  gradgrad1("asin/acos/atan", [](const Tensor& t) { return add(add(asin(t), acos(t)), atan(t)); }, x);
  gradgrad1("asinh/acosh/atanh", [](const Tensor& t) { return add(add(asinh(t), acosh(add(t, 2.0))), atanh(t)); }, x);
  gradgrad1("clamp", [](const Tensor& t) { return mul(clamp(t, -0.5, 0.5), t); }, x);
  gradgrad1("pow scalar", [](const Tensor& t) { return pow(t, 3.5); }, pos);
  gradgrad1("sign/round", [](const Tensor& t) { return mul(add(sign(t), round(t)), t); }, x);
}

TEST_CASE("gradgradcheck: elementwise binary, with broadcasting", "[double_backward][gradgradcheck]") {
  Tensor a = leaf({3, 4}, 0.5, 1.5);
  Tensor b = leaf({4}, 0.5, 1.5, 13);
  gradgrad2("add/sub", [](const Tensor& p, const Tensor& q) { return mul(sub(add(p, q), mul(q, 2.0)), p); }, a, b);
  gradgrad2("mul", [](const Tensor& p, const Tensor& q) { return mul(p, q); }, a, b);
  gradgrad2("div", [](const Tensor& p, const Tensor& q) { return div(p, q); }, a, b);
  gradgrad2("pow", [](const Tensor& p, const Tensor& q) { return pow(p, q); }, a, b);
  gradgrad2("maximum/minimum", [](const Tensor& p, const Tensor& q) {
    return add(mul(maximum(p, q), p), mul(minimum(p, q), q));
  }, a, b);
  gradgrad2("atan2/hypot", [](const Tensor& p, const Tensor& q) { return add(atan2(p, q), hypot(p, q)); }, a, b);
  gradgrad2("where/masked_fill", [](const Tensor& p, const Tensor& q) {
    Tensor m = gt(p, 1.0);
    return add(where(m, mul(p, q), mul(q, q)), masked_fill(mul(p, p), m, 0.0));
  }, a, b);
  gradgrad2("remainder", [](const Tensor& p, const Tensor& q) { return mul(remainder(mul(p, 3.0), q), p); }, a, b);
  gradgrad2("scalar ops", [](const Tensor& p, const Tensor& q) {
    return mul(div(add(sub(p, 0.5), 1.0), 3.0), mul(q, 2.0));
  }, a, b);
}

TEST_CASE("gradgradcheck: reductions", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({3, 4}, 0.5, 1.5);
  gradgrad1("sum", [](const Tensor& t) { return mul(sum(mul(t, t), {1}, true), t); }, x);
  gradgrad1("sum all", [](const Tensor& t) { return mul(sum(t), sum(mul(t, t))); }, x);
  gradgrad1("mean", [](const Tensor& t) { return mul(mean(mul(t, t), {0}), mean(t)); }, x);
  gradgrad1("max/min all", [](const Tensor& t) { return mul(max(mul(t, t)), min(t)); }, x);
  gradgrad1("max dim", [](const Tensor& t) { return mul(max(mul(t, t), 1, false).first, 2.0); }, x);
  gradgrad1("min dim keepdim", [](const Tensor& t) { return mul(min(t, 0, true).first, t); }, x);
  gradgrad1("norm 2", [](const Tensor& t) { return norm(t, 2.0, {1}, false); }, x);
  gradgrad1("norm 3", [](const Tensor& t) { return norm(t, 3.0, {0}, true); }, x);
  gradgrad1("norm 1", [](const Tensor& t) { return mul(norm(t, 1.0, {}, false), t); }, x);
  gradgrad1("norm inf", [](const Tensor& t) { return mul(norm(t, INFINITY, {1}, true), t); }, x);
  gradgrad1("var", [](const Tensor& t) { return var(t, {1}); }, x);
  gradgrad1("std", [](const Tensor& t) { return weft::std(t, {0}, true, true); }, x);
  gradgrad1("logsumexp", [](const Tensor& t) { return logsumexp(t, {1}, false); }, x);
  gradgrad1("logsumexp keepdim", [](const Tensor& t) { return logsumexp(t, {0}, true); }, x);
  gradgrad1("sum_to", [](const Tensor& t) { return sum_to(mul(t, t), {1, 4}); }, x);
}

TEST_CASE("gradgradcheck: matmul, linear, bmm", "[double_backward][gradgradcheck]") {
  Tensor a = leaf({3, 4});
  Tensor b = leaf({4, 2}, -1, 1, 17);
  gradgrad2("mm", [](const Tensor& p, const Tensor& q) { return mm(p, q); }, a, b);
  gradgrad2("matmul", [](const Tensor& p, const Tensor& q) { return tanh(matmul(p, q)); }, a, b);
  Tensor w = leaf({2, 4}, -1, 1, 19), bias = leaf({2}, -1, 1, 23);
  INFO("linear");
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return tanh(linear(v[0], v[1], v[2])); }, {a, w, bias}));
  Tensor x3 = leaf({2, 3, 4}, -1, 1, 29);
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return sigmoid(linear(v[0], v[1], v[2])); },
                                {x3, w, bias}));
  Tensor c = leaf({3, 2}, -1, 1, 31);
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return sin(addmm(v[0], v[1], v[2], 0.5, 2.0)); },
                                {c, a, b}));
  Tensor p = leaf({2, 3, 4}), q = leaf({2, 4, 2}, -1, 1, 37);
  gradgrad2("bmm", [](const Tensor& s, const Tensor& t) { return tanh(bmm(s, t)); }, p, q);
}

TEST_CASE("gradgradcheck: attention and einsum, composed of the families above", "[double_backward][gradgradcheck]") {
  Tensor q = leaf({2, 3, 4}), k = leaf({2, 3, 4}, -1, 1, 67), v = leaf({2, 3, 4}, -1, 1, 71);
  INFO("scaled_dot_product_attention, causal");
  CHECK(autograd::gradgradcheck([](const variable_list& t) {
    return scaled_dot_product_attention(t[0], t[1], t[2], Tensor(), true);
  }, {q, k, v}));
  INFO("einsum");
  CHECK(autograd::gradgradcheck([](const variable_list& t) { return einsum("bij,bkj->bik", {t[0], t[1]}); }, {q, k}));
}

TEST_CASE("gradgradcheck: softmax and log_softmax", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({3, 4});
  gradgrad1("softmax", [](const Tensor& t) { return softmax(t, 1); }, x);
  gradgrad1("softmax dim 0", [](const Tensor& t) { return softmax(t, 0); }, x);
  gradgrad1("log_softmax", [](const Tensor& t) { return log_softmax(t, -1); }, x);
}

TEST_CASE("gradgradcheck: layer_norm and rms_norm", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({2, 3, 4});
  Tensor w = leaf({3, 4}, 0.5, 1.5, 53), b = leaf({3, 4}, -1, 1, 59), w4 = leaf({4}, 0.5, 1.5, 61);
  INFO("layer_norm over (3, 4), weight and bias");
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return layer_norm(v[0], {3, 4}, v[1], v[2]); },
                                {x, w, b}));
  INFO("layer_norm over (4), no affine");
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return layer_norm(v[0], {4}); }, {x}));
  INFO("rms_norm");
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return rms_norm(v[0], {4}, v[1], 1e-5); }, {x, w4}));
}

TEST_CASE("gradgradcheck: losses", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({4, 3});
  Tensor t = leaf({4, 3}, -1, 1, 41);
  Tensor classes = from_vector<int64_t>({2, 0, 1, 2}, {4});
  Tensor ignoring = from_vector<int64_t>({2, -100, 1, 0}, {4});
  gradgrad2("mse mean (fused)", [](const Tensor& p, const Tensor& q) { return mse_loss(p, q); }, x, t);
  gradgrad2("mse sum (fused)", [](const Tensor& p, const Tensor& q) { return mse_loss(p, q, "sum"); }, x, t);
  gradgrad2("mse none", [](const Tensor& p, const Tensor& q) { return mse_loss(p, q, "none"); }, x, t);
  gradgrad1("cross_entropy", [&](const Tensor& p) { return cross_entropy(p, classes); }, x);
  gradgrad1("cross_entropy sum", [&](const Tensor& p) { return cross_entropy(p, classes, "sum"); }, x);
  gradgrad1("cross_entropy none, ignore_index, smoothing", [&](const Tensor& p) {
    return cross_entropy(p, ignoring, "none", -100, 0.2);
  }, x);
  Tensor x4 = leaf({2, 3, 2});
  Tensor spatial = from_vector<int64_t>({0, 2, 1, 1}, {2, 2});
  gradgrad1("cross_entropy (N, C, d)", [&](const Tensor& p) { return cross_entropy(p, spatial); }, x4);
  Tensor probs = softmax(t, 1).detach();
  gradgrad1("cross_entropy probabilities", [&](const Tensor& p) { return cross_entropy(p, probs); }, x);
  Tensor class_weight = from_vector<double>({0.5, 2.0, 1.5}, {3});
  gradgrad1("cross_entropy weighted, smoothing", [&](const Tensor& p) {
    return cross_entropy(p, ignoring, "mean", -100, 0.1, class_weight);
  }, x);
  gradgrad1("nll_loss weighted", [&](const Tensor& p) { return nll_loss(p, ignoring, "sum", -100, class_weight); }, x);
  gradgrad1("nll_loss", [&](const Tensor& p) { return mul(nll_loss(p, ignoring), nll_loss(p, classes, "sum")); }, x);
  // binary cross-entropy, composed (weft has no fused bce): -(t log p + (1 - t) log(1 - p)).
  Tensor targets = leaf({4, 3}, 0, 1, 43).detach();
  gradgrad1("bce", [&](const Tensor& z) {
    Tensor p = sigmoid(z);
    return mean(neg(add(mul(targets, log(p)), mul(1.0 - targets, log(1.0 - p)))));
  }, x);
}

TEST_CASE("gradgradcheck: shape, view and copy ops", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({2, 3, 4});
  auto sq = [](const Tensor& t) { return mul(t, t); };
  gradgrad1("reshape/view/flatten", [&](const Tensor& t) { return sq(flatten(view(reshape(t, {6, 4}), {4, 6}))); }, x);
  gradgrad1("permute/transpose", [&](const Tensor& t) { return sq(transpose(permute(t, {2, 0, 1}), 0, 2)); }, x);
  gradgrad1("squeeze/unsqueeze/expand", [&](const Tensor& t) {
    return sq(expand(unsqueeze(squeeze(narrow(t, 0, 0, 1), 0), 0), {3, 3, 4}));
  }, x);
  gradgrad1("narrow/select", [&](const Tensor& t) { return sq(add(narrow(t, 2, 1, 2), select(t, 2, 0).unsqueeze(2))); }, x);
  gradgrad1("cat/split/chunk", [&](const Tensor& t) {
    TensorList parts = split(t, 1, 1);
    TensorList halves = chunk(t, 2, 2);
    return add(sum(sq(cat({parts[2], parts[0]}, 1))), sum(sq(cat({mul(halves[1], halves[0]), halves[0]}, 2))));
  }, x);
  gradgrad1("stack", [&](const Tensor& t) { return sq(stack({t, mul(t, 2.0)}, 1)); }, x);
  gradgrad1("clone/contiguous/triu/tril", [&](const Tensor& t) {
    return sq(add(triu(clone(t)), tril(contiguous(transpose(t, 1, 2)).transpose(1, 2), -1)));
  }, x);
  gradgrad1("as_strided", [&](const Tensor& t) { return sq(as_strided(t, {3, 2}, {4, 2}, 1)); }, x);
}

TEST_CASE("gradgradcheck: in-place ops, on tensors and through views", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({3, 4}, 0.5, 1.5);
  gradgrad1("add_/mul_/div_/fill_/copy_", [](const Tensor& t) {
    Tensor y = mul(t, 1.5);
    y.add_(t, 0.5);
    y.mul_(exp(t));
    y.div_(add(t, 2.0));
    y.mul_(2.0);
    Tensor z = zeros({3, 4}, kFloat64);
    z.copy_(mul(y, t));
    return mul(y, z);
  }, x);
  gradgrad1("through views (CopySlices)", [](const Tensor& t) {
    Tensor y = mul(t, 1.5);
    y.narrow(0, 0, 1).mul_(exp(t.narrow(0, 1, 1)));
    y.select(1, 2).div_(add(t.select(1, 0), 2.0));
    y.narrow(1, 1, 2).copy_(mul(t.narrow(1, 0, 2), t.narrow(1, 2, 2)));
    return mul(y, y);
  }, x);
}

TEST_CASE("gradgradcheck: indexing", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({3, 4});
  Tensor idx = from_vector<int64_t>({2, 0, 2}, {3});
  Tensor gidx = from_vector<int64_t>({0, 3, 1, 1, 2, 0}, {3, 2});
  auto sq = [](const Tensor& t) { return mul(t, t); };
  gradgrad1("index_select", [&](const Tensor& t) { return sq(index_select(t, 0, idx)); }, x);
  gradgrad1("gather", [&](const Tensor& t) { return sq(gather(t, 1, gidx)); }, x);
  gradgrad1("scatter_add", [&](const Tensor& t) { return sq(scatter_add(t, 1, gidx, mul(gather(t, 1, gidx), 2.0))); }, x);
  gradgrad1("index_fill/index_copy", [&](const Tensor& t) {
    return sq(index_copy(index_fill(t, 1, from_vector<int64_t>({1}, {1}), 2.0), 0,
                         from_vector<int64_t>({1}, {1}), narrow(t, 0, 2, 1)));
  }, x);
}

TEST_CASE("gradgradcheck: sorting, scans and embedding", "[double_backward][gradgradcheck]") {
  Tensor x = leaf({3, 4});
  auto sq = [](const Tensor& t) { return mul(t, t); };
  gradgrad1("sort", [&](const Tensor& t) { return sq(sort(t, 1, true).first); }, x);
  gradgrad1("topk", [&](const Tensor& t) { return sq(topk(t, 2, 0).first); }, x);
  gradgrad1("cumsum", [&](const Tensor& t) { return sq(cumsum(t, 1)); }, x);
  Tensor ids = from_vector<int64_t>({3, 0, 3, 1, 2, 0}, {2, 3});
  Tensor table = leaf({4, 3}, -1, 1, 47);
  gradgrad1("embedding", [&](const Tensor& w) { return sq(embedding(w, ids)); }, table);
}

namespace {
// x^3 with a backward that treats x as a constant: the first derivative is right, the second is not.
struct CubeWithConstantSlope : autograd::Function<CubeWithConstantSlope> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return mul(mul(x, x), x);
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    Tensor x = ctx->get_saved_variables()[0].detach();
    return {mul(grads[0], mul(mul(x, x), 3.0))};
  }
};
// The same with the slope kept differentiable: a custom backward made of ops differentiates again.
struct Cube : autograd::Function<Cube> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return mul(mul(x, x), x);
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    Tensor x = ctx->get_saved_variables()[0];
    return {mul(grads[0], mul(mul(x, x), 3.0))};
  }
};
}  // namespace

namespace {
// Two outputs, (x^2, x^3), each saved: under create_graph each comes back as its own output.
struct SquareAndCube : autograd::Function<SquareAndCube> {
  static variable_list forward(autograd::AutogradContext* ctx, const Tensor& x) {
    Tensor sq = mul(x, x), cube = mul(sq, x);
    ctx->save_for_backward({x, sq, cube});
    return {sq, cube};
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    variable_list s = ctx->get_saved_variables();  // x, x^2, x^3: d/dx = 2 x, 3 x^3 / x
    return {add(mul(grads[0], mul(s[0], 2.0)), mul(grads[1], div(mul(s[2], 3.0), s[0])))};
  }
};
}  // namespace

TEST_CASE("double backward: a custom Function's saved outputs keep their own output number", "[double_backward]") {
  Tensor x = leaf({3}, 0.5, 1.5);
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return SquareAndCube::apply(v[0]); }, {x}));
}

TEST_CASE("gradgradcheck catches a wrong second derivative; custom Functions differentiate twice",
          "[double_backward][gradgradcheck]") {
  Tensor x = leaf({3}, 0.5, 1.5);
  auto wrong = [](const variable_list& v) { return CubeWithConstantSlope::apply(v[0]); };
  CHECK(autograd::gradcheck(wrong, {x}));
  CHECK_FALSE(autograd::gradgradcheck(wrong, {x}, 1e-6, 1e-5, 1e-3, /*raise=*/false));
  WEFT_REQUIRE_ERROR(autograd::gradgradcheck(wrong, {x}), Catch::Contains("gradcheck: Jacobian mismatch"));
  CHECK(autograd::gradgradcheck([](const variable_list& v) { return Cube::apply(v[0]); }, {x}));
}

TEST_CASE("double backward: an op without a differentiable backward says so", "[double_backward]") {
  Tensor x = leaf({2, 3}, 0.5, 1.5);
  // prod's backward runs a fused kernel: the first-order gradient is right, differentiating it again is refused.
  Tensor g = autograd::grad({prod(x)}, {x}, {}, false, false, true)[0];
  require_within(g.to_vector<double>(), autograd::grad({prod(x)}, {x})[0].to_vector<double>(),
                 1e-12);
  WEFT_REQUIRE_ERROR(autograd::grad({sum(g)}, {x}), Catch::Contains("double backward is not implemented for ProdBackward"));
  WEFT_REQUIRE_ERROR(autograd::gradgradcheck([](const variable_list& v) { return prod(v[0]); }, {x}),
                     Catch::Contains("double backward is not implemented for ProdBackward"));
  // An op that is not on the path of the second derivative does not stand in the way.
  Tensor w = leaf({2, 3}, 0.5, 1.5, 3);
  Tensor gw = autograd::grad({sum(mul(mul(w, w), prod(x).detach()))}, {w}, {}, false, false, true)[0];
  CHECK(autograd::grad({sum(gw)}, {w})[0].defined());
}
