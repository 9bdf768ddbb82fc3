// test_sorting: sort, argsort, topk, kthvalue, median, cumsum, cumprod and logcumsumexp against plain
// loops over each lane (std::stable_sort, running sums), torch's NaN rules worked by hand, errors,
// and gradcheck in float64.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "framework/generator.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

Tensor sample(const Shape& shape, uint64_t seed, DType dt = kFloat64) {
  Generator gen(seed);
  return add(mul(rand(shape, dt, &gen), 10.0), -5.0);
}

// The lanes of a [a, b, c] tensor along dim 1, read as vectors (index order of the other two dims).
std::vector<std::vector<double>> lanes_dim1(const Tensor& x) {
  auto v = x.to_vector<double>();
  int64_t a = x.size(0), b = x.size(1), c = x.size(2);
  std::vector<std::vector<double>> out;
  for (int64_t i = 0; i < a; ++i)
    for (int64_t k = 0; k < c; ++k) {
      std::vector<double> lane;
      for (int64_t j = 0; j < b; ++j) lane.push_back(v[(i * b + j) * c + k]);
      out.push_back(lane);
    }
  return out;
}

}  // namespace

TEST_CASE("sort and argsort match std::stable_sort lane by lane", "[sorting]") {
  Tensor x = sample({3, 7, 4}, 1);
  for (bool descending : {false, true}) {
    auto [values, indices] = sort(x, 1, descending);
    REQUIRE(values.shape() == x.shape());
    REQUIRE(indices.dtype() == kInt64);
    auto got_v = lanes_dim1(values), got_i = lanes_dim1(indices.to(kFloat64)), in = lanes_dim1(x);
    for (size_t l = 0; l < in.size(); ++l) {
      std::vector<int64_t> order(in[l].size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return descending ? in[l][a] > in[l][b] : in[l][a] < in[l][b];
      });
      for (size_t j = 0; j < order.size(); ++j) {
        REQUIRE(got_i[l][j] == order[j]);
        REQUIRE(got_v[l][j] == in[l][order[j]]);
      }
    }
    REQUIRE(equal(argsort(x, 1, descending), indices));
  }
  // A strided input (a transposed view) sorts as its values do.
  Tensor t = x.transpose(0, 2);
  REQUIRE(equal(sort(t, 1).first, sort(t.contiguous(), 1).first));
}

TEST_CASE("sorting hand-worked: ties, NaN, integers, 0-dim and empty", "[sorting]") {
  Tensor x = tensor({2, NAN, 1, 2}, {4}, kFloat64);
  auto [d, di] = sort(x, 0, true);  // NaN first descending; ties keep their order
  CHECK(std::isnan(d.to_vector<double>()[0]));
  CHECK(di.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 3, 2});
  CHECK(sort(x).second.to_vector<int64_t>() == std::vector<int64_t>{2, 0, 3, 1});
  auto [m, mi] = median(tensor({3, NAN, 1}, {3}, kFloat64), 0);
  CHECK(std::isnan(m.item<double>()));
  CHECK(mi.item<int64_t>() == 1);
  CHECK(std::isnan(kthvalue(tensor({3, NAN, 1}, {3}, kFloat64), 3).first.item<double>()));
  CHECK(kthvalue(tensor({3, NAN, 1}, {3}, kFloat64), 2).first.item<double>() == 3);
  CHECK(median(tensor({4, 1, 3, 2}, {4}, kFloat64)).item<double>() == 2);  // the lower median
  CHECK(std::isnan(median(zeros({0})).item<float>()));
  Tensor i = from_vector<int64_t>({1, 5, 3}, {3});
  auto [small, small_i] = topk(i, 2, -1, false);
  CHECK(small.to_vector<int64_t>() == std::vector<int64_t>{1, 3});
  CHECK(small_i.to_vector<int64_t>() == std::vector<int64_t>{0, 2});
  CHECK(topk(i, 2).first.to_vector<int64_t>() == std::vector<int64_t>{5, 3});
  CHECK(topk(i, 0).first.shape() == Shape{0});
  auto [s0, i0] = sort(full({}, 3.0));
  CHECK(s0.dim() == 0);
  CHECK(i0.item<int64_t>() == 0);
  CHECK(sort(zeros({2, 0}), 1).first.shape() == Shape{2, 0});
  auto [mv, mvi] = median(tensor({5, 1, 4, 2, 8, 3}, {2, 3}, kFloat64), 1, true);
  CHECK(mv.shape() == Shape{2, 1});
  CHECK(mv.to_vector<double>() == std::vector<double>{4, 3});
  CHECK(mvi.to_vector<int64_t>() == std::vector<int64_t>{2, 2});
  CHECK(kthvalue(tensor({5, 1, 4, 2, 8, 3}, {2, 3}, kFloat64), 1, 0).first.to_vector<double>() ==
        std::vector<double>{2, 1, 3});
}

