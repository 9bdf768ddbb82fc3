// test_unary: elementwise unary ops against std:: reference loops, dtype rules, strided and empty
// inputs, errors, gradcheck.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "autograd/gradcheck.h"
#include "framework/copy.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "kernels/cpu_isa.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

double ref_gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double ref_gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

struct UnaryCase {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  bool positive_only;  // domain (0.2, 3) instead of (-3, 3)
};

std::vector<UnaryCase> cases() {
  return {
      {"neg", [](auto& x) { return neg(x); }, [](double v) { return -v; }, false},
      {"abs", [](auto& x) { return abs(x); }, [](double v) { return std::fabs(v); }, false},
      {"exp", [](auto& x) { return exp(x); }, [](double v) { return std::exp(v); }, false},
      {"log", [](auto& x) { return log(x); }, [](double v) { return std::log(v); }, true},
      {"sqrt", [](auto& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, true},
      {"rsqrt", [](auto& x) { return rsqrt(x); }, [](double v) { return 1 / std::sqrt(v); }, true},
      {"sin", [](auto& x) { return sin(x); }, [](double v) { return std::sin(v); }, false},
      {"cos", [](auto& x) { return cos(x); }, [](double v) { return std::cos(v); }, false},
      {"tanh", [](auto& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, false},
      {"sigmoid", [](auto& x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); }, false},
      {"relu", [](auto& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0; }, false},
      {"gelu", [](auto& x) { return gelu(x); }, ref_gelu, false},
      {"gelu tanh", [](auto& x) { return gelu(x, "tanh"); }, ref_gelu_tanh, false},
      {"silu", [](auto& x) { return silu(x); }, [](double v) { return v / (1 + std::exp(-v)); }, false},
      {"reciprocal", [](auto& x) { return reciprocal(x); }, [](double v) { return 1 / v; }, true},
      {"pow 3", [](auto& x) { return pow(x, 3); }, [](double v) { return v * v * v; }, false},
      {"pow 2.5", [](auto& x) { return pow(x, 2.5); }, [](double v) { return std::pow(v, 2.5); }, true},
      {"pow -1.5", [](auto& x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); }, true},
      {"clamp", [](auto& x) { return clamp(x, -0.5, 1.0); }, [](double v) { return std::min(std::max(v, -0.5), 1.0); },
       false},
      {"clamp min", [](auto& x) { return clamp(x, 0.25, std::nullopt); }, [](double v) { return std::max(v, 0.25); },
       false},
      {"clamp max", [](auto& x) { return clamp(x, std::nullopt, 0.7); }, [](double v) { return std::min(v, 0.7); },
       false},
  };
}

Tensor sample(const Shape& shape, bool positive, DType dt, uint64_t seed) {
  Generator gen(seed);
  Tensor u = rand(shape, dt, &gen);
  return positive ? add(mul(u, 2.8), 0.2) : add(mul(u, 6.0), -3.0);
}

void check_values(const UnaryCase& c, const Tensor& x, double tol) {
  Tensor y = c.op(x);
  REQUIRE(y.shape() == x.shape());
  auto vx = x.to_vector<double>(), vy = y.to_vector<double>();
  for (size_t i = 0; i < vx.size(); ++i) REQUIRE(vy[i] == Approx(c.ref(vx[i])).epsilon(tol).margin(tol));
}

}  // namespace

TEST_CASE("unary ops match std:: reference loops", "[unary]") {
  for (const UnaryCase& c : cases()) {
    SECTION(c.name) {
      check_values(c, sample({5, 7}, c.positive_only, kFloat64, 1), 1e-12);
      check_values(c, sample({5, 7}, c.positive_only, kFloat32, 2), 1e-5);
      // Strided: a transposed view, and a column (stride 7) of a matrix.
      Tensor base = sample({5, 7}, c.positive_only, kFloat64, 3);
      Tensor t = detail::make_alias(base, {7, 5}, {1, 7}, 0);
      check_values(c, t, 1e-12);
      check_values(c, detail::make_alias(base, {5}, {7}, 2), 1e-12);
      // Zero-size and 0-d.
      REQUIRE(c.op(zeros({0, 4}, kFloat64)).shape() == Shape{0, 4});
      check_values(c, sample({}, c.positive_only, kFloat64, 4), 1e-12);
      // Large: the parallel path.
      check_values(c, sample({70001}, c.positive_only, kFloat32, 5), 1e-5);
    }
  }
}

