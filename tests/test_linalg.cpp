// test_linalg: mm/bmm/matmul/addmm/linear/outer against a naive triple loop and hand-worked numbers,
// oneDNN float32 against the float64 reference path (strided, broadcast, zero-size), errors,
// gradchecks, the primitive cache, and transposed operands read in place (allocator counts). The
// seeded sweep of shapes and layouts is in test_float32_sweeps.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

#include "autograd/gradcheck.h"
#include "framework/allocator.h"
#include "framework/factories.h"
#include "kernels/onednn.h"
#include "kernels/matmul.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"
#include "tests/test_util.h"

using namespace weft;
using test::require_error;
using VL = autograd::variable_list;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// c[i][j] = sum_k a[i][k] b[k][j] over row-major vectors (one matrix of a batch).
std::vector<double> naive_mm(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k,
                             int64_t n, int64_t a_off = 0, int64_t b_off = 0) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) c[i * n + j] += a[a_off + i * k + p] * b[b_off + p * n + j];
  return c;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
}

Tensor leaf64(const Shape& shape) { return randn(shape, dtype(kFloat64).requires_grad()); }

}  // namespace

TEST_CASE("mm: hand-worked numbers and the reference loop for every numeric dtype", "[linalg]") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2}), b = tensor({5, 6, 7, 8}, {2, 2});
  CHECK(values(mm(a, b)) == std::vector<double>{19, 22, 43, 50});
  CHECK(values(mm(a.to(kFloat64), b.to(kFloat64))) == std::vector<double>{19, 22, 43, 50});
  CHECK(mm(a.to(kInt64), b.to(kInt64)).to_vector<int64_t>() == std::vector<int64_t>{19, 22, 43, 50});
  manual_seed(3);
  Tensor x = randint(-5, 5, {7, 300}), y = randint(-5, 5, {300, 9});  // crosses the k blocking
  CHECK(values(mm(x, y)) == naive_mm(values(x), values(y), 7, 300, 9));
  Tensor xd = randn({33, 17}, kFloat64), yd = randn({17, 600}, kFloat64);  // crosses the n blocking
  check_close(values(mm(xd, yd)), naive_mm(values(xd), values(yd), 33, 17, 600), 1e-12);
  SECTION("a column-major right operand: dot products of rows, read in place") {
    Tensor w = randn({9, 300}, kFloat64), bias = randn({9}, kFloat64);  // linear's W^T is column-major
    Tensor wt = transpose(w, 0, 1);
    Tensor xr = randn({7, 300}, kFloat64);
    const std::vector<double> want = naive_mm(values(xr), values(contiguous(wt)), 7, 300, 9);
    check_close(values(mm(xr, wt)), want, 1e-12);
    std::vector<double> with_bias = want, bv = values(bias);
    for (size_t i = 0; i < with_bias.size(); ++i) with_bias[i] += bv[i % 9];
    check_close(values(linear(xr, w, bias)), with_bias, 1e-12);
    Tensor wi = randint(-5, 5, {9, 300}), xi = randint(-5, 5, {7, 300});  // int64: exact
    CHECK(values(mm(xi, transpose(wi, 0, 1))) ==
          naive_mm(values(xi), values(contiguous(transpose(wi, 0, 1))), 7, 300, 9));
    Tensor pair = stack({xr, xr});  // batched, the right operand broadcast
    CHECK(values(matmul(pair, wt)) == [&] {
      std::vector<double> twice = values(mm(xr, wt));
      twice.insert(twice.end(), twice.begin(), twice.end());
      return twice;
    }());
  }
}

TEST_CASE("oneDNN float32 matches the float64 reference on strided operands", "[linalg]") {
  manual_seed(7);
  struct Case { int64_t m, k, n; };
  // The small cases take the plain loop (kernels::bmm sends products under 16^3 there); the others
  // reach oneDNN, including its degenerate shapes (one row, k = 1).
  for (Case c : {Case{1, 1, 1}, Case{5, 3, 7}, Case{64, 33, 17}, Case{2, 129, 1}, Case{1, 8, 40},
                 Case{2, 129, 17}, Case{1, 64, 80}, Case{70, 1, 90}}) {
    CAPTURE(c.m, c.k, c.n);
    Tensor a = randn({c.m, c.k}), b = randn({c.k, c.n});
    Tensor at = transpose(randn({c.k, c.m}), 0, 1), bt = transpose(randn({c.n, c.k}), 0, 1);
    Tensor a_strided = narrow(randn({c.m, c.k + 3}), 1, 2, c.k);  // row stride > k
    for (const auto& [lhs, rhs] : std::vector<std::pair<Tensor, Tensor>>{{a, b}, {at, b}, {a, bt}, {at, bt},
                                                                         {a_strided, bt}}) {
      Tensor got = mm(lhs, rhs);
      REQUIRE(got.dtype() == kFloat32);
      check_close(values(got), values(mm(lhs.to(kFloat64), rhs.to(kFloat64))), 1e-4);
    }
  }
  SECTION("operands with no unit stride are copied, not misread") {
    Tensor a = as_strided(randn({40}), {3, 4}, {8, 2}, 1), b = randn({4, 2});
    check_close(values(mm(a, b)), naive_mm(values(a), values(b), 3, 4, 2), 1e-5);
    Tensor big = as_strided(randn({2000}), {30, 20}, {64, 3}, 1), b2 = randn({20, 16});  // oneDNN-sized
    check_close(values(mm(big, b2)), naive_mm(values(big), values(b2), 30, 20, 16), 1e-4);
  }
}

