// attention.cpp: scaled_dot_product_attention on the fused flash kernel (kernels/attention_kernels.h)
// with its backward beside it, and the composed form (matmul, masked_fill, softmax, matmul) for the
// cases the kernel does not take and for the differentiable backward that create_graph needs.
#include <atomic>
#include <cmath>

#include "ops/attention.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "kernels/attention_kernels.h"
#include "kernels/toolkit.h"
#include "ops/autocast.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/softmax.h"

namespace weft {
namespace {

// (L, S) bool: true where key j comes after query i, i.e. the positions a causal mask removes.
Tensor causal_drop_mask(int64_t L, int64_t S) {
  Tensor m = kernels::make_empty({L, S}, kBool);
  bool* p = static_cast<bool*>(m.raw_data());
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < S; ++j) p[i * S + j] = j > i;
  return m;
}

// The complement of a bool mask (true = keep) as a drop mask for masked_fill.
Tensor logical_not(const Tensor& mask) {
  Tensor keep = kernels::dense(mask);
  Tensor drop = kernels::make_empty(keep.shape(), kBool);
  const bool* k = static_cast<const bool*>(keep.raw_data());
  bool* d = static_cast<bool*>(drop.raw_data());
  for (int64_t i = 0, n = keep.numel(); i < n; ++i) d[i] = !k[i];
  return drop;
}

// scale * q @ k^T with the causal mask or attn_mask applied, in ops (so differentiable throughout).
Tensor composed_scores(const Tensor& q, const Tensor& k, const Tensor& attn_mask, bool is_causal, double s) {
  Tensor scores = mul(matmul(q, transpose(k, -2, -1)), s);
  if (is_causal) scores = masked_fill(scores, causal_drop_mask(q.size(-2), k.size(-2)), -INFINITY);
  if (!attn_mask.defined()) return scores;
  if (attn_mask.dtype() == kBool) return masked_fill(scores, logical_not(attn_mask), -INFINITY);
  return add(scores, attn_mask);
}

// t itself when its last dim is read with unit stride (what the kernel's tile products need), else
// a dense copy.
Tensor unit_last(const Tensor& t) { return t.size(-1) <= 1 || t.stride(-1) == 1 ? t : kernels::dense(t); }

// The fused kernel's backward: it saves q, k, v, the output and the [..., L] logsumexp, never an
// [L, S] matrix (see Note [Flash attention]). Under create_graph it runs the composed formula with
// ops instead (softmax's backward, written out), so that double backward sees differentiable results.
struct FlashAttentionBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  autograd::SavedTensor q, k, v, out, logsumexp, mask, probs;  // probs: Note [Kept probabilities]
  bool causal = false;
  double scale = 1;

  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor qt = q.unpack(this), kt = k.unpack(this), vt = v.unpack(this);
    Tensor mt = mask.defined() ? mask.unpack(this) : Tensor();
    if (GradMode::is_enabled()) return composed(g, qt, kt, vt, mt);
    Tensor m = mt.defined() ? expand(mt, out_scores_shape(qt, kt)) : Tensor();
    kernels::AttentionGrads r = kernels::attention_backward(unit_last(g), unit_last(qt), unit_last(kt), unit_last(vt),
                                                            out.unpack(this), logsumexp.unpack(this), m, causal, scale,
                                                            probs.defined() ? probs.unpack(this) : Tensor());
    return {needs_input_grad(0) ? r.dq : Tensor(), needs_input_grad(1) ? r.dk : Tensor(),
            needs_input_grad(2) ? r.dv : Tensor()};
  }
  std::string name() const override { return "FlashAttentionBackward"; }

  // p = softmax(scores); dv = p^T g; ds = p (g v^T - rowsum(g v^T p)); dq = scale ds k; dk = scale ds^T q.
  autograd::variable_list composed(const Tensor& g, const Tensor& qt, const Tensor& kt, const Tensor& vt,
                                   const Tensor& mt) const {
    Tensor p = softmax(composed_scores(qt, kt, mt, causal, scale), -1);
    Tensor dp = matmul(g, transpose(vt, -2, -1));
    Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, /*keepdim=*/true)));
    // Dropped scores get no gradient (masked_fill's), also in a fully masked row where p is NaN.
    if (causal) ds = masked_fill(ds, causal_drop_mask(qt.size(-2), kt.size(-2)), 0.0);
    else if (mt.defined() && mt.dtype() == kBool) ds = masked_fill(ds, logical_not(mt), 0.0);
    return {needs_input_grad(0) ? mul(matmul(ds, kt), scale) : Tensor(),
            needs_input_grad(1) ? mul(matmul(transpose(ds, -2, -1), qt), scale) : Tensor(),
            needs_input_grad(2) ? matmul(transpose(p, -2, -1), g) : Tensor()};
  }
  static Shape out_scores_shape(const Tensor& qt, const Tensor& kt) {
    Shape s = qt.shape();
    s.back() = kt.size(-2);
    return s;
  }
};

std::atomic<bool> fused_attention{true};

