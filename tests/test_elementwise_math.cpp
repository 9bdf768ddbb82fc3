// test_elementwise_math: the elementwise families beyond the basics (special functions, rounding,
// inverse and hyperbolic trigonometry, remainder/fmod/atan2/hypot/lerp, logical and bitwise ops, the
// C++ operators), torch's 0-dim promotion rule, clamp with min > max, every p of norm, and
// cross_entropy with probability targets: values against std:: loops and hand-worked numbers,
// gradients by gradcheck (float64).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "framework/generator.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

struct MathCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  double (*ref)(double);
  double lo, hi;  // the sampled domain
  bool differentiable = true;
};

double erfinv_by_bisection(double y) {  // an independent reference: erf is increasing
  double a = -6, b = 6;
  for (int i = 0; i < 200; ++i) {
    double m = 0.5 * (a + b);
    (std::erf(m) < y ? a : b) = m;
  }
  return 0.5 * (a + b);
}

std::vector<MathCase> math_cases() {
  return {
      {"erf", [](auto& x) { return erf(x); }, [](double v) { return std::erf(v); }, -2.5, 2.5},
      {"erfinv", [](auto& x) { return erfinv(x); }, erfinv_by_bisection, -0.97, 0.97},
      {"log1p", [](auto& x) { return log1p(x); }, [](double v) { return std::log1p(v); }, -0.9, 3},
      {"expm1", [](auto& x) { return expm1(x); }, [](double v) { return std::expm1(v); }, -3, 3},
      {"log2", [](auto& x) { return log2(x); }, [](double v) { return std::log2(v); }, 0.2, 5},
      {"log10", [](auto& x) { return log10(x); }, [](double v) { return std::log10(v); }, 0.2, 5},
      {"sinh", [](auto& x) { return sinh(x); }, [](double v) { return std::sinh(v); }, -3, 3},
      {"cosh", [](auto& x) { return cosh(x); }, [](double v) { return std::cosh(v); }, -3, 3},
      {"asin", [](auto& x) { return asin(x); }, [](double v) { return std::asin(v); }, -0.95, 0.95},
      {"acos", [](auto& x) { return acos(x); }, [](double v) { return std::acos(v); }, -0.95, 0.95},
      {"atan", [](auto& x) { return atan(x); }, [](double v) { return std::atan(v); }, -4, 4},
      {"asinh", [](auto& x) { return asinh(x); }, [](double v) { return std::asinh(v); }, -4, 4},
      {"acosh", [](auto& x) { return acosh(x); }, [](double v) { return std::acosh(v); }, 1.1, 5},
      {"atanh", [](auto& x) { return atanh(x); }, [](double v) { return std::atanh(v); }, -0.95, 0.95},
      {"frac", [](auto& x) { return frac(x); }, [](double v) { return v - std::trunc(v); }, -4.9, 4.9},
      {"floor", [](auto& x) { return floor(x); }, [](double v) { return std::floor(v); }, -4.9, 4.9, false},
      {"ceil", [](auto& x) { return ceil(x); }, [](double v) { return std::ceil(v); }, -4.9, 4.9, false},
      {"round", [](auto& x) { return round(x); }, [](double v) { return std::nearbyint(v); }, -4.9, 4.9, false},
      {"trunc", [](auto& x) { return trunc(x); }, [](double v) { return std::trunc(v); }, -4.9, 4.9, false},
  };
}

Tensor uniform(const Shape& shape, double lo, double hi, DType dt, uint64_t seed) {
  Generator gen(seed);
  return add(mul(rand(shape, dt, &gen), hi - lo), lo);
}

// Samples that keep off integers, where the rounding ops' finite differences would straddle a step.
Tensor off_integers(const Tensor& x) { return add(floor(x), add(mul(frac(abs(x)), 0.8), 0.1)); }

void check_against(const MathCase& c, const Tensor& x, double tol) {
  Tensor y = c.op(x);
  REQUIRE(y.shape() == x.shape());
  REQUIRE(y.dtype() == x.dtype());
  auto vx = x.to_vector<double>(), vy = y.to_vector<double>();
  std::vector<double> want(vx.size());
  for (size_t i = 0; i < vx.size(); ++i) want[i] = c.ref(vx[i]);
  test::require_within(vy, want, [&](size_t i) { return tol * (1 + std::fabs(want[i])); });
}

}  // namespace

