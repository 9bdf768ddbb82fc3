// test_binary: elementwise binary ops, operators and in-place methods: values against reference
// loops, broadcasting, strided and empty inputs, promotion, errors, gradcheck.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include <omp.h>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "kernels/threads.h"
#include "ops/unary.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

// a[i, j] for a row-major tensor of shape [rows, cols], read through broadcasting rules.
double at2(const std::vector<double>& v, const Shape& s, int64_t i, int64_t j) {
  int64_t r = s.size() == 2 ? (s[0] == 1 ? 0 : i) : 0;
  int64_t c = s.back() == 1 ? 0 : j;
  return v[r * s.back() + c];
}

// Checks op(a, b) against ref on every element of the [rows, cols] broadcast of a and b.
void check_broadcast(const std::function<Tensor(const Tensor&, const Tensor&)>& op,
                     const std::function<double(double, double)>& ref, const Tensor& a, const Tensor& b, int64_t rows,
                     int64_t cols, double tol = 1e-12) {
  Tensor y = op(a, b);
  REQUIRE(y.shape() == Shape{rows, cols});
  auto va = a.to_vector<double>(), vb = b.to_vector<double>(), vy = y.to_vector<double>();
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      REQUIRE(vy[i * cols + j] == Approx(ref(at2(va, a.shape(), i, j), at2(vb, b.shape(), i, j))).margin(tol));
}

// The transpose of a contiguous 2-D tensor as a strided view (no copy).
Tensor transposed(const Tensor& t) {
  return detail::make_alias(t, {t.shape()[1], t.shape()[0]}, {t.strides()[1], t.strides()[0]}, 0);
}

Tensor leaf(const Shape& shape, double lo = -2, double hi = 2, uint64_t seed = 1) {
  Generator gen(seed);
  Tensor t = rand(shape, kFloat64, &gen);
  Tensor scaled = add(mul(t, hi - lo), lo);
  scaled.requires_grad_();
  return scaled;
}

}  // namespace

TEST_CASE("binary ops match reference loops with broadcasting", "[binary]") {
  Generator gen(7);
  Tensor a = add(rand({3, 4}, kFloat64, &gen), 0.5), col = add(rand({3, 1}, kFloat64, &gen), 0.5);
  Tensor row = add(rand({4}, kFloat64, &gen), 0.5);
  using F = std::function<double(double, double)>;
  std::vector<std::tuple<std::string, std::function<Tensor(const Tensor&, const Tensor&)>, F>> ops = {
      {"add", [](auto& x, auto& y) { return add(x, y); }, [](double x, double y) { return x + y; }},
      {"add alpha", [](auto& x, auto& y) { return add(x, y, 2.5); }, [](double x, double y) { return x + 2.5 * y; }},
      {"sub", [](auto& x, auto& y) { return sub(x, y); }, [](double x, double y) { return x - y; }},
      {"mul", [](auto& x, auto& y) { return mul(x, y); }, [](double x, double y) { return x * y; }},
      {"div", [](auto& x, auto& y) { return div(x, y); }, [](double x, double y) { return x / y; }},
      {"pow", [](auto& x, auto& y) { return pow(x, y); }, [](double x, double y) { return std::pow(x, y); }},
      {"maximum", [](auto& x, auto& y) { return maximum(x, y); }, [](double x, double y) { return std::max(x, y); }},
      {"minimum", [](auto& x, auto& y) { return minimum(x, y); }, [](double x, double y) { return std::min(x, y); }},
      {"gt", [](auto& x, auto& y) { return gt(x, y); }, [](double x, double y) { return double(x > y); }},
      {"le", [](auto& x, auto& y) { return le(x, y); }, [](double x, double y) { return double(x <= y); }},
  };
  for (auto& [name, op, ref] : ops) {
    SECTION(name) {
      check_broadcast(op, ref, a, a, 3, 4);
      check_broadcast(op, ref, a, col, 3, 4);
      check_broadcast(op, ref, row, a, 3, 4);
      check_broadcast(op, ref, col, row, 3, 4);
      // Strided: the transpose of a [4, 3] tensor reads as [3, 4].
      Tensor at = transposed(add(rand({4, 3}, kFloat64, &gen), 0.5));
      REQUIRE_FALSE(at.is_contiguous());
      check_broadcast(op, ref, at, a, 3, 4);
      check_broadcast(op, ref, a, at, 3, 4);
    }
  }
}

