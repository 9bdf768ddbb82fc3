// test_attention.cpp: the fused (flash-style) scaled_dot_product_attention against the composed form
// (matmul, mask, softmax, matmul) in float64 and float32 over shapes that cut the 64-row blocks
// unevenly, with causal, bool and float masks, strided heads, fully masked rows; gradcheck and
// gradgradcheck; and the bytes kept for backward, O(L) for the fused op against O(L S) composed.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/attention_kernels.h"
#include "tests/nn_reference.h"
#include "weft.h"

using namespace weft;
using autograd::gradcheck;
using autograd::gradgradcheck;
using autograd::variable_list;
using namespace weft::nn_test;

namespace {

struct Case {
  int64_t B, H, L, S, E, Ev;
};

enum class Mask { kNone, kCausal, kBool, kFloat, kScale };

const char* mask_name(Mask m) {
  switch (m) {
    case Mask::kNone: return "none";
    case Mask::kCausal: return "causal";
    case Mask::kBool: return "bool [L, S]";
    case Mask::kFloat: return "float [B, 1, L, S]";
    case Mask::kScale: return "scale 0.3";
  }
  return "";
}

// The largest |a - b| / (1 + |b|), NaN where exactly one of a, b is NaN.
double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  Vec x = a.to(kFloat64).to_vector<double>(), y = b.to(kFloat64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) {
      if (std::isnan(x[i]) != std::isnan(y[i])) return NAN;
      continue;
    }
    worst = std::max(worst, std::fabs(x[i] - y[i]) / (1 + std::fabs(y[i])));
  }
  return worst;
}

struct Run {
  Tensor out, dq, dk, dv;
};

// out = attention(q, k, v) and the gradients of sum(out * dout), through the op or the composed form.
Run run(bool fused, const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& dout, const Tensor& mask,
        Mask kind) {
  Tensor q = q0.detach().requires_grad_(), k = k0.detach().requires_grad_(), v = v0.detach().requires_grad_();
  const bool causal = kind == Mask::kCausal;
  const double scale = kind == Mask::kScale ? 0.3 : 1 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor out = fused ? scaled_dot_product_attention(q, k, v, mask, causal, scale)
                     : detail::composed_scaled_dot_product_attention(q, k, v, mask, causal, scale);
  variable_list g = autograd::grad({(out * dout).sum()}, {q, k, v});
  return {out.detach(), g[0], g[1], g[2]};
}

void compare(const Case& c, Mask kind, DType dt, double tol, uint64_t seed) {
  INFO("B " << c.B << " H " << c.H << " L " << c.L << " S " << c.S << " E " << c.E << " Ev " << c.Ev << ", mask "
            << mask_name(kind) << ", " << dtype_name(dt));
  Generator g(seed);
  auto r = [&](const Shape& s) { return randn(s, TensorOptions(dt), &g); };
  Tensor q = r({c.B, c.H, c.L, c.E}), k = r({c.B, c.H, c.S, c.E}), v = r({c.B, c.H, c.S, c.Ev});
  Tensor dout = r({c.B, c.H, c.L, c.Ev});
  Tensor mask;
  if (kind == Mask::kBool) {
    // About a third of the keys dropped, but key 0 kept so that no row is fully masked here.
    mask = gt(rand({c.L, c.S}, TensorOptions(dt), &g), 0.33);
    mask.narrow(1, 0, 1).fill_(1);
  } else if (kind == Mask::kFloat) {
    mask = r({c.B, 1, c.L, c.S});
  }
  Run f = run(true, q, k, v, dout, mask, kind), ref = run(false, q, k, v, dout, mask, kind);
  CHECK(max_rel_diff(f.out, ref.out) <= tol);
  CHECK(max_rel_diff(f.dq, ref.dq) <= tol);
  CHECK(max_rel_diff(f.dk, ref.dk) <= tol);
  CHECK(max_rel_diff(f.dv, ref.dv) <= tol);
}

const std::vector<Case> kCases = {
    {1, 1, 1, 1, 4, 4},     {2, 3, 1, 5, 8, 8},     {2, 2, 5, 1, 3, 2},    {1, 2, 63, 63, 16, 16},
    {1, 2, 64, 64, 16, 16}, {1, 2, 65, 130, 16, 8}, {2, 1, 130, 65, 8, 16}, {1, 1, 200, 129, 32, 32},
    {1, 1, 129, 200, 5, 7},
};

}  // namespace

