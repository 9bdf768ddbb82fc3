// test_spatial_nd.cpp: interpolate on 1-D and 3-D inputs and avg_pool2d on int64: hand-worked
// values, references computed another way (trilinear as linear along each axis in turn, nearest as
// a gather by hand-computed indices), gradcheck in float64 and the errors. (PyTorch's numbers:
// tests/conformance/interpolate.py and pooling.py.)
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "tests/nn_reference.h"
#include "tests/test_util.h"
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
    CHECK(y.to_vector<double>()[size_t(o)] ==
          Approx(v[lo] + (src - double(lo)) * (v[lo + 1] - v[lo])).epsilon(1e-12));
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
        Tensor want =
            linear_along(linear_along(linear_along(x, 4, out[2], align), 3, out[1], align), 2, out[0], align);
        require_tensors_close(interpolate(x, OutputSize(out[0], out[1], out[2]), {}, "trilinear", align),
                              want, 1e-12);
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
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], OutputSize(3), {}, "linear"); },
                  {x1}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], {}, 1.7, "linear", true); }, {x1}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], OutputSize(4, 3, 6)); }, {x3}));
  CHECK(gradcheck(
      [](const variable_list& in) { return interpolate(in[0], OutputSize(5, 3, 7), {}, "trilinear"); },
      {x3}));
  CHECK(gradcheck(
      [](const variable_list& in) {
        return interpolate(in[0], {}, ScaleFactor(1.5, 2.0, 0.75), "trilinear", true);
      },
      {x3}));
  Tensor y = interpolate(x3, OutputSize(2), {}, "trilinear");
  CHECK(y.grad_fn()->name() == "UpsampleTrilinear3DBackward");
  CHECK(interpolate(x1, OutputSize(2)).grad_fn()->name() == "UpsampleNearest1DBackward");
}

TEST_CASE("interpolate refuses a mode that does not match the rank, and names what is wrong",
          "[interpolate][errors]") {
  Tensor x1 = randn({1, 2, 4}), x2 = randn({1, 2, 4, 4}), x3 = randn({1, 2, 3, 4, 4});
  WEFT_CHECK_ERROR(interpolate(x1, OutputSize(2), {}, "trilinear"),
                   Contains("interpolate") && Contains("Got 3D input, but trilinear mode needs 5D input"));
  WEFT_CHECK_ERROR(interpolate(x1, OutputSize(2), {}, "bilinear"),
                   Contains("Got 3D input, but bilinear mode needs 4D"));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(2), {}, "linear"),
                   Contains("Got 4D input, but linear mode needs 3D"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2), {}, "bilinear"),
                   Contains("Got 5D input, but bilinear mode needs 4D"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2), {}, "bicubic"),
                   Contains("interpolate") && Contains("\"bicubic\""));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2), {}, "nearest", false), Contains("align_corners"));
  WEFT_CHECK_ERROR(interpolate(x1, OutputSize(2, 2)), Contains("interpolate") &&
                                                          Contains("same number of spatial") &&
                                                          Contains("(2, 2)") && Contains("[1, 2, 4]"));
  WEFT_CHECK_ERROR(interpolate(x3, {}, ScaleFactor(2.0, 2.0)),
                   Contains("scale_factor") && Contains("(2, 2)"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(2, 0, 2)), Contains("output size (2, 0, 2) must be positive"));
  WEFT_CHECK_ERROR(interpolate(x1, {}, -1.0, "linear"), Contains("positive scale_factor"));
  WEFT_CHECK_ERROR(interpolate(randn({1, 1, 1, 1, 1, 1}), OutputSize(2)),
                   Contains("5-D input") && Contains("[1, 1, 1, 1, 1, 1]"));
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
  Tensor big = arange(-500, 500).reshape({2, 2, 10, 25}) * 7919 % 1001 - 500;  // both signs, scrambled
  Tensor want = trunc(avg_pool2d(big.to(kFloat64), {3, 4}, Size2d(2, 3), {1, 2}, true, false));
  CHECK(avg_pool2d(big, {3, 4}, Size2d(2, 3), {1, 2}, true, false).to_vector<int64_t>() ==
        want.to(kInt64).to_vector<int64_t>());
  WEFT_CHECK_ERROR(avg_pool2d(x.to(kInt32), 2),
                   Contains("avg_pool2d") && Contains("int32") && Contains("int64"));
  WEFT_CHECK_ERROR(max_pool2d(x, 2), Contains("max_pool2d") && Contains("int64"));
}