TEST_CASE("matmul follows torch.matmul's rules", "[linalg]") {
  manual_seed(11);
  SECTION("1-D and 2-D operands") {
    Tensor v = tensor({1, 2, 3}), w = tensor({4, 5, 6});
    Tensor dot = matmul(v, w);
    CHECK(dot.dim() == 0);
    CHECK(dot.item<double>() == 32.0);
    Tensor m = tensor({1, 0, 2, 0, 1, 0}, {2, 3});
    CHECK(values(matmul(m, v)) == std::vector<double>{7, 2});
    CHECK(values(matmul(tensor({1, 1}), m)) == std::vector<double>{1, 1, 2});
  }
  SECTION("a stack of matrices times a matrix or a vector") {
    Tensor a = randn({2, 3, 4}, kFloat64), b = randn({4, 5}, kFloat64), v = randn({4}, kFloat64);
    Tensor y = matmul(a, b);
    CHECK(y.shape() == Shape{2, 3, 5});
    check_close(values(y), naive_mm(values(a), values(b), 6, 4, 5), 1e-12);
    CHECK(matmul(a, v).shape() == Shape{2, 3});
    check_close(values(matmul(a, v)), naive_mm(values(a), values(v), 6, 4, 1), 1e-12);
  }
  SECTION("broadcast batch dims, float32 against float64") {
    Tensor a = randn({2, 1, 3, 4}), b = randn({5, 4, 2});
    Tensor y = matmul(a, b);
    REQUIRE(y.shape() == Shape{2, 5, 3, 2});
    std::vector<double> av = values(a), bv = values(b), yv = values(y);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 5; ++j) {
        std::vector<double> want = naive_mm(av, bv, 3, 4, 2, i * 12, j * 8);
        std::vector<double> got(yv.begin() + (i * 5 + j) * 6, yv.begin() + (i * 5 + j + 1) * 6);
        check_close(got, want, 1e-5);
      }
    Tensor v = randn({3});
    CHECK(matmul(v, randn({4, 3, 2})).shape() == Shape{4, 2});
    CHECK(matmul(randn({4, 2, 3}), transpose(randn({4, 5, 3}), 1, 2)).shape() == Shape{4, 2, 5});
  }
  SECTION("zero-size operands") {
    CHECK(matmul(randn({0, 3}), randn({3, 4})).shape() == Shape{0, 4});
    Tensor z = matmul(randn({2, 0}), randn({0, 3}));
    CHECK(values(z) == std::vector<double>(6, 0.0));
    CHECK(matmul(randn({0, 2, 3}), randn({3, 4})).shape() == Shape{0, 2, 4});
    CHECK(values(bmm(randn({3, 2, 0}), randn({3, 0, 4}))) == std::vector<double>(24, 0.0));
    CHECK(values(mm(randn({2, 0}, kFloat64), randn({0, 2}, kFloat64))) == std::vector<double>(4, 0.0));
    CHECK(values(linear(randn({2, 0}), randn({3, 0}), tensor({1, 2, 3}))) == std::vector<double>{1, 2, 3, 1, 2, 3});
    // 1-D operands of length 0: an empty dot product is 0.
    Tensor dot = matmul(randn({0}), randn({0}));
    CHECK(dot.dim() == 0);
    CHECK(dot.item<double>() == 0.0);
    CHECK(values(matmul(randn({3, 0}), randn({0}))) == std::vector<double>(3, 0.0));
    // A zero inner dim at a size that would otherwise take oneDNN, and zero outer dims of every kind.
    CHECK(values(mm(randn({64, 0}), randn({0, 80}))) == std::vector<double>(64 * 80, 0.0));
    CHECK(values(addmm(tensor({1, 2}), randn({3, 0}), randn({0, 2}))) ==
          std::vector<double>{1, 2, 1, 2, 1, 2});
    CHECK(mm(randn({0, 64}), randn({64, 64})).shape() == Shape{0, 64});
    CHECK(mm(randn({64, 64}), randn({64, 0})).shape() == Shape{64, 0});
    CHECK(bmm(randn({0, 2, 3}), randn({0, 3, 4})).shape() == Shape{0, 2, 4});
    CHECK(matmul(randn({2, 0, 3}), randn({2, 3, 4})).shape() == Shape{2, 0, 4});
    CHECK(linear(randn({0, 4}), randn({3, 4})).shape() == Shape{0, 3});
    CHECK(linear(randn({2, 0, 4}), randn({3, 4}), randn({3})).shape() == Shape{2, 0, 3});
  }
  SECTION("zero-size backward: empty gradients keep their shapes, the others are zeros") {
    for (DType dt : {kFloat32, kFloat64}) {
      CAPTURE(dtype_name(dt));
      auto leaf = [dt](const Shape& shape) { return randn(shape, dtype(dt).requires_grad()); };
      Tensor a = leaf({3, 0}), b = leaf({0, 4});  // K = 0
      Tensor y = mm(a, b);
      CHECK(values(y) == std::vector<double>(12, 0.0));
      sum(y).backward();
      CHECK(a.grad().shape() == Shape{3, 0});
      CHECK(b.grad().shape() == Shape{0, 4});
      Tensor a0 = leaf({0, 3}), b0 = leaf({3, 4});  // M = 0: nothing reaches b
      sum(matmul(a0, b0)).backward();
      CHECK(a0.grad().shape() == Shape{0, 3});
      CHECK(values(b0.grad()) == std::vector<double>(12, 0.0));
      Tensor a1 = leaf({2, 3}), b1 = leaf({3, 0});  // N = 0: nothing reaches a
      sum(matmul(a1, b1)).backward();
      CHECK(values(a1.grad()) == std::vector<double>(6, 0.0));
      CHECK(b1.grad().shape() == Shape{3, 0});
      Tensor x = leaf({2, 0}), w = leaf({3, 0}), bias = leaf({3});  // linear with in = 0: y is the bias
      sum(linear(x, w, bias)).backward();
      CHECK(values(bias.grad()) == std::vector<double>{2, 2, 2});
      CHECK(x.grad().shape() == Shape{2, 0});
      CHECK(w.grad().shape() == Shape{3, 0});
      Tensor xr = leaf({0, 4}), wr = leaf({3, 4}), br = leaf({3});  // no rows
      sum(linear(xr, wr, br)).backward();
      CHECK(values(wr.grad()) == std::vector<double>(12, 0.0));
      CHECK(values(br.grad()) == std::vector<double>(3, 0.0));
      Tensor ba = leaf({2, 0, 3}), bb = leaf({2, 3, 4});
      sum(bmm(ba, bb)).backward();
      CHECK(values(bb.grad()) == std::vector<double>(24, 0.0));
    }
  }
  SECTION("errors name the op, the shapes or dtypes given and what was expected") {
    require_error([] { mm(randn({2, 3}), randn({2, 3})); },
                  "mm: the shapes [2, 3] and [2, 3] cannot be multiplied (3 != 2)");
    require_error([] { mm(randn({2, 3}), randn({3, 2}, kFloat64)); },
                  "mm: expected both operands to have the same dtype but got float32 and float64");
    require_error([] { mm(randn({3}), randn({3, 2})); },
                  "mm: expected two 2-D matrices but got shapes [3] and [3, 2]");
    require_error([] { mm(zeros({2, 2}, kBool), zeros({2, 2}, kBool)); },
                  "mm: expected numeric operands but got bool");
    require_error([] { bmm(randn({2, 2, 3}), randn({3, 3, 2})); },
                  "bmm: the shapes [2, 2, 3] and [3, 3, 2] cannot be multiplied "
                  "(expected [B, M, K] and [B, K, N])");
    require_error([] { bmm(randn({2, 2, 3}), randn({2, 4, 2})); },
                  "bmm: the shapes [2, 2, 3] and [2, 4, 2] cannot be multiplied");
    require_error([] { bmm(randn({2, 3}), randn({3, 2})); },
                  "bmm: expected two 3-D tensors but got shapes [2, 3] and [3, 2]");
    require_error([] { bmm(randn({2, 2, 3}), randn({2, 3, 2}, kFloat64)); },
                  "bmm: expected both operands to have the same dtype but got float32 and float64");
    require_error([] { matmul(randn({3}), randn({4})); },
                  "matmul: the shapes [3] and [4] cannot be multiplied (3 != 4)");
    require_error([] { matmul(randn({2, 3}), randn({4})); },
                  "matmul: the shapes [2, 3] and [4] cannot be multiplied (3 != 4)");
    require_error([] { matmul(randn({3}), randn({4, 2})); },
                  "matmul: the shapes [3] and [4, 2] cannot be multiplied (3 != 4)");
    require_error([] { matmul(scalar_tensor(1.0), randn({2})); },
                  "matmul: both operands need at least 1 dim but got shapes [] and [2]");
    require_error([] { matmul(randn({2, 3, 4}), randn({2, 5, 2})); },
                  "matmul: the shapes [2, 3, 4] and [2, 5, 2] cannot be multiplied (4 != 5)");
    require_error([] { matmul(randn({3, 2, 4}), randn({2, 4, 2})); },
                  "matmul: shapes [3] and [2] are not broadcastable");
    require_error([] { matmul(randn({2, 3}), randn({3}, kFloat64)); },
                  "matmul: expected both operands to have the same dtype but got float32 and float64");
    require_error([] { matmul(randn({2, 2, 3}, kFloat64), randn({2, 3, 2})); },
                  "matmul: expected both operands to have the same dtype but got float64 and float32");
    require_error([] { linear(randn({2, 3}), randn({4, 2})); },
                  "linear: the input's last dim is 3 (shape [2, 3]) but the weight of shape [4, 2] "
                  "expects 2");
    require_error([] { linear(randn({2, 3}), randn({4, 3}), randn({3})); },
                  "linear: expected a bias of shape [4] but got [3]");
    require_error([] { linear(randn({2, 3}), randn({4, 3}, kFloat64)); },
                  "linear: expected both operands to have the same dtype but got float32 and float64");
    require_error([] { linear(randn({2, 3}), randn({4, 3}), randn({4}, kFloat64)); },
                  "linear: expected the bias to have dtype float32 but got float64");
    require_error([] { linear(randn({2, 3}), randn({4})); },  // a 1-D weight is one output feature
                  "linear: the input of shape [2, 3] does not match the 1-D weight of shape [4]");
    require_error([] { linear(randn({2, 3}), randn({3}), randn({1})); },
                  "linear: a 1-D weight takes no bias (as torch's)");
    require_error([] { linear(scalar_tensor(1.0), randn({4, 1})); },
                  "linear: expected an input of at least 1 dim and a 2-D weight but got shapes [] "
                  "and [4, 1]");
    require_error([] { addmm(randn({3}), randn({2, 2}), randn({2, 2})); },
                  "addmm: the input of shape [3] cannot be broadcast to the product's shape [2, 2]");
    require_error([] { addmm(randn({2}), randn({2, 3}), randn({2, 2})); },
                  "addmm: the shapes [2, 3] and [2, 2] cannot be multiplied (3 != 2)");
    require_error([] { addmm(randn({2}, kFloat64), randn({2, 2}), randn({2, 2})); },
                  "addmm: expected the input to have the operands' dtype float32 but got float64");
    require_error([] { addmm(randn({2}), randn({2, 2}), randn({2, 2}, kFloat64)); },
                  "addmm: expected both operands to have the same dtype but got float32 and float64");
    require_error([] { outer(randn({2, 2}), randn({2})); },
                  "outer: expected two 1-D tensors but got shapes [2, 2] and [2]");
  }
}

