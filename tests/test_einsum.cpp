// test_einsum: einsum against the ops it spells (matmul, transpose, sums, diagonals, outer products)
// and an explicit loop over every subscript, implicit outputs, "...", broadcasting, errors, gradcheck.
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "framework/generator.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

Tensor sample(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return add(rand(shape, kFloat64, &gen), -0.5);
}

void require_close(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  test::require_within(got.to_vector<double>(), want.to_vector<double>(), [](size_t) { return 1e-12; });
}

}  // namespace

TEST_CASE("einsum spells the familiar ops", "[einsum]") {
  Tensor a = sample({3, 4}, 1), b = sample({4, 5}, 2), v = sample({4}, 3), w = sample({3}, 4);
  Tensor s = sample({4, 4}, 5), ba = sample({2, 3, 4}, 6), bb = sample({2, 4, 5}, 7);
  require_close(einsum("ij,jk->ik", {a, b}), matmul(a, b));
  require_close(einsum("ij,jk", {a, b}), matmul(a, b));  // implicit output: the letters used once
  require_close(einsum("ij->ji", {a}), a.t());
  require_close(einsum("ij->", {a}), sum(a));
  require_close(einsum("ij->j", {a}), sum(a, 0));
  require_close(einsum("ii->i", {s}), diagonal(s));
  require_close(einsum("ii", {s}), trace(s));
  require_close(einsum("i,j->ij", {w, v}), outer(w, v));
  require_close(einsum("ij,j->i", {a, v}), matmul(a, v));
  require_close(einsum("bij,bjk->bik", {ba, bb}), bmm(ba, bb));
  require_close(einsum("...ij,...jk->...ik", {ba, bb}), bmm(ba, bb));
  require_close(einsum("b i j , b j k -> b k i", {ba, bb}), bmm(ba, bb).transpose(1, 2));
  // Broadcasting a batch of one against two.
  require_close(einsum("bij,bjk->bik", {narrow(ba, 0, 0, 1), bb}), matmul(narrow(ba, 0, 0, 1), bb));
  // Three operands.
  Tensor c = sample({5, 2}, 8);
  require_close(einsum("ij,jk,kl->il", {a, b, c}), matmul(matmul(a, b), c));
}

TEST_CASE("einsum against a loop over every subscript", "[einsum]") {
  // "abc,cad->bd": out[b][d] = sum_a sum_c x[a][b][c] * y[c][a][d].
  Tensor x = sample({2, 3, 4}, 11), y = sample({4, 2, 5}, 12);
  auto vx = x.to_vector<double>(), vy = y.to_vector<double>();
  std::vector<double> want(15, 0.0);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c)
        for (int d = 0; d < 5; ++d) want[b * 5 + d] += vx[(a * 3 + b) * 4 + c] * vy[(c * 2 + a) * 5 + d];
  Tensor got = einsum("abc,cad->bd", {x, y});
  REQUIRE(got.shape() == Shape{3, 5});
  test::require_within(got.to_vector<double>(), want, [](size_t) { return 1e-12; });
}

TEST_CASE("einsum errors and gradients", "[einsum][grad]") {
  Tensor a = sample({3, 4}, 1), b = sample({5, 5}, 2);
  WEFT_REQUIRE_ERROR(einsum("ij,jk->ik", {a}), Contains("einsum") && Contains("2 operands"));
  WEFT_REQUIRE_ERROR(einsum("ij,jk->ik", {a, b}), Contains("einsum") && Contains("'j'") && Contains("4 and 5"));
  WEFT_REQUIRE_ERROR(einsum("ijk->i", {a}), Contains("einsum") && Contains("3 dims"));
  WEFT_REQUIRE_ERROR(einsum("ij->iz", {a}), Contains("einsum") && Contains("'z'"));
  WEFT_REQUIRE_ERROR(einsum("i1->i", {a}), Contains("einsum") && Contains("letters"));
  Tensor x = sample({3, 4}, 3), y = sample({4, 2}, 4), s = sample({3, 3}, 5);
  x.requires_grad_(), y.requires_grad_(), s.requires_grad_();
  CHECK(autograd::gradcheck([](auto& v) { return einsum("ij,jk->ki", {v[0], v[1]}); }, {x, y}));
  CHECK(autograd::gradcheck([](auto& v) { return einsum("ii->", {v[0]}); }, {s}));
  CHECK(autograd::gradcheck([](auto& v) { return einsum("ij,ij->i", {v[0], v[0]}); }, {x}));
}