TEST_CASE("1-D and 3-D pooling on hand-worked inputs", "[pool]") {
  Tensor x = f64({1, 3, 2, 5, 4, 0, 7}, {1, 1, 7});
  auto [y, idx] = max_pool1d_with_indices(x, 3, 2, 1);  // windows [-1, 2) [1, 4) [3, 6) [5, 8)
  require_close(y, {3, 5, 5, 7});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{1, 3, 3, 6});
  require_close(avg_pool1d(x, 3, 2, 1), {4 / 3.0, 10 / 3.0, 9 / 3.0, 7 / 3.0});
  require_close(avg_pool1d(x, 3, 2, 1, false, false), {4 / 2.0, 10 / 3.0, 9 / 3.0, 7 / 2.0});
  CHECK(avg_pool1d(from_vector<int64_t>({-7, 0, 2, -1}, {1, 4}), 2).to_vector<int64_t>() ==
        std::vector<int64_t>{-3, 0});  // -7 / 2 truncates to -3; unbatched [C, L]
  // A 2 x 2 x 2 volume pooled whole: the maximum 7 sits at (1, 1, 0), index (1 * 2 + 1) * 2 + 0 = 6.
  Tensor v = f64({0, 1, 2, 3, 4, 5, 7, 6}, {1, 1, 2, 2, 2});
  auto [m, at] = max_pool3d_with_indices(v, 2);
  require_close(m, {7});
  CHECK(at.to_vector<int64_t>() == std::vector<int64_t>{6});
  require_close(avg_pool3d(v, 2), {28 / 8.0});
  require_close(avg_pool3d(v, 2, {}, 0, false, true, 3), {28 / 3.0});
  // Padding 1, stride 2: the corner window holds v[0, 0, 0] only; with the padding counted it is 0 / 8.
  require_close(avg_pool3d(v, 2, Size3d(2), 1),
                {0, 1 / 8.0, 2 / 8.0, 3 / 8.0, 4 / 8.0, 5 / 8.0, 7 / 8.0, 6 / 8.0});
  require_close(avg_pool3d(v, 2, Size3d(2), 1, false, false), {0, 1, 2, 3, 4, 5, 7, 6});
}

TEST_CASE("1-D and 3-D pooling match the 2-D kernels on flat inputs", "[pool]") {
  // The 3-D loops (kernels/pool3d.cpp) and the 2-D ones (kernels/pool.cpp) are separate code: a
  // volume of depth one must pool as its plane does, and a 1-D input as a row.
  Tensor x = randn64({2, 3, 9, 11}, 31, false);
  Tensor x5 = unsqueeze(x, 2);  // [2, 3, 1, 9, 11]
  for (bool ceil : {false, true}) {
    INFO("ceil_mode " << ceil);
    auto [y2, i2] = max_pool2d_with_indices(x, {3, 2}, Size2d(2, 3), {1, 1}, {2, 3}, ceil);
    auto [y3, i3] = max_pool3d_with_indices(x5, {1, 3, 2}, Size3d(1, 2, 3), {0, 1, 1}, {1, 2, 3}, ceil);
    require_tensors_close(squeeze(y3, 2), y2, 0);
    CHECK(squeeze(i3, 2).to_vector<int64_t>() == i2.to_vector<int64_t>());
    for (bool include_pad : {false, true})
      require_tensors_close(
          squeeze(avg_pool3d(x5, {1, 4, 3}, Size3d(1, 2, 2), {0, 2, 1}, ceil, include_pad), 2),
          avg_pool2d(x, {4, 3}, Size2d(2, 2), {2, 1}, ceil, include_pad), 1e-15);
    Tensor row = x.reshape({2, 3 * 9, 11});
    require_tensors_close(
        max_pool1d(row, 3, 2, 1, 2, ceil),
        max_pool3d(row.reshape({2, 27, 1, 1, 11}), {1, 1, 3}, Size3d(1, 1, 2), {0, 0, 1}, {1, 1, 2}, ceil)
            .reshape({2, 27, -1}),
        0);
    require_tensors_close(
        avg_pool1d(row, 4, 3, 2, ceil, false),
        avg_pool3d(row.reshape({2, 27, 1, 1, 11}), {1, 1, 4}, Size3d(1, 1, 3), {0, 0, 2}, ceil, false)
            .reshape({2, 27, -1}),
        1e-15);
  }
  // The depth dim: pooling [N, C, D, 1, 1] along D is the 1-D pool along L.
  Tensor col = randn64({2, 2, 10}, 32, false);
  require_tensors_close(
      avg_pool3d(col.reshape({2, 2, 10, 1, 1}), {3, 1, 1}, Size3d(2, 1, 1), {1, 0, 0}).reshape({2, 2, -1}),
      avg_pool1d(col, 3, 2, 1), 1e-15);
  require_tensors_close(
      max_pool3d(col.reshape({2, 2, 10, 1, 1}), {4, 1, 1}, Size3d(3, 1, 1)).reshape({2, 2, -1}),
      max_pool1d(col, 4, 3), 0);
}