TEST_CASE("bmm, addmm, linear, outer", "[linalg]") {
  manual_seed(5);
  SECTION("bmm per batch") {
    Tensor a = randn({3, 2, 4}, kFloat64), b = randn({3, 4, 5}, kFloat64);
    std::vector<double> yv = values(bmm(a, b)), av = values(a), bv = values(b);
    for (int64_t i = 0; i < 3; ++i) {
      std::vector<double> want = naive_mm(av, bv, 2, 4, 5, i * 8, i * 20);
      check_close(std::vector<double>(yv.begin() + i * 10, yv.begin() + (i + 1) * 10), want, 1e-12);
    }
  }
  SECTION("addmm: beta * input + alpha * a @ b, with a broadcast input") {
    Tensor a = tensor({1, 2, 3, 4}, {2, 2}), b = tensor({5, 6, 7, 8}, {2, 2}), in = tensor({1, -1});
    CHECK(values(addmm(in, a, b)) == std::vector<double>{20, 21, 44, 49});
    CHECK(values(addmm(in, a, b, 2, 0.5)) == std::vector<double>{11.5, 9, 23.5, 23});
    CHECK(values(addmm(tensor({10, 20}, {2, 1}), a, b)) == std::vector<double>{29, 32, 63, 70});
  }
  SECTION("linear on N-D input, with and without bias, float32 vs float64") {
    Tensor x = randn({2, 3, 4}), w = randn({5, 4}), bias = randn({5});
    Tensor y = linear(x, w, bias);
    REQUIRE(y.shape() == Shape{2, 3, 5});
    std::vector<double> want = naive_mm(values(x), values(w.t().contiguous()), 6, 4, 5);
    std::vector<double> bv = values(bias);
    for (size_t i = 0; i < want.size(); ++i) want[i] += bv[i % 5];
    check_close(values(y), want, 1e-5);
    check_close(values(linear(x.to(kFloat64), w.to(kFloat64))),
                naive_mm(values(x), values(w.t().contiguous()), 6, 4, 5), 1e-12);
    CHECK(linear(randn({4}), w).shape() == Shape{5});
    Tensor xt = transpose(randn({4, 6}), 0, 1);  // a strided input
    check_close(values(linear(xt, w, bias)), values(linear(xt.to(kFloat64), w.to(kFloat64), bias.to(kFloat64))),
                1e-5);
  }
  SECTION("outer") {
    CHECK(values(outer(tensor({1, 2}), tensor({3, 4, 5}))) == std::vector<double>{3, 4, 5, 6, 8, 10});
  }
}

