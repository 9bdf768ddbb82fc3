// test_reduce: reductions against a reference loop over every dim subset, strided and empty inputs,
// max/min indices, var/std/norm/logsumexp, all/any, sum_to, errors, gradcheck.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

// Reference: folds f over the elements of `v` (row-major, `shape`) that share the kept indices.
std::vector<double> ref_reduce(const std::vector<double>& v, const Shape& shape, const std::vector<int64_t>& dims,
                               double init, const std::function<double(double, double)>& f) {
  std::vector<bool> reduced(shape.size(), dims.empty());
  for (int64_t d : dims) reduced[d] = true;
  int64_t out_n = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!reduced[d]) out_n *= shape[d];
  std::vector<double> out(out_n, init);
  for (int64_t flat = 0; flat < static_cast<int64_t>(v.size()); ++flat) {
    int64_t rem = flat, o = 0, mult = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      int64_t i = rem % shape[d];
      rem /= shape[d];
      if (!reduced[d]) o += i * mult, mult *= shape[d];
    }
    out[o] = f(out[o], v[flat]);
  }
  return out;
}

void require_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-9) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).epsilon(tol).margin(tol));
}

Tensor sample(const Shape& shape, uint64_t seed, DType dt = kFloat64) {
  Generator gen(seed);
  return randn(shape, dt, &gen);
}

std::vector<std::vector<int64_t>> dim_subsets(int64_t rank) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t mask = 1; mask < (1 << rank); ++mask) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < rank; ++d)
      if (mask & (1 << d)) dims.push_back(d);
    out.push_back(dims);
  }
  return out;
}