TEST_CASE("1-D and 3-D pooling pass gradcheck", "[pool][gradcheck]") {
  Tensor x1 = randn64({2, 3, 9}, 33);
  Tensor x3 = randn64({1, 2, 4, 5, 6}, 34);
  CHECK(gradcheck([](const variable_list& in) { return max_pool1d(in[0], 3, 2, 1); }, {x1}));
  CHECK(gradcheck([](const variable_list& in) { return avg_pool1d(in[0], 3, 2, 1, true, false); }, {x1}));
  CHECK(gradcheck(
      [](const variable_list& in) {
        return max_pool3d(in[0], {2, 3, 2}, Size3d(1, 2, 2), {1, 1, 0});
      },
      {x3}));
  CHECK(gradcheck(
      [](const variable_list& in) {
        return max_pool3d(in[0], 2, {}, 0, {2, 1, 2}, true);
      },
      {x3}));
  CHECK(gradcheck([](const variable_list& in) { return avg_pool3d(in[0], 3, Size3d(2), 1); }, {x3}));
  CHECK(gradcheck([](const variable_list& in) { return avg_pool3d(in[0], 3, Size3d(2), 1, true, false); },
                  {x3}));
  CHECK(gradcheck(
      [](const variable_list& in) {
        return avg_pool3d(in[0], {2, 2, 3}, {}, 0, false, true, -5);
      },
      {x3}));
  CHECK(max_pool3d(x3, 2).grad_fn()->name() == "MaxPool3DBackward");
}

TEST_CASE("1-D and 3-D pooling name what is wrong", "[pool][errors]") {
  Tensor x1 = randn({2, 3, 8}), x3 = randn({1, 2, 4, 4, 4});
  WEFT_CHECK_ERROR(max_pool1d(x1, 3, {}, 2), Contains("max_pool1d") && Contains("padding (2)") &&
                                                 Contains("at most half the kernel size (3)"));
  WEFT_CHECK_ERROR(max_pool1d(x1, 2, {}, 2, 3), Contains("at most half the kernel size (2)"));
  WEFT_CHECK_ERROR(max_pool1d_with_indices(x1, 9), Contains("max_pool1d_with_indices") &&
                                                     Contains("Given input size: (3x1x8). Calculated output size: "
                                                              "(3x1x0). Output size is too small"));
  WEFT_CHECK_ERROR(max_pool1d(x1, 2, 0), Contains("max_pool1d") && Contains("stride 0"));
  WEFT_CHECK_ERROR(max_pool1d(randn({1, 1, 1, 8}), 2),
                   Contains("max_pool1d") && Contains("3-D input [N, C, L]") && Contains("[1, 1, 1, 8]"));
  WEFT_CHECK_ERROR(max_pool1d(from_vector<int64_t>({1, 2}, {1, 1, 2}), 2),
                   Contains("max_pool1d") && Contains("int64"));
  WEFT_CHECK_ERROR(avg_pool1d(x1, 0), Contains("avg_pool1d") && Contains("kernel_size 0"));
  WEFT_CHECK_ERROR(avg_pool1d(x1.to(kInt32), 2), Contains("avg_pool1d") && Contains("int32"));
  WEFT_CHECK_ERROR(max_pool3d(x3, 2, {}, 2), Contains("max_pool3d") && Contains("padding (2)"));
  WEFT_CHECK_ERROR(max_pool3d(x3, 5), Contains("max_pool3d") && Contains("Given input size: (2x4x4x4). Calculated "
                                                                         "output size: (2x0x0x0)"));
  WEFT_CHECK_ERROR(max_pool3d(randn({4, 4, 4}), 2),
                   Contains("max_pool3d") && Contains("5-D input [N, C, D, H, W]"));
  WEFT_CHECK_ERROR(max_pool3d_with_indices(x3, 2, {}, 0, 0),
                   Contains("max_pool3d_with_indices") && Contains("dilation 0"));
  WEFT_CHECK_ERROR(avg_pool3d(x3, 2, {}, 0, false, true, 0),
                   Contains("avg_pool3d") && Contains("divisor_override"));
  WEFT_CHECK_ERROR(avg_pool3d(x3.to(kInt32), 2), Contains("avg_pool3d") && Contains("int32"));
}