TEST_CASE("gradcheck of the linear algebra ops", "[linalg][grad]") {
  using autograd::gradcheck;
  manual_seed(2);
  Tensor a = leaf64({3, 4}), b = leaf64({4, 2}), c = leaf64({3, 2}), v = leaf64({4});
  CHECK(gradcheck([](const VL& x) { return mm(x[0], x[1]); }, {a, b}));
  CHECK(gradcheck([](const VL& x) { return mm(transpose(x[1], 0, 1), transpose(x[0], 0, 1)); }, {a, b}));
  CHECK(gradcheck([](const VL& x) { return bmm(x[0], x[1]); }, {leaf64({2, 3, 4}), leaf64({2, 4, 2})}));
  CHECK(gradcheck([](const VL& x) { return addmm(x[0], x[1], x[2], 0.5, -2.0); }, {c, a, b}));
  CHECK(gradcheck([](const VL& x) { return addmm(x[0], x[1], x[2]); }, {leaf64({2}), a, b}));
  CHECK(gradcheck([](const VL& x) { return linear(x[0], x[1], x[2]); }, {leaf64({2, 3, 4}), leaf64({5, 4}),
                                                                            leaf64({5})}));
  CHECK(gradcheck([](const VL& x) { return linear(x[0], x[1]); }, {leaf64({4}), leaf64({5, 4})}));
  CHECK(gradcheck([](const VL& x) { return outer(x[0], x[1]); }, {v, leaf64({3})}));
  CHECK(gradcheck([](const VL& x) { return matmul(x[0], x[1]); }, {v, leaf64({4})}));
  CHECK(gradcheck([](const VL& x) { return matmul(x[0], x[1]); }, {a, v}));
  CHECK(gradcheck([](const VL& x) { return matmul(x[0], x[1]); }, {v, b}));
  CHECK(gradcheck([](const VL& x) { return matmul(x[0], x[1]); }, {leaf64({2, 3, 4}), b}));
  CHECK(gradcheck([](const VL& x) { return matmul(x[0], x[1]); }, {leaf64({2, 1, 3, 4}), leaf64({3, 4, 2})}));
  CHECK(gradcheck([](const VL& x) { return matmul(x[0], x[1]); }, {v, leaf64({2, 4, 3})}));
}