TEST_CASE("binary hand-worked values, comparisons and scalars", "[binary]") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2}), b = tensor({4, 3, 2, 1}, {2, 2});
  REQUIRE(add(a, b).to_vector<float>() == std::vector<float>{5, 5, 5, 5});
  REQUIRE(sub(a, b, 2).to_vector<float>() == std::vector<float>{-7, -4, -1, 2});
  REQUIRE(div(a, b).to_vector<float>() == std::vector<float>{0.25f, 2.f / 3.f, 1.5f, 4});
  REQUIRE(pow(a, b).to_vector<float>() == std::vector<float>{1, 8, 9, 4});
  REQUIRE(eq(a, b).to_vector<bool>() == std::vector<bool>{false, false, false, false});
  REQUIRE(ne(a, 2).to_vector<bool>() == std::vector<bool>{true, false, true, true});
  REQUIRE(lt(a, b).to_vector<bool>() == std::vector<bool>{true, true, false, false});
  REQUIRE(ge(a, 3.0).to_vector<bool>() == std::vector<bool>{false, false, true, true});
  REQUIRE(add(a, 1).to_vector<float>() == std::vector<float>{2, 3, 4, 5});
  REQUIRE(sub(a, 1.5).to_vector<float>() == std::vector<float>{-0.5f, 0.5f, 1.5f, 2.5f});
  REQUIRE(mul(a, 3).to_vector<float>() == std::vector<float>{3, 6, 9, 12});
  REQUIRE(div(a, 2).to_vector<float>() == std::vector<float>{0.5f, 1, 1.5f, 2});
  SECTION("operators") {
    REQUIRE((a + b).to_vector<float>() == std::vector<float>{5, 5, 5, 5});
    REQUIRE((a - b).to_vector<float>() == std::vector<float>{-3, -1, 1, 3});
    REQUIRE((a * b).to_vector<float>() == std::vector<float>{4, 6, 6, 4});
    REQUIRE((a / b).to_vector<float>() == div(a, b).to_vector<float>());
    REQUIRE((10 - a).to_vector<float>() == std::vector<float>{9, 8, 7, 6});
    REQUIRE((12 / a).to_vector<float>() == std::vector<float>{12, 6, 4, 3});
    REQUIRE((2 * a + 1).to_vector<float>() == std::vector<float>{3, 5, 7, 9});
    REQUIRE((1 + a - 1).to_vector<float>() == a.to_vector<float>());
    REQUIRE((-a).to_vector<float>() == std::vector<float>{-1, -2, -3, -4});
  }
  SECTION("maximum/minimum propagate NaN") {
    Tensor n = tensor({NAN, 1}, {2});
    REQUIRE(std::isnan(maximum(n, tensor({0, 0}, {2})).to_vector<float>()[0]));
    REQUIRE(std::isnan(minimum(tensor({0, 0}, {2}), n).to_vector<float>()[0]));
  }
  SECTION("where and masked_fill") {
    Tensor cond = from_vector<bool>({true, false, false, true}, {2, 2});
    REQUIRE(where(cond, a, b).to_vector<float>() == std::vector<float>{1, 3, 2, 4});
    Tensor cond_row = from_vector<bool>({false, true}, {2});
    REQUIRE(where(cond_row, a, scalar_tensor(0.0)).to_vector<float>() == std::vector<float>{0, 2, 0, 4});
    REQUIRE(masked_fill(a, cond_row, -1).to_vector<float>() == std::vector<float>{1, -1, 3, -1});
    WEFT_REQUIRE_ERROR(where(a, a, b), Contains("where") && Contains("bool"));
    WEFT_REQUIRE_ERROR(masked_fill(a, from_vector<bool>({true, false, true}, {3}), 0), Contains("masked_fill"));
  }
}

TEST_CASE("binary type promotion", "[binary]") {
  Tensor i = from_vector<int64_t>({1, 2, 3}, {3}), f = tensor({0.5, 1, 1.5}, {3});
  Tensor d = tensor({1, 1, 1}, {3}, kFloat64), bt = from_vector<bool>({true, false, true}, {3});
  REQUIRE(add(i, i).dtype() == kInt64);
  REQUIRE(add(i, i).to_vector<int64_t>() == std::vector<int64_t>{2, 4, 6});
  REQUIRE(add(i, f).dtype() == kFloat32);
  REQUIRE(mul(f, d).dtype() == kFloat64);
  REQUIRE(div(i, i).dtype() == kFloat32);
  REQUIRE(div(from_vector<int64_t>({7}, {1}), from_vector<int64_t>({2}, {1})).item<float>() == 3.5f);
  REQUIRE(add(i, 2.5).dtype() == kFloat32);
  REQUIRE(add(i, 2).dtype() == kInt64);
  REQUIRE(add(bt, 1).dtype() == kInt64);
  REQUIRE(add(bt, bt).dtype() == kBool);
  REQUIRE(add(bt, bt).to_vector<bool>() == std::vector<bool>{true, false, true});
  REQUIRE(mul(bt, bt).to_vector<bool>() == std::vector<bool>{true, false, true});
  REQUIRE(add(bt, i).dtype() == kInt64);
  REQUIRE(gt(i, f).dtype() == kBool);
  REQUIRE(gt(i, f).to_vector<bool>() == std::vector<bool>{true, true, true});
  REQUIRE(pow(i, i).to_vector<int64_t>() == std::vector<int64_t>{1, 4, 27});
  REQUIRE(maximum(i, f).dtype() == kFloat32);
  REQUIRE(where(from_vector<bool>({true, false, true}, {3}), i, d).dtype() == kFloat64);
}

