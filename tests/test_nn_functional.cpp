// test_nn_functional.cpp: softmax family, norms, embedding, dropout and attention against naive
// reference loops and hand-worked numbers, zero-size inputs, gradcheck, and their errors (the losses
// are in test_losses.cpp; the seeded float32-vs-float64 sweep of shapes and layouts is in
// test_float32_sweeps.cpp).
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/onednn.h"
#include "tests/nn_reference.h"
#include "weft.h"

using namespace weft;
using autograd::gradcheck;
using autograd::variable_list;
using namespace weft::nn_test;
using test::require_error;

namespace {

// Naive layer norm (or RMS norm) over the trailing n elements of each row.
Vec ref_norm(const Vec& x, int64_t n, const Vec& w, const Vec& b, double eps, bool subtract_mean) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / n; ++r) {
    double mean = 0, var = 0;
    if (subtract_mean) {
      for (int64_t j = 0; j < n; ++j) mean += x[r * n + j];
      mean /= n;
    }
    for (int64_t j = 0; j < n; ++j) var += (x[r * n + j] - mean) * (x[r * n + j] - mean);
    var /= n;
    for (int64_t j = 0; j < n; ++j) {
      double v = (x[r * n + j] - mean) / std::sqrt(var + eps);
      y[r * n + j] = v * (w.empty() ? 1.0 : w[j]) + (b.empty() ? 0.0 : b[j]);
    }
  }
  return y;
}

}  // namespace

TEST_CASE("softmax and log_softmax", "[nn][softmax]") {
  Tensor x = randn64({3, 4, 5}, 11, false);
  Vec xv = x.to_vector<double>();
  SECTION("match the reference over every dim, in float64 and float32") {
    for (int64_t dim : {0, 1, 2, -1}) {
      int64_t d = dim < 0 ? dim + 3 : dim;
      INFO("dim " << dim);
      require_close(softmax(x, dim), ref_softmax(xv, x.shape(), d, false), 1e-12);
      require_close(log_softmax(x, dim), ref_softmax(xv, x.shape(), d, true), 1e-12);
      require_close(softmax(x.to(kFloat32), dim), ref_softmax(xv, x.shape(), d, false), 1e-6);
      require_close(log_softmax(x.to(kFloat32), dim), ref_softmax(xv, x.shape(), d, true), 1e-6);
      CHECK(softmax(x.to(kFloat32), dim).dtype() == kFloat32);
    }
  }
  SECTION("read strided inputs") {
    Tensor t = x.transpose(0, 2);  // (5, 4, 3), not contiguous
    REQUIRE_FALSE(t.is_contiguous());
    Vec tv = t.contiguous().to_vector<double>();
    require_close(softmax(t, 1), ref_softmax(tv, t.shape(), 1, false), 1e-12);
    require_close(log_softmax(t, -1), ref_softmax(tv, t.shape(), 2, true), 1e-12);
  }
  SECTION("are stable for large logits") {
    Tensor big = tensor({1000, 1001, 1002, -1000}, {4});
    require_close(softmax(big, 0), {0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 0}, 1e-6);
    require_close(log_softmax(big, 0), {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806, -2002.4076059644444},
                  1e-6);
  }
  SECTION("large inputs take the parallel path with the same values") {
    Tensor big = randn64({64, 1024}, 12, false);
    Vec bv = big.to_vector<double>();
    require_close(softmax(big, 1), ref_softmax(bv, big.shape(), 1, false), 1e-12);
    require_close(log_softmax(big, 0), ref_softmax(bv, big.shape(), 0, true), 1e-12);
    // float32 at this size takes the oneDNN primitives; shifted by 1000 to check their stability.
    Tensor big32 = (big * 3.0 + 1000.0).to(kFloat32);
    Vec b32 = big32.to_vector<double>();
    for (int64_t dim : {0, 1}) {
      require_close(softmax(big32, dim), ref_softmax(b32, big.shape(), dim, false), 1e-5);
      require_close(log_softmax(big32, dim), ref_softmax(b32, big.shape(), dim, true), 1e-5);  // float sums over 1024
    }
    Tensor rows = randn64({2048, 64}, 13, false);
    require_close(layer_norm(rows, {64}), ref_norm(rows.to_vector<double>(), 64, {}, {}, 1e-5, true), 1e-12);
  }
  SECTION("record nothing under no-grad") {
    Tensor a = randn64({2, 3}, 14);
    NoGradGuard guard;
    CHECK_FALSE(softmax(a, 1).requires_grad());
    CHECK_FALSE(layer_norm(a, {3}).requires_grad());
    CHECK_FALSE(cross_entropy(a, i64({0, 2}, {2})).requires_grad());
  }
  SECTION("handle a 0-dim tensor and empty dims") {
    CHECK(softmax(f64({3}, {}), 0).item<double>() == 1.0);
    CHECK(log_softmax(f64({3}, {}), -1).item<double>() == 0.0);
    CHECK(softmax(zeros({0, 3}), 1).shape() == Shape{0, 3});
  }
  SECTION("gradcheck over every dim") {
    for (int64_t dim : {0, 1, 2}) {
      Tensor a = randn64({2, 3, 4}, 20 + dim);
      CHECK(gradcheck([dim](const variable_list& in) { return softmax(in[0], dim); }, {a}));
      CHECK(gradcheck([dim](const variable_list& in) { return log_softmax(in[0], dim); }, {a}));
    }
  }
  SECTION("errors") {
    require_error([&] { softmax(x, 3); },
                  "softmax: dimension out of range (expected to be in range of [-3, 2], but got 3)");
    require_error([&] { log_softmax(x, -4); }, "log_softmax: dimension out of range");
    require_error([] { softmax(arange(4), 0); }, "softmax: expected a floating point");
  }
}