TEST_CASE("elementwise math matches std:: loops in float64 and float32", "[math]") {
  for (const MathCase& c : math_cases()) {
    SECTION(c.name) {
      check_against(c, uniform({4, 9}, c.lo, c.hi, kFloat64, 1), 1e-12);
      Tensor x32 = uniform({4, 9}, c.lo, c.hi, kFloat32, 2);
      // float32 results agree with the float64 reference of the same float32 inputs to float rounding.
      check_against(c, x32, 1e-5);
      Tensor strided = uniform({6, 5}, c.lo, c.hi, kFloat64, 3).transpose(0, 1);
      check_against(c, strided, 1e-12);
      check_against(c, uniform({}, c.lo, c.hi, kFloat64, 4), 1e-12);
      REQUIRE(c.op(zeros({0, 3}, kFloat64)).shape() == Shape{0, 3});
    }
  }
}

TEST_CASE("elementwise math gradcheck", "[math][grad]") {
  for (const MathCase& c : math_cases()) {
    SECTION(c.name) {
      Tensor x = uniform({3, 4}, c.lo, c.hi, kFloat64, 11);
      if (!c.differentiable || std::string(c.name) == "frac") x = off_integers(x);
      x.requires_grad_();
      REQUIRE(autograd::gradcheck([&](auto& v) { return c.op(v[0]); }, {x}));
      if (!c.differentiable) {
        sum(c.op(x)).backward();
        REQUIRE(x.grad().to_vector<double>() == std::vector<double>(12, 0.0));
      }
    }
  }
}

TEST_CASE("rounding, erfinv and the special values, hand-worked", "[math]") {
  // Round is half to even, as torch's.
  REQUIRE(round(tensor({0.5, 1.5, 2.5, -0.5, -1.5, 2.4999}, {6}, kFloat64)).to_vector<double>() ==
          std::vector<double>{0, 2, 2, -0, -2, 2});
  // Integral inputs pass through the rounding family with their dtype; bool is refused.
  Tensor i = from_vector<int64_t>({-3, 0, 7}, {3});
  for (Tensor (*op)(const Tensor&) : {&weft::floor, &weft::ceil, &weft::round, &weft::trunc}) {
    REQUIRE(op(i).dtype() == kInt64);
    REQUIRE(op(i).to_vector<int64_t>() == std::vector<int64_t>{-3, 0, 7});
  }
  WEFT_REQUIRE_ERROR(floor(from_vector<bool>({true}, {1})), Contains("floor") && Contains("bool"));
  WEFT_REQUIRE_ERROR(frac(i), Contains("frac") && Contains("int64"));
  // Float ops on integers compute in float32, as torch's int-to-float promotion.
  REQUIRE(erf(i).dtype() == kFloat32);
  auto e = erfinv(tensor({1, -1, 1.5, 0}, {4}, kFloat64)).to_vector<double>();
  CHECK(e[0] == INFINITY);
  CHECK(e[1] == -INFINITY);
  CHECK(std::isnan(e[2]));
  CHECK(e[3] == 0);
  // erf(erfinv(y)) = y to float64 rounding, near the ends too.
  Tensor y = tensor({-0.999999, -0.5, 1e-9, 0.3, 0.999999999}, {5}, kFloat64);
  test::require_within(erf(erfinv(y)).to_vector<double>(), y.to_vector<double>(), [](size_t) { return 1e-15; });
}

TEST_CASE("isnan, isinf, isfinite and nan_to_num", "[math]") {
  Tensor x = tensor({NAN, INFINITY, -INFINITY, 1.5, -0.0}, {5}, kFloat64);
  REQUIRE(isnan(x).to_vector<bool>() == std::vector<bool>{true, false, false, false, false});
  REQUIRE(isinf(x).to_vector<bool>() == std::vector<bool>{false, true, true, false, false});
  REQUIRE(isfinite(x).to_vector<bool>() == std::vector<bool>{false, false, false, true, true});
  Tensor i = from_vector<int64_t>({1, 2}, {2});
  REQUIRE(isfinite(i).to_vector<bool>() == std::vector<bool>{true, true});
  REQUIRE(isnan(i).dtype() == kBool);
  const double big = std::numeric_limits<double>::max();
  REQUIRE(nan_to_num(x).to_vector<double>() == std::vector<double>{0, big, -big, 1.5, 0});
  REQUIRE(nan_to_num(x, 7, 8, -9).to_vector<double>() == std::vector<double>{7, 8, -9, 1.5, 0});
  REQUIRE(nan_to_num(tensor({INFINITY}, {1})).to_vector<float>()[0] == std::numeric_limits<float>::max());
  x.requires_grad_();
  sum(mul(nan_to_num(x), 3.0)).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 3, 3});
}