TEST_CASE("sorting errors", "[sorting]") {
  Tensor x = zeros({2, 3});
  WEFT_REQUIRE_ERROR(sort(x, 2), Contains("sort") && Contains("dim"));
  WEFT_REQUIRE_ERROR(topk(x, 4), Contains("topk") && Contains("[0, 3]") && Contains("4"));
  WEFT_REQUIRE_ERROR(kthvalue(x, 0), Contains("kthvalue") && Contains("[1, 3]"));
  WEFT_REQUIRE_ERROR(median(zeros({0, 3}), 0), Contains("median") && Contains("non-zero size"));
  WEFT_REQUIRE_ERROR(logcumsumexp(from_vector<int64_t>({1}, {1}), 0), Contains("logcumsumexp") && Contains("int64"));
  WEFT_REQUIRE_ERROR(cumsum(x, -3), Contains("cumsum"));
}

TEST_CASE("sorting gradients", "[sorting][grad]") {
  Tensor x = sample({3, 5}, 7);  // distinct values: the picks do not jump under the finite differences
  x.requires_grad_();
  CHECK(autograd::gradcheck([](auto& v) { return sort(v[0], 1).first; }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return sort(v[0], 0, true).first; }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return topk(v[0], 2, 1).first; }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return kthvalue(v[0], 2, 0, true).first; }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return median(v[0], 1).first; }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return median(v[0]); }, {x}));
  Tensor s = full({}, 2.0, kFloat64);
  s.requires_grad_();
  sum(mul(sort(s).first, 3.0)).backward();
  CHECK(s.grad().item<double>() == 3);
}

TEST_CASE("cumsum, cumprod and logcumsumexp match running loops", "[scans]") {
  Tensor x = sample({3, 6, 2}, 11);
  auto in = lanes_dim1(x), sums = lanes_dim1(cumsum(x, 1)), prods = lanes_dim1(cumprod(x, 1)),
       lses = lanes_dim1(logcumsumexp(x, 1));
  for (size_t l = 0; l < in.size(); ++l) {
    double s = 0, p = 1, lse = -INFINITY;
    for (size_t j = 0; j < in[l].size(); ++j) {
      s += in[l][j], p *= in[l][j];
      lse = std::log(std::exp(lse) + std::exp(in[l][j]));
      CHECK(sums[l][j] == Approx(s).epsilon(1e-14));
      CHECK(prods[l][j] == Approx(p).epsilon(1e-13));
      CHECK(lses[l][j] == Approx(lse).epsilon(1e-13));
    }
  }
  // Integers and bool accumulate in int64; big exponents do not overflow; -inf and inf stay.
  CHECK(cumsum(from_vector<bool>({true, true, false}, {3}), 0).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 2});
  CHECK(cumprod(from_vector<int64_t>({2, 3, 4}, {3}), 0).to_vector<int64_t>() == std::vector<int64_t>{2, 6, 24});
  auto big = logcumsumexp(tensor({1000, 1000}, {2}, kFloat64), 0).to_vector<double>();
  CHECK(big[1] == Approx(1000 + std::log(2.0)).epsilon(1e-15));
  auto inf = logcumsumexp(tensor({-INFINITY, 0, INFINITY, INFINITY}, {4}, kFloat64), 0).to_vector<double>();
  CHECK(inf == std::vector<double>{-INFINITY, 0, INFINITY, INFINITY});
  CHECK(cumsum(full({}, 2.0), 0).item<float>() == 2);
  CHECK(cumsum(zeros({0, 3}), 0).shape() == Shape{0, 3});
}

TEST_CASE("scan gradients, zeros in cumprod included", "[scans][grad]") {
  Tensor x = sample({3, 5}, 13);
  x.requires_grad_();
  CHECK(autograd::gradcheck([](auto& v) { return cumsum(v[0], 1); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return cumprod(v[0], 1); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return cumprod(v[0], 0); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return logcumsumexp(v[0], 1); }, {x}));
  // One zero, two zeros, a zero first and last: cumprod's gradient is exact there too.
  Tensor z = tensor({2, 0, 3, -1.5, 0, 4, 0, 1.5, 2, 0.5, -2, 0}, {3, 4}, kFloat64);
  z.requires_grad_();
  CHECK(autograd::gradcheck([](auto& v) { return cumprod(v[0], 1); }, {z}));
  // Hand-worked: cumprod([2, 0, 3]) = [2, 0, 0]; with g = [1, 1, 1], dx0 = 1 + 0 + 0, dx1 = 2 + 2*3, dx2 = 0.
  Tensor h = tensor({2, 0, 3}, {3}, kFloat64);
  h.requires_grad_();
  sum(cumprod(h, 0)).backward();
  CHECK(h.grad().to_vector<double>() == std::vector<double>{1, 8, 0});
}