TEST_CASE("layer_norm and rms_norm", "[nn][norm]") {
  Tensor x = randn64({4, 3, 5}, 50, false);
  Tensor w = randn64({5}, 51, false), b = randn64({5}, 52, false);
  Vec xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  SECTION("values: with and without affine, over one or two trailing dims, float32 and float64") {
    require_close(layer_norm(x, {5}), ref_norm(xv, 5, {}, {}, 1e-5, true), 1e-12);
    require_close(layer_norm(x, {5}, w, b), ref_norm(xv, 5, wv, bv, 1e-5, true), 1e-12);
    require_close(layer_norm(x, {5}, w), ref_norm(xv, 5, wv, {}, 1e-5, true), 1e-12);
    require_close(layer_norm(x, {3, 5}, Tensor(), Tensor(), 0.1), ref_norm(xv, 15, {}, {}, 0.1, true), 1e-12);
    require_close(layer_norm(x.to(kFloat32), {5}, w.to(kFloat32), b.to(kFloat32)),
                  ref_norm(xv, 5, wv, bv, 1e-5, true), 1e-5);
    require_close(rms_norm(x, {5}, w), ref_norm(xv, 5, wv, {}, std::numeric_limits<double>::epsilon(), false), 1e-12);
    require_close(rms_norm(x, {3, 5}, Tensor(), 0.5), ref_norm(xv, 15, {}, {}, 0.5, false), 1e-12);
    // Strided input: a transposed view normalised over its last dim.
    Tensor t = x.transpose(1, 2);  // (4, 5, 3)
    require_close(layer_norm(t, {3}), ref_norm(t.contiguous().to_vector<double>(), 3, {}, {}, 1e-5, true), 1e-12);
  }
  SECTION("rms_norm's default eps is the dtype's machine epsilon") {
    // mean(x^2) = 9e-8 is comparable to float32's epsilon (1.19e-7), so the default eps shows.
    Tensor small = tensor({3e-4, -3e-4}, {2});
    double eps32 = std::numeric_limits<float>::epsilon();
    require_close(rms_norm(small, {2}), {3e-4 / std::sqrt(9e-8 + eps32), -3e-4 / std::sqrt(9e-8 + eps32)}, 1e-5);
    require_close(rms_norm(small.to(kFloat64), {2}), {1.0, -1.0}, 1e-9);
  }
  SECTION("gradcheck with and without affine") {
    Tensor xg = randn64({3, 2, 4}, 53), wg = randn64({4}, 54), bg = randn64({4}, 55);
    CHECK(gradcheck([](const variable_list& in) { return layer_norm(in[0], {4}, in[1], in[2]); }, {xg, wg, bg}));
    CHECK(gradcheck([](const variable_list& in) { return layer_norm(in[0], {4}); }, {xg}));
    CHECK(gradcheck([](const variable_list& in) { return layer_norm(in[0], {2, 4}); }, {xg}));
    Tensor w2 = randn64({2, 4}, 56);
    CHECK(gradcheck([](const variable_list& in) { return layer_norm(in[0], {2, 4}, in[1]); }, {xg, w2}));
    CHECK(gradcheck([](const variable_list& in) { return rms_norm(in[0], {4}, in[1]); }, {xg, wg}));
    CHECK(gradcheck([](const variable_list& in) { return rms_norm(in[0], {2, 4}, Tensor(), 1e-3); }, {xg}));
  }
  SECTION("only the needed gradients are computed") {
    Tensor xg = randn64({2, 4}, 57, false), wg = randn64({4}, 58), bg = randn64({4}, 59);
    layer_norm(xg, {4}, wg, bg).sum().backward();
    CHECK_FALSE(xg.grad().defined());
    require_close(bg.grad(), {2, 2, 2, 2});
    Vec xhat = ref_norm(xg.to_vector<double>(), 4, {}, {}, 1e-5, true);
    require_close(wg.grad(), {xhat[0] + xhat[4], xhat[1] + xhat[5], xhat[2] + xhat[6], xhat[3] + xhat[7]}, 1e-12);
  }
  SECTION("errors") {
    require_error([&] { layer_norm(x, {4}); }, "layer_norm: normalized_shape [4] must equal the trailing dims");
    // The right sizes in the wrong places, and more dims than the input has.
    require_error([&] { layer_norm(x, {3}); },
                  "layer_norm: normalized_shape [3] must equal the trailing dims of the input, "
                  "but the input has shape [4, 3, 5]");
    require_error([&] { layer_norm(x, {4, 5}); },
                  "layer_norm: normalized_shape [4, 5] must equal the trailing dims");
    require_error([&] { layer_norm(x, {1, 4, 3, 5}); },
                  "layer_norm: normalized_shape [1, 4, 3, 5] must equal");
    require_error([&] { rms_norm(x, {4}); }, "rms_norm: normalized_shape [4] must equal the trailing dims");
    require_error([&] { rms_norm(x, {5}, zeros({4}, kFloat64)); },
                  "rms_norm: expected weight of shape [5] (normalized_shape) but got [4]");
    require_error([&] { rms_norm(x, {5}, zeros({5})); }, "rms_norm: expected weight of dtype float64");
    require_error([&] { layer_norm(x, {5}, zeros({4}, kFloat64)); }, "layer_norm: expected weight of shape [5]");
    require_error([&] { layer_norm(x, {5}, w, zeros({5})); }, "layer_norm: expected bias of dtype float64");
    require_error([&] { layer_norm(x, {}); }, "layer_norm: normalized_shape must name at least one dim");
    require_error([&] { rms_norm(x, {2, 5}); },
                  "rms_norm: normalized_shape [2, 5] must equal the trailing dims");
    require_error([] { layer_norm(arange(4), {4}); }, "layer_norm: expected a floating point input");
  }
}