TEST_CASE("atan2, hypot, remainder, fmod and lerp", "[math]") {
  Tensor a = uniform({3, 4}, -3, 3, kFloat64, 21), b = uniform({4}, 0.5, 3, kFloat64, 22);
  Tensor nb = neg(b);
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  auto expect = [&](const Tensor& got, double (*f)(double, double), bool negate_b) {
    auto vg = got.to_vector<double>();
    std::vector<double> want(va.size());
    for (size_t i = 0; i < va.size(); ++i) want[i] = f(va[i], negate_b ? -vb[i % 4] : vb[i % 4]);
    test::require_within(vg, want, [](size_t) { return 1e-12; });
  };
  auto py_mod = [](double x, double y) { return x - y * std::floor(x / y); };
  expect(atan2(a, b), [](double x, double y) { return std::atan2(x, y); }, false);
  expect(hypot(a, b), [](double x, double y) { return std::hypot(x, y); }, false);
  expect(remainder(a, b), +py_mod, false);
  expect(remainder(a, nb), +py_mod, true);
  expect(fmod(a, nb), [](double x, double y) { return std::fmod(x, y); }, true);
  expect(a % b, +py_mod, false);

  // Integers: Python's sign rules, worked by hand; the extreme INT64_MIN % -1 is 0, not a trap.
  Tensor i = from_vector<int64_t>({5, -5, 5, -5, INT64_MIN}, {5});
  Tensor j = from_vector<int64_t>({3, 3, -3, -3, -1}, {5});
  REQUIRE(remainder(i, j).to_vector<int64_t>() == std::vector<int64_t>{2, 1, -1, -2, 0});
  REQUIRE(fmod(i, j).to_vector<int64_t>() == std::vector<int64_t>{2, -2, 2, -2, 0});
  REQUIRE((7 % from_vector<int64_t>({3, -3}, {2})).to_vector<int64_t>() == std::vector<int64_t>{1, -2});
  REQUIRE(remainder(tensor({5.5, -5.5}, {2}, kFloat64), 2).to_vector<double>() == std::vector<double>{1.5, 0.5});
  WEFT_REQUIRE_ERROR(remainder(i, from_vector<int64_t>({1, 0, 1, 1, 1}, {5})),
                     Contains("remainder") && Contains("division by zero"));
  WEFT_REQUIRE_ERROR(fmod(i, 0), Contains("fmod") && Contains("division by zero"));
  REQUIRE(std::isnan(fmod(tensor({1.0}, {1}, kFloat64), 0.0).to_vector<double>()[0]));
  WEFT_REQUIRE_ERROR(remainder(from_vector<bool>({true}, {1}), from_vector<bool>({true}, {1})),
                     Contains("remainder") && Contains("bool"));
  WEFT_REQUIRE_ERROR(hypot(i, j), Contains("hypot") && Contains("floating"));
  REQUIRE(atan2(i, j).dtype() == kFloat32);

  // lerp: start + weight * (end - start), hand-worked.
  Tensor s = tensor({1, 2}, {2}, kFloat64), e = tensor({3, 5}, {2}, kFloat64);
  REQUIRE(lerp(s, e, 0.75).to_vector<double>() == std::vector<double>{2.5, 4.25});
  REQUIRE(lerp(s, e, tensor({0, 1}, {2}, kFloat64)).to_vector<double>() == std::vector<double>{1, 5});
  WEFT_REQUIRE_ERROR(lerp(i, i, 0.5), Contains("lerp") && Contains("floating"));

  SECTION("gradcheck") {
    Tensor x = uniform({3, 4}, -3, 3, kFloat64, 31), y = uniform({4}, 0.5, 3, kFloat64, 32);
    x.requires_grad_(), y.requires_grad_();
    CHECK(autograd::gradcheck([](auto& v) { return atan2(v[0], v[1]); }, {x, y}));
    CHECK(autograd::gradcheck([](auto& v) { return hypot(v[0], v[1]); }, {x, y}));
    // Away from the jumps of remainder and fmod (a / b near an integer).
    Tensor q = off_integers(uniform({3, 4}, -3, 3, kFloat64, 33));
    Tensor xa = mul(q, 1.7).detach(), yb = full({4}, 1.7, kFloat64);
    xa.requires_grad_(), yb.requires_grad_();
    CHECK(autograd::gradcheck([](auto& v) { return remainder(v[0], v[1]); }, {xa, yb}));
    CHECK(autograd::gradcheck([](auto& v) { return fmod(v[0], neg(v[1])); }, {xa, yb}));
    Tensor w = uniform({3, 4}, 0, 1, kFloat64, 34);
    w.requires_grad_();
    CHECK(autograd::gradcheck([](auto& v) { return lerp(v[0], v[1], v[2]); }, {x, mul(x, 0.5).detach(), w}));
  }
}

