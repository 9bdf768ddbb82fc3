// test_nn_pooling: the 1-D and 3-D pooling modules and Upsample. Untagged: forward and gradient equal
// to the functional ops, stride defaulting to kernel_size, gradcheck in float64, what they print and
// Upsample's errors. Tagged [torch]: the same modules against PyTorch 1.13's nn modules, and
// max_pool1d/2d/3d where the output size would be zero or negative, against what torch returns or
// raises (tests/nn_pooling_oracle.py, run by /usr/bin/python3).
#include <functional>
#include <memory>
#include <sstream>

#include "python_oracle.h"
#include "test_util.h"
#include "weft.h"

using namespace weft;
using autograd::gradcheck;
using autograd::variable_list;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(sub(a, b))).item<double>(); }

// The module's output and input gradient for the upstream gradient gy, and the functional op's.
void require_same_as_op(nn::UnaryModule& module, const std::function<Tensor(const Tensor&)>& op, const Shape& shape) {
  Tensor x = randn(shape, dtype(kFloat64).requires_grad());
  Tensor y = module(x), want = op(x);
  REQUIRE(y.shape() == want.shape());
  CHECK(max_abs_diff(y, want) == 0);
  Tensor gy = randn(y.shape(), dtype(kFloat64));
  Tensor dx = autograd::grad({y}, {x}, {gy})[0], want_dx = autograd::grad({want}, {x}, {gy})[0];
  CHECK(max_abs_diff(dx, want_dx) == 0);
}

bool module_gradcheck(nn::UnaryModule& module, const Shape& shape) {
  return gradcheck([&](const variable_list& in) { return module.forward(in[0]); },
                   {randn(shape, dtype(kFloat64).requires_grad())});
}

std::string printed(const nn::Module& m) {
  std::ostringstream s;
  s << m;
  return s.str();
}

}  // namespace

TEST_CASE("MaxPool1d, MaxPool3d: forward, indices and gradient are the functional op's", "[nn]") {
  nn::MaxPool1d p1(3);
  CHECK(p1.stride == 3);  // stride defaults to kernel_size
  require_same_as_op(p1, [](const Tensor& x) { return max_pool1d(x, 3, 3); }, {2, 3, 11});
  nn::MaxPool1d q1(3, 2, 1, 2, true);
  require_same_as_op(q1, [](const Tensor& x) { return max_pool1d(x, 3, 2, 1, 2, true); }, {2, 3, 12});
  require_same_as_op(q1, [](const Tensor& x) { return max_pool1d(x, 3, 2, 1, 2, true); }, {3, 12});  // unbatched
  Tensor x1 = randn({2, 3, 12}, dtype(kFloat64));
  auto [y1, i1] = q1.forward_with_indices(x1);
  auto [wy1, wi1] = max_pool1d_with_indices(x1, 3, 2, 1, 2, true);
  CHECK(max_abs_diff(y1, wy1) == 0);
  CHECK(i1.to_vector<int64_t>() == wi1.to_vector<int64_t>());

  nn::MaxPool3d p3(2);
  CHECK((p3.stride.d == 2 && p3.stride.h == 2 && p3.stride.w == 2));
  require_same_as_op(p3, [](const Tensor& x) { return max_pool3d(x, 2, Size3d(2)); }, {2, 2, 4, 5, 6});
  nn::MaxPool3d q3({2, 3, 2}, Size3d(1, 2, 2), {1, 1, 0}, {1, 1, 2}, true);
  auto op3 = [](const Tensor& x) { return max_pool3d(x, {2, 3, 2}, Size3d(1, 2, 2), {1, 1, 0}, {1, 1, 2}, true); };
  require_same_as_op(q3, op3, {1, 2, 5, 6, 7});
  require_same_as_op(q3, op3, {2, 5, 6, 7});
  Tensor x3 = randn({1, 2, 5, 6, 7}, dtype(kFloat64));
  auto [y3, i3] = q3.forward_with_indices(x3);
  auto [wy3, wi3] = max_pool3d_with_indices(x3, {2, 3, 2}, Size3d(1, 2, 2), {1, 1, 0}, {1, 1, 2}, true);
  CHECK(max_abs_diff(y3, wy3) == 0);
  CHECK(i3.to_vector<int64_t>() == wi3.to_vector<int64_t>());

  nn::MaxPool2d p2(3, 2, 1);
  Tensor x2 = randn({2, 3, 7, 8}, dtype(kFloat64));
  auto [y2, i2] = p2.forward_with_indices(x2);
  CHECK(max_abs_diff(y2, p2.forward(x2)) == 0);
  CHECK(i2.to_vector<int64_t>() == max_pool2d_with_indices(x2, 3, Size2d(2), 1).second.to_vector<int64_t>());
}