TEST_CASE("embedding", "[nn][embedding]") {
  Tensor w = f64({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2}, true);
  Tensor idx = i64({3, 0, 3, 1, 2, 3}, {2, 3});
  Tensor out = embedding(w, idx);
  CHECK(out.shape() == Shape{2, 3, 2});
  require_close(out, {30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 30, 31});
  SECTION("backward adds gradient rows at their indices (repeats accumulate)") {
    Tensor g = f64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
    out.backward(g);
    require_close(w.grad(), {3, 4, 7, 8, 9, 10, 1 + 5 + 11, 2 + 6 + 12});
  }
  SECTION("gradcheck, a 0-dim index and a strided index") {
    Tensor wg = randn64({5, 3}, 60);
    CHECK(gradcheck([&](const variable_list& in) { return embedding(in[0], idx); }, {wg}));
    CHECK(embedding(w, i64({2}, {})).shape() == Shape{2});
    require_close(embedding(w, idx.t()), {30, 31, 10, 11, 0, 1, 20, 21, 30, 31, 30, 31});  // idx^T = [[3, 1], [0, 2], [3, 3]]
  }
  SECTION("errors name the bad index") {
    require_error([&] { embedding(w, i64({1, 4}, {2})); }, "embedding: index 4 is out of range for a weight with 4 rows");
    require_error([&] { embedding(w, i64({-1}, {1})); }, "embedding: index -1 is out of range");
    require_error([&] { embedding(w, i64({0, 1, 2, 9}, {2, 2})); },
                  "embedding: index 9 is out of range for a weight with 4 rows "
                  "(at position 3 of the indices)");
    require_error([&] { embedding(w, i64({0, 1, 2, 3, 100}, {5}).narrow(0, 1, 4)); },
                  "embedding: index 100 is out of range for a weight with 4 rows "
                  "(at position 3 of the indices)");
    require_error([&] { embedding(w, zeros({2})); }, "embedding: expected indices of dtype int64");
    require_error([&] { embedding(zeros({4}), idx); }, "embedding: expected a 2-D weight");
  }
}

