// test_losses.cpp: cross_entropy (class indices, reductions, ignore_index, label smoothing),
// nll_loss and mse_loss against naive reference loops and hand-worked numbers, gradcheck, and their
// errors.
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <cmath>
#include <vector>

#include "tests/nn_reference.h"
#include "weft.h"

using namespace weft;
using namespace weft::nn_test;
using autograd::gradcheck;
using autograd::variable_list;
using test::require_error;

TEST_CASE("cross_entropy", "[nn][losses]") {
  SECTION("hand-worked numbers") {
    // logsumexp(1, 2, 3) = 3.40760596444438; the loss is lse - z[target].
    Tensor z = f64({1, 2, 3, 1, 2, 3}, {2, 3});
    require_close(cross_entropy(z, i64({2, 0}, {2}), "none"), {0.40760596444438, 2.40760596444438});
    require_close(cross_entropy(z, i64({2, 0}, {2})), {1.40760596444438});
    require_close(cross_entropy(z, i64({2, 0}, {2}), "sum"), {2.81521192888876});
    // Ignored rows give 0 and leave the mean's divisor.
    require_close(cross_entropy(z, i64({2, -100}, {2})), {0.40760596444438});
    require_close(cross_entropy(z, i64({2, 1}, {2}), "mean", /*ignore_index=*/1), {0.40760596444438});
    // Label smoothing 0.3 on [1, 2, 3] -> 2: 0.7 * 0.4076 + 0.1 * (2.4076 + 1.4076 + 0.4076).
    require_close(cross_entropy(f64({1, 2, 3}, {3}), i64({2}, {}), "mean", -100, 0.3),
                  {0.7 * 0.40760596444438 + 0.1 * (2.40760596444438 + 1.40760596444438 + 0.40760596444438)});
    // Every target ignored: the mean is 0/0, as in PyTorch.
    CHECK(std::isnan(cross_entropy(z, i64({-100, -100}, {2})).item<double>()));
    CHECK(cross_entropy(z, i64({-100, -100}, {2}), "sum").item<double>() == 0.0);
  }
  SECTION("matches the reference with ignore_index and label smoothing, float64 and float32") {
    int64_t N = 6, C = 5;
    Tensor z = randn64({N, C}, 31, false);
    std::vector<int64_t> t = {4, 0, 7, 2, 7, 3};  // 7 is the ignore_index
    for (double eps : {0.0, 0.1, 1.0}) {
      int64_t count = 0;
      Vec ref = ref_cross_entropy_rows(z.to_vector<double>(), N, C, t, 7, eps, count);
      double total = 0;
      for (double v : ref) total += v;
      INFO("label_smoothing " << eps);
      require_close(cross_entropy(z, i64(t, {N}), "none", 7, eps), ref);
      require_close(cross_entropy(z, i64(t, {N}), "sum", 7, eps), {total});
      require_close(cross_entropy(z, i64(t, {N}), "mean", 7, eps), {total / count});
      Tensor z32 = z.to(kFloat32);
      CHECK(cross_entropy(z32, i64(t, {N}), "mean", 7, eps).dtype() == kFloat32);
      require_close(cross_entropy(z32, i64(t, {N}), "mean", 7, eps), {total / count}, 1e-6);
    }
  }
  SECTION("reads strided logits and targets") {
    Tensor zt = randn64({5, 4}, 37, false).t();  // (4, 5), not contiguous
    Tensor t = i64({4, 0, 1, 3, 2, 2, 0, 1}, {2, 4}).select(0, 0);  // [4, 0, 1, 3], stride 1 but offset 0
    Tensor ts = i64({4, 9, 0, 9, 1, 9, 3, 9}, {8}).narrow(0, 0, 8).reshape({4, 2}).select(1, 0);  // stride 2
    int64_t count = 0;
    Vec ref = ref_cross_entropy_rows(zt.contiguous().to_vector<double>(), 4, 5, {4, 0, 1, 3}, -100, 0.1, count);
    require_close(cross_entropy(zt, t, "none", -100, 0.1), ref, 1e-12);
    require_close(cross_entropy(zt, ts, "none", -100, 0.1), ref, 1e-12);
  }
  SECTION("equals the composition nll_loss(log_softmax) without smoothing") {
    Tensor z = randn64({4, 6}, 32, false);
    Tensor t = i64({5, 1, 0, 3}, {4});
    require_close(cross_entropy(z, t), nll_loss(log_softmax(z, 1), t).to_vector<double>(), 1e-12);
  }
  SECTION("(N, C, d) logits equal the (N*d, C) rows") {
    Tensor z = randn64({2, 3, 4}, 33, false);
    Tensor t = i64({0, 1, 2, 1, 2, 2, 0, -100}, {2, 4});
    Tensor rows = z.permute({0, 2, 1}).reshape({8, 3});
    Tensor flat_t = t.reshape({8});
    Tensor none = cross_entropy(z, t, "none", -100, 0.2);
    CHECK(none.shape() == Shape{2, 4});
    require_close(none, cross_entropy(rows, flat_t, "none", -100, 0.2).to_vector<double>(), 1e-12);
    require_close(cross_entropy(z, t, "mean", -100, 0.2),
                  cross_entropy(rows, flat_t, "mean", -100, 0.2).to_vector<double>(), 1e-12);
  }
  SECTION("backward equals softmax - smoothed one-hot") {
    Tensor z = f64({1, 2, 3, 0, 0, 0}, {2, 3}, true);
    cross_entropy(z, i64({2, 0}, {2}), "mean", -100, 0.3).backward();
    Vec p = ref_softmax({1, 2, 3}, {3}, 0, false);
    double off = 0.1, on = 0.7;
    require_close(z.grad(), {(p[0] - off) / 2, (p[1] - off) / 2, (p[2] - off - on) / 2, (1. / 3 - off - on) / 2,
                             (1. / 3 - off) / 2, (1. / 3 - off) / 2});
  }
  SECTION("gradcheck: reductions, ignore_index, label smoothing, (N, C, d)") {
    Tensor t = i64({4, 0, -100, 2, 1}, {5});
    for (const char* red : {"none", "mean", "sum"})
      for (double eps : {0.0, 0.25}) {
        INFO(red << " eps " << eps);
        Tensor z = randn64({5, 5}, 34);
        CHECK(gradcheck([&](const variable_list& in) { return cross_entropy(in[0], t, red, -100, eps); }, {z}));
      }
    Tensor z3 = randn64({2, 3, 2}, 35);
    Tensor t3 = i64({2, 1, 1, 0}, {2, 2});
    CHECK(gradcheck([&](const variable_list& in) { return cross_entropy(in[0], t3, "mean", 1, 0.1); }, {z3}));
    Tensor z1 = randn64({4}, 36);
    CHECK(gradcheck([&](const variable_list& in) { return cross_entropy(in[0], i64({3}, {}), "sum", -100, 0.5); },
                    {z1}));
  }
  SECTION("errors") {
    Tensor z = zeros({3, 4});
    require_error([&] { cross_entropy(z, i64({0, 1}, {2})); }, "cross_entropy: input of shape [3, 4] expects a target");
    require_error([&] { cross_entropy(z, zeros({3})); }, "cross_entropy: a floating target (float32) holds class "
                  "probabilities and must have the input's shape [3, 4] but got [3] (class indices are int64)");
    require_error([&] { cross_entropy(z, i64({0, 4, 1}, {3})); }, "cross_entropy: target 4 is out of bounds");
    require_error([&] { cross_entropy(z, i64({0, -1, 1}, {3})); },
                  "cross_entropy: target -1 is out of bounds");
    require_error([&] { cross_entropy(z, i64({0, 1, 1}, {3}), "avg"); }, "cross_entropy: reduction");
    // Targets of the wrong dtype or shape, for every input rank.
    require_error([&] { cross_entropy(z, zeros({3}, kBool)); },
                  "cross_entropy: expected target of dtype int64 (class indices) but got bool of shape [3]");
    require_error([&] { cross_entropy(z, zeros({3}, kFloat64)); },
                  "cross_entropy: a floating target (float64) holds class probabilities");
    require_error([&] { cross_entropy(z, i64({0, 1, 2, 0, 1, 2}, {3, 2})); },
                  "cross_entropy: input of shape [3, 4] expects a target of shape [3] but got [3, 2]");
    require_error([&] { cross_entropy(zeros({2, 3, 4}), i64({0, 1}, {2})); },
                  "cross_entropy: input of shape [2, 3, 4] expects a target of shape [2, 4] but got [2]");
    require_error([&] { cross_entropy(zeros({4}), i64({0}, {1})); },
                  "cross_entropy: input of shape [4] expects a target of shape [] but got [1]");
    // An out-of-range class is refused whatever the reduction, smoothing or ignore_index.
    for (const char* red : {"none", "sum", "mean"})
      require_error([&] { cross_entropy(z, i64({0, 1, 9}, {3}), red); },
                    "cross_entropy: target 9 is out of bounds for 4 classes "
                    "(at position 2; ignore_index is -100)");
    require_error([&] { cross_entropy(z, i64({0, 4, 1}, {3}), "sum", -100, 0.2); },
                  "cross_entropy: target 4 is out of bounds");
    require_error([&] { cross_entropy(z, i64({7, -100, 1}, {3}), "mean", 7); },
                  "cross_entropy: target -100 is out of bounds for 4 classes "
                  "(at position 1; ignore_index is 7)");
    require_error([&] { cross_entropy(zeros({2, 3, 2}), i64({0, 1, 2, 3}, {2, 2})); },
                  "cross_entropy: target 3 is out of bounds for 3 classes (at position 3");
    require_error([&] { cross_entropy(z, i64({0, 1, 1}, {3}), "mean", -100, 1.5); },
                  "cross_entropy: label_smoothing must be in [0, 1] but got 1.5");
    require_error([&] { cross_entropy(zeros({}), i64({0}, {})); },
                  "cross_entropy: expected input of shape (C), (N, C)");
    require_error([&] { cross_entropy(zeros({3, 4}, kInt64), i64({0, 1, 1}, {3})); },
                  "cross_entropy: expected floating point input (float32 or float64) but got int64");
  }
}