TEST_CASE("binary errors and edge shapes", "[binary]") {
  Tensor a = zeros({2, 3}), b = zeros({4});
  REQUIRE_THROWS_AS(add(a, b), weft::Error);
  WEFT_REQUIRE_ERROR(add(a, b), Contains("add"));
  WEFT_REQUIRE_ERROR(mul(a, zeros({3, 3})), Contains("mul"));
  WEFT_REQUIRE_ERROR(sub(from_vector<bool>({true}, {1}), from_vector<bool>({true}, {1})), Contains("bool"));
  WEFT_REQUIRE_ERROR(add(from_vector<int64_t>({1}, {1}), from_vector<int64_t>({1}, {1}), 0.5), Contains("alpha"));
  REQUIRE_THROWS_AS(add(Tensor(), a), weft::Error);
  SECTION("zero-size") {
    Tensor e = zeros({0, 3});
    REQUIRE(add(e, zeros({3})).shape() == Shape{0, 3});
    REQUIRE(mul(e, 2).numel() == 0);
    REQUIRE(lt(e, zeros({1, 3})).shape() == Shape{0, 3});
  }
  SECTION("0-d with n-d") {
    Tensor s = scalar_tensor(2.0);
    REQUIRE(mul(s, tensor({1, 2}, {2})).to_vector<float>() == std::vector<float>{2, 4});
    REQUIRE(add(s, s).dim() == 0);
  }
}

TEST_CASE("binary large inputs take the parallel path and agree with a loop", "[binary]") {
  Generator gen(3);
  const int64_t n = 300001;  // above the parallel grain, odd-sized
  Tensor a = randn({n}, kFloat32, &gen), b = randn({n}, kFloat32, &gen);
  auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  auto vs = add(a, b).to_vector<float>(), vm = mul(a, 3.0f).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    REQUIRE(vs[i] == va[i] + vb[i]);
    REQUIRE(vm[i] == va[i] * 3.0f);
  }
  // Broadcast rows: [n/1000ish, 7] + [7] through the strided path, split by rows.
  Tensor m = randn({50000, 7}, kFloat64, &gen), r = randn({7}, kFloat64, &gen);
  auto vmat = m.to_vector<double>(), vr = r.to_vector<double>(), out = sub(m, r).to_vector<double>();
  for (int64_t i = 0; i < 50000 * 7; ++i) REQUIRE(out[i] == vmat[i] - vr[i % 7]);
}

TEST_CASE("binary gradcheck, including broadcasting", "[binary][grad]") {
  Tensor a = leaf({3, 4}, 0.5, 2, 1), col = leaf({3, 1}, 0.5, 2, 2), row = leaf({4}, 0.5, 2, 3);
  Tensor c = leaf({3, 4}, 0.5, 2, 4);
  using Fn = std::function<Tensor(const autograd::variable_list&)>;
  std::vector<std::pair<std::string, Fn>> fns = {
      {"add", [](auto& v) { return add(v[0], v[1], 2.0); }},
      {"sub", [](auto& v) { return sub(v[0], v[1], 0.5); }},
      {"mul", [](auto& v) { return mul(v[0], v[1]); }},
      {"div", [](auto& v) { return div(v[0], v[1]); }},
      {"pow", [](auto& v) { return pow(v[0], v[1]); }},
      {"maximum", [](auto& v) { return maximum(v[0], v[1]); }},
      {"minimum", [](auto& v) { return minimum(v[0], v[1]); }},
      {"where", [](auto& v) { return where(gt(v[0], 1.2), v[0], v[1]); }},
      {"scalars", [](auto& v) { return div(sub(mul(add(v[0], 1), 3), 2), 4) + v[1] * 0; }},
      {"operators", [](auto& v) { return (2 - v[0]) * v[1] / (1 + v[0]) - -v[1]; }},
  };
  for (auto& [name, fn] : fns) {
    SECTION(name) {
      REQUIRE(autograd::gradcheck(fn, {a, c}));
      REQUIRE(autograd::gradcheck(fn, {a, col}));
      REQUIRE(autograd::gradcheck(fn, {row, a}));
    }
  }
  SECTION("masked_fill") {
    Tensor mask = from_vector<bool>({true, false, false, true}, {4});
    REQUIRE(autograd::gradcheck([&](auto& v) { return masked_fill(v[0], mask, 3.0); }, {a}));
  }
  SECTION("maximum splits ties evenly") {
    Tensor x = tensor({1, 2}, {2}, kFloat64), y = tensor({1, 3}, {2}, kFloat64);
    x.requires_grad_(), y.requires_grad_();
    sum(maximum(x, y)).backward();
    REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0.5, 0});
    REQUIRE(y.grad().to_vector<double>() == std::vector<double>{0.5, 1});
  }
  SECTION("broadcast gradient is reduced to the input shape") {
    Tensor x = ones({3, 1}, requires_grad()), y = ones({4}, requires_grad());
    sum(mul(x, y)).backward();
    REQUIRE(x.grad().shape() == Shape{3, 1});
    REQUIRE(x.grad().to_vector<float>() == std::vector<float>{4, 4, 4});
    REQUIRE(y.grad().to_vector<float>() == std::vector<float>{3, 3, 3, 3});
  }
}

