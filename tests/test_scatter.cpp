// test_scatter: scatter, scatter_add, scatter_reduce, index_fill, index_copy, masked_select,
// masked_scatter, nonzero and unique against loops written out here and values PyTorch 1.13 gives
// (worked cases copied from it), errors, and gradcheck in float64.
#include <catch2/catch.hpp>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "framework/generator.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

Tensor f64(std::vector<double> v, const Shape& shape) { return from_vector<double>(v, shape); }
Tensor i64(std::vector<int64_t> v, const Shape& shape) { return from_vector<int64_t>(v, shape); }
using V = std::vector<double>;

}  // namespace

TEST_CASE("scatter and scatter_add follow their definition", "[scatter]") {
  // out[index[i][j]][j] = src[i][j] (dim 0), out[i][index[i][j]] = src[i][j] (dim 1): a loop.
  Tensor x = zeros({3, 4}, kFloat64);
  Tensor index = i64({2, 0, 1, 2, 0, 1, 0, 0}, {2, 4});
  Tensor src = f64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4});  // larger than index: allowed
  auto vi = index.to_vector<int64_t>();
  auto vs = src.to_vector<double>();
  for (int64_t dim : {0, 1}) {
    std::vector<double> want(12, 0.0), want_add(12, 0.0);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        int64_t r = dim == 0 ? vi[i * 4 + j] : i, c = dim == 0 ? j : vi[i * 4 + j];
        want[r * 4 + c] = vs[i * 4 + j];
        want_add[r * 4 + c] += vs[i * 4 + j];
      }
    if (dim == 1) {  // repeated targets in a row: the last write wins in the loop; check scatter_add only
      CHECK(scatter_add(x, dim, index, src).to_vector<double>() == want_add);
      continue;
    }
    CHECK(scatter(x, dim, index, src).to_vector<double>() == want);
    CHECK(scatter_add(x, dim, index, src).to_vector<double>() == want_add);
  }
  CHECK(scatter(zeros({2, 2}), 1, i64({1, 0}, {2, 1}), 7).to_vector<float>() == std::vector<float>{0, 7, 7, 0});
  WEFT_REQUIRE_ERROR(scatter(x, 0, i64({3}, {1, 1}), src), Contains("scatter") && Contains("out of bounds"));
  WEFT_REQUIRE_ERROR(scatter(x, 0, i64({0}, {1}), src), Contains("scatter") && Contains("as many dims"));
  WEFT_REQUIRE_ERROR(scatter(x, 0, index.to(kFloat64), src), Contains("int64"));
  WEFT_REQUIRE_ERROR(scatter_add(x, 0, index, src.to(kFloat32)), Contains("scatter_add") && Contains("dtype"));
  WEFT_REQUIRE_ERROR(scatter(x, 1, i64({0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {2, 5}), src),
                     Contains("no larger than src"));
}

