// test_interpolate_modes.cpp: interpolate's nearest-exact, area and bicubic modes, antialias and
// recompute_scale_factor: hand-worked values, references computed another way (a gather by indices
// computed in double, area as 1-D areas along each axis in turn and as avg_pool on even windows,
// bicubic as a direct 16-tap sum of the textbook kernel), gradcheck in float64 and the errors.
// (PyTorch's numbers: tests/conformance/interpolate.py and tests/spatial_oracle.py.)
#include <catch2/catch.hpp>
#include <algorithm>
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

void require_tensors_close(const Tensor& got, const Tensor& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  const auto g = got.contiguous().to_vector<double>(), w = want.contiguous().to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) REQUIRE(std::fabs(g[i] - w[i]) <= tol);
}

// nearest-exact's source index along one axis, in double: round((o + 0.5) * in / out - 0.5) with
// halves rounded up, clamped. Differs from PyTorch's float formula only on ties within float's
// rounding, which these sizes do not reach.
int64_t exact_source(int64_t o, int64_t in, int64_t out) {
  return std::min(static_cast<int64_t>(std::floor((double(o) + 0.5) * double(in) / double(out))), in - 1);
}

// The textbook cubic convolution kernel (Keys 1981) with a = -0.75.
double keys(double x) {
  const double a = -0.75, s = std::fabs(x);
  if (s <= 1) return (a + 2) * s * s * s - (a + 3) * s * s + 1;
  if (s < 2) return a * s * s * s - 5 * a * s * s + 8 * a * s - 4 * a;
  return 0;
}

// One axis of bicubic: the source coordinate of output o, the samples `step` input pixels apart
// (in / out unless a scale_factor was given).
double cubic_source(int64_t o, int64_t in, int64_t out, bool align_corners, double step) {
  if (align_corners) return out > 1 ? double(o) * double(in - 1) / double(out - 1) : 0.0;
  return (double(o) + 0.5) * (step > 0 ? step : double(in) / double(out)) - 0.5;
}

// Bicubic of a [1, 1, H, W] float64 input as one direct sum over 4 x 4 taps, the taps clamped.
std::vector<double> bicubic_reference(const Tensor& x, int64_t oh, int64_t ow, bool align_corners,
                                      double step_h = 0, double step_w = 0) {
  const int64_t h = x.size(2), w = x.size(3);
  const std::vector<double> v = x.contiguous().to_vector<double>();
  std::vector<double> y;
  for (int64_t i = 0; i < oh; ++i)
    for (int64_t j = 0; j < ow; ++j) {
      const double sy = cubic_source(i, h, oh, align_corners, step_h);
      const double sx = cubic_source(j, w, ow, align_corners, step_w);
      const auto fy = static_cast<int64_t>(std::floor(sy)), fx = static_cast<int64_t>(std::floor(sx));
      double sum = 0;
      for (int64_t ky = fy - 1; ky <= fy + 2; ++ky)
        for (int64_t kx = fx - 1; kx <= fx + 2; ++kx)
          sum += keys(sy - double(ky)) * keys(sx - double(kx)) *
                 v[size_t(std::clamp<int64_t>(ky, 0, h - 1) * w + std::clamp<int64_t>(kx, 0, w - 1))];
      y.push_back(sum);
    }
  return y;
}

// Area along dim `dim` of x (2, 3 or 4 of a 5-D tensor) to `out`, through the 1-D op.
Tensor area_along(const Tensor& x, int64_t dim, int64_t out) {
  Tensor moved = movedim(x, dim, 4).contiguous();  // [N, C, a, b, L]
  const Shape s = moved.shape();
  Tensor y = interpolate(moved.reshape({s[0], s[1] * s[2] * s[3], s[4]}), OutputSize(out), {}, "area");
  return movedim(y.reshape({s[0], s[1], s[2], s[3], out}), 4, dim);
}

}  // namespace