TEST_CASE("dropout", "[nn][dropout]") {
  Tensor x = ones({100000});
  SECTION("deterministic under manual_seed and a given generator") {
    manual_seed(99);
    Vec a = dropout(x, 0.3).to_vector<double>();
    manual_seed(99);
    Vec b = dropout(x, 0.3).to_vector<double>();
    CHECK(a == b);
    Generator g1(5), g2(5);
    Vec m1 = dropout(x, 0.5, true, &g1).to_vector<double>();
    CHECK(m1 == dropout(x, 0.5, true, &g2).to_vector<double>());
    CHECK(dropout(x, 0.5, true, &g1).to_vector<double>() != m1);  // the generator moved on
  }
  SECTION("keeps 1-p of the elements, scaled by 1/(1-p), so the mean is kept") {
    Generator g(6);
    Vec y = dropout(x, 0.3, true, &g).to_vector<double>();
    int64_t zeros_seen = 0;
    double sum = 0;
    for (double v : y) {
      CHECK((v == 0.0 || std::fabs(v - 1 / 0.7) < 1e-6));
      zeros_seen += v == 0.0;
      sum += v;
    }
    CHECK(zeros_seen / 1e5 == Approx(0.3).margin(0.01));
    CHECK(sum / 1e5 == Approx(1.0).margin(0.02));
  }
  SECTION("identity when not training or p == 0; zeros when p == 1") {
    Tensor r = randn64({3, 3}, 70, false);
    CHECK(dropout(r, 0.5, false).is_same(r));
    CHECK(dropout(r, 0.0).is_same(r));
    require_close(dropout(r, 1.0), Vec(9, 0.0));
  }
  SECTION("backward multiplies by the same mask") {
    Tensor xg = randn64({50}, 71);
    Generator g(7);
    Tensor y = dropout(xg, 0.4, true, &g);
    y.backward(ones({50}, kFloat64));
    Vec yv = y.to_vector<double>(), xv = xg.to_vector<double>(), gv = xg.grad().to_vector<double>();
    for (size_t i = 0; i < yv.size(); ++i) CHECK(gv[i] * xv[i] == Approx(yv[i]));
    // With a fixed mask (fresh generator of one seed per call), gradcheck passes.
    CHECK(gradcheck([](const variable_list& in) {
      Generator gen(8);
      return dropout(in[0], 0.25, true, &gen);
    }, {randn64({20}, 72)}));
  }
  SECTION("errors") {
    require_error([&] { dropout(x, -0.1); }, "dropout: probability has to be between 0 and 1");
    require_error([&] { dropout(x, 1.5, false); },
                  "dropout: probability has to be between 0 and 1, but got 1.5");
    require_error([&] { dropout(x, -0.5, false); },
                  "dropout: probability has to be between 0 and 1, but got -0.5");
    require_error([&] { dropout(x, 1.0000001); }, "dropout: probability has to be between 0 and 1");
    require_error([&] { dropout(x, std::nan("")); },
                  "dropout: probability has to be between 0 and 1, but got nan");
    require_error([] { dropout(arange(3), 0.5); }, "dropout: expected a floating point");
  }
}

