// test_spatial_nd.cpp: interpolate on 1-D and 3-D inputs and avg_pool2d on int64: hand-worked
// values, references computed another way (trilinear as linear along each axis in turn, nearest as
// a gather by hand-computed indices), gradcheck in float64 and the errors. (PyTorch's numbers:
// tests/conformance/interpolate.py and pooling.py.)
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <cmath>
#include <vector>

#include "tests/nn_reference.h"
#include "weft.h"

using namespace weft;
using autograd::gradcheck;
using autograd::variable_list;
using namespace weft::nn_test;
using Catch::Matchers::Contains;

namespace {

// Linear interpolation of x's dim `dim` (2, 3 or 4 of a 5-D tensor) to `out`, through the 1-D op.
Tensor linear_along(const Tensor& x, int64_t dim, int64_t out, bool align_corners) {
  Tensor moved = movedim(x, dim, 4).contiguous();  // [N, C, a, b, L]
  const Shape s = moved.shape();
  Tensor y = interpolate(moved.reshape({s[0], s[1] * s[2] * s[3], s[4]}), OutputSize(out), {}, "linear",
                         align_corners);
  return movedim(y.reshape({s[0], s[1], s[2], s[3], out}), 4, dim);
}

void require_tensors_close(const Tensor& got, const Tensor& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  const auto g = got.contiguous().to_vector<double>(), w = want.contiguous().to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) REQUIRE(std::fabs(g[i] - w[i]) <= tol);
}

}  // namespace

TEST_CASE("1-D interpolate on a hand-worked input", "[interpolate]") {
  Tensor x = f64({1, 2, 4}, {1, 1, 3});
  // Aligned corners: samples at 0, 0.5, 1, 1.5, 2.
  require_close(interpolate(x, OutputSize(5), {}, "linear", true), {1, 1.5, 2, 3, 4});
  // Half-pixel centres, scale 3/5: sources -0.2 (clamped to 0), 0.4, 1.0, 1.6, 2.2 (the last clamps).
  require_close(interpolate(x, OutputSize(5), {}, "linear"), {1, 1.4, 2, 3.2, 4});
  // The scale as given (1 / 1.7), not 3 / 5: sources (o + 0.5) / 1.7 - 0.5.
  Tensor y = interpolate(x, {}, 1.7, "linear");
  REQUIRE(y.size(2) == 5);
  for (int64_t o = 0; o < 5; ++o) {
    const double src = std::max((o + 0.5) / 1.7 - 0.5, 0.0), v[] = {1, 2, 4, 4};
    const auto lo = static_cast<int64_t>(src);
    CHECK(y.to_vector<double>()[size_t(o)] == Approx(v[lo] + (src - double(lo)) * (v[lo + 1] - v[lo])).epsilon(1e-12));
  }
  // Nearest: src = floor(o * 3 / 7); a 3-D input never takes the out == 2 in shortcut of 4-D and 5-D
  // inputs: scale 2.05 reads floor(o / 2.05), so output 2 reads input 0.
  require_close(interpolate(x, OutputSize(7)), {1, 1, 1, 2, 2, 4, 4});
  require_close(interpolate(x, {}, 2.05), {1, 1, 1, 2, 2, 4});
  // Note [Nearest shortcuts]: a 4-D input of one channel halves at out == 2 in; of two, it does not.
  require_close(interpolate(f64({1, 2, 4}, {1, 1, 1, 3}), {}, ScaleFactor(1.0, 2.05)), {1, 1, 2, 2, 4, 4});
  require_close(interpolate(f64({1, 2, 4, 1, 2, 4}, {1, 2, 1, 3}), {}, ScaleFactor(1.0, 2.05)),
                {1, 1, 1, 2, 2, 4, 1, 1, 1, 2, 2, 4});
  // A linear axis whose size stays is the identity, whatever the scale (1.1 would read 1.86 at 1).
  require_close(interpolate(x, {}, 1.1, "linear"), {1, 2, 4});
}

TEST_CASE("3-D interpolate matches a reference computed another way", "[interpolate]") {
  Tensor x = randn64({2, 3, 3, 4, 5}, 21, false);
  SECTION("trilinear is linear along each axis in turn") {
    for (bool align : {false, true})
      for (Shape out : {Shape{5, 7, 3}, Shape{1, 4, 9}, Shape{6, 2, 5}}) {
        INFO("align_corners " << align << ", size " << out);
        Tensor want = linear_along(linear_along(linear_along(x, 4, out[2], align), 3, out[1], align), 2, out[0], align);
        require_tensors_close(interpolate(x, OutputSize(out[0], out[1], out[2]), {}, "trilinear", align), want, 1e-12);
      }
  }
  SECTION("nearest gathers floor(o * in / out) along each axis") {
    const int64_t od = 5, oh = 3, ow = 8;
    Tensor y = interpolate(x, OutputSize(od, oh, ow));
    REQUIRE(y.shape() == Shape{2, 3, od, oh, ow});
    const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    size_t i = 0;
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t d = 0; d < od; ++d)
        for (int64_t h = 0; h < oh; ++h)
          for (int64_t w = 0; w < ow; ++w, ++i) {
            const int64_t sd = d * 3 / od, sh = h * 4 / oh, sw = w * 5 / ow;
            REQUIRE(yv[i] == xv[size_t(((p * 3 + sd) * 4 + sh) * 5 + sw)]);
          }
  }
  SECTION("a single size or scale applies to every spatial dim") {
    CHECK(interpolate(x, OutputSize(4)).shape() == Shape{2, 3, 4, 4, 4});
    CHECK(interpolate(x, {}, 1.5, "trilinear").shape() == Shape{2, 3, 4, 6, 7});
    CHECK(interpolate(x, {}, ScaleFactor(2.0, 0.5, 1.0)).shape() == Shape{2, 3, 6, 2, 5});
  }
}