TEST_CASE("nll_loss and mse_loss", "[nn][losses]") {
  SECTION("nll_loss picks -input[target]") {
    Tensor lp = f64({-1, -2, -3, -4, -5, -6}, {2, 3});
    require_close(nll_loss(lp, i64({2, 0}, {2}), "none"), {3, 4});
    require_close(nll_loss(lp, i64({2, 0}, {2})), {3.5});
    require_close(nll_loss(lp, i64({2, 0}, {2}), "sum"), {7});
    require_close(nll_loss(lp, i64({2, 0}, {2}), "mean", 0), {3});
    Tensor x = randn64({3, 4, 2}, 40);
    Tensor t = i64({3, 0, 1, 1, -100, 2}, {3, 2});
    for (const char* red : {"none", "mean", "sum"})
      CHECK(gradcheck([&](const variable_list& in) { return nll_loss(in[0], t, red); }, {x}));
    require_error([] { nll_loss(zeros({2, 3}), i64({0, 3}, {2})); }, "nll_loss: target 3");
    require_error([] { nll_loss(zeros({2, 3}), zeros({2})); }, "nll_loss: expected target of dtype int64");
    require_error([] { nll_loss(zeros({2, 3}), zeros({2}, kBool)); },
                  "nll_loss: expected target of dtype int64 (class indices) but got bool of shape [2]");
    require_error([] { nll_loss(zeros({3, 4}), i64({0, 1}, {2})); },
                  "nll_loss: input of shape [3, 4] expects a target of shape [3] but got [2]");
    require_error([] { nll_loss(zeros({2, 3, 4}), i64({0, 1, 2, 0}, {4})); },
                  "nll_loss: input of shape [2, 3, 4] expects a target of shape [2, 4] but got [4]");
    require_error([] { nll_loss(zeros({3, 4}), i64({0, 5, 1}, {3}), "sum"); },
                  "nll_loss: target 5 is out of bounds for 4 classes (at position 1; ignore_index is -100)");
    require_error([] { nll_loss(zeros({3, 4}), i64({0, 1, -1}, {3}), "none"); },
                  "nll_loss: target -1 is out of bounds for 4 classes (at position 2");
    require_error([] { nll_loss(zeros({3, 4}, kInt64), i64({0, 1, 1}, {3})); },
                  "nll_loss: expected floating point input (float32 or float64) but got int64");
    require_error([] { nll_loss(zeros({3, 4}), i64({0, 1, 1}, {3}), "avg"); },
                  "nll_loss: reduction must be \"none\", \"mean\" or \"sum\" but got \"avg\"");
  }
  SECTION("mse_loss") {
    Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({0, 2, 5, 1}, {2, 2});
    require_close(mse_loss(a, b, "none"), {1, 0, 4, 9});
    require_close(mse_loss(a, b), {3.5});
    require_close(mse_loss(a, b, "sum"), {14});
    require_close(mse_loss(a.to(kFloat32), b.to(kFloat32)), {3.5}, 1e-7);
    Tensor x = randn64({3, 2}, 41), y = randn64({3, 2}, 42);
    for (const char* red : {"none", "mean", "sum"})
      CHECK(gradcheck([&](const variable_list& in) { return mse_loss(in[0], in[1], red); }, {x, y}));
    require_error([&] { mse_loss(a, zeros({3})); }, "mse_loss: shapes [2, 2] and [3] are not broadcastable");
    require_error([&] { mse_loss(a, b, "max"); }, "mse_loss: reduction");
  }
  SECTION("mse_loss: the fused path (one shape, contiguous) and the composed one agree with a reference") {
    // Broadcast target and a transposed input take the composed path; gradcheck both ways.
    Tensor x = randn64({3, 2}, 43), row = randn64({2}, 44), xt = randn64({2, 3}, 45);
    for (const char* red : {"mean", "sum"}) {
      CHECK(gradcheck([&](const variable_list& in) { return mse_loss(in[0], in[1], red); }, {x, row}));
      CHECK(gradcheck([&](const variable_list& in) { return mse_loss(in[0].t(), in[1], red); }, {x, xt}));
    }
    // Only the target needs a gradient: d/dt mean((x - t)^2) = -2 (x - t) / n.
    Tensor xa = f64({1, 2, 3, 4}, {2, 2}), tb = f64({0, 2, 5, 1}, {2, 2}).requires_grad_();
    mse_loss(xa, tb).backward();
    require_close(tb.grad(), {-0.5, 0, 1, -1.5});
    // float32 at the MLP benchmark's size: loss accumulated in double, gradient 2 (x - t) / n.
    Tensor xf = randn({64, 512}).requires_grad_(), tf = randn({64, 512});
    Tensor loss = mse_loss(xf, tf);
    auto vx = xf.to_vector<double>(), vt = tf.to_vector<double>();
    double want = 0;
    for (size_t i = 0; i < vx.size(); ++i) want += (vx[i] - vt[i]) * (vx[i] - vt[i]);
    want /= static_cast<double>(vx.size());
    CHECK(loss.item<double>() == Approx(want).epsilon(1e-6));
    loss.backward();
    auto g = xf.grad().to_vector<double>();
    for (size_t i = 0; i < vx.size(); ++i)
      REQUIRE(g[i] == Approx(2 * (vx[i] - vt[i]) / static_cast<double>(vx.size())).epsilon(1e-5).margin(1e-9));
  }
}