namespace {

// Naive attention on (B, L, E) x (B, S, E) x (B, S, Ev); mask(i, j) says whether key j is kept,
// bias(i, j) is added.
Vec ref_attention(const Vec& q, const Vec& k, const Vec& v, int64_t B, int64_t L, int64_t S, int64_t E, int64_t Ev,
                  double scale, const std::function<bool(int64_t, int64_t)>& keep,
                  const std::function<double(int64_t, int64_t)>& bias) {
  Vec out(static_cast<size_t>(B * L * Ev), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) {
      Vec s(static_cast<size_t>(S));
      double m = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < E; ++e) dot += q[(b * L + i) * E + e] * k[(b * S + j) * E + e];
        s[j] = keep(i, j) ? dot * scale + bias(i, j) : -INFINITY;
        m = std::max(m, s[j]);
      }
      double total = 0;
      for (double& sj : s) total += (sj = std::exp(sj - m));
      for (int64_t j = 0; j < S; ++j)
        for (int64_t e = 0; e < Ev; ++e) out[(b * L + i) * Ev + e] += s[j] / total * v[(b * S + j) * Ev + e];
    }
  return out;
}

}  // namespace

TEST_CASE("scaled_dot_product_attention", "[nn][attention]") {
  int64_t B = 2, L = 3, S = 4, E = 5, Ev = 2;
  Tensor q = randn64({B, L, E}, 80, false), k = randn64({B, S, E}, 81, false), v = randn64({B, S, Ev}, 82, false);
  Vec qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
  auto all = [](int64_t, int64_t) { return true; };
  auto none = [](int64_t, int64_t) { return 0.0; };
  double s0 = 1 / std::sqrt(5.0);
  SECTION("plain, scaled, causal, bool mask and float mask match the reference") {
    require_close(scaled_dot_product_attention(q, k, v), ref_attention(qv, kv, vv, B, L, S, E, Ev, s0, all, none), 1e-12);
    require_close(scaled_dot_product_attention(q, k, v, Tensor(), false, 0.7),
                  ref_attention(qv, kv, vv, B, L, S, E, Ev, 0.7, all, none), 1e-12);
    require_close(scaled_dot_product_attention(q, k, v, Tensor(), true),
                  ref_attention(qv, kv, vv, B, L, S, E, Ev, s0, [](int64_t i, int64_t j) { return j <= i; }, none),
                  1e-12);
    std::vector<bool> keep = {true, false, true, true, false, true, false, true, true, true, true, false};
    Tensor mask = from_vector<bool>(keep, {L, S});
    require_close(scaled_dot_product_attention(q, k, v, mask),
                  ref_attention(qv, kv, vv, B, L, S, E, Ev, s0, [&](int64_t i, int64_t j) { return keep[i * S + j]; },
                                none), 1e-12);
    Vec add = {0.5, -1, 0, 2, 1, 1, -3, 0, 0.25, 0, 0, -0.5};
    require_close(scaled_dot_product_attention(q, k, v, f64(add, {L, S})),
                  ref_attention(qv, kv, vv, B, L, S, E, Ev, s0, all, [&](int64_t i, int64_t j) { return add[i * S + j]; }),
                  1e-12);
    Tensor out32 = scaled_dot_product_attention(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), Tensor(), true);
    CHECK(out32.dtype() == kFloat32);
    require_close(out32,
                  ref_attention(qv, kv, vv, B, L, S, E, Ev, s0, [](int64_t i, int64_t j) { return j <= i; }, none),
                  1e-5);
  }
  SECTION("batched heads (B, H, L, E)") {
    Tensor q4 = randn64({2, 2, 3, 4}, 83, false), k4 = randn64({2, 2, 3, 4}, 84, false);
    Tensor v4 = randn64({2, 2, 3, 4}, 85, false);
    require_close(scaled_dot_product_attention(q4, k4, v4, Tensor(), true),
                  ref_attention(q4.to_vector<double>(), k4.to_vector<double>(), v4.to_vector<double>(), 4, 3, 3, 4, 4,
                                0.5, [](int64_t i, int64_t j) { return j <= i; }, none),
                  1e-12);
  }
  SECTION("gradcheck, causal and masked") {
    Tensor qg = randn64({2, 3, 4}, 86), kg = randn64({2, 3, 4}, 87), vg = randn64({2, 3, 2}, 88);
    CHECK(gradcheck([](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), true); },
                    {qg, kg, vg}));
    Tensor bias = randn64({3, 3}, 89);
    CHECK(gradcheck([](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], in[3]); },
                    {qg, kg, vg, bias}));
  }
  SECTION("errors") {
    const std::string op = "scaled_dot_product_attention: ";
    require_error([&] { scaled_dot_product_attention(q, randn64({B, S, 3}, 1, false), v); },
                  op + "q of shape [2, 3, 5] and k of shape [2, 4, 3] must have the same embedding size");
    require_error([&] { scaled_dot_product_attention(q, k, randn64({B, 3, Ev}, 1, false)); },
                  op + "k of shape [2, 4, 5] and v of shape [2, 3, 2] must have the same sequence length");
    require_error([&] { scaled_dot_product_attention(q, k, v, zeros({L, S}, kBool), true); },
                  op + "pass either attn_mask or is_causal=true, not both");
    require_error([&] { scaled_dot_product_attention(q, k, v, zeros({L, 2}, kBool)); },
                  op + "attn_mask of shape [3, 2] cannot be broadcast to the attention scores' "
                       "shape [2, 3, 4]");
    require_error([&] { scaled_dot_product_attention(q.to(kFloat32), k, v); },
                  op + "expected q, k, v of one floating dtype but got float32, float64, float64");
    require_error([&] { scaled_dot_product_attention(zeros({3}, kFloat64), k, v); },
                  op + "expected q, k, v of shape (..., L, E) but got a tensor of shape [3]");
  }
}