TEST_CASE("unary hand-worked values and dtype rules", "[unary]") {
  Tensor i = from_vector<int64_t>({-2, 0, 3}, {3});
  REQUIRE(neg(i).dtype() == kInt64);
  REQUIRE(neg(i).to_vector<int64_t>() == std::vector<int64_t>{2, 0, -3});
  REQUIRE(abs(i).to_vector<int64_t>() == std::vector<int64_t>{2, 0, 3});
  REQUIRE(relu(i).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 3});
  REQUIRE(sign(i).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 1});
  REQUIRE(sign(tensor({-0.5, 0, 2})).to_vector<float>() == std::vector<float>{-1, 0, 1});
  REQUIRE(clamp(i, -1, 2).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 2});
  REQUIRE(clamp(i, -1.5, std::nullopt).dtype() == kFloat32);
  REQUIRE(pow(i, 2).to_vector<int64_t>() == std::vector<int64_t>{4, 0, 9});
  REQUIRE(pow(i, 2.0).dtype() == kFloat32);
  REQUIRE(exp(i).dtype() == kFloat32);
  REQUIRE(exp(from_vector<int64_t>({0, 1}, {2})).to_vector<float>() == std::vector<float>{1, std::exp(1.0f)});
  REQUIRE(sqrt(from_vector<bool>({true, false}, {2})).to_vector<float>() == std::vector<float>{1, 0});
  REQUIRE(sigmoid(tensor({0})).item<float>() == 0.5f);
  REQUIRE(relu(tensor({NAN})).to_vector<float>()[0] != 0.0f);  // NaN passes through relu
  REQUIRE(gelu(tensor({0}, {}, kFloat64)).item<double>() == 0.0);
  REQUIRE(sign(from_vector<bool>({true, false}, {2})).dtype() == kBool);
}

TEST_CASE("unary errors", "[unary]") {
  Tensor b = from_vector<bool>({true}, {1});
  REQUIRE_THROWS_AS(neg(b), weft::Error);
  WEFT_REQUIRE_ERROR(neg(b), Contains("neg") && Contains("bool"));
  WEFT_REQUIRE_ERROR(relu(b), Contains("relu"));
  WEFT_REQUIRE_ERROR(gelu(tensor({1}), "fast"), Contains("gelu") && Contains("approximate"));
  WEFT_REQUIRE_ERROR(clamp(tensor({1}), std::nullopt, std::nullopt), Contains("clamp"));
  WEFT_REQUIRE_ERROR(pow(from_vector<int64_t>({2}, {1}), -1), Contains("negative integer powers"));
  WEFT_REQUIRE_ERROR(exp(Tensor()), Contains("exp"));
}

TEST_CASE("unary gradcheck", "[unary][grad]") {
  for (const UnaryCase& c : cases()) {
    SECTION(c.name) {
      Tensor x = sample({3, 4}, c.positive_only, kFloat64, 11);
      if (c.name.rfind("clamp", 0) == 0 || c.name == "relu" || c.name == "abs") {
        // Keep away from the kinks, where the finite difference straddles two slopes.
        x = tensor({-2.1, -0.9, -0.3, 0.2, 0.6, 1.7, 2.4, -1.3, 0.45, 0.8, -0.1, 1.2}, {3, 4}, kFloat64);
      }
      x.requires_grad_();
      REQUIRE(autograd::gradcheck([&](auto& v) { return c.op(v[0]); }, {x}));
    }
  }
  SECTION("sign has a zero gradient") {
    Tensor x = tensor({-1, 2}, {2}, kFloat64);
    x.requires_grad_();
    Tensor y = sign(x);
    REQUIRE(y.requires_grad());
    sum(mul(y, 3.0)).backward();
    REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 0});
  }
  SECTION("hand-worked: d/dx exp(x) at 0 and relu at -1, 2") {
    Tensor x = tensor({0, -1, 2}, {3}, requires_grad());
    sum(add(exp(x), relu(x))).backward();
    REQUIRE(x.grad().to_vector<float>() == std::vector<float>{1 + 0, std::exp(-1.0f), std::exp(2.0f) + 1});
  }
}

