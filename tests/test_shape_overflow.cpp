// Checked shape arithmetic (Note [Checked shape arithmetic]): sizes whose products overflow, or
// geometries reaching outside their storage, are weft::Errors naming the op, never a wrapped count,
// a segfault or a hang.
#include <climits>

#include "framework/allocator.h"
#include "nn/layers.h"
#include "test_util.h"
#include "weft.h"

using namespace weft;
using weft::test::require_error;

namespace {
constexpr int64_t k32 = int64_t(1) << 32;
constexpr int64_t k62 = int64_t(1) << 62;
}  // namespace

TEST_CASE("checked helpers: products and sums past int64 name the op and the operands") {
  CHECK(checked_mul(k32 - 1, k32 / 2 - 1, "op") == (k32 - 1) * (k32 / 2 - 1));  // just below 2^63
  require_error([] { checked_mul(k32, k32 / 2, "view"); }, "view: size arithmetic overflows int64");   // 2^63
  CHECK(checked_add(INT64_MAX - 1, 1, "op") == INT64_MAX);
  require_error([] { checked_mul(k32, k32 * 2, "reshape"); }, "reshape: size arithmetic overflows int64 (4294967296 * 8589934592)");
  require_error([] { checked_add(INT64_MAX, 1, "cat"); }, "cat: size arithmetic overflows int64");
  CHECK(checked_numel({3, 0, 5}, "op") == 0);
  CHECK(checked_numel({}, "op") == 1);
  // A zero does not excuse the other sizes: every partial product of a tensor's sizes must fit.
  require_error([] { checked_numel({0, k62, k62}, "zeros"); }, "zeros: the shape [0, 4611686018427387904");
  require_error([] { checked_numel({2, -1}, "zeros"); }, "zeros: sizes must be non-negative but got [2, -1]");
  CHECK(checked_nbytes(10, 8, {10}, "op") == 80);
  require_error([] { checked_nbytes(k62, 4, {k62}, "ones"); }, "ones: the shape [4611686018427387904] needs");
}

TEST_CASE("factories: overflowing or huge shapes are errors naming the factory") {
  require_error([] { zeros({4, INT64_MAX}); }, "zeros: the shape [4, 9223372036854775807] has more elements");
  // 2^64 elements used to wrap to a numel of 0.
  require_error([] { zeros({k32, k32}); }, "zeros: the shape [4294967296, 4294967296] has more elements");
  require_error([] { ones({k62}); }, "ones: the shape [4611686018427387904] needs 4611686018427387904 elements of 4 bytes");
  require_error([] { randn({k32, 2, 0, k32}); }, "randn: the shape");
  require_error([] { full({-3}, 1.0); }, "full: sizes must be non-negative but got [-3]");
  require_error([] { empty({1, -1}); }, "empty: sizes must be non-negative");
  require_error([] { arange(0.0, 1e300, 1e-300); }, "arange: start=0, end=1e+300");
  // Nothing was left counted as in use by the refused requests.
  const uint64_t before = allocator::stats().bytes_in_use;
  for (int i = 0; i < 3; ++i) require_error([] { zeros({k62 / 8}); }, "zeros:");
  CHECK(allocator::stats().bytes_in_use == before);
}

TEST_CASE("allocation failures name the op and the byte count") {
  // 2^47 bytes passes the format limit but no test machine has it; the allocator's error names the op.
  const uint64_t before = allocator::stats().bytes_in_use;
  require_error([] { zeros({int64_t(1) << 44}, kFloat64); }, "zeros: out of memory allocating 140737488355328 bytes");
  CHECK(allocator::stats().bytes_in_use == before);
}

TEST_CASE("layers: Embedding and Linear with overflowing tables name the layer") {
  require_error([] { nn::Embedding(1, k62); }, "Embedding: the shape [1, 4611686018427387904] needs");
  require_error([] { nn::Embedding(k32, k32); }, "Embedding: the shape [4294967296, 4294967296] has more elements");
  require_error([] { nn::Linear(k32, k32); }, "Linear: the shape [4294967296, 4294967296]");
}

TEST_CASE("views: expand, reshape and as_strided check their geometry") {
  Tensor x = ones({1});
  // An expanded view may be huge (no memory), but its element count must fit in int64.
  Tensor big = x.expand({k62});
  CHECK(big.numel() == k62);
  require_error([&] { x.expand({k62, 4}); }, "expand: the shape [4611686018427387904, 4] has more elements");
  require_error([&] { x.expand({k32, k32, 0}); }, "expand: the shape");
  // Materialising the huge view is refused by size, not attempted.
  require_error([&] { (big + 1.0).numel(); }, "add: the shape [4611686018427387904] needs");
  require_error([&] { zeros({0}).reshape({0, k62, k62}); }, "reshape: ");
  require_error([&] { ones({6}).reshape({-1, k62, 8}); }, "reshape: size arithmetic overflows int64");
  Tensor base = arange(12.0);
  require_error([&] { as_strided(base, {2, 2}, {k62, 1}, 0); },
                "as_strided: the geometry [2, 2] with strides [4611686018427387904, 1] at offset 0 reaches elements 0 "
                "to 4611686018427387905, outside the storage of 12 elements");
  require_error([&] { as_strided(base, {3, 2}, {k62, 1}, 0); }, "as_strided: size arithmetic overflows int64");
  require_error([&] { as_strided(base, {3, 2}, {5, 1}, 2); }, "as_strided: the geometry [3, 2] with strides [5, 1] at offset 2 reaches elements 2 to 13, outside the storage of 12 elements");
  require_error([&] { as_strided(base, {2}, {1}, INT64_MAX); }, "as_strided: size arithmetic overflows int64");
  // A valid geometry still reads the right elements: rows of 2 starting every 5th element.
  Tensor ok = as_strided(base, {2, 2}, {5, 1}, 1);
  CHECK(ok.to_vector<float>() == std::vector<float>{1, 2, 6, 7});
  require_error([&] { base.narrow(0, 2, INT64_MAX); }, "narrow: start 2 and length 9223372036854775807 do not fit");
}

TEST_CASE("broadcasting, cat and matmul refuse results too large to count") {
  Tensor col = ones({1}).expand({k32, 1}), row = ones({1}).expand({1, k32});
  require_error([&] { mul(col, row); }, "mul: the shape [4294967296, 4294967296] has more elements");
  Tensor half = ones({1}).expand({INT64_MAX / 2 + 1});
  require_error([&] { cat({half, half}, 0); }, "cat: size arithmetic overflows int64");
  // [2^31, 1] @ [1, 2^31] has 2^62 elements: refused by size instead of computing a wrapped count.
  Tensor a = ones({1, 1}).expand({int64_t(1) << 31, 1}), b = ones({1, 1}).expand({1, int64_t(1) << 31});
  require_error([&] { matmul(a, b); }, "the shape [2147483648, 2147483648] needs");
}

TEST_CASE("as_strided backward: an empty view may have huge sizes and strides") {
  // numel 0 allows any size beside the 0, and no element is reached, so the extent its backward
  // scatters into is empty: the gradient is an empty tensor of the input's shape, not an overflow.
  Tensor x = zeros({k62, 0}, requires_grad());
  Tensor y = as_strided(x, {k62, 0}, {4, 1}, 0);
  y.sum().backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().sizes() == Shape{k62, 0});
  CHECK(x.grad().numel() == 0);
}