TEST_CASE("AvgPool1d, AvgPool3d: forward and gradient are the functional op's", "[nn]") {
  nn::AvgPool1d p1(3);
  CHECK(p1.stride == 3);
  CHECK((p1.padding == 0 && !p1.ceil_mode && p1.count_include_pad));
  require_same_as_op(p1, [](const Tensor& x) { return avg_pool1d(x, 3, 3); }, {2, 3, 10});
  nn::AvgPool1d q1(4, 3, 2, true, false);
  require_same_as_op(q1, [](const Tensor& x) { return avg_pool1d(x, 4, 3, 2, true, false); }, {2, 2, 11});

  nn::AvgPool3d p3(Size3d(2, 1, 3));
  CHECK((p3.stride.d == 2 && p3.stride.h == 1 && p3.stride.w == 3 && !p3.divisor_override));
  require_same_as_op(p3, [](const Tensor& x) { return avg_pool3d(x, {2, 1, 3}, Size3d(2, 1, 3)); }, {2, 2, 4, 5, 6});
  nn::AvgPool3d q3({3, 2, 3}, Size3d(2, 1, 2), {1, 0, 1}, true, false);
  require_same_as_op(q3, [](const Tensor& x) { return avg_pool3d(x, {3, 2, 3}, Size3d(2, 1, 2), {1, 0, 1}, true, false); },
                     {1, 2, 5, 6, 7});
  nn::AvgPool3d d3(2, Size3d(1), 0, false, true, 3);
  require_same_as_op(d3, [](const Tensor& x) { return avg_pool3d(x, 2, Size3d(1), 0, false, true, 3); }, {2, 3, 4, 5});
}

TEST_CASE("the 1-D and 3-D pooling modules pass gradcheck in float64", "[nn][gradcheck]") {
  nn::MaxPool1d m1(3, 2, 1, 2, true);
  CHECK(module_gradcheck(m1, {2, 2, 9}));
  nn::MaxPool3d m3({2, 3, 2}, Size3d(1, 2, 2), {1, 1, 0}, {1, 1, 2}, true);
  CHECK(module_gradcheck(m3, {1, 2, 3, 5, 6}));
  nn::AvgPool1d a1(4, 3, 2, true, false);
  CHECK(module_gradcheck(a1, {2, 2, 9}));
  nn::AvgPool3d a3(3, Size3d(2), 1, true, false, 5);
  CHECK(module_gradcheck(a3, {1, 2, 4, 5, 3}));
}

TEST_CASE("the pooling modules print their options", "[nn]") {
  CHECK(printed(nn::MaxPool1d(3)) == "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=false)");
  CHECK(nn::MaxPool3d(Size3d(1, 2, 3), std::nullopt, 0, 2, true).extra_repr() ==
        "kernel_size=(1, 2, 3), stride=(1, 2, 3), padding=(0, 0, 0), dilation=(2, 2, 2), ceil_mode=true");
  CHECK(nn::AvgPool1d(4, 2, 1).extra_repr() ==
        "kernel_size=4, stride=2, padding=1, ceil_mode=false, count_include_pad=true");
  CHECK(nn::AvgPool3d(2, Size3d(1, 2, 1), 1, true, false).extra_repr() ==
        "kernel_size=(2, 2, 2), stride=(1, 2, 1), padding=(1, 1, 1), ceil_mode=true, count_include_pad=false");
}