TEST_CASE("nearest-exact takes floor((o + 0.5) * scale)", "[interpolate]") {
  Tensor x = f64({1, 2, 4}, {1, 1, 3});
  // Scale 3/5: sources 0.3, 0.9, 1.5, 2.1, 2.7 (nearest: 0, 0.6, 1.2, 1.8, 2.4).
  require_close(interpolate(x, OutputSize(5), {}, "nearest-exact"), {1, 1, 2, 4, 4});
  require_close(interpolate(x, OutputSize(5)), {1, 1, 2, 2, 4});
  // Downsampling, scale 3/2: sources 0.75 and 2.25.
  require_close(interpolate(x, OutputSize(2), {}, "nearest-exact"), {1, 4});
  // scale_factor 2.6: 7 outputs. The scale as given (1 / 2.6) reads output 2 at 0.96; recomputed
  // (3 / 7) at 1.07.
  require_close(interpolate(x, {}, 2.6, "nearest-exact"), {1, 1, 1, 2, 2, 4, 4});
  require_close(interpolate(x, {}, 2.6, "nearest-exact", std::nullopt, false), {1, 1, 1, 2, 2, 4, 4});
  require_close(interpolate(x, {}, 2.6, "nearest-exact", std::nullopt, true), {1, 1, 2, 2, 2, 4, 4});
  // Scale 1.1 keeps 7 samples; nearest-exact reads floor((o + 0.5) / 1.1) (5.5 / 1.1 is 5.0000001
  // in float), skipping input 6. PyTorch 1.13 gives the same.
  Tensor seven = f64({0, 1, 2, 3, 4, 5, 6}, {1, 1, 7});
  require_close(interpolate(seven, {}, 1.1, "nearest-exact"), {0, 1, 2, 3, 4, 5, 5});

  SECTION("2-D and 3-D are a gather by the indices of each axis") {
    for (const Shape& in : {Shape{2, 3, 5, 7}, Shape{1, 2, 3, 4, 6}}) {
      Tensor t = randn64(in, 31, false);
      std::vector<int64_t> out = in.size() == 4 ? std::vector<int64_t>{8, 3} : std::vector<int64_t>{7, 2, 9};
      Tensor y = interpolate(t, OutputSize(out), {}, "nearest-exact");
      Tensor want = t;
      for (size_t a = 0; a < out.size(); ++a) {
        std::vector<int64_t> idx;
        const int64_t n = in[2 + a];
        for (int64_t o = 0; o < out[a]; ++o) idx.push_back(exact_source(o, n, out[a]));
        want = index_select(want, int64_t(2 + a), from_vector<int64_t>(idx, {int64_t(idx.size())}));
      }
      require_tensors_close(y, want, 0);
    }
  }
}

TEST_CASE("area averages the windows of adaptive average pooling", "[interpolate]") {
  Tensor x = f64({1, 2, 4, 8, 16}, {1, 1, 5});
  // Windows [0, 3) and [2, 5); then [0, 2), [1, 4), [3, 5).
  require_close(interpolate(x, OutputSize(2), {}, "area"), {7.0 / 3, 28.0 / 3});
  require_close(interpolate(x, OutputSize(3), {}, "area"), {1.5, 14.0 / 3, 12});
  // A scale_factor only sets the size: 5 * 0.5 -> 2 windows, whatever recompute_scale_factor says.
  require_close(interpolate(x, {}, 0.5, "area"), {7.0 / 3, 28.0 / 3});
  require_close(interpolate(x, {}, 0.5, "area", std::nullopt, false), {7.0 / 3, 28.0 / 3});
  // Upsampling repeats: windows of one.
  require_close(interpolate(f64({1, 2}, {1, 1, 2}), OutputSize(4), {}, "area"), {1, 1, 2, 2});
  // An output size of 0 is an empty result, not an error (adaptive pooling's rule).
  CHECK(interpolate(x, OutputSize(0), {}, "area").shape() == Shape{1, 1, 0});
  CHECK(interpolate(x, {}, 0.1, "area").shape() == Shape{1, 1, 0});

  SECTION("on even windows it is avg_pool; in 3-D, 1-D areas along each axis in turn") {
    Tensor t2 = randn64({2, 3, 6, 8}, 32, false);
    require_tensors_close(interpolate(t2, OutputSize(3, 2), {}, "area"), avg_pool2d(t2, Size2d(2, 4)), 1e-14);
    Tensor t3 = randn64({2, 2, 6, 4, 8}, 33, false);
    require_tensors_close(interpolate(t3, OutputSize(3, 2, 4), {}, "area"), avg_pool3d(t3, 2), 1e-14);
    for (const std::vector<int64_t>& out : {std::vector<int64_t>{4, 3, 5}, {7, 1, 3}, {2, 5, 8}}) {
      Tensor want = area_along(area_along(area_along(t3, 2, out[0]), 3, out[1]), 4, out[2]);
      require_tensors_close(interpolate(t3, OutputSize(out), {}, "area"), want, 1e-13);
    }
  }
}