TEST_CASE("1-D and 3-D interpolate pass gradcheck", "[interpolate][gradcheck]") {
  Tensor x1 = randn64({2, 3, 5}, 22);
  Tensor x3 = randn64({1, 2, 3, 2, 4}, 23);
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], OutputSize(8)); }, {x1}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], OutputSize(3), {}, "linear"); }, {x1}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], {}, 1.7, "linear", true); }, {x1}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], OutputSize(4, 3, 6)); }, {x3}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], OutputSize(5, 3, 7), {}, "trilinear"); },
                  {x3}));
  CHECK(gradcheck([](const variable_list& in) {
    return interpolate(in[0], {}, ScaleFactor(1.5, 2.0, 0.75), "trilinear", true);
  }, {x3}));
  Tensor y = interpolate(x3, OutputSize(2), {}, "trilinear");
  CHECK(y.grad_fn()->name() == "UpsampleTrilinear3DBackward");
  CHECK(interpolate(x1, OutputSize(2)).grad_fn()->name() == "UpsampleNearest1DBackward");
}

TEST_CASE("interpolate refuses a mode that does not match the rank, and names what is wrong", "[interpolate][errors]") {
  Tensor x1 = randn({1, 2, 4}), x2 = randn({1, 2, 4, 4}), x3 = randn({1, 2, 3, 4, 4});
  WEFT_CHECK_ERROR(interpolate(x1, OutputSize(2), {}, "trilinear"),
                   Contains("interpolate") && Contains("Got 3D input, but trilinear mode needs 5D input"));
  WEFT_CHECK_ERROR(interpolate(x1, OutputSize(2), {}, "bilinear"), Contains("Got 3D input, but bilinear mode needs 4D"));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(2), {}, "linear"), Contains("Got 4D input, but linear mode needs 3D"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2), {}, "bilinear"), Contains("Got 5D input, but bilinear mode needs 4D"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2), {}, "bicubic"), Contains("interpolate") && Contains("\"bicubic\""));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2), {}, "nearest", false), Contains("align_corners"));
  WEFT_CHECK_ERROR(interpolate(x1, OutputSize(2, 2)), Contains("interpolate") && Contains("same number of spatial") &&
                                                          Contains("(2, 2)") && Contains("[1, 2, 4]"));
  WEFT_CHECK_ERROR(interpolate(x3, {}, ScaleFactor(2.0, 2.0)), Contains("scale_factor") && Contains("(2, 2)"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2, 0, 2)), Contains("output size (2, 0, 2) must be positive"));
  WEFT_CHECK_ERROR(interpolate(x1, {}, -1.0, "linear"), Contains("positive scale_factor"));
  WEFT_CHECK_ERROR(interpolate(randn({1, 1, 1, 1, 1, 1}), OutputSize(2)), Contains("5-D input") && Contains("[1, 1, 1, 1, 1, 1]"));
  WEFT_CHECK_ERROR(interpolate(zeros({1, 2, 0}), OutputSize(2)), Contains("non-empty spatial dims"));
  WEFT_CHECK_ERROR(interpolate(from_vector<int64_t>({1, 2}, {1, 1, 2}), OutputSize(3)),
                   Contains("interpolate") && Contains("floating point") && Contains("int64"));
}

TEST_CASE("avg_pool2d on int64 divides as integers, truncating toward zero", "[pool]") {
  Tensor x = arange(-12, 13).reshape({1, 1, 5, 5});
  REQUIRE(x.dtype() == kInt64);
  // The float64 averages -4, -5, -8/3, -1, 0, 1, 8/3, 5, 4 truncate: -8/3 -> -2, 8/3 -> 2.
  Tensor y = avg_pool2d(x, 3, Size2d(2), 1);
  CHECK(y.dtype() == kInt64);
  CHECK(y.to_vector<int64_t>() == std::vector<int64_t>{-4, -5, -2, -1, 0, 1, 2, 5, 4});
  // Without the padding in the count: -7.5 -> -7, -1.5 -> -1, 7.5 -> 7.
  CHECK(avg_pool2d(x, 3, Size2d(2), 1, false, false).to_vector<int64_t>() ==
        std::vector<int64_t>{-9, -7, -6, -1, 0, 1, 6, 7, 9});
  // A negative divisor_override divides as given: (-12 - 11 - 7 - 6) / -3 = 12.
  CHECK(avg_pool2d(x, 2, Size2d(5), 0, false, true, -3).to_vector<int64_t>() == std::vector<int64_t>{12});
  // Every window against a float64 reference truncated.
  Tensor big = arange(-500, 500).reshape({2, 2, 10, 25}) * 7919 % 1001;
  Tensor want = trunc(avg_pool2d(big.to(kFloat64), {3, 4}, Size2d(2, 3), {1, 2}, true, false));
  CHECK(avg_pool2d(big, {3, 4}, Size2d(2, 3), {1, 2}, true, false).to_vector<int64_t>() ==
        want.to(kInt64).to_vector<int64_t>());
  WEFT_CHECK_ERROR(avg_pool2d(x.to(kInt32), 2), Contains("avg_pool2d") && Contains("int32") && Contains("int64"));
  WEFT_CHECK_ERROR(max_pool2d(x, 2), Contains("max_pool2d") && Contains("int64"));
}