TEST_CASE("Upsample calls interpolate on 1-D, 2-D and 3-D inputs", "[nn]") {
  nn::Upsample by_size(7);
  require_same_as_op(by_size, [](const Tensor& x) { return interpolate(x, OutputSize(7)); }, {2, 3, 4});
  require_same_as_op(by_size, [](const Tensor& x) { return interpolate(x, OutputSize(7)); }, {1, 2, 3, 4});
  require_same_as_op(by_size, [](const Tensor& x) { return interpolate(x, OutputSize(7)); }, {1, 2, 2, 3, 4});
  nn::Upsample bilinear(Size2d(5, 7), std::nullopt, "bilinear", true);
  require_same_as_op(bilinear, [](const Tensor& x) { return interpolate(x, Size2d(5, 7), {}, "bilinear", true); },
                     {1, 2, 3, 4});
  nn::Upsample trilinear(std::nullopt, ScaleFactor(1.5, 2.0, 0.75), "trilinear");
  require_same_as_op(
      trilinear, [](const Tensor& x) { return interpolate(x, {}, ScaleFactor(1.5, 2.0, 0.75), "trilinear"); },
      {1, 2, 3, 3, 4});
  nn::Upsample linear(std::nullopt, 2.5, "linear");
  require_same_as_op(linear, [](const Tensor& x) { return interpolate(x, {}, 2.5, "linear"); }, {2, 2, 5});
  // recompute_scale_factor reaches interpolate: with 2.5 on a length of 5 the samples are placed by
  // 5/12 instead of 1/2.5, which changes the values (so the comparison below can fail).
  nn::Upsample recomputed(std::nullopt, 2.5, "linear", std::nullopt, true);
  require_same_as_op(recomputed, [](const Tensor& x) { return interpolate(x, {}, 2.5, "linear", {}, true); },
                     {2, 2, 5});
  const Tensor probe = weft::rand({2, 2, 5});
  CHECK_FALSE(weft::allclose(recomputed.forward(probe), linear.forward(probe)));
  CHECK(recomputed.extra_repr() == "scale_factor=2.5, mode=linear, recompute_scale_factor=true");
  CHECK(module_gradcheck(trilinear, {1, 2, 2, 3, 3}));
  CHECK(module_gradcheck(linear, {2, 2, 4}));
  CHECK(module_gradcheck(by_size, {1, 2, 3, 4}));

  CHECK(nn::Upsample(std::nullopt, 2.0).extra_repr() == "scale_factor=2.0, mode=nearest");
  CHECK(nn::Upsample(std::nullopt, ScaleFactor(2.0, 1.5)).extra_repr() == "scale_factor=(2.0, 1.5), mode=nearest");
  CHECK(printed(nn::Upsample(OutputSize(3, 5, 4), std::nullopt, "trilinear", false)) ==
        "Upsample(size=(3, 5, 4), mode=trilinear, align_corners=false)");
  CHECK(nn::Upsample().extra_repr() == "size=None, mode=nearest");
}

TEST_CASE("Upsample refuses both or neither of size and scale_factor when called, as PyTorch", "[nn][errors]") {
  Tensor x = randn({1, 2, 3});
  WEFT_CHECK_ERROR(nn::Upsample(4, 2.0).forward(x), Contains("Upsample") &&
                   Contains("only one of size or scale_factor should be defined") && Contains("size 4") &&
                   Contains("scale_factor 2.0"));
  nn::Upsample neither;
  WEFT_CHECK_ERROR(neither.forward(x), Contains("Upsample: either size or scale_factor should be defined"));
  neither.scale_factor = 2.0;  // settable after construction, as PyTorch's attribute
  CHECK(neither.forward(x).shape() == Shape{1, 2, 6});
  WEFT_CHECK_ERROR(nn::Upsample(std::nullopt, 2.0, "bilinear").forward(x), Contains("interpolate") &&
                   Contains("bilinear mode needs 4D input"));
}

TEST_CASE("max_pool1d without a gradient returns an empty output for a window longer than the input",
          "[pool][errors]") {
  Tensor x = randn({2, 3, 4}, dtype(kFloat64));
  Tensor y = max_pool1d(x, 5);
  CHECK(y.shape() == Shape{2, 3, 0});
  CHECK(y.dtype() == kFloat64);
  CHECK(max_pool1d(randn({3, 4}).to(kBFloat16), 7, {}, 1).shape() == Shape{3, 0});
  CHECK(nn::MaxPool1d(9).forward(x).shape() == Shape{2, 3, 0});
  WEFT_CHECK_ERROR(max_pool1d(x, 9, 1), Contains("max_pool1d() Invalid computed output size: -4") &&
                   Contains("[2, 3, 4]"));
  WEFT_CHECK_ERROR(max_pool1d_with_indices(x, 5), Contains("max_pool1d_with_indices: Given input size: (3x1x4). "
                                                           "Calculated output size: (3x1x0). Output size is too small"));
  x.requires_grad_();
  WEFT_CHECK_ERROR(max_pool1d(x, 5), Contains("max_pool1d: Given input size: (3x1x4). Calculated output size: "
                                              "(3x1x0). Output size is too small"));
  {
    NoGradGuard no_grad;
    CHECK(max_pool1d(x, 5).shape() == Shape{2, 3, 0});
  }
  WEFT_CHECK_ERROR(max_pool1d(zeros({2, 0, 4}), 5), Contains("max_pool1d: Expected 2D or 3D (batch mode) tensor"));
  WEFT_CHECK_ERROR(max_pool1d(zeros({2, 3, 4}, dtype(kInt64)), 5), Contains("max_pool1d") && Contains("int64"));
  WEFT_CHECK_ERROR(max_pool1d(randn({2, 3, 4}), 4, {}, 3), Contains("at most half the kernel size (4)"));
}

