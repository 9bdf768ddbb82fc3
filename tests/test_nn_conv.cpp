// test_nn_conv.cpp: the convolutional modules: shapes and PyTorch's default initialisation bounds,
// forward equal to the functional ops, BatchNorm's buffers (state dict, checkpoints, train/eval,
// dtype conversion), GroupNorm, the pooling layers, Flatten, Identity, ModuleList and ModuleDict.
#include <catch2/catch.hpp>

#include "tests/temp_dir.h"
#include "tests/test_util.h"

#include <cmath>

#include "weft.h"

using namespace weft;
using Catch::Matchers::Contains;

namespace {
double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(sub(a, b))).item<double>(); }
double max_abs(const Tensor& a) { return max(abs(a)).item<double>(); }
}  // namespace

TEST_CASE("convolution modules: shapes, initialisation bounds and forward", "[nn]") {
  nn::Conv2d conv(4, 6, {3, 2}, 2, 1, 1, 2);
  CHECK(conv.weight.shape() == Shape{6, 2, 3, 2});
  CHECK(conv.bias.shape() == Shape{6});
  CHECK(max_abs(conv.weight) <= 1 / std::sqrt(2.0 * 3 * 2));  // fan_in = in / groups * kh * kw
  CHECK(conv.num_parameters() == 6 * 2 * 3 * 2 + 6);
  Tensor x = randn({2, 4, 7, 6});
  CHECK(max_abs_diff(conv.forward(x), conv2d(x, conv.weight, conv.bias, 2, 1, 1, 2)) == 0);
  nn::Conv1d conv1(3, 5, 4, 1, "same", 1, 1, false);
  CHECK(conv1.weight.shape() == Shape{5, 3, 4});
  CHECK(!conv1.bias.defined());
  CHECK(conv1.forward(randn({2, 3, 9})).shape() == Shape{2, 5, 9});
  nn::ConvTranspose2d up(4, 2, 3, 2, 1, 1);
  CHECK(up.weight.shape() == Shape{4, 2, 3, 3});
  CHECK(max_abs(up.weight) <= 1 / std::sqrt(2.0 * 9));  // PyTorch's fan_in: weight dim 1 times the kernel
  CHECK(up.forward(randn({1, 4, 5, 5})).shape() == Shape{1, 2, 10, 10});
  WEFT_CHECK_ERROR(nn::Conv2d(3, 4, 3, 1, 0, 1, 2), Contains("Conv2d") && Contains("divisible by groups"));
  WEFT_CHECK_ERROR(nn::Conv2d(3, 4, 0), Contains("Conv2d") && Contains("positive kernel_size"));
}

TEST_CASE("BatchNorm2d keeps running statistics as buffers and switches with train()/eval()", "[nn]") {
  nn::BatchNorm2d bn(3, 1e-5, 0.5);
  auto names = bn.state_dict().keys();
  CHECK(names == std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.parameters().size() == 2);
  CHECK(bn.buffers().size() == 3);
  Tensor x = add(mul(randn({4, 3, 5, 5}), 2.0), 3.0);
  Tensor y = bn.forward(x);
  // Training: the batch's statistics; the running ones moved halfway towards them.
  CHECK(max_abs_diff(y, batch_norm(x, Tensor(), Tensor(), bn.weight, bn.bias, true)) < 1e-5);
  CHECK(max_abs_diff(bn.running_mean, mul(mean(x, {0, 2, 3}), 0.5)) < 1e-5);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  nn::Sequential seq({std::make_shared<nn::Identity>(), std::make_shared<nn::BatchNorm2d>(3)});
  seq.eval();
  CHECK(!seq[1]->is_training());
  bn.eval();
  Tensor before = bn.running_mean.clone();
  CHECK(max_abs_diff(bn.forward(x), batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, false)) < 1e-6);
  CHECK(max_abs_diff(bn.running_mean, before) == 0);  // eval leaves them alone
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  WEFT_CHECK_ERROR(bn.forward(randn({4, 3})), Contains("BatchNorm2d") && Contains("4-D input"));
  WEFT_CHECK_ERROR(nn::BatchNorm1d(2).forward(randn({4, 2, 3, 3})), Contains("BatchNorm1d") && Contains("2-D or 3-D"));
  nn::BatchNorm1d untracked(2, 1e-5, 0.1, false, false);
  CHECK(untracked.state_dict().size() == 0);
  untracked.eval();  // without running statistics eval still normalises by the batch's
  Tensor z = randn({5, 2});
  CHECK(max_abs_diff(untracked.forward(z), batch_norm(z, Tensor(), Tensor(), {}, {}, true)) < 1e-6);
  bn.to(kFloat64);
  CHECK(bn.running_mean.dtype() == kFloat64);
  CHECK(bn.num_batches_tracked.dtype() == kInt64);
}