TEST_CASE("pow(tensor, tensor) gradients where the base or the exponent is 0", "[binary][grad]") {
  // torch's pow_backward_self is 0 wherever the exponent is 0 (exponent * base^(exponent-1) would be
  // 0 * inf at base 0), and pow_backward_exponent is 0 where base == 0 and exponent >= 0.
  Tensor x = tensor({0, 0, 2, 3, 0}, {5}, kFloat64), e = tensor({0, 2, 0, 2, 1}, {5}, kFloat64);
  x.requires_grad_(), e.requires_grad_();
  Tensor y = pow(x, e);
  CHECK(y.to_vector<double>() == std::vector<double>{1, 0, 1, 9, 0});
  sum(y).backward();
  // d/dx = e x^(e-1): 0 (e = 0), 2*0, 0 (e = 0), 2*3, 1*0^0 = 1.
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 6, 1});
  // d/de = x^e log x: 0, 0, 2^0 log 2, 9 log 3, 0 (base 0, exponent >= 0).
  auto ge = e.grad().to_vector<double>();
  CHECK(ge[0] == 0);
  CHECK(ge[1] == 0);
  CHECK(ge[2] == Approx(std::log(2.0)));
  CHECK(ge[3] == Approx(9 * std::log(3.0)));
  CHECK(ge[4] == 0);
  SECTION("a broadcast zero exponent") {
    Tensor b = tensor({0, 1.5}, {2}, kFloat64), z = zeros({1}, kFloat64);
    b.requires_grad_();
    sum(pow(b, z)).backward();
    CHECK(b.grad().to_vector<double>() == std::vector<double>{0, 0});
  }
  SECTION("gradcheck with exact zero exponents and positive bases") {
    Tensor base = leaf({2, 3}, 0.5, 2, 11);
    Tensor ex = tensor({0, 1.5, -0.5, 2, 0, 0.25}, {2, 3}, kFloat64);
    ex.requires_grad_();
    REQUIRE(autograd::gradcheck([](auto& v) { return pow(v[0], v[1]); }, {base, ex}));
  }
}

TEST_CASE("integer pow(tensor, tensor) truncates negative exponents as torch does", "[binary]") {
  // torch's powi: 1 -> 1, -1 -> +-1 by parity, anything else -> 0; only pow(int tensor, negative int
  // number) raises.
  Tensor base = from_vector<int64_t>({2, 1, -1, -1, 0, 3}, {6});
  Tensor ex = from_vector<int64_t>({-1, -3, -3, -2, 2, 2}, {6});
  CHECK(pow(base, ex).to_vector<int64_t>() == std::vector<int64_t>{0, 1, -1, 1, 0, 9});
  test::require_error([&] { pow(base, -1); }, "pow");
}

TEST_CASE("masked_fill broadcasts the input and the mask both ways", "[binary]") {
  Tensor x = tensor({1, 2, 3}, {3}, kFloat64);
  Tensor mask = from_vector<bool>({true, false}, {2, 1});
  Tensor y = masked_fill(x, mask, -1);
  REQUIRE(y.shape() == Shape{2, 3});  // torch: broadcast_shapes([3], [2, 1])
  CHECK(y.to_vector<double>() == std::vector<double>{-1, -1, -1, 1, 2, 3});
  SECTION("the gradient sums back over the broadcast rows") {
    Tensor a = tensor({1, 2, 3}, {3}, kFloat64);
    a.requires_grad_();
    Tensor w = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
    sum(mul(masked_fill(a, mask, 0), w)).backward();
    CHECK(a.grad().shape() == Shape{3});
    CHECK(a.grad().to_vector<double>() == std::vector<double>{4, 5, 6});  // only row 1 passes
    Tensor b = leaf({3}, -2, 2, 12);
    REQUIRE(autograd::gradcheck([&](auto& v) { return masked_fill(v[0], mask, 3.0); }, {b}));
  }
  test::require_error([&] { masked_fill(x, from_vector<bool>({true, false}, {2}), 0); }, "masked_fill");
}

TEST_CASE("maximum and minimum with a number", "[binary]") {
  // Read as maximum(x, tensor(s)) with s a wrapped number: a float number makes an integral tensor
  // float32, an integral number keeps the tensor's dtype; ties split the gradient evenly.
  Tensor x = tensor({1, 3, 2}, {3}, kFloat64);
  CHECK(maximum(x, 2).to_vector<double>() == std::vector<double>{2, 3, 2});
  CHECK(minimum(x, 2.5).to_vector<double>() == std::vector<double>{1, 2.5, 2});
  CHECK(maximum(x, 2).dtype() == kFloat64);
  Tensor i = from_vector<int64_t>({1, 3, 2}, {3});
  CHECK(maximum(i, 2).dtype() == kInt64);
  CHECK(maximum(i, 2).to_vector<int64_t>() == std::vector<int64_t>{2, 3, 2});
  CHECK(minimum(i, 2.5).dtype() == kFloat32);
  CHECK(minimum(i, 2.5).to_vector<float>() == std::vector<float>{1, 2.5f, 2});
  CHECK(std::isnan(maximum(tensor({NAN}, {1}), 0).item<float>()));
  SECTION("gradients") {
    Tensor a = tensor({1, 3, 2}, {3}, kFloat64);
    a.requires_grad_();
    sum(add(maximum(a, 2), minimum(a, 2))).backward();
    // maximum passes 1 where a > 2, minimum where a < 2, each 0.5 at the tie a == 2.
    CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 1, 1});
    Tensor b = tensor({1, 3, 2}, {3}, kFloat64);
    b.requires_grad_();
    sum(maximum(b, 2)).backward();
    CHECK(b.grad().to_vector<double>() == std::vector<double>{0, 1, 0.5});
    Tensor c = leaf({3, 4}, -2, 2, 13);  // no element is at +-0.3 exactly
    REQUIRE(autograd::gradcheck([](auto& v) { return maximum(v[0], 0.3); }, {c}));
    REQUIRE(autograd::gradcheck([](auto& v) { return minimum(v[0], -0.3); }, {c}));
  }
}

