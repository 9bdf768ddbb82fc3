// test_spatial.cpp: pooling, batch/instance/group norm, pad and interpolate: hand-worked values,
// gradcheck in float64, running statistics, unbatched inputs and errors. (PyTorch's numbers:
// test_spatial_torch.)
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <vector>

#include "tests/nn_reference.h"
#include "weft.h"

using namespace weft;
using autograd::gradcheck;
using autograd::variable_list;
using namespace weft::nn_test;
using Catch::Matchers::Contains;

TEST_CASE("pooling on a hand-worked input", "[pool]") {
  Tensor x = f64({1, 5, 2, 0, 3, 4, -1, 8, 6, 7, 9, 2, 0, 1, 1, 1}, {1, 1, 4, 4});
  auto [y, idx] = max_pool2d_with_indices(x, 2);
  require_close(y, {5, 8, 7, 9});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{1, 7, 9, 10});
  require_close(avg_pool2d(x, 2), {13 / 4.0, 9 / 4.0, 14 / 4.0, 13 / 4.0});
  // Padding 1, stride 2, kernel 2: the corner window holds x[0, 0] and three zeros.
  require_close(avg_pool2d(x, 2, Size2d(2), 1), {1 / 4.0, 7 / 4.0, 0, 9 / 4.0, 19 / 4.0, 10 / 4.0, 0, 2 / 4.0, 1 / 4.0});
  // Without counting the padding: corners divide by 1, edges by 2.
  require_close(avg_pool2d(x, 2, Size2d(2), 1, false, false), {1, 7 / 2.0, 0, 9 / 2.0, 19 / 4.0, 10 / 2.0, 0, 2 / 2.0, 1});
  // Adaptive 4 -> 3: windows [0, 2), [1, 3), [2, 4) on both axes.
  require_close(adaptive_avg_pool2d(x, 3), {13 / 4.0, 10 / 4.0, 9 / 4.0, 20 / 4.0, 19 / 4.0, 18 / 4.0, 14 / 4.0, 18 / 4.0, 13 / 4.0});
  CHECK(max_pool2d(reshape(x, {1, 4, 4}), 2).shape() == Shape{1, 2, 2});  // unbatched
}

TEST_CASE("pooling passes gradcheck in float64", "[pool]") {
  Tensor x = randn64({2, 3, 7, 6}, 1);
  CHECK(gradcheck([](const variable_list& in) { return max_pool2d(in[0], 3, Size2d(2), 1, {1, 2}, true); }, {x}));
  CHECK(gradcheck([](const variable_list& in) { return avg_pool2d(in[0], {3, 2}, Size2d(2, 1), 1, true, false); }, {x}));
  CHECK(gradcheck([](const variable_list& in) { return avg_pool2d(in[0], 2, std::nullopt, 0, false, true, 3); }, {x}));
  CHECK(gradcheck([](const variable_list& in) { return adaptive_avg_pool2d(in[0], {4, 4}); }, {x}));
  CHECK(gradcheck([](const variable_list& in) { return adaptive_avg_pool2d(in[0], 1); }, {x}));
}

TEST_CASE("batch_norm normalises per channel and updates its running statistics", "[norm]") {
  // Channel 0 holds 1, 3 (mean 2, biased var 1, unbiased 2), channel 1 holds 4, 6 (mean 5, the same).
  Tensor x = f64({1, 4, 3, 6}, {2, 2});
  Tensor rm = f64({0, 1}, {2}), rv = f64({1, 1}, {2});
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.5, 0.0);
  require_close(y, {-1, -1, 1, 1});
  require_close(rm, {1, 3});      // 0.5 * old + 0.5 * batch mean
  require_close(rv, {1.5, 1.5});  // 0.5 * old + 0.5 * unbiased batch var
  const double s = std::sqrt(1.5);
  require_close(batch_norm(x, rm, rv, f64({2, 1}, {2}), f64({0, 1}, {2}), false, 0.1, 0.0),
                {0, 1 / s + 1, 2 * 2 / s, 3 / s + 1});
}

TEST_CASE("the normalizations pass gradcheck in float64", "[norm]") {
  Tensor x = randn64({3, 4, 3, 2}, 2), w = randn64({4}, 3), b = randn64({4}, 4);
  Tensor rm = randn64({4}, 5, false), rv = add(rand({4}, dtype(kFloat64)), 0.5);
  for (bool training : {true, false})
    CHECK(gradcheck([&](const variable_list& in) {
      // Fresh running statistics for every evaluation, so finite differences see one function.
      return batch_norm(in[0], clone(rm), clone(rv), in[1], in[2], training, 0.1, 1e-5);
    }, {x, w, b}));
  CHECK(gradcheck([&](const variable_list& in) { return batch_norm(in[0], Tensor(), Tensor(), {}, {}, true); }, {x}));
  CHECK(gradcheck([&](const variable_list& in) { return group_norm(in[0], 2, in[1], in[2]); }, {x, w, b}));
  CHECK(gradcheck([&](const variable_list& in) { return instance_norm(in[0], {}, {}, in[1], in[2]); }, {x, w, b}));
  CHECK(gradcheck([&](const variable_list& in) { return batch_norm(in[0], Tensor(), Tensor(), {}, {}, true); },
                  {randn64({5, 3}, 6)}));
}