TEST_CASE("logical and bitwise ops and their operators", "[math]") {
  Tensor p = from_vector<bool>({true, true, false, false}, {4}), q = from_vector<bool>({true, false, true, false}, {4});
  REQUIRE((p & q).to_vector<bool>() == std::vector<bool>{true, false, false, false});
  REQUIRE((p | q).to_vector<bool>() == std::vector<bool>{true, true, true, false});
  REQUIRE((p ^ q).to_vector<bool>() == std::vector<bool>{false, true, true, false});
  REQUIRE((~p).to_vector<bool>() == std::vector<bool>{false, false, true, true});
  REQUIRE((!p).to_vector<bool>() == std::vector<bool>{false, false, true, true});
  Tensor i = from_vector<int64_t>({12, 10, -1}, {3}), j = from_vector<int64_t>({10, 6, 5}, {3});
  REQUIRE((i & j).to_vector<int64_t>() == std::vector<int64_t>{12 & 10, 10 & 6, -1 & 5});
  REQUIRE((i | j).to_vector<int64_t>() == std::vector<int64_t>{12 | 10, 10 | 6, -1 | 5});
  REQUIRE((i ^ 3).to_vector<int64_t>() == std::vector<int64_t>{12 ^ 3, 10 ^ 3, -1 ^ 3});
  REQUIRE((~i).to_vector<int64_t>() == std::vector<int64_t>{~12, ~10, ~int64_t{-1}});
  // torch's promotion: bool & int is int; bool & True stays bool.
  REQUIRE((p & 1).dtype() == kInt64);
  REQUIRE((p & true).dtype() == kBool);
  // Logical ops read any dtype as truth and broadcast.
  Tensor f = tensor({2, 0}, {2});
  REQUIRE(logical_and(f, from_vector<int64_t>({1, 1}, {2})).to_vector<bool>() == std::vector<bool>{true, false});
  REQUIRE(logical_xor(f, tensor({0}, {1})).to_vector<bool>() == std::vector<bool>{true, false});
  REQUIRE((!f).to_vector<bool>() == std::vector<bool>{false, true});
  WEFT_REQUIRE_ERROR(bitwise_and(f, f), Contains("bitwise_and") && Contains("float32"));
  WEFT_REQUIRE_ERROR(~f, Contains("bitwise_not") && Contains("float32"));
  WEFT_REQUIRE_ERROR(i & 1.5, Contains("bitwise_and") && Contains("1.5"));
  WEFT_REQUIRE_ERROR(logical_or(zeros({2}), zeros({3})), Contains("logical_or"));
}