TEST_CASE("scatter_reduce matches PyTorch 1.13", "[scatter]") {
  Tensor x = f64({1, 2, 3, 4}, {4}), src = f64({5, 1, 7, 2, 3}, {5}), idx = i64({0, 1, 0, 1, 2}, {5});
  auto run = [&](const char* reduce, bool self) { return scatter_reduce(x, 0, idx, src, reduce, self).to_vector<double>(); };
  CHECK(run("sum", true) == V{13, 5, 6, 4});
  CHECK(run("sum", false) == V{12, 3, 3, 4});
  CHECK(run("amax", true) == V{7, 2, 3, 4});
  CHECK(run("amin", true) == V{1, 1, 3, 4});
  CHECK(run("amin", false) == V{5, 1, 3, 4});
  CHECK(run("prod", true) == V{35, 4, 9, 4});
  CHECK(run("prod", false) == V{35, 2, 3, 4});
  auto mean = run("mean", true);
  CHECK(mean[0] == Approx(13.0 / 3));
  CHECK(run("mean", false) == V{6, 1.5, 3, 4});
  // Integers: torch's mean floors.
  CHECK(scatter_reduce(i64({1, 2}, {2}), 0, i64({0, 0}, {2}), i64({2, 3}, {2}), "mean").to_vector<int64_t>() ==
        std::vector<int64_t>{2, 2});
  WEFT_REQUIRE_ERROR(scatter_reduce(x, 0, idx, src, "max"), Contains("scatter_reduce") && Contains("amax"));

  SECTION("gradients: torch's tie rule, and finite differences") {
    Tensor xs = x.clone(), ss = src.clone();
    xs.requires_grad_(), ss.requires_grad_();
    Tensor w = f64({1, 2, 3, 4}, {4});
    auto grads = [&](const char* reduce, bool self) {
      auto g = autograd::grad({sum(mul(scatter_reduce(xs, 0, idx, ss, reduce, self), w))}, {xs, ss});
      return std::pair<V, V>{g[0].to_vector<double>(), g[1].to_vector<double>()};
    };
    CHECK(grads("sum", true) == std::pair<V, V>{V{1, 2, 3, 4}, V{1, 2, 1, 2, 3}});
    CHECK(grads("sum", false) == std::pair<V, V>{V{0, 0, 0, 4}, V{1, 2, 1, 2, 3}});
    CHECK(grads("amax", true) == std::pair<V, V>{V{0, 1, 1.5, 4}, V{0, 0, 1, 1, 1.5}});  // ties share evenly
    CHECK(grads("amin", true) == std::pair<V, V>{V{1, 0, 1.5, 4}, V{0, 2, 0, 0, 1.5}});
    auto [gm, gms] = grads("mean", true);
    test::require_within(gm, V{1.0 / 3, 2.0 / 3, 1.5, 4}, [](size_t) { return 1e-15; });
    test::require_within(gms, V{1.0 / 3, 2.0 / 3, 1.0 / 3, 2.0 / 3, 1.5}, [](size_t) { return 1e-15; });
    // Without include_self, x's value takes no part where an index reached, so the ties are among src
    // alone: src[3] and src[4] get the whole gradient (PyTorch 1.13 still halves them; finite
    // differences below side with weft).
    CHECK(grads("amax", false) == std::pair<V, V>{V{0, 0, 0, 4}, V{0, 0, 1, 2, 3}});
    Tensor a = f64({0.3, -1.2, 2.5, 0.9}, {4}), b = f64({1.1, -0.4, 2.2, 0.7, 1.9, -2.3}, {6});
    Tensor bi = i64({0, 1, 0, 1, 2, 2}, {6});
    a.requires_grad_(), b.requires_grad_();
    for (const char* reduce : {"sum", "mean", "amax", "amin"})
      for (bool self : {true, false}) {
        INFO(reduce << " include_self=" << self);
        CHECK(autograd::gradcheck([&](auto& v) { return scatter_reduce(v[0], 0, bi, v[1], reduce, self); }, {a, b}));
      }
    // prod: each factor's gradient is the product of the others, a lone zero factor included (the
    // product is linear in each factor, so finite differences are exact there too).
    Tensor z = f64({1.1, 0.0, 2.2, 0.7, 1.9, -2.3}, {6});
    z.requires_grad_();
    for (bool self : {true, false}) {
      INFO("prod include_self=" << self);
      auto prod = [&](auto& v) { return scatter_reduce(v[0], 0, bi, v[1], "prod", self); };
      CHECK(autograd::gradcheck(prod, {a, b}));
      CHECK(autograd::gradcheck(prod, {a, z}));
    }
  }
}