TEST_CASE("fused attention matches the composed form, forward and backward", "[attention]") {
  uint64_t seed = 1;
  for (DType dt : {kFloat64, kFloat32})
    for (const Case& c : kCases)
      for (Mask kind : {Mask::kNone, Mask::kCausal, Mask::kBool, Mask::kFloat, Mask::kScale})
        compare(c, kind, dt, dt == kFloat64 ? 1e-12 : 1e-5, seed++);
}

TEST_CASE("fused attention reads strided heads in place and copies a strided last dim", "[attention]") {
  for (DType dt : {kFloat64, kFloat32}) {
    INFO(dtype_name(dt));
    const double tol = dt == kFloat64 ? 1e-12 : 1e-5;
    Generator g(7);
    // (B, T, H, D) -> (B, H, T, D), as CausalSelfAttention splits heads; v with its last two dims swapped.
    Tensor q = randn({2, 70, 3, 8}, TensorOptions(dt), &g).transpose(1, 2);
    Tensor k = randn({2, 90, 3, 8}, TensorOptions(dt), &g).transpose(1, 2);
    Tensor v = randn({2, 3, 6, 90}, TensorOptions(dt), &g).transpose(-2, -1);
    Tensor dout = randn({2, 3, 70, 6}, TensorOptions(dt), &g);
    for (Mask kind : {Mask::kNone, Mask::kCausal}) {
      Run f = run(true, q, k, v, dout, Tensor(), kind), ref = run(false, q, k, v, dout, Tensor(), kind);
      CHECK(max_rel_diff(f.out, ref.out) <= tol);
      CHECK(max_rel_diff(f.dq, ref.dq) <= tol);
      CHECK(max_rel_diff(f.dk, ref.dk) <= tol);
      CHECK(max_rel_diff(f.dv, ref.dv) <= tol);
    }
  }
}

TEST_CASE("fused attention at train_gpt's shape: heads split from one [B, T, 3H, D] projection", "[attention]") {
  // T = 32, D = 16 under causal: the AVX-512 copy's 16-query blocks and masked row loops, with q, k and v
  // read in place from one fused qkv buffer as nn::CausalSelfAttention splits it.
  for (DType dt : {kFloat64, kFloat32}) {
    INFO(dtype_name(dt));
    const double tol = dt == kFloat64 ? 1e-12 : 1e-5;
    Generator g(11);
    Tensor qkv = randn({4, 32, 12, 16}, TensorOptions(dt), &g);
    Tensor q = qkv.narrow(2, 0, 4).transpose(1, 2), k = qkv.narrow(2, 4, 4).transpose(1, 2);
    Tensor v = qkv.narrow(2, 8, 4).transpose(1, 2);
    Tensor dout = randn({4, 4, 32, 16}, TensorOptions(dt), &g);
    for (Mask kind : {Mask::kCausal, Mask::kNone}) {
      INFO(mask_name(kind));
      Run f = run(true, q, k, v, dout, Tensor(), kind), ref = run(false, q, k, v, dout, Tensor(), kind);
      CHECK(max_rel_diff(f.out, ref.out) <= tol);
      CHECK(max_rel_diff(f.dq, ref.dq) <= tol);
      CHECK(max_rel_diff(f.dk, ref.dk) <= tol);
      CHECK(max_rel_diff(f.dv, ref.dv) <= tol);
    }
  }
}