TEST_CASE("bicubic is Keys' cubic convolution with clamped taps", "[interpolate]") {
  // One row (the 1 -> 1 height reads its row with weights 0 1 0 0). Aligned corners: sources 0, 0.5,
  // ..., 3; at a half the weights are -3/32, 19/32, 19/32, -3/32 (a tap left of 0 reads 0).
  Tensor row = f64({1, 2, 4, 8}, {1, 1, 1, 4});
  require_close(interpolate(row, OutputSize(1, 7), {}, "bicubic", true), {1, 1.3125, 2, 2.71875, 4, 6.1875, 8});
  // A constant stays constant (the weights sum to 1), also at the borders and when downsampling.
  Tensor ones_in = full({1, 2, 5, 6}, 2.5, kFloat64);
  for (bool align : {false, true})
    require_tensors_close(interpolate(ones_in, OutputSize(9, 4), {}, "bicubic", align),
                          full({1, 2, 9, 4}, 2.5, kFloat64), 1e-14);

  SECTION("a direct 16-tap sum") {
    Tensor t = randn64({1, 1, 5, 6}, 34, false);
    for (bool align : {false, true})
      for (const std::vector<int64_t>& out : {std::vector<int64_t>{9, 11}, {3, 2}, {1, 1}, {5, 13}, {2, 6}})
        require_close(interpolate(t, OutputSize(out), {}, "bicubic", align),
                      bicubic_reference(t, out[0], out[1], align), 1e-13);
  }
  SECTION("a scale_factor places the samples unless recompute_scale_factor") {
    // 5 x 6 scaled by 1.5 is 7 x 9: recomputed, the sources are those of size (7, 9); as given,
    // (o + 0.5) / 1.5 - 0.5, which differ in height (5 / 7 is not 1 / 1.5).
    Tensor t = randn64({1, 1, 5, 6}, 35, false);
    Tensor recomputed = interpolate(t, {}, 1.5, "bicubic", false, true);
    require_close(recomputed, bicubic_reference(t, 7, 9, false), 1e-13);
    Tensor as_given = interpolate(t, {}, 1.5, "bicubic");
    require_close(as_given, bicubic_reference(t, 7, 9, false, 1 / 1.5, 1 / 1.5), 1e-13);
    CHECK(max(abs(as_given - recomputed)).item<double>() > 1e-3);
    // Aligned corners ignore the scale given.
    require_close(interpolate(t, {}, 1.5, "bicubic", true), bicubic_reference(t, 7, 9, true), 1e-13);
  }
}