TEST_CASE("in-place methods", "[binary][inplace]") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  SECTION("values and version bumps") {
    uint64_t v0 = a.version();
    a.add_(tensor({1, 1}, {2}), 2);
    REQUIRE(a.to_vector<float>() == std::vector<float>{3, 4, 5, 6});
    REQUIRE(a.version() > v0);
    a.sub_(1).mul_(2).div_(4);
    REQUIRE(a.to_vector<float>() == std::vector<float>{1, 1.5f, 2, 2.5f});
    a.mul_(tensor({2, 0}, {2})).div_(tensor({1, 2, 1, 2}, {2, 2}));
    REQUIRE(a.to_vector<float>() == std::vector<float>{2, 0, 4, 0});
    a.sub_(tensor({1}, {1}), 3).add_(1.5);
    REQUIRE(a.to_vector<float>() == std::vector<float>{0.5f, -1.5f, 2.5f, -1.5f});
    a.clamp_(-1, 1);
    REQUIRE(a.to_vector<float>() == std::vector<float>{0.5f, -1, 1, -1});
    a.copy_(from_vector<int64_t>({7, 8}, {2}));
    REQUIRE(a.to_vector<float>() == std::vector<float>{7, 8, 7, 8});
    a.fill_(2.5);
    REQUIRE(a.to_vector<float>() == std::vector<float>{2.5f, 2.5f, 2.5f, 2.5f});
    a.zero_();
    REQUIRE(a.to_vector<float>() == std::vector<float>{0, 0, 0, 0});
  }
  SECTION("strided self writes through the view") {
    Tensor base = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor t = transposed(base);  // [3, 2] view
    t.add_(tensor({10, 20}, {2}));
    REQUIRE(base.to_vector<float>() == std::vector<float>{11, 12, 13, 24, 25, 26});
    Tensor column = detail::make_alias(base, {2}, {3}, 1);  // base[:, 1]
    column.fill_(0);
    REQUIRE(base.to_vector<float>() == std::vector<float>{11, 0, 13, 24, 0, 26});
    column.copy_(tensor({5}, {1}));
    REQUIRE(base.to_vector<float>() == std::vector<float>{11, 5, 13, 24, 5, 26});
  }
  SECTION("dtype and shape errors") {
    Tensor i = from_vector<int64_t>({1, 2}, {2});
    WEFT_REQUIRE_ERROR(i.add_(tensor({0.5, 0.5}, {2})), Contains("add_") && Contains("can't be cast"));
    WEFT_REQUIRE_ERROR(i.div_(2), Contains("div_"));
    WEFT_REQUIRE_ERROR(i.mul_(0.5), Contains("mul_"));
    WEFT_REQUIRE_ERROR(zeros({2}).add_(zeros({2, 2})), Contains("add_") && Contains("broadcast"));
    WEFT_REQUIRE_ERROR(a.clamp_(std::nullopt, std::nullopt), Contains("clamp_"));
    // torch 1.13 refuses clamp_ on bool every way: number bounds promote past bool, bool bounds
    // have no kernel. The tensor is left as it was.
    Tensor b = from_vector<bool>({true, false, true}, {3});
    WEFT_REQUIRE_ERROR(b.clamp_(0, 1), Contains("clamp_") && Contains("int64 can't be cast") && Contains("bool"));
    WEFT_REQUIRE_ERROR(b.clamp_(0.5, std::nullopt), Contains("clamp_") && Contains("float32 can't be cast"));
    WEFT_REQUIRE_ERROR(b.clamp_(std::nullopt, 0), Contains("int64 can't be cast to the desired output type bool"));
    WEFT_REQUIRE_ERROR(b.clamp_(false, true), Contains("clamp_") && Contains("bool bounds"));
    WEFT_REQUIRE_ERROR(b.clamp_(std::nullopt, true), Contains("clamp_") && Contains("bool bounds"));
    WEFT_REQUIRE_ERROR(b.clamp_(std::nullopt, std::nullopt), Contains("at least one of min and max"));
    REQUIRE(b.to_vector<bool>() == std::vector<bool>{true, false, true});
    REQUIRE(clamp(b, 0, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});  // out of place: int64
    i.add_(from_vector<bool>({true, false}, {2}));
    REQUIRE(i.to_vector<int64_t>() == std::vector<int64_t>{2, 2});
  }
  SECTION("autograd: leaves are refused, non-leaves rebase their history") {
    Tensor x = tensor({1, 2, 3}, {3}, requires_grad());
    WEFT_REQUIRE_ERROR(x.add_(1), Contains("a leaf tensor that requires grad is being used in an in-place operation"));
    {
      NoGradGuard no_grad;  // optimizer-style updates are allowed
      x.mul_(2);
    }
    REQUIRE(x.to_vector<float>() == std::vector<float>{2, 4, 6});
    Tensor w = tensor({1, 1, 1}, {3}, requires_grad());
    Tensor y = mul(x, 3);
    y.mul_(w).add_(x, 2).sub_(1).div_(2);  // y = (3x * w + 2x - 1) / 2
    REQUIRE(y.grad_fn() != nullptr);
    sum(y).backward();
    REQUIRE(x.grad().to_vector<float>() == std::vector<float>{2.5f, 2.5f, 2.5f});
    REQUIRE(w.grad().to_vector<float>() == std::vector<float>{3, 6, 9});
  }
  SECTION("autograd through clamp_, copy_ and fill_") {
    Tensor x = tensor({-2, 0.5, 2}, {3}, requires_grad()), s = tensor({1, 2, 3}, {3}, requires_grad());
    Tensor y = mul(x, 1);
    y.clamp_(-1, 1);
    Tensor z = mul(s, 1);
    z.copy_(mul(x, 2));  // z's old value (from s) gets a zero gradient, as in torch
    Tensor f = mul(s, 1);
    f.fill_(4);
    sum(add(add(y, z), f)).backward();
    REQUIRE(x.grad().to_vector<float>() == std::vector<float>{2, 3, 2});
    REQUIRE(s.grad().to_vector<float>() == std::vector<float>{0, 0, 0});
  }
  SECTION("gradcheck of in-place chains") {
    Tensor x = leaf({2, 3}, 0.5, 2, 9), o = leaf({3}, 0.5, 2, 10);
    REQUIRE(autograd::gradcheck([](auto& v) {
      Tensor y = mul(v[0], 1.0);
      y.mul_(v[1]).div_(v[1].pow(2.0)).add_(v[1], -0.5).clamp_(0.1, std::nullopt);
      return y;
    }, {x, o}));
  }
}