TEST_CASE("clamp passes no gradient through NaN", "[unary][grad]") {
  // torch's clamp_backward masks with (x >= min) & (x <= max), which is false at NaN; the forward
  // value stays NaN.
  Tensor x = tensor({NAN, 0.5, 2, -1}, {4}, kFloat64);
  x.requires_grad_();
  Tensor y = clamp(x, 0.0, 1.0);
  CHECK(std::isnan(y.to_vector<double>()[0]));
  sum(y).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  Tensor lo = tensor({NAN, 0.5, 2, -1}, {4}, kFloat64), hi = tensor({NAN, 0.5, 2, -1}, {4}, kFloat64);
  lo.requires_grad_(), hi.requires_grad_();
  sum(clamp(lo, 0.0, std::nullopt)).backward();
  sum(clamp(hi, std::nullopt, 1.0)).backward();
  CHECK(lo.grad().to_vector<double>() == std::vector<double>{0, 1, 1, 0});
  CHECK(hi.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 1});
  SECTION("clamp_ masks the same way, from the values before it clamps them") {
    Tensor leaf = tensor({NAN, 0.5, 2, -1}, {4}, kFloat64);
    leaf.requires_grad_();
    Tensor z = mul(leaf, 1.0);  // in-place ops need a non-leaf
    z.clamp_(0.0, 1.0);
    CHECK(std::isnan(z.to_vector<double>()[0]));
    sum(z).backward();
    CHECK(leaf.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  }
}

// float32 GELU has its own vectorised erfc/exp (kernels/elementwise.cpp): check it against float64
// over a wide range, tails included, on the contiguous (span) path and the strided (per-element) path,
// forward and backward.
TEST_CASE("float32 gelu and its gradient match float64 across the range", "[unary][grad]") {
  const int64_t n = 40001;  // above the parallel grain, odd: the simd loops' remainders run too
  std::vector<double> xs(n);
  for (int64_t i = 0; i < n; ++i) xs[i] = -12.0 + 24.0 * static_cast<double>(i) / (n - 1);
  Tensor x64 = from_vector<double>(xs, {n});
  Tensor x32 = x64.to(kFloat32);
  auto ref = [](double v) { return 0.5 * v * std::erfc(-v / std::sqrt(2.0)); };
  auto ref_grad = [](double v) {
    return 0.5 * std::erfc(-v / std::sqrt(2.0)) + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
  };
  // Relative: a few float ulps, widened by x^2 in the tails, where exp(-x^2 / 2) turns the rounding of
  // x / sqrt2 in float into a relative error ~ x^2 * 6e-8. Absolute 1e-7: the gradient crosses zero.
  auto check = [&](const Tensor& x, const std::vector<float>& y, auto f, double abs_tol) {
    auto v = x.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) {
      double want = f(v[i]);
      INFO("x = " << v[i] << ", got " << y[i] << ", want " << want);
      REQUIRE(std::fabs(y[i] - want) <= (1e-6 + 2e-7 * v[i] * v[i]) * std::fabs(want) + abs_tol);
    }
  };
  SECTION("contiguous") {
    Tensor x = x32.detach().requires_grad_();
    Tensor y = gelu(x);
    check(x, y.to_vector<float>(), ref, 0.0);
    sum(y).backward();
    check(x, x.grad().to_vector<float>(), ref_grad, 1e-7);
  }
  SECTION("strided") {
    Tensor base = stack({x32, x32}, 1);  // [n, 2]: column 0 read with stride 2
    Tensor x = detail::make_alias(base, {n}, {2}, 0).detach().requires_grad_();
    Tensor y = gelu(x);
    check(x, y.to_vector<float>(), ref, 0.0);
    sum(y).backward();
    check(x, x.grad().to_vector<float>(), ref_grad, 1e-7);
  }
}

