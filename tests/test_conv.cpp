// test_conv.cpp: conv1d, conv2d and conv_transpose2d: hand-worked values, gradcheck in float64 over
// strides, paddings ("same" included), dilations and groups, the float32 oneDNN path against the
// float64 reference loops, the primitive cache, and the errors. (PyTorch's numbers: test_conv_torch.)
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <string>
#include <vector>

#include "kernels/onednn.h"
#include "tests/nn_reference.h"
#include "weft.h"

using namespace weft;
using autograd::gradcheck;
using autograd::variable_list;
using namespace weft::nn_test;
using Catch::Matchers::Contains;

namespace {

struct ConvCase {
  Shape x, w;
  Size2d stride = 1;
  ConvPadding padding = 0;
  Size2d dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

std::vector<ConvCase> conv_cases() {
  return {
      {{2, 3, 5, 6}, {4, 3, 3, 3}},
      {{1, 2, 7, 6}, {3, 2, 3, 2}, {2, 3}, ConvPadding(1, 2), 1, 1, false},
      {{2, 4, 6, 6}, {6, 2, 3, 3}, 1, 1, 2, 2},                  // groups 2, dilation 2
      {{1, 3, 5, 4}, {3, 1, 2, 3}, 1, "same", {2, 1}, 3},        // depthwise, even kernel "same"
      {{2, 2, 4, 5}, {2, 2, 1, 1}, 2, "valid"},                  // 1x1, stride 2
      {{1, 1, 6, 6}, {1, 1, 4, 4}, 3, 2, 1, 1, true},            // stride larger than 1 with padding
  };
}

Tensor run(const ConvCase& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  return conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
}

// Max |a - b| / (1 + |b|) over the elements.
double rel_diff(const Tensor& a, const Tensor& b) {
  auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  REQUIRE(av.size() == bv.size());
  double worst = 0;
  for (size_t i = 0; i < av.size(); ++i) worst = std::max(worst, std::fabs(av[i] - bv[i]) / (1 + std::fabs(bv[i])));
  return worst;
}

}  // namespace

TEST_CASE("conv2d on a hand-worked input", "[conv]") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, dt);
    Tensor w = tensor({1, 0, 0, -1}, {1, 1, 2, 2}, dt);
    Tensor b = tensor({10}, {1}, dt);
    // y[i, j] = x[i, j] - x[i + 1, j + 1] + 10 = 6 everywhere.
    require_close(conv2d(x, w, b), {6, 6, 6, 6}, 1e-6);
    // Padding 1, stride 2: windows at rows/cols -1 and 1, so y = 10 + x[r, c] - x[r + 1, c + 1] with
    // zeros outside: 10 - 1, 10 - 3, 10 - 7, 10 + 5 - 9.
    require_close(conv2d(x, w, b, 2, 1), {9, 7, 3, 6}, 1e-6);
    CHECK(conv2d(x, w, b, 2, 1).shape() == Shape{1, 1, 2, 2});
  }
}

TEST_CASE("conv2d passes gradcheck in float64", "[conv]") {
  int seed = 1;
  for (const ConvCase& c : conv_cases()) {
    INFO("case " << seed);
    Tensor x = randn64(c.x, seed * 3), w = randn64(c.w, seed * 3 + 1);
    Tensor b = c.bias ? randn64({c.w[0]}, seed * 3 + 2) : Tensor();
    ++seed;
    CHECK(gradcheck([&](const variable_list& in) { return run(c, in[0], in[1], c.bias ? in[2] : Tensor()); },
                    c.bias ? variable_list{x, w, b} : variable_list{x, w}));
  }
}

TEST_CASE("conv2d on oneDNN in float32 matches the float64 reference loops, gradients included", "[conv]") {
  int seed = 50;
  for (const ConvCase& c : conv_cases()) {
    INFO("case " << seed);
    Tensor x = randn64(c.x, seed), w = randn64(c.w, seed + 1), b = randn64({c.w[0]}, seed + 2);
    ++seed;
    Tensor y64 = run(c, x, w, b);
    Tensor g = randn64(y64.shape(), seed + 7, false);
    auto grads64 = autograd::grad({y64}, {x, w, b}, {g});
    Tensor x32 = x.detach().to(kFloat32).requires_grad_(), w32 = w.detach().to(kFloat32).requires_grad_();
    Tensor b32 = b.detach().to(kFloat32).requires_grad_();
    Tensor y32 = run(c, x32, w32, b32);
    auto grads32 = autograd::grad({y32}, {x32, w32, b32}, {g.to(kFloat32)});
    CHECK(rel_diff(y32, y64) < 1e-5);
    for (int i = 0; i < 3; ++i) CHECK(rel_diff(grads32[i], grads64[i]) < 1e-5);
  }
}

TEST_CASE("conv2d reuses its oneDNN primitives", "[conv]") {
  onednn::clear_cache();
  Tensor x = randn({2, 3, 8, 8}, requires_grad()), w = randn({4, 3, 3, 3}, requires_grad());
  conv2d(x, w, Tensor(), 1, 1).sum().backward();
  auto first = onednn::cache_stats();
  CHECK(first.misses == 3);  // forward, backward-data, backward-weights
  conv2d(x, w, Tensor(), 1, 1).sum().backward();
  CHECK(onednn::cache_stats().misses == first.misses);
  CHECK(onednn::cache_stats().hits >= first.hits + 3);
}