TEST_CASE("instance_norm is group_norm with a group per channel", "[norm]") {
  Tensor x = randn64({2, 4, 3, 5}, 7, false), w = randn64({4}, 8, false), b = randn64({4}, 9, false);
  require_close(instance_norm(x, {}, {}, w, b), group_norm(x, 4, w, b).to_vector<double>(), 1e-12);
}

TEST_CASE("pad on a hand-worked input, and gradcheck", "[pad]") {
  Tensor x = f64({1, 2, 3}, {1, 3});
  require_close(pad(x, {2, 1}, "reflect"), {3, 2, 1, 2, 3, 2});
  require_close(pad(x, {2, 1}, "replicate"), {1, 1, 1, 2, 3, 3});
  require_close(pad(x, {2, 1}, "circular"), {2, 3, 1, 2, 3, 1});
  require_close(pad(x, {1, -1, 1, 0}, "constant", 7), {7, 7, 7, 7, 1, 2});
  Tensor y = randn64({2, 3, 4, 5}, 10);
  for (const char* mode : {"constant", "reflect", "replicate", "circular"})
    CHECK(gradcheck([mode](const variable_list& in) { return pad(in[0], {1, 2, 3, 1}, mode); }, {y}));
  CHECK(gradcheck([](const variable_list& in) { return pad(in[0], {-1, 2, 0, 0, 1, 1}); }, {y}));
}

TEST_CASE("interpolate on a hand-worked input, and gradcheck", "[interpolate]") {
  Tensor x = f64({1, 2, 3, 4}, {1, 1, 2, 2});
  require_close(interpolate(x, std::nullopt, 2.0), {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // align_corners: the corners stay, the middle row and column are the averages.
  require_close(interpolate(x, Size2d(3, 3), {}, "bilinear", true), {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4});
  Tensor y = randn64({2, 3, 4, 5}, 11);
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], Size2d(7, 3)); }, {y}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], Size2d(7, 3), {}, "bilinear"); }, {y}));
  CHECK(gradcheck([](const variable_list& in) { return interpolate(in[0], {}, ScaleFactor(1.5, 0.5), "bilinear", true); },
                  {y}));
}

TEST_CASE("pooling, normalization, padding and interpolation name what is wrong", "[errors]") {
  Tensor x = randn({1, 2, 4, 4});
  WEFT_CHECK_ERROR(max_pool2d(randn({4, 4}), 2), Contains("max_pool2d") && Contains("4-D input"));
  WEFT_CHECK_ERROR(max_pool2d(x, 2, Size2d(2), 2), Contains("max_pool2d") && Contains("at most half"));
  WEFT_CHECK_ERROR(max_pool2d(x, 0), Contains("max_pool2d") && Contains("positive kernel_size"));
  WEFT_CHECK_ERROR(max_pool2d(x, 5), Contains("max_pool2d") && Contains("too small"));
  WEFT_CHECK_ERROR(avg_pool2d(x, 2, std::nullopt, 0, false, true, 0), Contains("divisor_override"));
  WEFT_CHECK_ERROR(adaptive_avg_pool2d(x, -1), Contains("adaptive_avg_pool2d") && Contains("non-negative output_size"));
  CHECK(adaptive_avg_pool2d(x, 0).numel() == 0);  // PyTorch gives an empty output
  WEFT_CHECK_ERROR(batch_norm(x, Tensor(), Tensor()), Contains("batch_norm") && Contains("needs running_mean"));
  WEFT_CHECK_ERROR(batch_norm(x, randn({3}), randn({3}), {}, {}, true), Contains("running_mean of shape [2]"));
  WEFT_CHECK_ERROR(batch_norm(randn({1, 2}), {}, {}, {}, {}, true), Contains("more than 1 value per channel"));
  WEFT_CHECK_ERROR(batch_norm(x, randn({2}), Tensor(), {}, {}, true), Contains("both running_mean and running_var"));
  WEFT_CHECK_ERROR(group_norm(x, 3), Contains("group_norm") && Contains("divide the channels (2)"));
  WEFT_CHECK_ERROR(group_norm(x, 1, randn({2}, dtype(kFloat64))), Contains("group_norm") && Contains("dtype"));
  WEFT_CHECK_ERROR(pad(x, {1}), Contains("pad") && Contains("even number"));
  WEFT_CHECK_ERROR(pad(x, {4, 0}, "reflect"), Contains("reflect padding (4, 0)") && Contains("smaller than"));
  CHECK(pad(x, {-1, 0}, "replicate").size(3) == 3);  // negative amounts crop in every mode, as in PyTorch
  WEFT_CHECK_ERROR(pad(x, {1, 1}, "wrap"), Contains("pad") && Contains("\"wrap\""));
  WEFT_CHECK_ERROR(pad(x, {-3, -2}), Contains("negative size"));
  WEFT_CHECK_ERROR(interpolate(x), Contains("interpolate") && Contains("exactly one of size and scale_factor"));
  WEFT_CHECK_ERROR(interpolate(x, Size2d(2), 2.0), Contains("exactly one") && Contains("both"));
  WEFT_CHECK_ERROR(interpolate(x, Size2d(2), {}, "cubic"), Contains("\"cubic\""));
  WEFT_CHECK_ERROR(interpolate(x, Size2d(2), {}, "nearest", true),
                   Contains("align_corners option can only be set with the interpolating modes"));
  WEFT_CHECK_ERROR(interpolate(x, {}, 0.1), Contains("output size (0, 0) must be positive"));
  WEFT_CHECK_ERROR(interpolate(randn({2, 4}), Size2d(2)), Contains("4-D input"));
}