Tensor requiring(Tensor t) {
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("sum, mean, prod, amax over every dim subset", "[reduce]") {
  Tensor x = sample({3, 4, 5}, 1);
  Tensor permuted = detail::make_alias(x, {5, 3, 4}, {1, 20, 5}, 0);  // x.permute(2, 0, 1): strided
  for (const Tensor& in : {x, permuted}) {
    auto v = in.to_vector<double>();
    for (auto& dims : dim_subsets(3)) {
      Shape d(dims.begin(), dims.end());
      auto add_f = [](double a, double b) { return a + b; };
      require_close(sum(in, d).to_vector<double>(), ref_reduce(v, in.shape(), dims, 0, add_f));
      int64_t count = 1;
      for (int64_t k : dims) count *= in.shape()[k];
      auto s = ref_reduce(v, in.shape(), dims, 0, add_f);
      for (double& e : s) e /= count;
      require_close(mean(in, d).to_vector<double>(), s);
      REQUIRE(sum(in, d, true).dim() == 3);
    }
    for (int64_t dim = 0; dim < 3; ++dim) {
      require_close(prod(in, dim).to_vector<double>(),
                    ref_reduce(v, in.shape(), {dim}, 1, [](double a, double b) { return a * b; }));
      auto [values, indices] = max(in, dim);
      require_close(values.to_vector<double>(),
                    ref_reduce(v, in.shape(), {dim}, -INFINITY, [](double a, double b) { return std::max(a, b); }));
      REQUIRE(indices.dtype() == kInt64);
      // The index points at the value along dim: check with the reference layout.
      auto vi = indices.to_vector<int64_t>();
      for (int64_t e : vi) REQUIRE((e >= 0 && e < in.shape()[dim]));
      require_close(min(in, dim).first.to_vector<double>(),
                    ref_reduce(v, in.shape(), {dim}, INFINITY, [](double a, double b) { return std::min(a, b); }));
    }
  }
  REQUIRE(sum(x, {-1, 0}).shape() == Shape{4});
  REQUIRE(sum(x).dim() == 0);
  REQUIRE(sum(x).item<double>() == Approx(ref_reduce(x.to_vector<double>(), x.shape(), {}, 0, std::plus<>())[0]));
}

TEST_CASE("reductions: hand-worked values, dtypes, indices", "[reduce]") {
  Tensor a = tensor({1, 5, 3, 4, 2, 6}, {2, 3});
  REQUIRE(sum(a, {0}).to_vector<float>() == std::vector<float>{5, 7, 9});
  REQUIRE(sum(a, {1}, true).shape() == Shape{2, 1});
  REQUIRE(mean(a).item<float>() == 3.5f);
  REQUIRE(prod(a).item<float>() == 720);
  REQUIRE(max(a).item<float>() == 6);
  REQUIRE(min(a).item<float>() == 1);
  auto [mv, mi] = max(a, 1);
  REQUIRE(mv.to_vector<float>() == std::vector<float>{5, 6});
  REQUIRE(mi.to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  auto [nv, ni] = min(a, 0, true);
  REQUIRE(nv.shape() == Shape{1, 3});
  REQUIRE(ni.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0});
  REQUIRE(argmax(a).item<int64_t>() == 5);
  REQUIRE(argmin(a).item<int64_t>() == 0);
  REQUIRE(argmax(a, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  REQUIRE(argmax(a, std::nullopt, true).shape() == Shape{1, 1});
  REQUIRE(argmax(tensor({2, 7, 7})).item<int64_t>() == 1);  // first of ties
  SECTION("integer and bool sums promote to int64") {
    Tensor i = from_vector<int64_t>({1, 2, 3}, {3});
    REQUIRE(sum(i).dtype() == kInt64);
    REQUIRE(sum(i).item<int64_t>() == 6);
    REQUIRE(sum(from_vector<bool>({true, true, false}, {3})).item<int64_t>() == 2);
    REQUIRE(prod(i).item<int64_t>() == 6);
    REQUIRE(max(i).item<int64_t>() == 3);
  }
  SECTION("var, std, norm, logsumexp") {
    Tensor v = tensor({1, 2, 3, 4}, {4}, kFloat64);
    REQUIRE(var(v).item<double>() == Approx(5.0 / 3.0));
    REQUIRE(var(v, {}, false).item<double>() == Approx(1.25));
    REQUIRE(weft::std(v).item<double>() == Approx(std::sqrt(5.0 / 3.0)));
    REQUIRE(norm(v).item<double>() == Approx(std::sqrt(30.0)));
    REQUIRE(norm(v, 1).item<double>() == Approx(10));
    REQUIRE(norm(v, 3).item<double>() == Approx(std::cbrt(100.0)));
    REQUIRE(logsumexp(v, {0}).item<double>() ==
            Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(4.0))));
    // Stable where the naive form overflows, and -inf rows give -inf.
    Tensor big = tensor({1000, 1000}, {1, 2}, kFloat64);
    REQUIRE(logsumexp(big, {1}).item<double>() == Approx(1000 + std::log(2.0)));
    Tensor ninf = tensor({-INFINITY, -INFINITY}, {2}, kFloat64);
    REQUIRE(logsumexp(ninf, {0}).item<double>() == -INFINITY);
    Tensor m = sample({3, 4}, 5);
    auto vm = m.to_vector<double>();
    auto rows = var(m, {1}, true, true);
    REQUIRE(rows.shape() == Shape{3, 1});
    for (int r = 0; r < 3; ++r) {
      double mu = 0, ss = 0;
      for (int c = 0; c < 4; ++c) mu += vm[r * 4 + c] / 4;
      for (int c = 0; c < 4; ++c) ss += (vm[r * 4 + c] - mu) * (vm[r * 4 + c] - mu);
      REQUIRE(rows.to_vector<double>()[r] == Approx(ss / 3));
    }
  }
  SECTION("all, any, equal, allclose") {
    Tensor b = from_vector<bool>({true, false, true, true}, {2, 2});
    REQUIRE_FALSE(all(b).item<bool>());
    REQUIRE(any(b).item<bool>());
    REQUIRE(all(b, 0).to_vector<bool>() == std::vector<bool>{true, false});
    REQUIRE(any(b, 1, true).shape() == Shape{2, 1});
    REQUIRE(all(tensor({1, 2})).item<bool>());
    REQUIRE_FALSE(all(tensor({1, 0})).item<bool>());
    REQUIRE(all(zeros({0})).item<bool>());
    REQUIRE_FALSE(any(zeros({0})).item<bool>());
    REQUIRE(equal(a, a.to(kFloat64)));
    REQUIRE_FALSE(equal(a, tensor({1, 5, 3, 4, 2, 6}, {6})));
    REQUIRE(allclose(a, add(a, 1e-7)));
    REQUIRE_FALSE(allclose(a, add(a, 1e-3)));
    REQUIRE_FALSE(allclose(tensor({NAN}), tensor({NAN})));
  }
}

TEST_CASE("reductions: empty inputs, large inputs, errors", "[reduce]") {
  Tensor e = zeros({0, 3});
  REQUIRE(sum(e).item<float>() == 0);
  REQUIRE(sum(e, {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
  REQUIRE(sum(e, {1}).shape() == Shape{0});
  REQUIRE(prod(e).item<float>() == 1);
  REQUIRE(std::isnan(mean(e).item<float>()));
  WEFT_REQUIRE_ERROR(max(e), Contains("max") && Contains("non-empty"));
  WEFT_REQUIRE_ERROR(max(e, 0), Contains("max"));
  WEFT_REQUIRE_ERROR(argmin(e), Contains("argmin"));
  WEFT_REQUIRE_ERROR(sum(zeros({2, 3}), {2}), Contains("sum"));
  WEFT_REQUIRE_ERROR(sum(zeros({2, 3}), {0, -2}), Contains("multiple times"));
  WEFT_REQUIRE_ERROR(mean(from_vector<int64_t>({1}, {1})), Contains("mean") && Contains("floating"));
  CHECK(norm(e, INFINITY).item<double>() == 0);  // torch's: every norm of nothing is 0
  WEFT_REQUIRE_ERROR(norm(zeros({2}), NAN), Contains("norm") && Contains("NaN"));
  WEFT_REQUIRE_ERROR(sum_to(zeros({2, 3}), {4}), Contains("sum_to"));
  SECTION("large: inner, outer and strided paths with parallel splits") {
    Tensor big = sample({300, 1001}, 7, kFloat32);
    auto v = big.to_vector<double>();
    for (auto& dims : dim_subsets(2)) {
      Shape d(dims.begin(), dims.end());
      require_close(sum(big, d).to_vector<double>(), ref_reduce(v, big.shape(), dims, 0, std::plus<>()), 1e-4);
      require_close(max(big, dims[0]).first.to_vector<double>(),
                    ref_reduce(v, big.shape(), {dims[0]}, -INFINITY, [](double a, double b) { return std::max(a, b); }));
    }
    Tensor t = detail::make_alias(big, {1001, 300}, {1, 1001}, 0);
    require_close(sum(t, {0}).to_vector<double>(), ref_reduce(v, big.shape(), {1}, 0, std::plus<>()), 1e-4);
  }
}

TEST_CASE("sum_to reduces a broadcast back", "[reduce]") {
  Tensor g = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(sum_to(g, {3}).to_vector<float>() == std::vector<float>{5, 7, 9});
  REQUIRE(sum_to(g, {2, 1}).to_vector<float>() == std::vector<float>{6, 15});
  REQUIRE(sum_to(g, {1, 3}).shape() == Shape{1, 3});
  REQUIRE(sum_to(g, {}).item<float>() == 21);
  REQUIRE(sum_to(g, {2, 3}).to_vector<float>() == g.to_vector<float>());
  Tensor x = requiring(sample({2, 3, 4}, 9));
  REQUIRE(autograd::gradcheck([](auto& v) { return sum_to(v[0], {3, 1}); }, {x}));
}

TEST_CASE("reduction gradcheck", "[reduce][grad]") {
  Tensor x = requiring(sample({3, 4}, 21));
  Tensor pos = requiring(add(abs(sample({3, 4}, 22)), 0.5));
  using Fn = std::function<Tensor(const autograd::variable_list&)>;
  std::vector<std::pair<std::string, Fn>> fns = {
      {"sum", [](auto& v) { return sum(v[0]); }},
      {"sum dims", [](auto& v) { return sum(v[0], {1}); }},
      {"sum keepdim", [](auto& v) { return sum(v[0], {0}, true); }},
      {"mean", [](auto& v) { return mean(v[0], {0}); }},
      {"prod", [](auto& v) { return prod(v[0]); }},
      {"prod dim", [](auto& v) { return prod(v[0], 1); }},
      {"max", [](auto& v) { return max(v[0]); }},
      {"min dim", [](auto& v) { return min(v[0], 0).first; }},
      {"max dim keepdim", [](auto& v) { return max(v[0], 1, true).first; }},
      {"var", [](auto& v) { return var(v[0], {1}); }},
      {"var biased keepdim", [](auto& v) { return var(v[0], {0}, false, true); }},
      {"std", [](auto& v) { return weft::std(v[0]); }},
      {"norm", [](auto& v) { return norm(v[0]); }},
      {"norm 1 dims", [](auto& v) { return norm(v[0], 1, {1}); }},
      {"norm 3", [](auto& v) { return norm(v[0], 3, {0}, true); }},
      {"logsumexp", [](auto& v) { return logsumexp(v[0], {1}); }},
      {"logsumexp all keepdim", [](auto& v) { return logsumexp(v[0], {0, 1}, true); }},
  };
  for (auto& [name, fn] : fns) {
    SECTION(name) {
      REQUIRE(autograd::gradcheck(fn, {x}));
      REQUIRE(autograd::gradcheck(fn, {pos}));
    }
  }
  SECTION("prod with zeros is exact") {
    Tensor z = tensor({2, 0, 3, 0, 5, 4}, {2, 3}, kFloat64);
    z.requires_grad_();
    sum(prod(z, 1)).backward();
    REQUIRE(z.grad().to_vector<double>() == std::vector<double>{0, 6, 0, 20, 0, 0});
    REQUIRE(autograd::gradcheck([](auto& v) { return prod(v[0]); }, {requiring(tensor({2, 0, 3}, {3}, kFloat64))}));
  }
  SECTION("global max shares the gradient between ties; max along a dim picks one") {
    Tensor t = tensor({1, 3, 3}, {3}, kFloat64);
    t.requires_grad_();
    max(t).backward();
    REQUIRE(t.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5});
    Tensor u = tensor({1, 3, 2}, {3}, kFloat64);
    u.requires_grad_();
    max(u, 0).first.backward();
    REQUIRE(u.grad().to_vector<double>() == std::vector<double>{0, 1, 0});
  }
  SECTION("norm at zero has a zero gradient, not NaN") {
    Tensor z = zeros({3}, dtype(kFloat64).requires_grad());
    norm(z).backward();
    REQUIRE(z.grad().to_vector<double>() == std::vector<double>{0, 0, 0});
  }
}

TEST_CASE("std's gradient is 0 where the std is 0", "[reduce][grad]") {
  // torch's std_backward: var_backward(grad / (2 std) masked to 0 where std == 0).
  Tensor c = tensor({2, 2, 2}, {3}, kFloat64);
  c.requires_grad_();
  weft::std(c).backward();
  CHECK(c.grad().to_vector<double>() == std::vector<double>{0, 0, 0});
  // Row 0 is constant; row 1 = [1, 3]: mean 2, unbiased var 2, d std / dx = (x - mean) / ((n - 1) std).
  Tensor m = tensor({1, 1, 1, 3}, {2, 2}, kFloat64);
  m.requires_grad_();
  sum(weft::std(m, {1})).backward();
  auto g = m.grad().to_vector<double>();
  CHECK(g[0] == 0);
  CHECK(g[1] == 0);
  CHECK(g[2] == Approx(-1 / std::sqrt(2.0)));
  CHECK(g[3] == Approx(1 / std::sqrt(2.0)));
  SECTION("gradcheck away from zero") {
    Tensor x = requiring(sample({3, 4}, 23));
    REQUIRE(autograd::gradcheck([](auto& v) { return weft::std(v[0], {1}); }, {x}));
    REQUIRE(autograd::gradcheck([](auto& v) { return weft::std(v[0], {0}, false, true); }, {x}));
    REQUIRE(autograd::gradcheck([](auto& v) { return weft::std(v[0], {}, false); }, {x}));
  }
}

TEST_CASE("var and std divide by max(0, n - correction)", "[reduce]") {
  // torch: an empty reduction gives 0 / 0 = NaN whether or not the estimate is unbiased.
  CHECK(std::isnan(var(zeros({0}, kFloat64)).item<double>()));
  CHECK(std::isnan(var(zeros({0}, kFloat64), {}, false).item<double>()));
  CHECK(std::isnan(weft::std(zeros({0}, kFloat64)).item<double>()));
  auto cols = var(zeros({0, 2}, kFloat64), {0}).to_vector<double>();
  REQUIRE(cols.size() == 2);
  CHECK(std::isnan(cols[0]));
  CHECK(std::isnan(cols[1]));
  CHECK(std::isnan(var(tensor({5}, {1}, kFloat64)).item<double>()));  // n = 1, unbiased: 0 / 0
  CHECK(var(tensor({5}, {1}, kFloat64), {}, false).item<double>() == 0);
}

TEST_CASE("max, min, argmax, argmin along a dim of a tensor with no elements", "[reduce]") {
  // torch returns an empty result when the reduced dim is non-empty, and raises only when the
  // reduced dim itself has size 0.
  Tensor e = zeros({0, 3});
  CHECK(argmax(e, 1).shape() == Shape{0});
  CHECK(argmin(e, 1, true).shape() == Shape{0, 1});
  CHECK(argmax(e, 1).dtype() == kInt64);
  auto [values, indices] = max(e, 1);
  CHECK(values.shape() == Shape{0});
  CHECK(indices.shape() == Shape{0});
  CHECK(min(e, -1, true).first.shape() == Shape{0, 1});
  test::require_error([&] { argmax(e, 0); }, "argmax: expected reduction dim 0 to have a non-zero size");
  test::require_error([&] { argmin(e, -2); }, "argmin: expected reduction dim 0 to have a non-zero size");
  test::require_error([&] { max(e, 0); }, "max: expected reduction dim 0 to have a non-zero size");
  test::require_error([&] { min(e, 0); }, "min: expected reduction dim 0 to have a non-zero size");
  test::require_error([&] { argmax(e); }, "argmax");  // no dim: the whole (empty) tensor
  SECTION("the gradient of an empty max is empty") {
    Tensor x = zeros({0, 3}, dtype(kFloat64).requires_grad());
    sum(max(x, 1).first).backward();
    CHECK(x.grad().shape() == Shape{0, 3});
  }
}

TEST_CASE("global max and min with NaN send the gradient to the NaN positions", "[reduce][grad]") {
  // torch's evenly_distribute_backward: the result is NaN, and NaN counts as equal to it.
  Tensor x = tensor({1, NAN, 3, NAN}, {4}, kFloat64);
  x.requires_grad_();
  Tensor y = max(x);
  CHECK(std::isnan(y.item<double>()));
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0, 0.5});
  Tensor z = tensor({NAN, -1, 4}, {3}, kFloat64);
  z.requires_grad_();
  mul(min(z), 3.0).backward();
  CHECK(z.grad().to_vector<double>() == std::vector<double>{3, 0, 0});
}

TEST_CASE("allclose needs equal dtypes and broadcasts both ways; equal compares shapes", "[reduce]") {
  Tensor a = tensor({1, 2}, {2, 1}, kFloat64), b = tensor({1, 1, 1}, {1, 3}, kFloat64);
  CHECK_FALSE(allclose(a, b));                               // row 1 holds 2 against 1
  CHECK(allclose(tensor({1, 1}, {2, 1}, kFloat64), b));     // [2, 1] against [1, 3]: a [2, 3] comparison
  CHECK(allclose(b, tensor({1, 1}, {2, 1}, kFloat64)));
  test::require_error([&] { allclose(tensor({1, 2}, {2}), tensor({1, 2}, {2}, kFloat64)); },
                      "allclose: expected both tensors to have the same dtype but got float32 and float64");
  test::require_error([&] { allclose(zeros({2}, kFloat64), zeros({3}, kFloat64)); }, "allclose");
  // torch.equal promotes the dtypes (torch 2.x) and is false, not an error, when shapes differ.
  CHECK(equal(tensor({1, 2}, {2}), tensor({1, 2}, {2}, kFloat64)));
  CHECK_FALSE(equal(tensor({1, 1}, {2, 1}), tensor({1, 1}, {1, 2})));
  CHECK_FALSE(equal(zeros({2}), zeros({3})));
}

TEST_CASE("sum_to a one-element shape matches the general reduction", "[reduce]") {
  Tensor x = randn({5, 7}, kFloat32);
  Tensor via_sum = sum(x.to(kFloat64));
  for (Shape target : {Shape{}, Shape{1}, Shape{1, 1}}) {
    Tensor y = sum_to(x, target);
    REQUIRE(y.shape() == target);
    REQUIRE(y.dtype() == kFloat32);
    REQUIRE(y.item<double>() == Approx(via_sum.item<double>()).epsilon(1e-6));
  }
  Tensor xd = randn({3, 4}, TensorOptions(kFloat64).requires_grad());
  REQUIRE(autograd::gradcheck([](const autograd::variable_list& in) { return sum_to(in[0], Shape{1, 1}); }, {xd}));
}

// Note [Float32 sums]: lanes within a block, blocks in double. Every length around a lane group and a
// block edge, against the float64 sum of the same values; and 10M copies of 0.1f, where float
// accumulators drift (a sequential float loop gives 1087937, 32 float lanes for the whole length
// 997298, against 1000000.01) but block totals added in double stay within float rounding of it.
TEST_CASE("float32 sums: lane and block edges, and long sums keep float accuracy", "[reduce]") {
  for (int64_t n : {1, 31, 32, 33, 95, 4095, 4096, 4097, 4096 * 3 + 17, 100003}) {
    Tensor x = sample({n}, static_cast<uint64_t>(n), kFloat32);
    double want = 0;
    for (double v : x.to_vector<double>()) want += v;
    INFO("n = " << n);
    REQUIRE(sum(x).item<double>() == Approx(want).margin(1e-4 * std::sqrt(static_cast<double>(n))));
    // Rows too: each row of a [3, n] matrix is a separate span.
    Tensor rows = sample({3, n}, static_cast<uint64_t>(n) + 1, kFloat32);
    auto rv = rows.to_vector<double>();
    auto got = sum(rows, {1}).to_vector<double>();
    for (int64_t r = 0; r < 3; ++r) {
      double row = 0;
      for (int64_t j = 0; j < n; ++j) row += rv[r * n + j];
      REQUIRE(got[r] == Approx(row).margin(1e-4 * std::sqrt(static_cast<double>(n))));
    }
  }
  const int64_t n = 10'000'000;
  Tensor tenth = full({n}, 0.1, kFloat32);
  const double exact = static_cast<double>(0.1f) * n;
  REQUIRE(sum(tenth).item<double>() == Approx(exact).epsilon(1e-6));
  REQUIRE(mean(tenth).item<double>() == Approx(static_cast<double>(0.1f)).epsilon(1e-6));
}

TEST_CASE("global and per-dim max and min: gradcheck without ties", "[reduce][grad]") {
  // Distinct values 0.25 apart (7 is a unit mod 24, so i -> 7 i mod 24 is a permutation): no ties,
  // and no finite-difference step (1e-6) reorders them.
  std::vector<double> v(24);
  for (int64_t i = 0; i < 24; ++i) v[i] = static_cast<double>((7 * i) % 24) * 0.25 - 3.0;
  Tensor x = requiring(from_vector<double>(v, {2, 3, 4}));
  using Fn = std::function<Tensor(const autograd::variable_list&)>;
  std::vector<std::pair<std::string, Fn>> fns = {
      {"max", [](auto& t) { return max(t[0]); }},
      {"min", [](auto& t) { return min(t[0]); }},
      // Strided inputs: permuted views.
      {"max of a permuted view", [](auto& t) { return max(permute(t[0], {2, 0, 1})); }},
      {"min dim of a permuted view", [](auto& t) { return min(permute(t[0], {2, 0, 1}), 1).first; }},
  };
  for (int64_t d : {0, 1, 2, -1})
    for (bool keepdim : {false, true}) {
      std::string tag = " dim " + std::to_string(d) + (keepdim ? " keepdim" : "");
      fns.push_back({"max" + tag, [d, keepdim](auto& t) { return max(t[0], d, keepdim).first; }});
      fns.push_back({"min" + tag, [d, keepdim](auto& t) { return min(t[0], d, keepdim).first; }});
    }
  for (auto& [name, fn] : fns) {
    SECTION(name) { REQUIRE(autograd::gradcheck(fn, {x})); }
  }
  SECTION("the gradient lands on the extreme element only") {
    // max is 23 * 0.25 - 3 where 7 i = 23 mod 24: i = 17 (7 * 17 = 119 = 4 * 24 + 23); min (0) at i = 0.
    Tensor g_max = autograd::grad({max(x)}, {x})[0], g_min = autograd::grad({min(x)}, {x})[0];
    std::vector<double> want_max(24, 0.0), want_min(24, 0.0);
    want_max[17] = 1, want_min[0] = 1;
    CHECK(g_max.to_vector<double>() == want_max);
    CHECK(g_min.to_vector<double>() == want_min);
    // Along dim 2: one 1 per row of 4, at the reference loop's arg max.
    Tensor g_dim = autograd::grad({sum(max(x, 2).first)}, {x})[0];
    std::vector<double> want_dim(24, 0.0);
    for (int64_t r = 0; r < 6; ++r) {
      int64_t best = r * 4;
      for (int64_t k = r * 4; k < r * 4 + 4; ++k)
        if (v[k] > v[best]) best = k;
      want_dim[best] = 1;
    }
    CHECK(g_dim.to_vector<double>() == want_dim);
  }
}

// A float32 sum over leading dims (a bias gradient) runs on ISA copies (Note [Column sums] in
// kernels/reduce.cpp): each column must still be the double sum of its rows in row order, rounded
// once, to the bit; widths off the vector length and a [3, 5, K] input reduced over {0, 1} included.
TEST_CASE("float32 column sums are the row-ordered double sums", "[reduce]") {
  for (int64_t k : {1, 7, 37, 192}) {
    const int64_t rows = 15;
    Tensor x = randn({3, 5, k});
    std::vector<float> v = x.to_vector<float>();
    std::vector<float> want(static_cast<size_t>(k));
    for (int64_t c = 0; c < k; ++c) {
      double acc = 0;
      for (int64_t r = 0; r < rows; ++r) acc += static_cast<double>(v[r * k + c]);
      want[c] = static_cast<float>(acc);
    }
    CHECK(sum(x, {0, 1}).to_vector<float>() == want);
    CHECK(sum(reshape(x, {rows, k}), {0}).to_vector<float>() == want);
  }
}
