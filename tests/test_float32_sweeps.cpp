// test_float32_sweeps: seeded sweeps of random shapes and operand layouts in which float32 results
// (sgemm, oneDNN primitives, weft's loops) are checked against the same op in float64 on the exactly
// converted inputs: products (mm, addmm, linear, matmul) within the float32 error bound, and softmax,
// log_softmax, layer_norm and rms_norm within float32 tolerances, half past the oneDNN thresholds.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/onednn.h"
#include "tests/test_util.h"
#include "weft.h"

using namespace weft;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// A seeded uniform integer in [lo, hi]: the sweeps' shapes and choices, the same on every run.
class Pick {
 public:
  explicit Pick(uint64_t seed) : rng_(seed) {}
  int64_t operator()(int64_t lo, int64_t hi) const {
    return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  mutable std::mt19937_64 rng_;
};

}  // namespace

namespace products {

// A float32 [r, c] matrix laid out one of four ways: contiguous, transposed (column-major),
// sliced from a wider one (row stride past c), or with no unit stride at all (oneDNN cannot read
// it; the kernel copies it).
enum class Layout { kContiguous, kTransposed, kSliced, kNoUnitStride };

Tensor matrix(int64_t r, int64_t c, Layout layout, Generator& gen) {
  switch (layout) {
    case Layout::kContiguous: return randn({r, c}, kFloat32, &gen);
    case Layout::kTransposed: return transpose(randn({c, r}, kFloat32, &gen), 0, 1);
    case Layout::kSliced: return narrow(randn({r, c + 3}, kFloat32, &gen), 1, 1, c);
    case Layout::kNoUnitStride: return select(randn({r, c, 2}, kFloat32, &gen), 2, 1);
  }
  return Tensor();
}

using Product = std::function<Tensor(const std::vector<Tensor>&)>;

// `op` on float32 operands against the same op on their float64 conversions (exact). A float32
// sum of k products is off by at most about k units in the last place of the sum of their
// magnitudes, whatever the order: |got - want| <= (k + 2) 2^-24 op(|operands|), which any
// misread element or dropped term exceeds by orders of magnitude.
void check_float32_product(const std::string& what, const Product& op, const std::vector<Tensor>& operands,
                           int64_t k) {
  INFO(what);
  std::vector<Tensor> as64, abs64;
  for (const Tensor& t : operands) {
    as64.push_back(t.defined() ? t.to(kFloat64) : Tensor());
    abs64.push_back(t.defined() ? abs(t.to(kFloat64)) : Tensor());
  }
  Tensor got = op(operands);
  REQUIRE(got.dtype() == kFloat32);
  Tensor want = op(as64);
  REQUIRE(got.shape() == want.shape());
  std::vector<double> bound = values(op(abs64));
  const double unit = std::ldexp(1.0, -24) * static_cast<double>(k + 2);
  test::require_within(values(got), values(want), [&](size_t i) { return unit * bound[i] + 1e-30; });
}

}  // namespace products