TEST_CASE("float32 add, sub, mul and div on dense spans (the vectorised kernels) agree with float64", "[binary]") {
  // Sizes around the 8-wide blocks and above the parallel grain; in place too.
  Generator gen(17);
  for (int64_t n : {1, 7, 8, 9, 16, 33, 1000, 300001}) {
    INFO("n = " << n);
    Tensor a = randn({n}, kFloat32, &gen), b = add(rand({n}, kFloat32, &gen), 0.5);  // b in [0.5, 1.5)
    auto va = a.to_vector<float>(), vb = b.to_vector<float>();
    auto check = [&](const Tensor& got, const std::function<double(double, double)>& want) {
      auto vg = got.to_vector<float>();
      REQUIRE(vg.size() == va.size());
      for (int64_t i = 0; i < n; ++i) {
        const double w = want(va[i], vb[i]);
        REQUIRE(std::abs(vg[i] - w) <= 1e-6 * (1.0 + std::abs(w)));
      }
    };
    check(add(a, b), [](double x, double y) { return x + y; });
    check(add(a, b, 2.5), [](double x, double y) { return x + 2.5 * y; });
    check(sub(a, b, 0.25), [](double x, double y) { return x - 0.25 * y; });
    check(mul(a, b), [](double x, double y) { return x * y; });
    check(div(a, b), [](double x, double y) { return x / y; });
    Tensor p = a.clone();
    p.sub_(b, 0.05);  // an optimizer step: out is the first operand
    check(p, [](double x, double y) { return x - 0.05 * y; });
    Tensor q = b.clone();
    q.div_(add(abs(a), 1.0));  // in place, dividing
    check(q, [](double x, double y) { return y / (std::abs(x) + 1.0); });
  }
}

TEST_CASE("maximum and minimum with equal inputs split the gradient evenly", "[binary][grad]") {
  // derivatives.yaml, maximum: self gets where(self == other, grad / 2, grad).masked_fill_(self < other, 0),
  // other the same masked where self > other (minimum swaps < and >): a tie sends 0.5 to each side.
  Tensor x = tensor({1, 2, 2}, {3}, kFloat64), y = tensor({2}, {1}, kFloat64);
  SECTION("maximum, the [1] operand broadcast") {
    x.requires_grad_(), y.requires_grad_();
    sum(maximum(x, y)).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5});
    CHECK(y.grad().to_vector<double>() == std::vector<double>{1 + 0.5 + 0.5});
  }
  SECTION("minimum, the [1] operand broadcast") {
    x.requires_grad_(), y.requires_grad_();
    sum(minimum(x, y)).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0.5, 0.5});
    CHECK(y.grad().to_vector<double>() == std::vector<double>{0 + 0.5 + 0.5});
  }
  SECTION("the same tensor on both sides gets both halves") {
    x.requires_grad_();
    sum(add(maximum(x, x), mul(minimum(x, x), 3.0))).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{4, 4, 4});  // (0.5 + 0.5) + 3 (0.5 + 0.5)
  }
}