// The fused kernel takes float32 and float64 inputs with one batch shape and no empty dims, and a
// mask that needs no gradient (the mask's gradient would be the [L, S] matrix the kernel avoids).
bool fusable(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask) {
  if (!fused_attention.load(std::memory_order_relaxed)) return false;
  if (q.dtype() != kFloat32 && q.dtype() != kFloat64) return false;
  if (q.dim() != k.dim() || q.dim() != v.dim()) return false;
  for (int64_t d = 0; d < q.dim() - 2; ++d)
    if (k.size(d) != q.size(d) || v.size(d) != q.size(d)) return false;
  if (q.numel() == 0 || k.numel() == 0 || v.numel() == 0) return false;
  return !(attn_mask.defined() && GradMode::is_enabled() && attn_mask.requires_grad());
}

}  // namespace

namespace detail {

void set_fused_attention(bool on) { fused_attention.store(on, std::memory_order_relaxed); }

Tensor composed_scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& attn_mask, bool is_causal, double scale) {
  return matmul(softmax(composed_scores(q, k, attn_mask, is_causal, scale), -1), v);
}

}  // namespace detail

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    bool is_causal, std::optional<double> scale) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kScaledDotProductAttention, scaled_dot_product_attention, q, k, v, attn_mask,
                          is_causal, scale);
  const char* op = "scaled_dot_product_attention";
  for (const Tensor* t : {&q, &k, &v}) {
    detail::check_plain(*t, op);
    WEFT_CHECK(t->dim() >= 2, op, ": expected q, k, v of shape (..., L, E) but got a tensor of shape ", t->shape());
    WEFT_CHECK(t->is_floating_point() && t->dtype() == q.dtype(), op,
               ": expected q, k, v of one floating dtype but got ", q.dtype(), ", ", k.dtype(), ", ", v.dtype());
  }
  int64_t S = k.size(-2), E = q.size(-1);
  WEFT_CHECK(k.size(-1) == E, op, ": q of shape ", q.shape(), " and k of shape ", k.shape(),
             " must have the same embedding size (last dim)");
  WEFT_CHECK(v.size(-2) == S, op, ": k of shape ", k.shape(), " and v of shape ", v.shape(),
             " must have the same sequence length (dim -2)");
  WEFT_CHECK(!(is_causal && attn_mask.defined()), op,
             ": pass either attn_mask or is_causal=true, not both (an explicit mask with is_causal is ambiguous)");
  double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));
  if (attn_mask.defined()) {
    detail::check_plain(attn_mask, op);
    Shape scores = broadcast_shapes(Shape(q.shape().begin(), q.shape().end() - 2),
                                    Shape(k.shape().begin(), k.shape().end() - 2), op);
    scores.push_back(q.size(-2));
    scores.push_back(S);
    WEFT_CHECK(is_broadcastable_to(attn_mask.shape(), scores), op, ": attn_mask of shape ", attn_mask.shape(),
               " cannot be broadcast to the attention scores' shape ", scores);
    WEFT_CHECK(attn_mask.dtype() == kBool || attn_mask.dtype() == q.dtype(), op,
               ": expected attn_mask of dtype bool or ", q.dtype(), " (the query's) but got ", attn_mask.dtype());
  }
  // bfloat16 and float16 run the fused kernel in float32 and round the output once, as flash kernels
  // accumulate in float32: widened (recorded) copies of q, k, v rather than an [L, S] matrix in the
  // narrow dtype, and a softmax that does not lose its small terms.
  if (is_reduced_float(q.dtype()) && fused_attention.load(std::memory_order_relaxed)) {
    Tensor mask = attn_mask.defined() && attn_mask.dtype() != kBool ? to_dtype(attn_mask, kFloat32) : attn_mask;
    return to_dtype(scaled_dot_product_attention(to_dtype(q, kFloat32), to_dtype(k, kFloat32), to_dtype(v, kFloat32),
                                                 mask, is_causal, s),
                    q.dtype());
  }
  if (!fusable(q, k, v, attn_mask))
    return detail::composed_scaled_dot_product_attention(q, k, v, attn_mask, is_causal, s);
  Tensor mask = attn_mask.defined() ? expand(attn_mask, FlashAttentionBackward::out_scores_shape(q, k)) : Tensor();
  const bool grad = GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  kernels::AttentionForward f =
      kernels::attention_forward(unit_last(q), unit_last(k), unit_last(v), mask, is_causal, s, /*keep_probs=*/grad);
  return autograd::record<FlashAttentionBackward>(f.out, [&](FlashAttentionBackward& n) {
    n.causal = is_causal;
    n.scale = s;
    n.save(n.q, q);
    n.save(n.k, k);
    n.save(n.v, v);
    n.save(n.out, f.out, /*is_output=*/true);
    n.save(n.logsumexp, f.logsumexp);
    if (f.probs.defined()) n.save(n.probs, f.probs);
    if (attn_mask.defined()) n.save(n.mask, attn_mask);
  }, q, k, v);
}

}  // namespace weft