TEST_CASE("the attention forward keeps its probabilities for backward only with few keys", "[attention]") {
  // Note [Kept probabilities]: softmax(scale q k^T) with the causal drop, 0 above the diagonal.
  Generator g(13);
  for (int64_t S : {20, 64, 65}) {
    INFO("S " << S);
    Tensor q = randn({2, 3, S, 8}, kFloat64, &g), k = randn({2, 3, S, 8}, kFloat64, &g);
    Tensor v = randn({2, 3, S, 5}, kFloat64, &g);
    const double scale = 0.4;
    kernels::AttentionForward f = kernels::attention_forward(q, k, v, Tensor(), true, scale, /*keep_probs=*/true);
    CHECK_FALSE(kernels::attention_forward(q, k, v, Tensor(), true, scale, false).probs.defined());
    if (S > 64) {
      CHECK_FALSE(f.probs.defined());
      continue;
    }
    REQUIRE(f.probs.defined());
    Tensor drop = gt(arange(S).reshape({1, S}), arange(S).reshape({S, 1}));
    Tensor ref = softmax(masked_fill(mul(matmul(q, transpose(k, -2, -1)), scale), drop, -INFINITY), -1);
    CHECK(max_rel_diff(f.probs, ref) <= 1e-12);
  }
}

TEST_CASE("fused float32 attention over long rows is as accurate as the composed float32 form", "[attention]") {
  // Against float64: the online softmax rescales each row up to 4 times here (T = 1000, 256-key blocks).
  Generator g(17);
  Tensor q = randn({1, 2, 1000, 64}, kFloat64, &g), k = randn({1, 2, 1000, 64}, kFloat64, &g);
  Tensor v = randn({1, 2, 1000, 64}, kFloat64, &g), dout = randn({1, 2, 1000, 64}, kFloat64, &g);
  auto f32 = [](const Tensor& t) { return t.to(kFloat32); };
  Run exact = run(false, q, k, v, dout, Tensor(), Mask::kCausal);
  Run fused = run(true, f32(q), f32(k), f32(v), f32(dout), Tensor(), Mask::kCausal);
  Run composed = run(false, f32(q), f32(k), f32(v), f32(dout), Tensor(), Mask::kCausal);
  for (auto part : {&Run::out, &Run::dq, &Run::dk, &Run::dv}) {
    const double fused_err = max_rel_diff(fused.*part, exact.*part), composed_err = max_rel_diff(composed.*part, exact.*part);
    INFO("fused " << fused_err << ", composed " << composed_err);
    CHECK(fused_err <= 2 * composed_err + 1e-6);
    CHECK(fused_err <= 1e-4);
  }
}

TEST_CASE("fused attention on 2-D q, k, v (no batch dims) and under no-grad", "[attention]") {
  Generator g(9);
  Tensor q = randn({70, 5}, kFloat64, &g), k = randn({66, 5}, kFloat64, &g), v = randn({66, 3}, kFloat64, &g);
  Tensor dout = randn({70, 3}, kFloat64, &g);
  Run f = run(true, q, k, v, dout, Tensor(), Mask::kCausal), ref = run(false, q, k, v, dout, Tensor(), Mask::kCausal);
  CHECK(max_rel_diff(f.out, ref.out) <= 1e-12);
  CHECK(max_rel_diff(f.dq, ref.dq) <= 1e-12);
  CHECK(max_rel_diff(f.dk, ref.dk) <= 1e-12);
  CHECK(max_rel_diff(f.dv, ref.dv) <= 1e-12);
  NoGradGuard no_grad;
  Tensor out = scaled_dot_product_attention(q, k, v, Tensor(), true);
  CHECK(!out.requires_grad());
  CHECK(max_rel_diff(out, ref.out) <= 1e-12);
}