TEST_CASE("float32 mm, addmm, linear and matmul match float64 over random shapes and layouts",
          "[linalg][sweep]") {
  using namespace products;
  // Shapes from tiny (the plain loop) through single products (sgemm) to batches and products
  // past 256^3 (oneDNN primitives); every operand in every layout, batch operands also broadcast
  // (expanded with stride 0) and vectors.
  Generator gen(23);
  const Pick pick(20261204);
  auto layout = [&] { return static_cast<Layout>(pick(0, 3)); };
  for (int c = 0; c < 40; ++c) {
    int64_t hi = c % 4 == 0 ? 12 : 140;
    int64_t m = pick(1, hi), k = pick(1, hi), n = pick(1, hi);
    if (c % 10 == 9) m = 260, k = pick(250, 270), n = 260;  // past sgemm's single-product limit
    const Layout la = layout(), lb = layout(), lw = layout();
    CAPTURE(c, m, k, n, static_cast<int>(la), static_cast<int>(lb), static_cast<int>(lw));
    Tensor a = matrix(m, k, la, gen), b = matrix(k, n, lb, gen);
    check_float32_product("mm", [](const auto& t) { return mm(t[0], t[1]); }, {a, b}, k);

    const Shape bias_shapes[] = {{n}, {m, 1}, {m, n}, {}};
    Tensor bias = randn(bias_shapes[pick(0, 3)], kFloat32, &gen);
    check_float32_product("addmm", [](const auto& t) { return addmm(t[0], t[1], t[2]); }, {bias, a, b}, k);

    Tensor w = matrix(n, k, lw, gen), row_bias = c % 3 == 0 ? Tensor() : randn({n}, kFloat32, &gen);
    check_float32_product("linear", [](const auto& t) { return linear(t[0], t[1], t[2]); }, {a, w, row_bias}, k);

    // Batched: a stack (maybe broadcast from one matrix) times a stack, a matrix or a vector.
    const int64_t batch = pick(1, 3);
    Tensor stack_a =
        c % 2 == 0 ? expand(unsqueeze(a, 0), {batch, m, k}) : stack({a, matrix(m, k, lb, gen)}, 0);
    const int64_t nb = stack_a.size(0);
    Tensor stack_b = c % 3 == 1 ? expand(unsqueeze(b, 0), {nb, k, n})
                                : transpose(randn({nb, n, k}, kFloat32, &gen), 1, 2);
    auto product = [](const auto& t) { return matmul(t[0], t[1]); };
    check_float32_product("matmul stack @ stack", product, {stack_a, stack_b}, k);
    check_float32_product("matmul stack @ matrix", product, {stack_a, b}, k);
    check_float32_product("matmul matrix @ broadcast stack", product, {a, stack_b}, k);
    Tensor v = select(matrix(k, 2, lw, gen), 1, 0);  // a vector, strided unless the layout is column-major
    check_float32_product("matmul stack @ vector", product, {stack_a, v}, k);
    check_float32_product("matmul vector @ matrix", product, {v, b}, k);
    check_float32_product("linear on a 3-D input", [](const auto& t) { return linear(t[0], t[1], t[2]); },
                          {stack_a, w, row_bias}, k);
  }
  SECTION("one input feature: a [n, 1] weight read transposed as one row") {
    // Its strides (1, 1) transposed gave sgemm a leading dimension of 1 for a row of n (rejected).
    for (auto [rows, n] : {std::pair<int64_t, int64_t>{64, 64}, {36, 138}, {1, 5000}, {5000, 1}}) {
      CAPTURE(rows, n);
      Tensor x = randn({rows, 1}, kFloat32, &gen), w = randn({n, 1}, kFloat32, &gen);
      check_float32_product("linear, in_features 1", [](const auto& t) { return linear(t[0], t[1], t[2]); },
                            {x, w, randn({n}, kFloat32, &gen)}, 1);
      check_float32_product("mm by a [1, n] row", [](const auto& t) { return mm(t[0], t[1]); },
                            {x, transpose(w, 0, 1)}, 1);
    }
  }
}

namespace norms {

// A float32 tensor of `shape` (2-D or 3-D) laid out one of four ways: contiguous, transposed (its
// last two dims swapped in memory), sliced from a wider one (row stride past the row), or
// broadcast-expanded along its first dim (stride 0). Values are N(0, 9).
enum class Layout { kContiguous, kTransposed, kSliced, kExpanded };

Tensor laid_out(const Shape& shape, Layout layout, Generator& gen) {
  const int64_t d = static_cast<int64_t>(shape.size());
  auto normal = [&](const Shape& s) { return randn(s, kFloat32, &gen) * 3.0; };
  switch (layout) {
    case Layout::kContiguous: return normal(shape);
    case Layout::kTransposed: {
      Shape swapped = shape;
      std::swap(swapped[d - 1], swapped[d - 2]);
      return normal(swapped).transpose(-1, -2);
    }
    case Layout::kSliced: {
      Shape wider = shape;
      wider[d - 1] += 5;
      return normal(wider).narrow(-1, 2, shape[d - 1]);
    }
    case Layout::kExpanded: {
      Shape one = shape;
      one[0] = 1;
      return normal(one).expand(shape);
    }
  }
  return Tensor();
}

// |got - want| <= rtol |want| + atol elementwise, got float32 and want float64.
void require_float32_close(const std::string& what, const Tensor& got, const Tensor& want, double rtol,
                           double atol) {
  INFO(what);
  REQUIRE(got.dtype() == kFloat32);
  REQUIRE(got.shape() == want.shape());
  std::vector<double> w = want.to_vector<double>();
  test::require_within(got.to_vector<double>(), w, [&](size_t i) { return rtol * std::fabs(w[i]) + atol; });
}

}  // namespace norms