// float32 exp, tanh, sigmoid, silu (and silu's gradient) use the polynomials of kernels/vector_math.h:
// check them against float64 std:: over the whole float range, in float ulps at the reference value.
namespace {

// |got - want| in units of the float spacing at want (2^-149 in the denormal range, where it stops
// shrinking). NaN and infinite references must be matched exactly.
double ulp_error(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : INFINITY;
  float wf = static_cast<float>(want);
  if (std::isinf(wf) || std::isinf(got)) return got == wf ? 0 : INFINITY;
  double a = std::fabs(want);
  double ulp = a < FLT_MIN ? std::ldexp(1.0, -149) : std::ldexp(1.0, std::ilogb(a) - 23);
  return std::fabs(got - want) / ulp;
}

std::vector<float> wide_grid() {
  std::vector<float> v;
  for (int i = 0; i <= 30000; ++i) v.push_back(-110.0f + 220.0f * static_cast<float>(i) / 30000);
  for (int i = 0; i < 2000; ++i) {  // log-spaced magnitudes, denormals to FLT_MAX
    float m = static_cast<float>(std::pow(10.0, -45.0 + 83.5 * i / 1999.0));
    v.push_back(m);
    v.push_back(-m);
  }
  for (float s : {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-40f, -1e-40f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, INFINITY,
                  -INFINITY, NAN, 100.0f, -100.0f, 88.72f, 88.73f, -87.5f, -103.9f, -104.5f, 0.625f, -0.625f,
                  std::nextafter(0.625f, 0.0f), std::nextafter(-0.625f, 0.0f), 9.0f, -9.0f})
    v.push_back(s);
  return v;
}

struct F32Case {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double max_ulps;
};

double ref_sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

void check_f32(const F32Case& c, const Tensor& x) {
  auto vx = x.to_vector<float>(), vy = c.op(x).to_vector<float>();
  for (size_t i = 0; i < vx.size(); ++i) {
    double want = c.ref(vx[i]), err = ulp_error(vy[i], want);
    INFO(c.name << "(" << vx[i] << ") = " << vy[i] << ", want " << want << ", " << err << " ulps");
    REQUIRE(err <= c.max_ulps);
  }
}

}  // namespace