// ---------------------------------------------------------------------------------------------------
// Against PyTorch 1.13.

namespace {

const json& oracle() {
  static const json data = test::run_python_oracle(WEFT_TESTS_DIR "/nn_pooling_oracle.py");
  return data;
}

Tensor from_json(const json& j) {
  std::vector<int64_t> dims = j["shape"].get<std::vector<int64_t>>();
  return tensor(j["data"].get<std::vector<double>>(), Shape(dims.begin(), dims.end()), dtype(kFloat64));
}

void require_close(const Tensor& got, const json& want) {
  Tensor w = from_json(want);
  REQUIRE(got.shape() == w.shape());
  std::vector<double> wv = w.to_vector<double>();
  test::require_within(got.to_vector<double>(), wv, [&](size_t i) { return 1e-10 * (1 + std::fabs(wv[i])); });
}

// The weft module of each oracle case, built with the arguments nn_pooling_oracle.py gives torch's.
struct ModuleCase {
  std::shared_ptr<nn::UnaryModule> module;
  std::function<std::pair<Tensor, Tensor>(const Tensor&)> with_indices;  // for return_indices=True
};

ModuleCase module_case(const std::string& name) {
  auto indices = [](auto m) { return [m](const Tensor& x) { return m->forward_with_indices(x); }; };
  if (name == "maxpool1d_default") return {std::make_shared<nn::MaxPool1d>(3), {}};
  if (name == "maxpool1d_full") {
    auto m = std::make_shared<nn::MaxPool1d>(3, 2, 1, 2, true);
    return {m, indices(m)};
  }
  if (name == "maxpool1d_unbatched") return {std::make_shared<nn::MaxPool1d>(2, 1), {}};
  if (name == "maxpool3d_default") return {std::make_shared<nn::MaxPool3d>(2), {}};
  if (name == "maxpool3d_full") {
    auto m = std::make_shared<nn::MaxPool3d>(Size3d(2, 3, 2), Size3d(1, 2, 2), Size3d(1, 1, 0), Size3d(1, 1, 2), true);
    return {m, indices(m)};
  }
  if (name == "avgpool1d_default") return {std::make_shared<nn::AvgPool1d>(3), {}};
  if (name == "avgpool1d_full") return {std::make_shared<nn::AvgPool1d>(4, 3, 2, true, false), {}};
  if (name == "avgpool3d_default") return {std::make_shared<nn::AvgPool3d>(2), {}};
  if (name == "avgpool3d_full")
    return {std::make_shared<nn::AvgPool3d>(Size3d(3, 2, 3), Size3d(2, 1, 2), Size3d(1, 0, 1), true, false), {}};
  if (name == "avgpool3d_divisor") return {std::make_shared<nn::AvgPool3d>(2, Size3d(1), 0, false, true, 3), {}};
  if (name == "upsample_nearest_size1d") return {std::make_shared<nn::Upsample>(7), {}};
  if (name == "upsample_nearest_scale2d")
    return {std::make_shared<nn::Upsample>(std::nullopt, ScaleFactor(2.0, 1.5)), {}};
  if (name == "upsample_nearest_size3d") return {std::make_shared<nn::Upsample>(OutputSize(3, 5, 4)), {}};
  if (name == "upsample_linear") return {std::make_shared<nn::Upsample>(std::nullopt, 2.5, "linear"), {}};
  if (name == "upsample_bilinear_aligned")
    return {std::make_shared<nn::Upsample>(Size2d(5, 7), std::nullopt, "bilinear", true), {}};
  if (name == "upsample_trilinear")
    return {std::make_shared<nn::Upsample>(std::nullopt, ScaleFactor(1.5, 2.0, 0.75), "trilinear"), {}};
  FAIL("no weft module for oracle case " << name);
  return {};
}

std::optional<int64_t> int_or_none(const json& j) {
  return j.is_null() ? std::nullopt : std::optional<int64_t>(j.get<int64_t>());
}

// One of nn_pooling_oracle.py's EDGES calls in weft: the output, or weft::Error.
Tensor edge_call(const json& e, const Tensor& x) {
  const std::string op = e["op"];
  const bool indices = e["return_indices"], ceil = e["ceil_mode"];
  const int64_t pad = e["padding"], dil = e["dilation"];
  if (op == "max_pool1d") {
    const int64_t k = e["kernel"];
    return indices ? max_pool1d_with_indices(x, k, int_or_none(e["stride"]), pad, dil, ceil).first
                   : max_pool1d(x, k, int_or_none(e["stride"]), pad, dil, ceil);
  }
  const auto k = e["kernel"].get<std::vector<int64_t>>();
  const std::optional<int64_t> s = int_or_none(e["stride"]);
  if (op == "max_pool2d") {
    std::optional<Size2d> stride = s ? std::optional<Size2d>(Size2d(*s)) : std::nullopt;
    return indices ? max_pool2d_with_indices(x, {k[0], k[1]}, stride, pad, dil, ceil).first
                   : max_pool2d(x, {k[0], k[1]}, stride, pad, dil, ceil);
  }
  std::optional<Size3d> stride = s ? std::optional<Size3d>(Size3d(*s)) : std::nullopt;
  return indices ? max_pool3d_with_indices(x, {k[0], k[1], k[2]}, stride, pad, dil, ceil).first
                 : max_pool3d(x, {k[0], k[1], k[2]}, stride, pad, dil, ceil);
}

}  // namespace