TEST_CASE("backward computes only the gradients that are needed, in float32 too", "[linalg][grad]") {
  manual_seed(4);
  Tensor a = randn({3, 4}, requires_grad()), b = randn({4, 2});
  sum(mm(a, b)).backward();
  CHECK_FALSE(b.grad().defined());
  // d/da sum(a @ b) = ones @ b^T: every row of the gradient is the row sums of b.
  std::vector<double> bv = values(b), ga = values(a.grad());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 4; ++k) CHECK(ga[i * 4 + k] == Approx(bv[k * 2] + bv[k * 2 + 1]).epsilon(1e-5));
  Tensor x = randn({2, 3, 4}, requires_grad()), w = randn({5, 4}, requires_grad()), bias = randn({5});
  sum(linear(x, w, bias)).backward();
  CHECK_FALSE(bias.grad().defined());
  std::vector<double> gw = values(w.grad()), xv = values(x);
  for (int64_t o = 0; o < 5; ++o)
    for (int64_t i = 0; i < 4; ++i) {
      double col = 0;
      for (int64_t r = 0; r < 6; ++r) col += xv[r * 4 + i];
      CHECK(gw[o * 4 + i] == Approx(col).epsilon(1e-5));
    }
}

TEST_CASE("oneDNN primitives are cached", "[linalg][onednn]") {
  // Batched products: a single one goes through sgemm (Note [Single products through sgemm]).
  onednn::clear_cache();
  Tensor a = randn({2, 32, 16}), b = randn({2, 16, 24});
  Tensor first = bmm(a, b);
  CHECK(onednn::cache_stats().misses == 1);
  CHECK(onednn::cache_stats().hits == 0);
  Tensor second = bmm(randn({2, 32, 16}), randn({2, 16, 24}));
  CHECK(onednn::cache_stats().hits == 1);
  CHECK(onednn::cache_stats().misses == 1);
  bmm(a, transpose(randn({2, 24, 16}), 1, 2));  // other strides: another primitive
  CHECK(onednn::cache_stats().misses == 2);
  bmm(randn({2, 4, 4}), randn({2, 4, 4}));  // tiny: the plain loop, no primitive
  CHECK(onednn::cache_stats().misses == 2);
  CHECK(onednn::cache_stats().hits == 1);

  // A training step creates primitives only on its first iteration.
  Tensor x = randn({2, 16, 32}), w = randn({2, 32, 24}, requires_grad()), w2 = randn({2, 24, 16}, requires_grad());
  auto step = [&] { sum(bmm(bmm(x, w), w2)).backward(); };
  step();
  const auto after_first = onednn::cache_stats();
  step();
  const auto after_second = onednn::cache_stats();
  CHECK(after_second.misses == after_first.misses);
  CHECK(after_second.hits > after_first.hits);
  CHECK(after_second.size == after_first.size);

  // Alternating problems: each lookup differs from the most recent entry and finds its own by hash,
  // and each runs its own primitive (values against the reference loop).
  onednn::clear_cache();
  Tensor c = randn({2, 24, 8});
  for (int i = 0; i < 3; ++i) {
    check_close(values(bmm(a, b)), values(kernels::bmm_reference(a, b)), 1e-4);
    check_close(values(bmm(first, c)), values(kernels::bmm_reference(first, c)), 1e-4);
  }
  CHECK(onednn::cache_stats().misses == 2);
  CHECK(onednn::cache_stats().hits == 4);
}

