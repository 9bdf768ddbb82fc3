// attention.cpp: scaled_dot_product_attention composed from matmul, masked_fill and softmax, so its
// backward is theirs.
#include <cmath>

#include "ops/attention.h"
#include "kernels/nn_kernels.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/linalg.h"
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

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    bool is_causal, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  for (const Tensor* t : {&q, &k, &v}) {
    detail::check_plain(*t, op);
    WEFT_CHECK(t->dim() >= 2, op, ": expected q, k, v of shape (..., L, E) but got a tensor of shape ", t->shape());
    WEFT_CHECK(t->is_floating_point() && t->dtype() == q.dtype(), op,
               ": expected q, k, v of one floating dtype but got ", q.dtype(), ", ", k.dtype(), ", ", v.dtype());
  }
  int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1);
  WEFT_CHECK(k.size(-1) == E, op, ": q of shape ", q.shape(), " and k of shape ", k.shape(),
             " must have the same embedding size (last dim)");
  WEFT_CHECK(v.size(-2) == S, op, ": k of shape ", k.shape(), " and v of shape ", v.shape(),
             " must have the same sequence length (dim -2)");
  WEFT_CHECK(!(is_causal && attn_mask.defined()), op,
             ": pass either attn_mask or is_causal=true, not both (an explicit mask with is_causal is ambiguous)");
  double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));
  Tensor scores = mul(matmul(q, transpose(k, -2, -1)), s);
  if (is_causal) scores = masked_fill(scores, causal_drop_mask(L, S), -INFINITY);
  if (attn_mask.defined()) {
    detail::check_plain(attn_mask, op);
    WEFT_CHECK(is_broadcastable_to(attn_mask.shape(), scores.shape()), op, ": attn_mask of shape ",
               attn_mask.shape(), " cannot be broadcast to the attention scores' shape ", scores.shape());
    if (attn_mask.dtype() == kBool) {
      scores = masked_fill(scores, logical_not(attn_mask), -INFINITY);
    } else {
      WEFT_CHECK(attn_mask.dtype() == q.dtype(), op, ": expected attn_mask of dtype bool or ", q.dtype(),
                 " (the query's) but got ", attn_mask.dtype());
      scores = add(scores, attn_mask);
    }
  }
  return matmul(softmax(scores, -1), v);
}

}  // namespace weft