TEST_CASE("comparison and in-place operators", "[math]") {
  Tensor a = tensor({1, 2, 3}, {3}), b = tensor({3, 2, 1}, {3});
  REQUIRE((a == b).to_vector<bool>() == std::vector<bool>{false, true, false});
  REQUIRE((a != b).to_vector<bool>() == std::vector<bool>{true, false, true});
  REQUIRE((a < b).to_vector<bool>() == std::vector<bool>{true, false, false});
  REQUIRE((a <= 2).to_vector<bool>() == std::vector<bool>{true, true, false});
  REQUIRE((2 < a).to_vector<bool>() == std::vector<bool>{false, false, true});
  REQUIRE((2 >= a).to_vector<bool>() == std::vector<bool>{true, true, false});
  REQUIRE((a > b).to_vector<bool>() == std::vector<bool>{false, false, true});
  REQUIRE((1 == a).to_vector<bool>() == std::vector<bool>{true, false, false});

  Tensor x = tensor({1, 2}, {2});
  x += tensor({10, 20}, {2});
  x -= 1;
  x *= 2;
  x /= tensor({2, 4}, {2});
  REQUIRE(x.to_vector<float>() == std::vector<float>{10, 10.5});
  // In place goes through autograd's version check: a tensor saved for backward and then changed
  // makes backward fail, naming the problem.
  Tensor leaf = tensor({1, 2}, {2}, requires_grad());
  Tensor h = mul(leaf, 1.0);
  Tensor sq = mul(h, h);
  h += 1;
  WEFT_REQUIRE_ERROR(sum(sq).backward(), Contains("modified by an inplace operation"));
}

TEST_CASE("result_type: 0-dim tensors count only in a higher category", "[math]") {
  Tensor f32 = zeros({2}), f64 = zeros({2}, kFloat64), i64 = zeros({2}, kInt64), b = zeros({2}, kBool);
  Tensor f64_0 = zeros({}, kFloat64), f32_0 = zeros({}), i64_0 = zeros({}, kInt64), b_0 = zeros({}, kBool);
  // Hand-worked from torch's rules (and checked against torch 1.13 when written).
  CHECK(result_type(f32, f64_0) == kFloat32);  // same category: the dimensioned operand wins
  CHECK(result_type(f64_0, f32) == kFloat32);
  CHECK(result_type(i64, f64_0) == kFloat64);  // higher category: it counts
  CHECK(result_type(i64, f32_0) == kFloat32);
  CHECK(result_type(b, i64_0) == kInt64);
  CHECK(result_type(i64, b_0) == kInt64);
  CHECK(result_type(f32_0, f64_0) == kFloat64);  // both 0-dim: plain promotion
  CHECK(result_type(f32, f64) == kFloat64);
  CHECK(add(f32, f64_0).dtype() == kFloat32);
  CHECK(mul(f64_0, f32).dtype() == kFloat32);
  CHECK((f32 < f64_0).dtype() == kBool);
  CHECK(where(zeros({2}, kBool), f32, f64_0).dtype() == kFloat32);
  CHECK(add(i64, f64_0).dtype() == kFloat64);
  // Values: the float64 0-dim operand is rounded to float32 first, as torch computes.
  Tensor third = full({}, 1.0 / 3.0, kFloat64);
  CHECK(add(zeros({1}), third).to_vector<float>()[0] == static_cast<float>(1.0 / 3.0));
}

TEST_CASE("clamp with min > max gives max everywhere, as torch", "[math]") {
  Tensor x = tensor({-2, 0.5, 3, NAN}, {4}, kFloat64);
  auto y = clamp(x, 1.0, 0.0).to_vector<double>();
  CHECK(y[0] == 0);
  CHECK(y[1] == 0);
  CHECK(y[2] == 0);
  CHECK(std::isnan(y[3]));
  REQUIRE(clamp(from_vector<int64_t>({-5, 5}, {2}), 3, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  x.requires_grad_();
  sum(clamp(x, 1.0, 0.0)).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 0});
}