namespace {

// How many blocks `f` takes from the allocator, and how many bytes stay in use while its result
// is held: a copied operand shows as a second block.
struct Allocations {
  uint64_t blocks = 0;
  uint64_t bytes_held = 0;
};

Allocations allocations_of(const std::function<Tensor()>& f) {
  const AllocatorStats before = allocator::stats();
  Tensor out = f();
  const AllocatorStats after = allocator::stats();
  return {after.hits + after.misses - before.hits - before.misses, after.bytes_in_use - before.bytes_in_use};
}

}  // namespace

TEST_CASE("transposed operands of mm, bmm and linear are read in place: only the output is allocated",
          "[linalg][allocator]") {
  // DESIGN.md: "Matmul reads transposed operands through strides instead of copying."
  manual_seed(14);
  auto only_the_output = [](const char* what, const std::function<Tensor()>& f, int64_t out_elements,
                            DType dt) {
    INFO(what);
    f();  // a first call makes any primitive; its cost is not the operands'
    Allocations seen = allocations_of(f);
    CHECK(seen.blocks == 1);
    CHECK(seen.bytes_held == allocator::size_class(static_cast<size_t>(out_elements) * element_size(dt)));
  };
  struct Case { int64_t m, k, n; };
  // The plain loop (under 16^3), a single product through sgemm, and one past sgemm's limit.
  for (Case c : {Case{5, 6, 7}, Case{64, 48, 80}, Case{260, 250, 260}}) {
    CAPTURE(c.m, c.k, c.n);
    Tensor a = randn({c.m, c.k}), b = randn({c.k, c.n});
    Tensor at = transpose(randn({c.k, c.m}), 0, 1), bt = transpose(randn({c.n, c.k}), 0, 1);
    Tensor a_sliced = narrow(randn({c.m, c.k + 4}), 1, 2, c.k);
    const int64_t out = c.m * c.n;
    only_the_output("mm(a, b)", [&] { return mm(a, b); }, out, kFloat32);
    only_the_output("mm(at, b)", [&] { return mm(at, b); }, out, kFloat32);
    only_the_output("matmul(at, b)", [&] { return matmul(at, b); }, out, kFloat32);
    only_the_output("mm(a_sliced, b)", [&] { return mm(a_sliced, b); }, out, kFloat32);
    if (c.m * c.k * c.n >= 4096) {  // oneDNN reads either operand column-major
      only_the_output("mm(a, bt)", [&] { return mm(a, bt); }, out, kFloat32);
      only_the_output("mm(at, bt)", [&] { return mm(at, bt); }, out, kFloat32);
    }
    // On oneDNN, linear reads W^T through strides, whether the weight is row-major or itself a
    // transposed view, and the bias in place. The plain loop (tiny and float64 products) takes dot
    // products of a's rows with W's rows, so it reads W in place too (checked below, without a bias).
    if (c.m * c.k * c.n >= 4096) {
      Tensor w = randn({c.n, c.k}), w_t = transpose(randn({c.k, c.n}), 0, 1), bias = randn({c.n});
      only_the_output("linear(a, w)", [&] { return linear(a, w); }, out, kFloat32);
      only_the_output("linear(a, w, bias)", [&] { return linear(a, w, bias); }, out, kFloat32);
      only_the_output("linear(at, w, bias)", [&] { return linear(at, w, bias); }, out, kFloat32);
      only_the_output("linear(a, w_t, bias)", [&] { return linear(a, w_t, bias); }, out, kFloat32);
    }
    // The float64 loop reads a transposed left operand in place too, and W^T (column-major).
    Tensor at64 = transpose(randn({c.k, c.m}, kFloat64), 0, 1), b64 = randn({c.k, c.n}, kFloat64);
    only_the_output("mm(at64, b64)", [&] { return mm(at64, b64); }, out, kFloat64);
    Tensor a64 = randn({c.m, c.k}, kFloat64), w64 = randn({c.n, c.k}, kFloat64);
    only_the_output("linear(a64, w64)", [&] { return linear(a64, w64); }, out, kFloat64);
    only_the_output("mm(a64, w64^T)", [&] { return mm(a64, transpose(w64, 0, 1)); }, out, kFloat64);
  }
  SECTION("batched products through primitives") {
    Tensor a = transpose(randn({3, 40, 32}), 1, 2), b = randn({3, 40, 48});  // a [3, 32, 40], column-major
    only_the_output("bmm(a, b)", [&] { return bmm(a, b); }, 3 * 32 * 48, kFloat32);
    Tensor bt = transpose(randn({3, 48, 40}), 1, 2);
    only_the_output("bmm(a, bt)", [&] { return bmm(a, bt); }, 3 * 32 * 48, kFloat32);
  }
  SECTION("the count sees a copy: an operand with no unit stride is copied once") {
    Tensor strided = select(randn({64, 48, 2}), 2, 0), b = randn({48, 80});  // strides (96, 2)
    mm(strided, b);
    Allocations seen = allocations_of([&] { return mm(strided, b); });
    CHECK(seen.blocks == 2);
    CHECK(seen.bytes_held == allocator::size_class(64 * 80 * sizeof(float)));  // the copy is freed
  }
}