TEST_CASE("antialias stretches the filter when downsampling", "[interpolate]") {
  // 4 -> 2: scale 2, the triangle twice as wide around centres 1 and 3; output 0 weighs inputs 0 1 2
  // by 0.75 0.75 0.25 (normalized by 1.75), output 1 inputs 1 2 3 by 0.25 0.75 0.75.
  Tensor row = f64({1, 2, 4, 8}, {1, 1, 1, 4});
  require_close(interpolate(row, OutputSize(1, 2), {}, "bilinear", false, std::nullopt, true), {13.0 / 7, 38.0 / 7});
  // Plain bilinear reads only inputs 0 1 and 2 3 there.
  require_close(interpolate(row, OutputSize(1, 2), {}, "bilinear"), {1.5, 6});
  // Upsampling keeps the filter: away from the borders it is plain bilinear.
  Tensor t = randn64({1, 2, 6, 7}, 36, false);
  Tensor aa = interpolate(t, OutputSize(12, 14), {}, "bilinear", false, std::nullopt, true);
  Tensor plain = interpolate(t, OutputSize(12, 14), {}, "bilinear");
  require_tensors_close(narrow(narrow(aa, 2, 1, 10), 3, 1, 12), narrow(narrow(plain, 2, 1, 10), 3, 1, 12), 1e-14);
  // A constant stays constant, bicubic's negative lobes included.
  Tensor c = full({1, 1, 9, 11}, -1.5, kFloat64);
  for (bool align : {false, true})
    require_tensors_close(interpolate(c, OutputSize(4, 3), {}, "bicubic", align, std::nullopt, true),
                          full({1, 1, 4, 3}, -1.5, kFloat64), 1e-14);
}

TEST_CASE("nearest-exact, area, bicubic and antialias pass gradcheck", "[interpolate][gradcheck]") {
  Tensor x1 = randn64({2, 2, 5}, 41), x2 = randn64({1, 2, 4, 5}, 42), x3 = randn64({1, 2, 3, 2, 4}, 43);
  auto check = [](const Tensor& x, auto f) {
    CHECK(gradcheck([&](const variable_list& in) { return f(in[0]); }, {x}));
  };
  // nearest-exact on every rank, up and down, with a scale as given
  check(x1, [](const Tensor& t) { return interpolate(t, OutputSize(8), {}, "nearest-exact"); });
  check(x1, [](const Tensor& t) { return interpolate(t, {}, 0.7, "nearest-exact"); });
  check(x2, [](const Tensor& t) { return interpolate(t, {}, ScaleFactor(1.7, 0.6), "nearest-exact"); });
  check(x3, [](const Tensor& t) { return interpolate(t, OutputSize(4, 3, 2), {}, "nearest-exact"); });
  // area: the 1-D and 2-D through adaptive_avg_pool2d, the 3-D on the resampling kernel
  check(x1, [](const Tensor& t) { return interpolate(t, OutputSize(3), {}, "area"); });
  check(x1, [](const Tensor& t) { return interpolate(t, {}, 1.5, "area"); });
  check(x2, [](const Tensor& t) { return interpolate(t, OutputSize(3, 2), {}, "area"); });
  check(x3, [](const Tensor& t) { return interpolate(t, OutputSize(2, 3, 3), {}, "area"); });
  check(x3, [](const Tensor& t) { return interpolate(t, {}, ScaleFactor(0.7, 1.5, 0.5), "area"); });
  // bicubic both ways, up and down, sizes and scales (1.1 keeps 4 x 5: the gradient is the forward's)
  for (bool align : {false, true}) {
    check(x2, [=](const Tensor& t) { return interpolate(t, OutputSize(7, 3), {}, "bicubic", align); });
    check(x2, [=](const Tensor& t) { return interpolate(t, {}, 1.1, "bicubic", align); });
    check(x2, [=](const Tensor& t) { return interpolate(t, {}, ScaleFactor(0.6, 2.5), "bicubic", align); });
    check(x2, [=](const Tensor& t) { return interpolate(t, {}, 1.7, "bicubic", align, true); });
  }
  // antialias, down and up
  Tensor x9 = randn64({1, 1, 9, 7}, 44);
  for (const char* mode : {"bilinear", "bicubic"})
    for (bool align : {false, true}) {
      check(x9, [=](const Tensor& t) { return interpolate(t, OutputSize(4, 3), {}, mode, align, std::nullopt, true); });
      check(x9, [=](const Tensor& t) { return interpolate(t, {}, ScaleFactor(1.6, 0.45), mode, align, false, true); });
    }
  CHECK(interpolate(x2, OutputSize(3), {}, "bicubic").grad_fn()->name() == "UpsampleBicubic2DBackward");
  CHECK(interpolate(x2, OutputSize(3), {}, "bilinear", false, std::nullopt, true).grad_fn()->name() ==
        "UpsampleBilinear2DAaBackward");
  CHECK(interpolate(x1, OutputSize(3), {}, "nearest-exact").grad_fn()->name() == "UpsampleNearestExact1DBackward");
  CHECK(interpolate(x3, OutputSize(2), {}, "area").grad_fn()->name() == "AdaptiveAvgPool3DBackward");
}