TEST_CASE("zero-size inputs give empty results, PyTorch's reductions and zero gradients", "[nn][empty]") {
  SECTION("layer_norm and rms_norm on [0, 8]: an empty output, zero weight and bias gradients") {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(dtype_name(dt));
      auto opts = TensorOptions(dt).requires_grad();
      Tensor x = zeros({0, 8}, opts), w = ones({8}, opts), b = zeros({8}, opts);
      Tensor y = layer_norm(x, {8}, w, b);
      CHECK(y.shape() == Shape{0, 8});
      CHECK(y.dtype() == dt);
      y.sum().backward();
      CHECK(x.grad().shape() == Shape{0, 8});
      require_close(w.grad(), Vec(8, 0.0));
      require_close(b.grad(), Vec(8, 0.0));
      Tensor xr = zeros({0, 8}, opts), wr = ones({8}, opts);
      Tensor yr = rms_norm(xr, {8}, wr);
      CHECK(yr.shape() == Shape{0, 8});
      yr.sum().backward();
      CHECK(xr.grad().shape() == Shape{0, 8});
      require_close(wr.grad(), Vec(8, 0.0));
      CHECK(layer_norm(zeros({2, 0, 8}, dt), {8}).shape() == Shape{2, 0, 8});
      CHECK(layer_norm(zeros({0, 3, 8}, dt), {3, 8}).shape() == Shape{0, 3, 8});
    }
  }
  SECTION("cross_entropy and nll_loss with N = 0: none is empty, sum is 0, mean is 0/0 = NaN") {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(dtype_name(dt));
      Tensor t = i64({}, {0});
      for (double eps : {0.0, 0.3}) {
        INFO("label_smoothing " << eps);
        Tensor z = zeros({0, 5}, TensorOptions(dt).requires_grad());
        Tensor none = cross_entropy(z, t, "none", -100, eps);
        CHECK(none.shape() == Shape{0});
        CHECK(none.dtype() == dt);
        CHECK(cross_entropy(z, t, "sum", -100, eps).item<double>() == 0.0);
        CHECK(std::isnan(cross_entropy(z, t, "mean", -100, eps).item<double>()));
        cross_entropy(z, t, "sum", -100, eps).backward();
        CHECK(z.grad().shape() == Shape{0, 5});
      }
      Tensor lp = zeros({0, 5}, TensorOptions(dt).requires_grad());
      CHECK(nll_loss(lp, t, "none").shape() == Shape{0});
      CHECK(nll_loss(lp, t, "sum").item<double>() == 0.0);
      Tensor mean = nll_loss(lp, t, "mean");
      CHECK(std::isnan(mean.item<double>()));
      mean.backward();
      CHECK(lp.grad().shape() == Shape{0, 5});
      // (N, C, d) with d = 0: the same three answers, the per-position losses of shape [N, 0].
      Tensor z3 = zeros({2, 5, 0}, dt);
      Tensor t3 = i64({}, {2, 0});
      CHECK(cross_entropy(z3, t3, "none").shape() == Shape{2, 0});
      CHECK(cross_entropy(z3, t3, "sum").item<double>() == 0.0);
      CHECK(std::isnan(cross_entropy(z3, t3, "mean").item<double>()));
      CHECK(nll_loss(z3, t3, "none").shape() == Shape{2, 0});
      CHECK(std::isnan(nll_loss(z3, t3, "mean").item<double>()));
    }
  }
  SECTION("embedding with an empty index: an empty result and a zero weight gradient") {
    Tensor w = f64({0, 1, 10, 11, 20, 21}, {3, 2}, true);
    Tensor y = embedding(w, i64({}, {0}));
    CHECK(y.shape() == Shape{0, 2});
    CHECK(embedding(w, i64({}, {2, 0})).shape() == Shape{2, 0, 2});
    y.sum().backward();
    require_close(w.grad(), Vec(6, 0.0));
  }
  SECTION("softmax and log_softmax on [0, 5] and [3, 0], over either dim, with backward") {
    for (DType dt : {kFloat32, kFloat64})
      for (const Shape& shape : {Shape{0, 5}, Shape{3, 0}})
        for (int64_t dim : {0, 1}) {
          INFO(dtype_name(dt) << " " << shape << " dim " << dim);
          Tensor x = zeros(shape, TensorOptions(dt).requires_grad());
          Tensor p = softmax(x, dim), lp = log_softmax(x, dim);
          CHECK(p.shape() == shape);
          CHECK(lp.shape() == shape);
          CHECK(p.dtype() == dt);
          (p.sum() + lp.sum()).backward();
          CHECK(x.grad().shape() == shape);
        }
  }
}