TEST_CASE("linear on oneDNN reads the weight transposed in any layout", "[linalg][onednn]") {
  manual_seed(11);
  // Large enough for oneDNN (rows * in * out >= 16^3); float64 takes the reference loop.
  auto check_against_float64 = [](const Tensor& x, const Tensor& w, const Tensor& bias) {
    Tensor want = linear(x.to(kFloat64), w.to(kFloat64), bias.defined() ? bias.to(kFloat64) : Tensor());
    check_close(values(linear(x, w, bias)), values(want), 1e-4);
  };
  Tensor x = randn({40, 48}), bias = randn({24});
  SECTION("a row-major weight, with and without bias") {
    Tensor w = randn({24, 48});
    check_against_float64(x, w, bias);
    check_against_float64(x, w, Tensor());
  }
  SECTION("a weight that is itself a transposed view (column-major)") {
    Tensor w = transpose(randn({48, 24}), 0, 1);
    check_against_float64(x, w, bias);
  }
  SECTION("a weight oneDNN cannot read (both strides non-unit) is copied first") {
    Tensor w = select(randn({24, 48, 3}), 2, 1);  // [24, 48], strides (144, 3)
    REQUIRE(w.stride(1) == 3);
    check_against_float64(x, w, bias);
  }
  SECTION("a strided input and a 3-D input") {
    check_against_float64(transpose(randn({48, 40}), 0, 1), randn({24, 48}), bias);
    Tensor x3 = randn({4, 10, 48}), w = randn({24, 48});
    Tensor y = linear(x3, w, bias);
    REQUIRE(y.shape() == Shape{4, 10, 24});
    check_close(values(y), values(linear(x3.to(kFloat64), w.to(kFloat64), bias.to(kFloat64))), 1e-4);
  }
}

TEST_CASE("the primitive cache grows past its first table and rebinds buffers per call", "[linalg][onednn]") {
  manual_seed(12);
  onednn::clear_cache();
  // 50 distinct problems: more than the table's first 64 slots can hold at half load.
  std::vector<std::pair<Tensor, Tensor>> problems;
  for (int64_t n = 17; n < 67; ++n) problems.emplace_back(randn({2, n, 20}), randn({2, 20, 16}));
  auto check_all = [&] {
    for (auto& [a, b] : problems) check_close(values(bmm(a, b)), values(bmm(a.to(kFloat64), b.to(kFloat64))), 1e-4);
  };
  check_all();
  CHECK(onednn::cache_stats().misses == 50);
  CHECK(onednn::cache_stats().size == 50);
  check_all();  // every problem again: hits only, same answers
  CHECK(onednn::cache_stats().misses == 50);
  CHECK(onednn::cache_stats().hits == 50);

  // One primitive, alternating operands and outputs: each call reads its own buffers, not the
  // previous call's (the cache skips rebinding only a buffer that did not move).
  Tensor a1 = randn({2, 32, 32}), b1 = randn({2, 32, 32}), a2 = randn({2, 32, 32}), b2 = randn({2, 32, 32});
  std::vector<double> want11 = values(bmm(a1.to(kFloat64), b1.to(kFloat64)));
  std::vector<double> want21 = values(bmm(a2.to(kFloat64), b1.to(kFloat64)));
  std::vector<double> want22 = values(bmm(a2.to(kFloat64), b2.to(kFloat64)));
  std::vector<Tensor> kept;  // holding outputs makes the allocator hand out new blocks
  for (int i = 0; i < 3; ++i) {
    kept.push_back(bmm(a1, b1));
    check_close(values(kept.back()), want11, 1e-4);
    kept.push_back(bmm(a2, b1));
    check_close(values(kept.back()), want21, 1e-4);
    check_close(values(bmm(a2, b2)), want22, 1e-4);
  }
}

TEST_CASE("a primitive made under one thread count is not reused under another", "[linalg][onednn]") {
  // oneDNN splits a primitive's work for the threads it was created with: reusing it after
  // set_num_threads changed would run on the old count.
  const int threads = get_num_threads();
  onednn::clear_cache();
  Tensor a = randn({2, 96, 96}), b = randn({2, 96, 96});  // above the one-thread size
  std::vector<double> want = values(bmm(a.to(kFloat64), b.to(kFloat64)));
  set_num_threads(1);
  check_close(values(bmm(a, b)), want, 1e-4);
  CHECK(onednn::cache_stats().misses == 1);
  set_num_threads(2);
  check_close(values(bmm(a, b)), want, 1e-4);
  CHECK(onednn::cache_stats().misses == 2);
  set_num_threads(1);
  check_close(values(bmm(a, b)), want, 1e-4);  // the first primitive again
  CHECK(onednn::cache_stats().misses == 2);
  CHECK(onednn::cache_stats().hits == 1);
  set_num_threads(threads);
}