TEST_CASE("in-place ops on a non-leaf: gradcheck through both operands", "[binary][inplace][grad]") {
  // Each op runs on y = x * 1 (a leaf that requires grad may not be modified in place).
  Tensor a = leaf({3, 4}, -2, 2, 31), c = leaf({3, 4}, 0.5, 2, 32), col = leaf({3, 1}, 0.5, 2, 33);
  Tensor row = leaf({4}, 0.5, 2, 34);
  using Fn = std::function<Tensor(const autograd::variable_list&)>;
  auto on_copy = [](const std::function<void(Tensor&, const autograd::variable_list&)>& op) {
    return Fn([op](const autograd::variable_list& v) {
      Tensor y = mul(v[0], 1.0);
      op(y, v);
      return y;
    });
  };
  std::vector<std::pair<std::string, Fn>> both = {
      {"sub_", on_copy([](Tensor& y, auto& v) { y.sub_(v[1]); })},
      {"sub_ alpha", on_copy([](Tensor& y, auto& v) { y.sub_(v[1], 0.5); })},
      {"mul_", on_copy([](Tensor& y, auto& v) { y.mul_(v[1]); })},
      {"div_", on_copy([](Tensor& y, auto& v) { y.div_(v[1]); })},
      // copy_ overwrites y: x gets no gradient through it, the source all of it (summed over a broadcast).
      {"copy_", on_copy([](Tensor& y, auto& v) { y.copy_(v[1]); })},
      // The result used again after the write: MulBackward saves the new value of y.
      {"copy_ then mul", Fn([](auto& v) {
         Tensor y = mul(v[0], 2.0);
         y.copy_(mul(v[1], v[1]));
         return mul(y, v[0]);
       })},
      {"chain", on_copy([](Tensor& y, auto& v) { y.mul_(v[1]).sub_(v[1], 2.0).div_(v[1]); })},
  };
  for (auto& [name, fn] : both) {
    SECTION(name) {
      REQUIRE(autograd::gradcheck(fn, {a, c}));
      REQUIRE(autograd::gradcheck(fn, {a, col}));
      REQUIRE(autograd::gradcheck(fn, {a, row}));
    }
  }
  SECTION("scalar operands: sub_, mul_, div_, fill_, clamp_") {
    std::vector<std::pair<std::string, Fn>> self_only = {
        {"sub_", on_copy([](Tensor& y, auto&) { y.sub_(1.5); })},
        {"mul_", on_copy([](Tensor& y, auto&) { y.mul_(-2.5); })},
        {"div_", on_copy([](Tensor& y, auto&) { y.div_(4.0); })},
        {"fill_", on_copy([](Tensor& y, auto&) { y.fill_(3.0); })},  // a zero Jacobian
        {"fill_ then mul", Fn([](auto& v) {
           Tensor y = mul(v[0], 1.0);
           y.fill_(3.0);
           return mul(y, exp(v[0]));  // only the exp path reaches x
         })},
        // No element of a lies within 1e-3 of either bound.
        {"clamp_", on_copy([](Tensor& y, auto&) { y.clamp_(-0.7, 0.9); })},
        {"clamp_ min", on_copy([](Tensor& y, auto&) { y.clamp_(0.1, std::nullopt); })},
    };
    for (auto& [name, fn] : self_only) {
      INFO(name);
      REQUIRE(autograd::gradcheck(fn, {a}));
    }
  }
  SECTION("hand-worked: fill_ and copy_ send zeros to the old value") {
    Tensor x = tensor({1, 2}, {2}, kFloat64), s = tensor({5}, {1}, kFloat64);
    x.requires_grad_(), s.requires_grad_();
    Tensor y = mul(x, 3.0);
    y.copy_(s);  // y = [5, 5]
    Tensor z = mul(x, 3.0);
    z.fill_(2.0);
    sum(add(mul(y, y), z)).backward();
    // The overwritten value gets zeros_like(grad), as in torch (derivatives.yaml, fill_ and copy_).
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0});
    CHECK(s.grad().to_vector<double>() == std::vector<double>{2 * 5 + 2 * 5});  // d sum(s^2 over 2) / ds
  }
}

TEST_CASE("backward through a saved tensor modified in place raises", "[binary][inplace][grad]") {
  // SavedTensor::unpack compares the version at save time with the storage's current one.
  Tensor x = tensor({1, 2, 3}, {3}, kFloat64), w = tensor({4, 5, 6}, {3}, kFloat64);
  x.requires_grad_(), w.requires_grad_();
  SECTION("a saved input") {
    Tensor y = mul(x, 1.0);
    Tensor z = mul(y, w);  // MulBackward saves y (for w's gradient) and w
    y.add_(1.0);
    WEFT_REQUIRE_ERROR(sum(z).backward(),
                       Contains("modified by an inplace operation") && Contains("MulBackward") &&
                           Contains("version"));
  }
  SECTION("a saved output") {
    Tensor e = exp(mul(x, 1.0));  // ExpBackward saves its result
    e.mul_(2.0);
    WEFT_REQUIRE_ERROR(sum(e).backward(),
                       Contains("modified by an inplace operation") && Contains("ExpBackward") &&
                           Contains("version"));
  }
  SECTION("a tensor that is not saved may change") {
    Tensor y = mul(x, 1.0);
    Tensor z = add(y, w);  // AddBackward saves nothing
    y.add_(1.0);
    sum(z).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 1, 1});
  }
}