TEST_CASE("a fully masked row gives NaN as the composed softmax does, and leaves the other rows", "[attention]") {
  Generator g(11);
  const int64_t L = 70, S = 66;
  Tensor q = randn({2, L, 4}, kFloat64, &g), k = randn({2, S, 4}, kFloat64, &g), v = randn({2, S, 3}, kFloat64, &g);
  Tensor dout = randn({2, L, 3}, kFloat64, &g);
  Tensor keep = gt(rand({2, L, S}, kFloat64, &g), 0.5);
  keep.select(0, 1).select(0, 67).fill_(0);  // batch 1, query 67: no key at all
  Run f = run(true, q, k, v, dout, keep, Mask::kBool), ref = run(false, q, k, v, dout, keep, Mask::kBool);
  CHECK(std::isnan(f.out.select(0, 1).select(0, 67).to_vector<double>()[0]));
  CHECK(!std::isnan(f.out.select(0, 0).sum().item<double>()));
  CHECK(max_rel_diff(f.out, ref.out) <= 1e-12);  // the same NaN positions, the same numbers elsewhere
  CHECK(max_rel_diff(f.dq, ref.dq) <= 1e-12);
  CHECK(max_rel_diff(f.dk, ref.dk) <= 1e-12);
  CHECK(max_rel_diff(f.dv, ref.dv) <= 1e-12);
  // create_graph takes the composed formula in ops: the same gradients, NaN where these are NaN.
  {
    Tensor qg = q.detach().requires_grad_(), kg = k.detach().requires_grad_(), vg = v.detach().requires_grad_();
    Tensor out = scaled_dot_product_attention(qg, kg, vg, keep);
    variable_list gg = autograd::grad({(out * dout).sum()}, {qg, kg, vg}, {}, false, false, /*create_graph=*/true);
    CHECK(max_rel_diff(gg[0].detach(), f.dq) <= 1e-12);
    CHECK(max_rel_diff(gg[1].detach(), f.dk) <= 1e-12);
    CHECK(max_rel_diff(gg[2].detach(), f.dv) <= 1e-12);
  }
  // A float mask of -inf over a whole row: NaN there too (its gradient is add's, so NaN flows on).
  Tensor bias = randn({2, L, S}, kFloat64, &g);
  bias.select(0, 0).select(0, 3).fill_(-INFINITY);
  Run fb = run(true, q, k, v, dout, bias, Mask::kFloat), rb = run(false, q, k, v, dout, bias, Mask::kFloat);
  CHECK(std::isnan(fb.out.select(0, 0).select(0, 3).to_vector<double>()[0]));
  CHECK(max_rel_diff(fb.out, rb.out) <= 1e-12);
  CHECK(max_rel_diff(fb.dq, rb.dq) <= 1e-12);
  CHECK(max_rel_diff(fb.dk, rb.dk) <= 1e-12);
  CHECK(max_rel_diff(fb.dv, rb.dv) <= 1e-12);
}

TEST_CASE("fused attention: one thread and two give the same values", "[attention]") {
  Generator g(13);
  Tensor q = randn({2, 2, 150, 16}, kFloat32, &g), k = randn({2, 2, 150, 16}, kFloat32, &g);
  Tensor v = randn({2, 2, 150, 16}, kFloat32, &g), dout = randn({2, 2, 150, 16}, kFloat32, &g);
  Run one, two;
  {
    ScopedNumThreads t(1);
    one = run(true, q, k, v, dout, Tensor(), Mask::kCausal);
  }
  {
    ScopedNumThreads t(2);
    two = run(true, q, k, v, dout, Tensor(), Mask::kCausal);
  }
  CHECK(max_rel_diff(one.out, two.out) == 0);
  CHECK(max_rel_diff(one.dq, two.dq) == 0);
  CHECK(max_rel_diff(one.dk, two.dk) == 0);
  CHECK(max_rel_diff(one.dv, two.dv) == 0);
}

TEST_CASE("fused attention passes gradcheck and gradgradcheck in float64", "[attention][gradcheck]") {
  // L and S past one 64-row block, so the online softmax rescales and backward walks several tiles.
  Tensor q = randn64({1, 70, 3}, 21), k = randn64({1, 67, 3}, 22), v = randn64({1, 67, 2}, 23);
  SECTION("causal") {
    CHECK(gradcheck([](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), true); },
                    {q, k, v}));
  }
  SECTION("bool mask and float mask (no gradient for the mask: the fused path)") {
    Generator g(24);
    Tensor keep = gt(rand({70, 67}, kFloat64, &g), 0.3);
    keep.narrow(1, 0, 1).fill_(1);
    CHECK(gradcheck([&](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], keep); },
                    {q, k, v}));
    Tensor bias = randn64({70, 67}, 25, false);
    CHECK(gradcheck([&](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], bias, false, 0.4); },
                    {q, k, v}));
  }
  SECTION("a float mask that needs its gradient (the composed path)") {
    Tensor qs = randn64({2, 5, 3}, 26), ks = randn64({2, 4, 3}, 27), vs = randn64({2, 4, 2}, 28);
    Tensor bias = randn64({5, 4}, 29);
    CHECK(gradcheck([](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], in[3]); },
                    {qs, ks, vs, bias}));
  }
  SECTION("gradgradcheck: create_graph takes the composed backward formula") {
    Tensor qs = randn64({2, 5, 3}, 30), ks = randn64({2, 4, 3}, 31), vs = randn64({2, 4, 2}, 32);
    Tensor keep = from_vector<bool>({true, false, true, true, false, true, true, true, true, true,
                                     false, false, true, false, true, true, true, false, false, true},
                                    {5, 4});
    CHECK(gradgradcheck([&](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], keep); },
                        {qs, ks, vs}));
    CHECK(gradgradcheck([](const variable_list& in) { return scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), true); },
                        {qs, ks, vs}));
  }
}