TEST_CASE("a small batched matmul has one primitive, made for one thread, whatever the setting", "[linalg][onednn]") {
  // See Note [Serial primitives].
  const int threads = get_num_threads();
  onednn::clear_cache();
  Tensor a = randn({2, 48, 40}), b = randn({2, 40, 56});
  std::vector<double> want = values(bmm(a.to(kFloat64), b.to(kFloat64)));
  set_num_threads(2);
  check_close(values(bmm(a, b)), want, 1e-4);
  CHECK(get_num_threads() == 2);  // creating under one thread restored the setting
  set_num_threads(1);
  check_close(values(bmm(a, b)), want, 1e-4);
  CHECK(onednn::cache_stats().misses == 1);
  CHECK(onednn::cache_stats().hits == 1);
  set_num_threads(threads);
}

namespace {
// Forces a route for single float32 products for a scope (Note [Single products through sgemm]).
struct ScopedRoute {
  explicit ScopedRoute(kernels::SingleProductRoute r) { kernels::set_single_product_route(r); }
  ~ScopedRoute() { kernels::set_single_product_route(kernels::SingleProductRoute::kAuto); }
};
}  // namespace

TEST_CASE("single float32 products through sgemm and through a primitive: every operand layout and bias form",
          "[linalg][onednn]") {
  // Note [Single products through sgemm]: each route on every host. Through sgemm no primitive is
  // made; through the primitive cache one is made per problem. The answers match float64 either way.
  const bool sgemm = GENERATE(true, false);
  CAPTURE(sgemm);
  ScopedRoute route(sgemm ? kernels::SingleProductRoute::kSgemm : kernels::SingleProductRoute::kPrimitive);
  manual_seed(13);
  onednn::clear_cache();
  const int64_t m = 24, k = 20, n = 28;
  auto check = [&](const Tensor& bias, const Tensor& a, const Tensor& b) {
    Tensor want = addmm(bias.to(kFloat64), a.to(kFloat64), b.to(kFloat64));
    check_close(values(addmm(bias, a, b)), values(want), 1e-4);
  };
  Tensor a = randn({m, k}), b = randn({k, n});
  Tensor at = transpose(randn({k, m}), 0, 1), bt = transpose(randn({n, k}), 0, 1);
  Tensor a_wide = narrow(randn({m, k + 5}), 1, 3, k);  // leading dimension above k
  Tensor b_col = narrow(transpose(randn({n + 2, k}), 0, 1), 1, 1, n);  // column-major, ld above k
  const std::vector<Tensor> biases = {
      randn({n}), randn({1, n}), randn({m, 1}), randn({m, n}), scalar_tensor(0.5), randn({1}),
      transpose(randn({n, m}), 0, 1),      // [m, n] but not dense: broadcast into a copy first
      narrow(randn({2 * n}), 0, 1, n),     // [n], unit stride from an offset
      select(randn({n, 2}), 1, 1),         // [n] with stride 2: copied
  };
  for (const Tensor& bias : biases) {
    CAPTURE(bias.shape());
    for (const auto& [lhs, rhs] : std::vector<std::pair<Tensor, Tensor>>{
             {a, b}, {at, b}, {a, bt}, {at, bt}, {a_wide, b_col}})
      check(bias, lhs, rhs);
  }
  check_close(values(mm(at, b_col)), values(mm(at.to(kFloat64), b_col.to(kFloat64))), 1e-4);  // no bias
  Tensor w = randn({n, k}), bias = randn({n});  // linear reads W^T in place
  check_close(values(linear(a_wide, w, bias)), values(linear(a_wide.to(kFloat64), w.to(kFloat64),
                                                             bias.to(kFloat64))), 1e-4);
  CHECK((onednn::cache_stats().misses == 0) == sgemm);
  // The output block is not read first (beta 0): NaN left in it by a freed tensor stays out.
  {
    const void* block = nullptr;
    {
      Tensor poison = full({m, n}, std::nan(""));
      block = poison.raw_data();
    }
    Tensor product = mm(a, b);
    REQUIRE(product.raw_data() == block);  // the allocator handed the freed block on (LIFO)
    std::vector<double> got = values(product);
    CHECK(std::none_of(got.begin(), got.end(), [](double v) { return std::isnan(v); }));
  }
  // The same with two threads (sgemm splits the work itself) and in a batch of one.
  const int threads = get_num_threads();
  set_num_threads(2);
  Tensor big_a = randn({1, 150, 90}), big_b = randn({1, 90, 130});
  check_close(values(bmm(big_a, big_b)), values(bmm(big_a.to(kFloat64), big_b.to(kFloat64))), 1e-4);
  set_num_threads(threads);
  CHECK((onednn::cache_stats().misses == 0) == sgemm);
}