namespace {

// Every comparison of a [3, 1] and a [1, 4] tensor of T (with ties), and of each with a number,
// against a reference loop.
template <class T>
void check_comparisons() {
  std::vector<T> va = {T(1), T(2), T(3)}, vb = {T(3), T(2), T(0), T(1)};
  Tensor a = from_vector<T>(va, {3, 1}), b = from_vector<T>(vb, {1, 4});
  using Op = std::function<Tensor(const Tensor&, const Tensor&)>;
  using ScalarOp = std::function<Tensor(const Tensor&, Scalar)>;
  using Ref = std::function<bool(double, double)>;
  std::vector<std::tuple<std::string, Op, ScalarOp, Ref>> ops = {
      {"eq", [](auto& x, auto& y) { return eq(x, y); }, [](auto& x, Scalar s) { return eq(x, s); },
       [](double x, double y) { return x == y; }},
      {"ne", [](auto& x, auto& y) { return ne(x, y); }, [](auto& x, Scalar s) { return ne(x, s); },
       [](double x, double y) { return x != y; }},
      {"lt", [](auto& x, auto& y) { return lt(x, y); }, [](auto& x, Scalar s) { return lt(x, s); },
       [](double x, double y) { return x < y; }},
      {"le", [](auto& x, auto& y) { return le(x, y); }, [](auto& x, Scalar s) { return le(x, s); },
       [](double x, double y) { return x <= y; }},
      {"gt", [](auto& x, auto& y) { return gt(x, y); }, [](auto& x, Scalar s) { return gt(x, s); },
       [](double x, double y) { return x > y; }},
      {"ge", [](auto& x, auto& y) { return ge(x, y); }, [](auto& x, Scalar s) { return ge(x, s); },
       [](double x, double y) { return x >= y; }},
  };
  for (auto& [name, op, scalar_op, ref] : ops) {
    INFO(name);
    for (bool swap : {false, true}) {
      Tensor r = swap ? op(b, a) : op(a, b);
      REQUIRE(r.dtype() == kBool);
      REQUIRE(r.shape() == Shape{3, 4});
      auto vr = r.to_vector<bool>();
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          double x = static_cast<double>(va[i]), y = static_cast<double>(vb[j]);
          REQUIRE(vr[i * 4 + j] == (swap ? ref(y, x) : ref(x, y)));
        }
    }
    // A number: 2 ties with some elements; 2.5 (a float number against int64 too) ties with none.
    for (double s : {2.0, 2.5}) {
      Tensor r = s == 2.0 ? scalar_op(b, int64_t{2}) : scalar_op(b, s);
      REQUIRE(r.dtype() == kBool);
      REQUIRE(r.shape() == Shape{1, 4});
      auto vr = r.to_vector<bool>();
      for (int64_t j = 0; j < 4; ++j) REQUIRE(vr[j] == ref(static_cast<double>(vb[j]), s));
    }
  }
}

}  // namespace

TEST_CASE("comparisons broadcast, return bool and record no gradient", "[binary]") {
  SECTION("float32") { check_comparisons<float>(); }
  SECTION("float64") { check_comparisons<double>(); }
  SECTION("int64") { check_comparisons<int64_t>(); }
  SECTION("no grad_fn even when the inputs require grad") {
    Tensor x = tensor({1, 2, 3}, {3, 1}, kFloat64), y = tensor({2, 2, 0, 5}, {1, 4}, kFloat64);
    x.requires_grad_(), y.requires_grad_();
    Tensor nl = mul(x, 2.0);  // a non-leaf with history, too
    for (const Tensor& r : {eq(x, y), ne(x, y), lt(nl, y), le(x, nl), gt(nl, y), ge(x, y), eq(nl, 2),
                            ne(x, 1.5), lt(nl, 3), le(x, 2), gt(nl, 0.5), ge(x, 3)}) {
      CHECK(r.dtype() == kBool);
      CHECK(r.grad_fn() == nullptr);
      CHECK_FALSE(r.requires_grad());
    }
  }
}

TEST_CASE("set_num_threads sets the thread count of weft's own loops", "[binary][threads]") {
  ScopedNumThreads restore(get_num_threads());  // puts the caller's count back, also when a check fails
  // Above kParallelGrain (32768), odd-sized: the kernels' parallel_range forks for this.
  const int64_t n = 100003;
  Generator gen(41);
  Tensor a = randn({n}, kFloat32, &gen), b = randn({n}, kFloat32, &gen);
  Tensor a64 = randn({n}, kFloat64, &gen);
  auto run = [&] {
    return std::make_pair(add(mul(a, b), a).to_vector<float>(), exp(a64).to_vector<double>());
  };
  set_num_threads(1);
  REQUIRE(get_num_threads() == 1);
  REQUIRE(omp_get_max_threads() == 1);  // what weft's parallel_range reads before forking
  auto one = run();
  set_num_threads(2);
  REQUIRE(get_num_threads() == 2);
  REQUIRE(omp_get_max_threads() == 2);
  auto two = run();
  // Elementwise results don't depend on how the range is split: bit-identical, and equal to a loop.
  REQUIRE(one.first == two.first);
  REQUIRE(one.second == two.second);
  auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) REQUIRE(two.first[i] == va[i] * vb[i] + va[i]);
  SECTION("a count below 1 is refused and leaves the setting alone") {
    WEFT_REQUIRE_ERROR(set_num_threads(0), Contains("set_num_threads") && Contains("0"));
    WEFT_REQUIRE_ERROR(set_num_threads(-3), Contains("set_num_threads"));
    CHECK(get_num_threads() == 2);
  }
}