TEST_CASE("the new modes refuse what PyTorch refuses, and name what is wrong", "[interpolate][errors]") {
  Tensor x1 = randn64({1, 2, 4}, 51, false), x2 = randn64({1, 2, 4, 5}, 52, false),
         x3 = randn64({1, 2, 3, 4, 5}, 53, false);
  const std::string only_interpolating = "align_corners option can only be set with the interpolating modes";
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(3), {}, "area", false),
                   Contains("interpolate") && Contains(only_interpolating));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(3), {}, "nearest-exact", true),
                   Contains("interpolate") && Contains(only_interpolating));
  for (const Tensor& t : {x1, x3, randn64({2, 3}, 54, false)})
    WEFT_CHECK_ERROR(interpolate(t, OutputSize(3), {}, "bicubic"),
                     Contains("interpolate") && Contains("Only 3D, 4D and 5D input Tensors supported (got " +
                                                         std::to_string(t.dim()) + "D)") && Contains("\"bicubic\""));
  WEFT_CHECK_ERROR(interpolate(randn64({1, 1, 1, 1, 1, 1}, 55, false), OutputSize(3), {}, "nearest-exact"),
                   Contains("Only 3D, 4D and 5D input Tensors supported (got 6D)"));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(3), {}, "nearest", std::nullopt, true),
                   Contains("interpolate") &&
                       Contains("recompute_scale_factor is not meaningful with an explicit size"));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(-2), {}, "area"),
                   Contains("interpolate") && Contains("output size (-2, -2) must be non-negative"));
  WEFT_CHECK_ERROR(interpolate(x2, {}, -1.0, "area"), Contains("interpolate") && Contains("positive scale_factor"));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(0, 3), {}, "bicubic"), Contains("must be positive"));
  WEFT_CHECK_ERROR(interpolate(zeros({1, 2, 0, 3, 2}, kFloat64), OutputSize(2), {}, "area"),
                   Contains("non-empty spatial dims"));
  WEFT_CHECK_ERROR(interpolate(from_vector<int64_t>({1, 2, 3, 4}, {1, 1, 2, 2}), OutputSize(3), {}, "bicubic"),
                   Contains("interpolate") && Contains("floating point") && Contains("int64"));
  for (const char* mode : {"nearest", "nearest-exact", "area"})
    WEFT_CHECK_ERROR(interpolate(x2, OutputSize(3), {}, mode, std::nullopt, std::nullopt, true),
                     Contains("interpolate") &&
                         Contains("Anti-alias option is only supported for bilinear and bicubic"));
  WEFT_CHECK_ERROR(interpolate(x3, OutputSize(3), {}, "trilinear", false, std::nullopt, true),
                   Contains("Anti-alias option"));
  WEFT_CHECK_ERROR(interpolate(x2, OutputSize(3), {}, "cubic"),
                   Contains("\"nearest-exact\", \"area\"") && Contains("\"bicubic\"") && Contains("got \"cubic\""));
}