TEST_CASE("float32 exp, tanh, sigmoid, silu match float64 over the whole range", "[unary]") {
  std::vector<F32Case> ops = {
      {"exp", [](auto& x) { return exp(x); }, [](double v) { return std::exp(v); }, 2},
      {"tanh", [](auto& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, 2},
      {"sigmoid", [](auto& x) { return sigmoid(x); }, ref_sigmoid, 4},
      {"silu", [](auto& x) { return silu(x); }, [](double v) { return v * ref_sigmoid(v); }, 4},  // -inf: NaN
  };
  std::vector<float> grid = wide_grid();
  const int64_t n = static_cast<int64_t>(grid.size());
  REQUIRE(n % 8 != 0);  // the span kernels' tail runs too
  REQUIRE(n > 32768);   // above the parallel grain
  Tensor x = from_vector<float>(grid, {n});
  for (const F32Case& c : ops) {
    SECTION(c.name) {
      check_f32(c, x);                                                // contiguous, threads
      check_f32(c, detail::make_alias(x, {13}, {1}, n - 13));         // small: tail only + specials
      check_f32(c, detail::make_alias(stack({x, x}, 1), {n}, {2}, 0));  // strided: per-element path
    }
  }
  SECTION("special values, exactly") {
    Tensor s = tensor({INFINITY, -INFINITY, 1000.0f, -1000.0f, -0.0f});
    REQUIRE(exp(s).to_vector<float>() == std::vector<float>{INFINITY, 0, INFINITY, 0, 1});
    REQUIRE(tanh(s).to_vector<float>() == std::vector<float>{1, -1, 1, -1, 0});
    REQUIRE(std::signbit(tanh(s).to_vector<float>()[4]));
    REQUIRE(sigmoid(s).to_vector<float>() == std::vector<float>{1, 0, 1, 0, 0.5f});
    REQUIRE(std::isnan(tanh(tensor({NAN})).item<float>()));
    REQUIRE(std::isnan(exp(tensor({NAN})).item<float>()));
  }
}

// silu's float32 gradient kernel: g * s * (1 + x (1 - s)) against float64, contiguous and strided. The
// bound follows the terms: 1 + x (1 - s) cancels near x = -1.28, where the gradient crosses zero.
TEST_CASE("float32 silu gradient matches float64 over the range", "[unary][grad]") {
  std::vector<float> grid;
  for (int i = 0; i <= 4001; ++i) grid.push_back(-100.0f + 200.0f * static_cast<float>(i) / 4001);
  const int64_t n = static_cast<int64_t>(grid.size());
  Tensor x32 = from_vector<float>(grid, {n});
  auto check = [&](const Tensor& x) {
    Tensor xg = x.detach().requires_grad_();
    sum(silu(xg)).backward();
    auto v = xg.to_vector<float>(), g = xg.grad().to_vector<float>();
    for (size_t i = 0; i < v.size(); ++i) {
      double s = ref_sigmoid(v[i]), want = s * (1 + v[i] * (1 - s));
      double tol = 8 * FLT_EPSILON * (s + s * std::fabs(v[i]) * (1 - s)) +
                   (std::fabs(v[i]) + 1) * std::ldexp(1.0, -148);  // denormal results
      INFO("x = " << v[i] << ", got " << g[i] << ", want " << want);
      REQUIRE(std::fabs(g[i] - want) <= tol);
    }
  };
  check(x32);
  check(detail::make_alias(stack({x32, x32}, 1), {n}, {2}, 0));
}

// At a kink the finite difference straddles two slopes, so gradcheck can't judge it: these assert the
// one-sided choices of PyTorch's derivatives.yaml, each named next to its check, on hand-worked values.
TEST_CASE("gradients at kinks follow PyTorch's conventions", "[unary][grad]") {
  auto grad_at = [](const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& xs) {
    Tensor x = from_vector<double>(xs, {static_cast<int64_t>(xs.size())});
    x.requires_grad_();
    sum(f(x)).backward();
    return x.grad().to_vector<double>();
  };
  SECTION("relu'(0) = 0") {
    // relu: threshold_backward(grad, result, 0), which passes grad only where result > 0.
    CHECK(grad_at([](auto& x) { return relu(x); }, {-1, 0, -0.0, 2}) == std::vector<double>{0, 0, 0, 1});
  }
  SECTION("abs'(0) = sign(0) = 0") {
    // abs: grad * self.sgn(), and sgn(+-0) = 0.
    CHECK(grad_at([](auto& x) { return abs(x); }, {-2, 0, -0.0, 3}) == std::vector<double>{-1, 0, 0, 1});
  }
  SECTION("clamp at exactly a bound passes the gradient") {
    // clamp: clamp_backward, grad * ((self >= min) & (self <= max)): the bounds are inside.
    CHECK(grad_at([](auto& x) { return clamp(x, -1.0, 1.0); }, {-1.5, -1, 0, 1, 1.5}) ==
          std::vector<double>{0, 1, 1, 1, 0});
    auto clamp_min = [](auto& x) { return clamp(x, 0.5, std::nullopt); };
    auto clamp_max = [](auto& x) { return clamp(x, std::nullopt, 0.5); };
    CHECK(grad_at(clamp_min, {0, 0.5, 2}) == std::vector<double>{0, 1, 1});
    CHECK(grad_at(clamp_max, {0, 0.5, 2}) == std::vector<double>{1, 1, 0});
    // clamp_ shares clamp's rule (detail::clamp_node).
    CHECK(grad_at([](auto& x) {
      Tensor y = mul(x, 1.0);
      y.clamp_(-1.0, 1.0);
      return y;
    }, {-1.5, -1, 1, 1.5}) == std::vector<double>{0, 1, 1, 0});
  }
  SECTION("pow(x, 2) at 0 is 0") {
    // pow.Scalar: pow_backward, grad * exponent * self^(exponent - 1) (zero only for exponent 0):
    // 2 * 0^1 = 0, and 2 * 3 = 6.
    CHECK(grad_at([](auto& x) { return pow(x, 2); }, {0, 3}) == std::vector<double>{0, 6});
    CHECK(grad_at([](auto& x) { return pow(x, 2.0); }, {0, -0.0, 3}) == std::vector<double>{0, 0, 6});
  }
  SECTION("pow(x, 0.5) at 0 is +inf") {
    // The same formula: 0.5 * 0^-0.5 = 0.5 * inf; at 4, 0.5 / 2 = 0.25.
    CHECK(grad_at([](auto& x) { return pow(x, 0.5); }, {0, 4}) == std::vector<double>{INFINITY, 0.25});
  }
  SECTION("sqrt at 0 is +inf") {
    // sqrt: grad / (2 * result): 1 / (2 * 0) = inf; at 4, 1 / 4.
    CHECK(grad_at([](auto& x) { return sqrt(x); }, {0, 4}) == std::vector<double>{INFINITY, 0.25});
  }
}

// The meson suite runs this binary again under WEFT_MAX_CPU_ISA=avx2 and =baseline, so that each copy
// of the span kernels (kernels/fast_spans.cpp) is tested on any host; this checks the cap holds.
TEST_CASE("WEFT_MAX_CPU_ISA caps the kernel copies in use", "[unary]") {
  const char* cap = std::getenv("WEFT_MAX_CPU_ISA");
  const std::string name = cap ? cap : "";
  INFO("WEFT_MAX_CPU_ISA=" << name);
  if (name == "baseline") CHECK(kernels::cpu_isa() == kernels::CpuIsa::kBaseline);
  if (name == "avx2") CHECK(kernels::cpu_isa() <= kernels::CpuIsa::kAvx2);
  // Whatever copy runs, a span kernel agrees with the strided loop (the per-element path).
  Tensor x = randn({1000});
  Tensor strided = select(zeros({1000, 2}), 1, 0);  // stride 2: no span kernel
  detail::copy_into(strided, x);
  CHECK(allclose(tanh(x), tanh(strided), 1e-6, 1e-7));
}

// The activations' measured max error over a dense grid, against long double references, on the span
// kernels of whichever copy runs (this binary runs under each WEFT_MAX_CPU_ISA): tanh and sigmoid in
// float ulps at the reference, gelu and its gradient relative to the reference (the left tail included,
// where Phi(x) is tiny and 0.5 (1 + erf) would cancel), allowing the x^2 ulp widening of exp(-x^2 / 2)
// computed from a float x. The bounds sit just above the largest errors measured on the avx512 copy
// (kernels/vector_math_avx512.h: rcp14 + Newton for 1 / d, a Horner exp in the normal CDF) and the
// scalar copies (kernels/vector_math.h); the printed maxima are the measurement.
TEST_CASE("float32 tanh, sigmoid, gelu and gelu's gradient: max error over a dense grid", "[unary][accuracy]") {
  std::vector<float> grid;
  for (int64_t i = 0; i <= 400000; ++i) grid.push_back(static_cast<float>(-13.0 + 25.0 * static_cast<double>(i) / 400000));
  for (float v = 1e-30f; v < 1e-2f; v *= 1.01f) grid.push_back(v), grid.push_back(-v);  // near 0
  const int64_t n = static_cast<int64_t>(grid.size());
  Tensor x = from_vector<float>(grid, {n});
  auto ld_phi = [](long double v) { return 0.5L * std::erfc(-v / std::sqrt(2.0L)); };
  auto ld_pdf = [](long double v) { return std::exp(-0.5L * v * v) / std::sqrt(2.0L * 3.14159265358979323846264338327950288L); };
  auto ulps = [](float got, long double want) {
    long double a = std::fabs(want);
    long double ulp = a < FLT_MIN ? std::ldexp(1.0L, -149) : std::ldexp(1.0L, std::ilogb(a) - 23);
    return static_cast<double>(std::fabs(got - want) / ulp);
  };
  // Relative error over the widening (1 + x^2 / 4): 2e-7 x^2 is what the existing bound allows there.
  auto rel = [](float got, long double want, float v) {
    if (want == 0) return got == 0 ? 0.0 : INFINITY;
    return static_cast<double>(std::fabs(got - want) / std::fabs(want) / (1 + 0.25L * v * v));
  };
  const std::vector<float> th = tanh(x).to_vector<float>(), sg = sigmoid(x).to_vector<float>();
  const std::vector<float> ge = gelu(x).to_vector<float>();
  Tensor xg = x.detach().requires_grad_();
  sum(gelu(xg)).backward();
  const std::vector<float> gg = xg.grad().to_vector<float>();
  double e_tanh = 0, e_sigmoid = 0, e_gelu = 0, e_grad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const long double v = grid[i];
    e_tanh = std::max(e_tanh, ulps(th[i], std::tanh(v)));
    e_sigmoid = std::max(e_sigmoid, ulps(sg[i], 1 / (1 + std::exp(-v))));
    e_gelu = std::max(e_gelu, rel(ge[i], v * ld_phi(v), grid[i]));
    // Phi + x phi cancels where the gradient crosses zero (x ~ -0.75): the error is taken relative to
    // the size of the terms, Phi + |x| phi, the most a float evaluation can be asked for.
    const long double want = ld_phi(v) + v * ld_pdf(v), scale = ld_phi(v) + std::fabs(v) * ld_pdf(v);
    e_grad = std::max(e_grad, static_cast<double>(std::fabs(gg[i] - want) / scale / (1 + 0.25L * v * v)));
  }
  std::printf("max error (%s copy): tanh %.2f ulps, sigmoid %.2f ulps, gelu %.3g relative, its gradient %.3g "
              "relative to Phi + |x| phi (both over 1 + x^2 / 4)\n",
              kernels::cpu_isa() == kernels::CpuIsa::kAvx512 ? "avx512"
              : kernels::cpu_isa() == kernels::CpuIsa::kAvx2 ? "avx2" : "baseline",
              e_tanh, e_sigmoid, e_gelu, e_grad);
  CHECK(e_tanh <= 2);
  CHECK(e_sigmoid <= 4);
  CHECK(e_gelu <= 1e-6);  // results normal floats down to x = -13
  CHECK(e_grad <= 1e-6);
}