TEST_CASE("batch norm buffers survive a checkpoint and a state dict round trip", "[nn]") {
  test::TempDir dir;
  nn::BatchNorm2d bn(3);
  bn.forward(randn({4, 3, 2, 2}));
  bn.forward(randn({4, 3, 2, 2}));
  nn::save_checkpoint(dir / "bn.ckpt", bn);
  nn::BatchNorm2d loaded(3);
  nn::load_checkpoint(dir / "bn.ckpt", loaded);
  CHECK(max_abs_diff(loaded.running_mean, bn.running_mean) == 0);
  CHECK(max_abs_diff(loaded.running_var, bn.running_var) == 0);
  CHECK(loaded.num_batches_tracked.item<int64_t>() == 2);
  nn::BatchNorm2d copy(3);
  copy.load_state_dict(bn.state_dict());
  CHECK(max_abs_diff(copy.running_var, bn.running_var) == 0);
}

TEST_CASE("GroupNorm, pooling layers, Flatten and Identity forward to their ops", "[nn]") {
  Tensor x = randn({2, 4, 6, 6});
  nn::GroupNorm gn(2, 4);
  CHECK(max_abs_diff(gn.forward(x), group_norm(x, 2, gn.weight, gn.bias)) == 0);
  WEFT_CHECK_ERROR(nn::GroupNorm(3, 4), Contains("GroupNorm") && Contains("divide num_channels"));
  CHECK(max_abs_diff(nn::MaxPool2d(2).forward(x), max_pool2d(x, 2)) == 0);
  CHECK(max_abs_diff(nn::AvgPool2d(3, 2, 1).forward(x), avg_pool2d(x, 3, Size2d(2), 1)) == 0);
  CHECK(nn::AdaptiveAvgPool2d({2, 3}).forward(x).shape() == Shape{2, 4, 2, 3});
  CHECK(nn::Flatten().forward(x).shape() == Shape{2, 144});
  CHECK(nn::Identity().forward(x).is_same(x));
}

TEST_CASE("ModuleList and ModuleDict register their modules", "[nn]") {
  nn::ModuleList list;
  list.push_back(std::make_shared<nn::Linear>(2, 3));
  list.push_back(std::make_shared<nn::BatchNorm1d>(3));
  CHECK(list.size() == 2);
  CHECK(list.state_dict().keys() == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias",
                                                             "1.running_mean", "1.running_var",
                                                             "1.num_batches_tracked"});
  CHECK(list.at<nn::Linear>(0)->out_features == 3);
  WEFT_CHECK_ERROR(list.at<nn::Linear>(1), Contains("ModuleList: module 1 is a BatchNorm1d"));
  WEFT_CHECK_ERROR(list[2], Contains("index 2 is out of range"));
  list.eval();
  CHECK(!list[1]->is_training());
  nn::ModuleDict dict;
  dict.insert("conv", std::make_shared<nn::Conv2d>(1, 2, 3));
  dict.insert("bn", std::make_shared<nn::BatchNorm2d>(2));
  CHECK(dict.contains("bn"));
  CHECK(dict.keys() == std::vector<std::string>{"conv", "bn"});
  CHECK(dict.num_parameters() == 2 * 9 + 2 + 4);
  WEFT_CHECK_ERROR(dict["relu"], Contains("no module named 'relu'") && Contains("(conv, bn)"));
  WEFT_CHECK_ERROR(dict.insert("bn", std::make_shared<nn::Identity>()), Contains("already registered"));
}