TEST_CASE("norm for every p", "[math][grad]") {
  Tensor x = tensor({1, -3, 0, 2, -0.5, 4}, {2, 3}, kFloat64);
  auto norm_of = [&](double p) { return norm(x, p).item<double>(); };
  CHECK(norm_of(INFINITY) == 4);
  CHECK(norm_of(-INFINITY) == 0);
  CHECK(norm_of(0) == 5);
  CHECK(norm_of(1) == 10.5);
  CHECK(norm_of(3) == Approx(std::cbrt(1 + 27 + 8 + 0.125 + 64)).epsilon(1e-14));
  CHECK(norm(x, "fro").item<double>() == Approx(std::sqrt(1 + 9 + 4 + 0.25 + 16)).epsilon(1e-14));
  Tensor y = tensor({1, -3, 2, -0.5}, {2, 2}, kFloat64);
  CHECK(norm(y, -1.0).item<double>() == Approx(1.0 / (1 + 1.0 / 3 + 0.5 + 2)).epsilon(1e-14));
  REQUIRE(norm(x, INFINITY, {1}).to_vector<double>() == std::vector<double>{3, 4});
  REQUIRE(norm(x, -INFINITY, {0}, true).to_vector<double>() == std::vector<double>{1, 0.5, 0});
  WEFT_REQUIRE_ERROR(norm(x, "nuc"), Contains("norm") && Contains("nuc"));
  REQUIRE(norm(zeros({0, 2}), INFINITY, {0}).to_vector<double>() == std::vector<double>{0, 0});  // as torch

  SECTION("gradients") {
    Tensor v = tensor({1.3, -3.1, 0.7, 2.2, -0.4, 4.1}, {2, 3}, kFloat64);
    v.requires_grad_();
    for (double p : {double(INFINITY), -double(INFINITY), 3.0, 0.5, -1.5, 0.0}) {
      INFO("p = " << p);
      CHECK(autograd::gradcheck([p](auto& in) { return norm(in[0], p, {1}); }, {v}));
    }
    // Ties share the gradient of an inf-norm evenly, as torch's norm_backward.
    Tensor t = tensor({-2, 2, 1}, {3}, kFloat64);
    t.requires_grad_();
    norm(t, INFINITY).backward();
    REQUIRE(t.grad().to_vector<double>() == std::vector<double>{-0.5, 0.5, 0});
  }
}

TEST_CASE("cross_entropy with probability targets", "[math][grad]") {
  Tensor x = uniform({3, 4, 2}, -2, 2, kFloat64, 41);
  Tensor t = softmax(uniform({3, 4, 2}, -2, 2, kFloat64, 42), 1);
  auto reference = [&](const Tensor& target, const std::string& reduction) {
    Tensor per = neg(sum(mul(target, log_softmax(x, 1)), {1}));
    return reduction == "none" ? per : reduction == "sum" ? sum(per) : mean(per);
  };
  for (const char* red : {"none", "sum", "mean"}) {
    INFO(red);
    test::require_within(cross_entropy(x, t, red).to_vector<double>(), reference(t, red).to_vector<double>(),
                         [](size_t) { return 1e-14; });
  }
  Tensor smoothed = add(mul(t, 0.8), 0.2 / 4);
  CHECK(cross_entropy(x, t, "mean", -100, 0.2).item<double>() ==
        Approx(reference(smoothed, "mean").item<double>()).epsilon(1e-14));
  // A 1-d input is one row of classes.
  Tensor x1 = tensor({0.5, -1, 2}, {3}, kFloat64), t1 = tensor({0.2, 0.3, 0.5}, {3}, kFloat64);
  CHECK(cross_entropy(x1, t1).item<double>() ==
        Approx(-sum(mul(t1, log_softmax(x1, 0))).item<double>()).epsilon(1e-14));
  WEFT_REQUIRE_ERROR(cross_entropy(x, softmax(zeros({3, 3, 2}, kFloat64), 1)),
                     Contains("cross_entropy") && Contains("[3, 4, 2]") && Contains("[3, 3, 2]"));
  SECTION("gradcheck, logits and targets") {
    Tensor xs = uniform({2, 3}, -2, 2, kFloat64, 43), ts = softmax(uniform({2, 3}, -2, 2, kFloat64, 44), 1);
    xs.requires_grad_(), ts.requires_grad_();
    CHECK(autograd::gradcheck([](auto& in) { return cross_entropy(in[0], in[1], "mean", -100, 0.1); }, {xs, ts}));
  }
}

TEST_CASE("int overloads: x.sum(1), mean(x, -1, true)", "[math]") {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
  REQUIRE(x.sum(1).to_vector<double>() == std::vector<double>{6, 15});
  REQUIRE(x.sum(0, true).shape() == Shape{1, 3});
  REQUIRE(sum(x, -1).to_vector<double>() == std::vector<double>{6, 15});
  REQUIRE(mean(x, -1, true).to_vector<double>() == std::vector<double>{2, 5});
  REQUIRE(x.mean(0).to_vector<double>() == std::vector<double>{2.5, 3.5, 4.5});
  // Braces still name a list of dims, and {} still means every dim.
  REQUIRE(x.sum({}).item<double>() == 21);
  REQUIRE(x.sum({0, 1}).item<double>() == 21);
}