TEST_CASE("fused attention keeps O(L) bytes for backward, the composed form O(L S)", "[attention][memory]") {
  // Bytes in use after forward, beyond the inputs: what the graph keeps until backward.
  auto held = [](bool fused, int64_t T) {
    Generator g(40);
    const int64_t B = 2, H = 2, D = 16;
    Tensor q = randn({B, H, T, D}, kFloat32, &g).requires_grad_();
    Tensor k = randn({B, H, T, D}, kFloat32, &g).requires_grad_();
    Tensor v = randn({B, H, T, D}, kFloat32, &g).requires_grad_();
    allocator::empty_cache();
    const uint64_t before = allocator::stats().bytes_in_use;
    Tensor out = fused ? scaled_dot_product_attention(q, k, v, Tensor(), true)
                       : detail::composed_scaled_dot_product_attention(q, k, v, Tensor(), true, 0.25);
    const uint64_t bytes = allocator::stats().bytes_in_use - before;
    out.sum().backward();
    return bytes;
  };
  const int64_t T = 512;
  const uint64_t out_and_lse = 2 * 2 * T * (16 + 1) * 4, probabilities = 2 * 2 * T * T * 4;
  const uint64_t fused = held(true, T), fused2 = held(true, 2 * T), composed = held(false, T);
  INFO("held after forward: fused " << fused << " (T " << T << "), " << fused2 << " (T " << 2 * T << "), composed "
                                    << composed);
  CHECK(fused <= out_and_lse + 4096);  // allocator rounding only
  CHECK(fused2 <= 2 * fused + 4096);   // linear in T
  CHECK(composed >= probabilities);    // the composed form keeps [L, S] probabilities
}

// Heads split from a fused [B, T, 3 H, D] projection, as CausalSelfAttention does: the output comes
// back in the [B, T, H, D] layout (merging heads is then a view), and values and gradients match the
// composed form for T around the 16-key vector and 64-query tile edges and head dims that are not a
// multiple of 16 (the AVX-512 copy's masked tile edges; this suite also runs on the narrower copies).
TEST_CASE("fused attention on heads split from a fused qkv projection, odd sizes", "[attention]") {
  for (int64_t T : {1, 15, 17, 33, 47, 65, 130})
    for (int64_t D : {3, 16, 20, 33}) {
      INFO("T " << T << " D " << D);
      const int64_t B = 2, H = 3;
      Generator g(static_cast<uint64_t>(T * 100 + D));
      Tensor qkv = randn({B, T, 3 * H, D}, TensorOptions(kFloat32), &g).transpose(1, 2);
      Tensor q = qkv.narrow(1, 0, H), k = qkv.narrow(1, H, H), v = qkv.narrow(1, 2 * H, H);
      Tensor dout = randn({B, H, T, D}, TensorOptions(kFloat32), &g);
      for (Mask kind : {Mask::kNone, Mask::kCausal}) {
        Run f = run(true, q, k, v, dout, Tensor(), kind), ref = run(false, q, k, v, dout, Tensor(), kind);
        CHECK(f.out.transpose(1, 2).is_contiguous());
        CHECK(max_rel_diff(f.out, ref.out) <= 1e-5);
        CHECK(max_rel_diff(f.dq, ref.dq) <= 1e-5);
        CHECK(max_rel_diff(f.dk, ref.dk) <= 1e-5);
        CHECK(max_rel_diff(f.dv, ref.dv) <= 1e-5);
      }
    }
}