// gelu's far left tail, x in [-16, -12.5], where Phi(x) and the gradient fall through the denormals to
// 0 (x ~ -14), on whichever copy runs: the scalar copies once clamped exp at -87, which held Phi at
// ~1e-39 below x = -13.2 and the gradient at ~1e-37, orders of magnitude off. Allowed: a few roundings
// in the denormal range (2^-149 each, scaled by |x| <= 16) on top of a relative 1e-6 (1 + x^2 / 4),
// exp(-x^2 / 2)'s widening for a float x, as in the dense-grid case above.
TEST_CASE("float32 gelu and its gradient in the far left tail against long double", "[unary][accuracy]") {
  std::vector<float> grid;
  for (int64_t i = 0; i <= 20000; ++i) grid.push_back(static_cast<float>(-16.0 + 3.5 * static_cast<double>(i) / 20000));
  const int64_t n = static_cast<int64_t>(grid.size());
  Tensor x = from_vector<float>(grid, {n});
  Tensor xg = x.detach().requires_grad_();
  Tensor y = gelu(xg);
  sum(y).backward();
  const std::vector<float> ge = y.detach().to_vector<float>(), gg = xg.grad().to_vector<float>();
  const long double denormal = std::ldexp(1.0L, -149);
  double worst_gelu = 0, worst_grad = 0;  // in units of the allowed error
  for (int64_t i = 0; i < n; ++i) {
    const long double v = grid[i];
    const long double phi = 0.5L * std::erfc(-v / std::sqrt(2.0L));
    const long double pdf = std::exp(-0.5L * v * v) / std::sqrt(2.0L * 3.14159265358979323846264338327950288L);
    const long double want_gelu = v * phi, want_grad = phi + v * pdf;
    worst_gelu = std::max(worst_gelu, static_cast<double>(std::fabs(ge[i] - want_gelu) /
                                                          (64 * denormal + 1e-6L * (1 + 0.25L * v * v) * std::fabs(want_gelu))));
    worst_grad = std::max(worst_grad, static_cast<double>(std::fabs(gg[i] - want_grad) /
                                                          (64 * denormal + 1e-6L * (1 + 0.25L * v * v) * std::fabs(want_grad))));
  }
  INFO("worst error over the allowed: gelu " << worst_gelu << ", gradient " << worst_grad);
  CHECK(worst_gelu <= 1);
  CHECK(worst_grad <= 1);
  CHECK(ge.front() == 0.0f);  // gelu(-16) = -16 Phi(-16) ~ -1e-56: 0 in float32
}
