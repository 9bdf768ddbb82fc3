// test_rearrange: flip, roll, repeat, tile, repeat_interleave, movedim, unbind, diagonal, diag and
// trace against index arithmetic written out in the test, torch's documented examples, errors, and
// gradcheck in float64.
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "framework/generator.h"
#include "ops/ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Contains;

namespace {

Tensor iota(const Shape& shape, DType dt = kFloat64) {
  std::vector<double> v(numel_of(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return from_vector<double>(v, shape).to(dt);
}

Tensor sample(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return add(rand(shape, kFloat64, &gen), -0.5);
}

// Element [i][j][k] of a contiguous [a, b, c] tensor's values.
double at(const std::vector<double>& v, const Shape& s, int64_t i, int64_t j, int64_t k) {
  return v[(i * s[1] + j) * s[2] + k];
}

}  // namespace

TEST_CASE("flip and roll move elements as index arithmetic says", "[rearrange]") {
  Shape s{2, 3, 4};
  Tensor x = iota(s);
  auto v = x.to_vector<double>();
  auto f = flip(x, {0, 2}).to_vector<double>();
  auto r = roll(x, {1, -1}, {1, 2}).to_vector<double>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        CHECK(at(f, s, i, j, k) == at(v, s, 1 - i, j, 3 - k));
        CHECK(at(r, s, i, j, k) == at(v, s, i, (j + 2) % 3, (k + 1) % 4));
      }
  // Without dims, roll shifts the flattened tensor: torch's example.
  CHECK(roll(iota({4, 2}), {1}).to_vector<double>() == std::vector<double>{7, 0, 1, 2, 3, 4, 5, 6});
  CHECK(roll(iota({3}), {7}, {0}).to_vector<double>() == std::vector<double>{2, 0, 1});  // 7 mod 3
  CHECK(flip(full({}, 5.0), {0}).item<float>() == 5);
  Tensor copy = flip(x, {});
  CHECK(!copy.shares_storage(x));
  WEFT_REQUIRE_ERROR(flip(x, {0, -3}), Contains("flip") && Contains("more than once"));
  WEFT_REQUIRE_ERROR(roll(x, {1, 2}, {0}), Contains("roll") && Contains("as many shifts"));
}

TEST_CASE("repeat, tile and repeat_interleave", "[rearrange]") {
  // torch's documented examples.
  Tensor x = tensor({1, 2, 3}, {3}, kFloat64);
  CHECK(repeat(x, {4, 2}).shape() == Shape{4, 6});
  CHECK(repeat(x, {4, 2}).to_vector<double>() ==
        std::vector<double>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  CHECK(repeat(x, {4, 2, 1}).shape() == Shape{4, 2, 3});
  CHECK(tile(x, {2}).to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  Tensor m = tensor({1, 2, 3, 4}, {2, 2}, kFloat64);
  CHECK(tile(m, {2}).to_vector<double>() == std::vector<double>{1, 2, 1, 2, 3, 4, 3, 4});
  CHECK(repeat_interleave(x, 2).to_vector<double>() == std::vector<double>{1, 1, 2, 2, 3, 3});
  CHECK(repeat_interleave(m, 2).to_vector<double>() == std::vector<double>{1, 1, 2, 2, 3, 3, 4, 4});
  CHECK(repeat_interleave(m, 3, 1).to_vector<double>() ==
        std::vector<double>{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4});
  CHECK(repeat_interleave(m, from_vector<int64_t>({1, 2}, {2}), 0).to_vector<double>() ==
        std::vector<double>{1, 2, 3, 4, 3, 4});
  CHECK(repeat(x, {0, 1}).shape() == Shape{0, 3});
  WEFT_REQUIRE_ERROR(repeat(m, {2}), Contains("repeat") && Contains("smaller than the number of dims"));
  WEFT_REQUIRE_ERROR(repeat_interleave(m, from_vector<int64_t>({1, 2, 3}, {3}), 0),
                     Contains("repeat_interleave") && Contains("one count per element"));
  WEFT_REQUIRE_ERROR(repeat_interleave(m, -1), Contains("non-negative"));
}

TEST_CASE("movedim, unbind and the diagonal family", "[rearrange]") {
  Tensor x = iota({2, 3, 4});
  CHECK(movedim(x, 0, 2).shape() == Shape{3, 4, 2});
  CHECK(equal(movedim(x, 0, 2), permute(x, {1, 2, 0})));
  CHECK(equal(movedim(x, {0, 1}, {2, 0}), permute(x, {1, 2, 0})));
  CHECK(equal(movedim(x, -1, 0), permute(x, {2, 0, 1})));
  TensorList parts = unbind(x, 1);
  REQUIRE(parts.size() == 3);
  CHECK(equal(parts[2], select(x, 1, 2)));
  CHECK(parts[0].shares_storage(x));

  Tensor m = iota({3, 4});  // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
  CHECK(diagonal(m).to_vector<double>() == std::vector<double>{0, 5, 10});
  CHECK(diagonal(m, 1).to_vector<double>() == std::vector<double>{1, 6, 11});
  CHECK(diagonal(m, -1).to_vector<double>() == std::vector<double>{4, 9});
  CHECK(diagonal(m, 5).shape() == Shape{0});
  CHECK(diagonal(m).shares_storage(m));
  // Batched: dims 1 and 2 of [2, 3, 4], the diagonal moved last.
  Tensor b = diagonal(x, 0, 1, 2);
  CHECK(b.shape() == Shape{2, 3});
  CHECK(b.to_vector<double>() == std::vector<double>{0, 5, 10, 12, 17, 22});
  CHECK(diag(m, 1).to_vector<double>() == std::vector<double>{1, 6, 11});
  CHECK(!diag(m).shares_storage(m));
  Tensor d = diag(tensor({1, 2}, {2}, kFloat64), -1);
  CHECK(d.shape() == Shape{3, 3});
  CHECK(d.to_vector<double>() == std::vector<double>{0, 0, 0, 1, 0, 0, 0, 2, 0});
  CHECK(trace(m).item<double>() == 15);
  WEFT_REQUIRE_ERROR(trace(x), Contains("trace") && Contains("matrix"));
  WEFT_REQUIRE_ERROR(diagonal(m, 0, 1, -1), Contains("diagonal") && Contains("differ"));
  WEFT_REQUIRE_ERROR(diag(x), Contains("diag") && Contains("1-D or 2-D"));
  WEFT_REQUIRE_ERROR(unbind(full({}, 1.0)), Contains("unbind"));
}

TEST_CASE("rearrange gradcheck", "[rearrange][grad]") {
  Tensor x = sample({2, 3, 2}, 3);
  x.requires_grad_();
  CHECK(autograd::gradcheck([](auto& v) { return flip(v[0], {0, 2}); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return roll(v[0], {2, -1}, {1, 0}); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return repeat(v[0], {2, 1, 3, 1}); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return repeat_interleave(v[0], 2, 1); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return repeat_interleave(v[0], from_vector<int64_t>({0, 3}, {2}), 0); },
                            {x}));
  CHECK(autograd::gradcheck([](auto& v) { return movedim(v[0], 0, -1); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return mul(unbind(v[0], 1)[2], 2.0); }, {x}));
  CHECK(autograd::gradcheck([](auto& v) { return diagonal(v[0], 1, 1, 0); }, {x}));
  Tensor m = sample({3, 3}, 4), vec = sample({3}, 5);
  m.requires_grad_(), vec.requires_grad_();
  CHECK(autograd::gradcheck([](auto& v) { return trace(v[0]); }, {m}));
  CHECK(autograd::gradcheck([](auto& v) { return diag(v[0], -1); }, {m}));
  CHECK(autograd::gradcheck([](auto& v) { return diag(v[0], 2); }, {vec}));
}