TEST_CASE("small layer_norm shares one serial primitive across thread settings; softmax uses none", "[nn][onednn]") {
  // Note [Serial primitives]: below its measured size layer_norm runs on one thread whatever the
  // setting, through one cached primitive; larger ones get a primitive per setting. float32 softmax
  // runs on weft's own row kernel (kernels/softmax_rows.cpp) and makes no primitive at all.
  const int threads = get_num_threads();
  auto check_both = [](const Tensor& x) {
    Tensor x64 = x.to(kFloat64), w = randn({x.size(1)}), b = randn({x.size(1)});
    CHECK(allclose(softmax(x, -1).to(kFloat64), softmax(x64, -1), 1e-5, 1e-6));
    CHECK(allclose(layer_norm(x, {x.size(1)}, w, b).to(kFloat64),
                   layer_norm(x64, {x.size(1)}, w.to(kFloat64), b.to(kFloat64)), 1e-4, 1e-5));
  };
  Tensor small = randn({64, 64}), large = randn({256, 512});
  onednn::clear_cache();
  set_num_threads(2);
  check_both(small);
  CHECK(get_num_threads() == 2);  // running serially restored the setting
  set_num_threads(1);
  check_both(small);
  CHECK(onednn::cache_stats().misses == 1);  // layer_norm, once
  CHECK(onednn::cache_stats().hits == 1);

  onednn::clear_cache();
  set_num_threads(2);
  check_both(large);
  set_num_threads(1);
  check_both(large);
  CHECK(onednn::cache_stats().misses == 2);  // one per setting
  set_num_threads(threads);
}