TEST_CASE("conv1d is conv2d over a height of one", "[conv]") {
  Tensor x = randn64({2, 4, 9}, 5), w = randn64({6, 2, 3}, 6), b = randn64({6}, 7);
  Tensor y = conv1d(x, w, b, 2, 1, 2, 2);
  Tensor y2 = squeeze(conv2d(unsqueeze(x, 2), unsqueeze(w, 2), b, {1, 2}, ConvPadding(0, 1), {1, 2}, 2), 2);
  require_close(y, y2.to_vector<double>(), 1e-12);
  CHECK(y.shape() == Shape{2, 6, 4});
  CHECK(gradcheck([](const variable_list& in) { return conv1d(in[0], in[1], in[2], 1, "same", 2, 2); }, {x, w, b}));
  CHECK(conv1d(randn64({4, 9}, 8), w, b, 1, "same", 1, 2).shape() == Shape{6, 9});  // unbatched
}

TEST_CASE("conv_transpose2d is the gradient of conv2d with respect to its input", "[conv]") {
  struct Case {
    Shape x, w;
    Size2d stride, padding, output_padding;
    int64_t groups;
    Size2d dilation;
  };
  for (const Case& c : {Case{{2, 4, 3, 4}, {4, 3, 3, 3}, 2, 1, 1, 1, 1}, Case{{1, 4, 4, 3}, {4, 1, 2, 3}, {1, 2}, 0, {0, 1}, 2, {2, 1}}}) {
    for (DType dt : {kFloat64, kFloat32}) {
      Tensor x = randn64(c.x, 11).to(dt), w = randn64(c.w, 12).to(dt);
      Tensor y = conv_transpose2d(x, w, Tensor(), c.stride, c.padding, c.output_padding, c.groups, c.dilation);
      // <conv2d(z, w), x> has gradient conv_transpose2d(x, w) with respect to z.
      Tensor z = zeros(y.shape(), TensorOptions(dt).requires_grad());
      Tensor conv = conv2d(z, w, Tensor(), c.stride, ConvPadding(c.padding.h, c.padding.w), c.dilation, c.groups);
      REQUIRE(conv.shape() == x.shape());
      Tensor dz = autograd::grad({(conv * x).sum()}, {z})[0];
      require_close(y, dz.to_vector<double>(), dt == kFloat64 ? 1e-12 : 1e-5);
    }
    Tensor x = randn64(c.x, 13), w = randn64(c.w, 14), b = randn64({c.w[1] * c.groups}, 15);
    CHECK(gradcheck([&](const variable_list& in) {
      return conv_transpose2d(in[0], in[1], in[2], c.stride, c.padding, c.output_padding, c.groups, c.dilation);
    }, {x, w, b}));
  }
}

TEST_CASE("convolutions name what is wrong", "[conv][errors]") {
  Tensor x = randn({1, 4, 5, 5}), w = randn({2, 4, 3, 3});
  WEFT_CHECK_ERROR(conv2d(randn({4, 5}), w), Contains("conv2d") && Contains("4-D input"));
  WEFT_CHECK_ERROR(conv2d(x, randn({2, 3, 3, 3})), Contains("conv2d") && Contains("expects 3 input channels"));
  WEFT_CHECK_ERROR(conv2d(x, w, randn({3})), Contains("conv2d") && Contains("bias of shape [2]"));
  WEFT_CHECK_ERROR(conv2d(x, w, Tensor(), 0), Contains("conv2d") && Contains("positive stride"));
  WEFT_CHECK_ERROR(conv2d(x, w, Tensor(), 2, "same"), Contains("conv2d") && Contains("\"same\" needs stride 1"));
  WEFT_CHECK_ERROR(conv2d(x, w, Tensor(), 1, "full"), Contains("conv2d") && Contains("\"full\""));
  WEFT_CHECK_ERROR(conv2d(x, w, Tensor(), 1, -1), Contains("conv2d") && Contains("non-negative padding"));
  WEFT_CHECK_ERROR(conv2d(x, w, Tensor(), 1, 0, 3), Contains("conv2d") && Contains("dilated kernel size (7)"));
  WEFT_CHECK_ERROR(conv2d(x, randn({3, 2, 3, 3}), Tensor(), 1, 0, 1, 2), Contains("groups=2 must divide"));
  WEFT_CHECK_ERROR(conv2d(x, w.to(kFloat64)), Contains("conv2d") && Contains("dtype"));
  WEFT_CHECK_ERROR(conv2d(x.to(kInt64), w), Contains("conv2d") && Contains("floating point"));
  WEFT_CHECK_ERROR(conv1d(randn({1, 4, 5}), randn({2, 4, 3}), Tensor(), 1, ConvPadding(1, 1)),
                   Contains("conv1d") && Contains("one padding value"));
  WEFT_CHECK_ERROR(conv1d(randn({1, 4, 5}), w), Contains("conv1d") && Contains("3-D weight"));
  WEFT_CHECK_ERROR(conv_transpose2d(x, randn({4, 2, 3, 3}), Tensor(), 2, 0, 2),
                   Contains("conv_transpose2d") && Contains("output_padding (2) must be smaller than the stride (2)"));
  WEFT_CHECK_ERROR(conv_transpose2d(x, randn({3, 2, 3, 3})), Contains("conv_transpose2d") && Contains("input channels"));
}