TEST_CASE("the 1-D and 3-D pooling modules and Upsample match PyTorch's", "[torch]") {
  test::skip_without_torch();
  for (const auto& [name, c] : oracle()["modules"].items()) {
    INFO(name << ": torch's " << c["repr"].get<std::string>());
    ModuleCase m = module_case(name);
    Tensor x = from_json(c["x"]).requires_grad_();
    Tensor y = (*m.module)(x);
    require_close(y, c["y"]);
    Tensor dx = autograd::grad({y}, {x}, {from_json(c["gy"])})[0];
    require_close(dx, c["dx"]);
    CHECK(m.with_indices.operator bool() == c.contains("idx"));
    if (m.with_indices) {
      auto [yi, idx] = m.with_indices(x);
      CHECK(max_abs_diff(yi, y) == 0);
      CHECK(idx.to_vector<int64_t>() == c["idx"].get<std::vector<int64_t>>());
    }
  }
}

TEST_CASE("max_pool1d/2d/3d with an output size of zero or below return or raise as PyTorch", "[torch]") {
  test::skip_without_torch();
  for (const json& e : oracle()["edges"]) {
    INFO(e.dump());
    const auto dims = e["shape"].get<std::vector<int64_t>>();
    Tensor x = randn(Shape(dims.begin(), dims.end()), dtype(kFloat64));
    if (e["requires_grad"].get<bool>()) x.requires_grad_();
    std::optional<NoGradGuard> no_grad;
    if (!e["grad_mode"].get<bool>()) no_grad.emplace();
    if (e.contains("error")) {
      WEFT_CHECK_ERROR(edge_call(e, x), Contains(e["error"].get<std::string>()) && Contains(e["op"].get<std::string>()));
      continue;
    }
    Tensor y = edge_call(e, x);
    const auto want = e["out_shape"].get<std::vector<int64_t>>();
    CHECK(y.shape() == Shape(want.begin(), want.end()));
    CHECK(y.requires_grad() == e["out_requires_grad"].get<bool>());
  }
}

TEST_CASE("Upsample's errors for both or neither of size and scale_factor are PyTorch's", "[torch]") {
  test::skip_without_torch();
  const json& want = oracle()["upsample_errors"];
  Tensor x = randn({1, 1, 3});
  WEFT_CHECK_ERROR(nn::Upsample(4, 2.0).forward(x), Contains(want["both"].get<std::string>()));
  WEFT_CHECK_ERROR(nn::Upsample().forward(x), Contains(want["neither"].get<std::string>()));
}