TEST_CASE("index_fill, index_copy, masked_select, masked_scatter", "[scatter]") {
  Tensor m = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(index_fill(m, 1, i64({0, 2}, {2}), -1).to_vector<double>() == V{-1, 2, -1, -1, 5, -1});
  CHECK(index_copy(m, 0, i64({1}, {1}), f64({7, 8, 9}, {1, 3})).to_vector<double>() == V{1, 2, 3, 7, 8, 9});
  CHECK(index_copy(m, 1, i64({2, 0}, {2}), f64({10, 20, 30, 40}, {2, 2})).to_vector<double>() ==
        V{20, 2, 10, 40, 5, 30});
  Tensor mask = from_vector<bool>({true, false, true}, {3});  // broadcast over rows
  CHECK(masked_select(m, mask).to_vector<double>() == V{1, 3, 4, 6});
  CHECK(masked_scatter(m, mask, f64({10, 20, 30, 40, 50}, {5})).to_vector<double>() == V{10, 2, 20, 30, 5, 40});
  WEFT_REQUIRE_ERROR(masked_scatter(m, mask, f64({1}, {1})), Contains("masked_scatter") && Contains("4 true"));
  WEFT_REQUIRE_ERROR(index_copy(m, 0, i64({1}, {1}), f64({7, 8}, {1, 2})), Contains("index_copy") && Contains("[1, 3]"));
  WEFT_REQUIRE_ERROR(index_fill(m, 0, i64({2}, {1}), 0), Contains("index_fill") && Contains("out of bounds"));
  WEFT_REQUIRE_ERROR(masked_select(m, mask.to(kInt64)), Contains("masked_select") && Contains("bool"));

  SECTION("gradcheck") {
    Tensor x = f64({0.1, -0.7, 1.3, 0.4, -1.1, 0.8}, {2, 3}), s = f64({0.5, -0.2, 0.9, 1.4}, {2, 2});
    x.requires_grad_(), s.requires_grad_();
    Tensor idx = i64({2, 0}, {2});
    CHECK(autograd::gradcheck([&](auto& v) { return index_copy(v[0], 1, idx, v[1]); }, {x, s}));
    CHECK(autograd::gradcheck([&](auto& v) { return index_fill(v[0], 1, idx, 3.0); }, {x}));
    CHECK(autograd::gradcheck([&](auto& v) { return masked_select(v[0], mask); }, {x}));
    Tensor source = f64({0.3, 0.6, -0.9, 1.2, 2.0}, {5});
    source.requires_grad_();
    CHECK(autograd::gradcheck([&](auto& v) { return masked_scatter(v[0], mask, v[1]); }, {x, source}));
    Tensor index = i64({1, 0, 1, 0, 1, 0}, {2, 3});  // no position written twice
    Tensor src = f64({0.2, 0.4, 0.6, 0.8, 1.0, 1.2}, {2, 3});
    src.requires_grad_();
    CHECK(autograd::gradcheck([&](auto& v) { return scatter(v[0], 0, index, v[1]); }, {x, src}));
    CHECK(autograd::gradcheck([&](auto& v) { return scatter_add(v[0], 0, index, v[1]); }, {x, src}));
    CHECK(autograd::gradcheck([&](auto& v) { return scatter(v[0], 1, i64({2, 0}, {2, 1}), -1.0); }, {x}));
  }
}

TEST_CASE("nonzero and unique", "[scatter]") {
  Tensor x = from_vector<int64_t>({0, 1, 2, 0}, {2, 2});
  CHECK(nonzero(x).shape() == Shape{2, 2});
  CHECK(nonzero(x).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 0});
  CHECK(nonzero(zeros({3})).shape() == Shape{0, 1});
  CHECK(nonzero(full({}, 2.0)).shape() == Shape{1, 0});
  auto u = unique(from_vector<int64_t>({3, 1, 3, 2, 1}, {5}), true, true);
  CHECK(u.values.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  CHECK(u.inverse.to_vector<int64_t>() == std::vector<int64_t>{2, 0, 2, 1, 0});
  CHECK(u.counts.to_vector<int64_t>() == std::vector<int64_t>{2, 1, 2});
  auto plain = unique(f64({2.5, -1, 2.5}, {3}));
  CHECK(plain.values.to_vector<double>() == V{-1, 2.5});
  CHECK(!plain.inverse.defined());
  CHECK(unique(zeros({0})).values.shape() == Shape{0});
  auto shaped = unique(from_vector<int64_t>({4, 4, 5, 4}, {2, 2}), true);
  CHECK(shaped.inverse.shape() == Shape{2, 2});
}