TEST_CASE("float32 softmax, log_softmax and layer_norm match float64 over random shapes and layouts",
          "[nn][sweep][onednn]") {
  using namespace norms;
  // Half the cases reach 4096 elements, where float32 softmax over the last dim and layer_norm
  // take oneDNN (kernels/nn_kernels.cpp); the rest stay on the loops. The float64 reference is
  // the same op on the exactly converted input. Tolerances are float32's: about 170 units in the
  // last place relative, plus an absolute term where the result can be near 0 by cancellation.
  // log_softmax's is larger: near a row's max its error is the relative error of the row's sum,
  // which oneDNN accumulates in float32 (about 3e-6 seen for rows of ~1000).
  Generator gen(17);
  const Pick pick(20261203);
  onednn::clear_cache();
  int large = 0;
  for (int c = 0; c < 48; ++c) {
    const bool big = c % 2 == 0;
    Shape shape = big ? Shape{pick(8, 160), pick(64, 1500)} : Shape{pick(1, 12), pick(1, 40)};
    if (c % 3 == 0) shape.insert(shape.begin(), pick(1, 3));  // a 3-D case
    const Layout layout = static_cast<Layout>(c % 4);
    Tensor x = laid_out(shape, layout, gen);
    Tensor x64 = x.to(kFloat64);
    const int64_t d = x.dim(), n = shape.back();
    large += x.numel() >= 4096;
    INFO("case " << c << ": shape " << shape << ", layout " << static_cast<int>(layout));

    require_float32_close("softmax", softmax(x, -1), softmax(x64, -1), 1e-5, 1e-9);
    require_float32_close("log_softmax", log_softmax(x, -1), log_softmax(x64, -1), 1e-5, 2e-5);
    const int64_t dim = pick(0, d - 1);  // any dim (the inner-dim loops for dim < d - 1)
    require_float32_close("softmax", softmax(x, dim), softmax(x64, dim), 1e-5, 1e-9);
    require_float32_close("log_softmax", log_softmax(x, dim), log_softmax(x64, dim), 1e-5, 2e-5);

    Tensor w = randn({n}, kFloat32, &gen), b = randn({n}, kFloat32, &gen);
    require_float32_close("layer_norm", layer_norm(x, {n}), layer_norm(x64, {n}), 1e-5, 1e-5);
    require_float32_close("layer_norm", layer_norm(x, {n}, w, b),
                          layer_norm(x64, {n}, w.to(kFloat64), b.to(kFloat64)), 1e-5, 1e-5);
    Shape last_two(shape.end() - 2, shape.end());
    require_float32_close("layer_norm", layer_norm(x, last_two, Tensor(), Tensor(), 1e-3),
                          layer_norm(x64, last_two, Tensor(), Tensor(), 1e-3), 1e-5, 1e-5);
    require_float32_close("rms_norm", rms_norm(x, {n}, w), rms_norm(x64, {n}, w.to(kFloat64)), 1e-5, 1e-5);
  }
  CHECK(large >= 20);
  CHECK(onednn::cache_stats().misses >= 3);  // softmax, log_softmax and layer_norm primitives were made
}

