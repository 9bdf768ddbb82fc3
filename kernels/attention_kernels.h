// attention_kernels.h: the fused, blocked (flash-style) scaled dot-product attention kernels, forward
// and backward. No autograd: ops/attention.cpp checks the arguments and records the backward.
#pragma once

#include "framework/tensor.h"

namespace weft::kernels {

// Note [Flash attention]
// out = softmax(scale * q @ k^T + mask) @ v without the [L, S] score matrix: each (batch, query
// block) walks the key blocks once, keeping a running row max m and sum l of exp(s - m) (the online
// softmax), and rescales its output accumulator when m grows. Only a block x block tile of scores
// exists at a time, and what backward needs is the output and the per-row logsumexp m + log(l):
// it recomputes each tile's probabilities as exp(s - logsumexp) (FlashAttention-2's backward,
// D = rowsum(dout * out), ds = p * (dp - D)). A row whose every key is masked has l = 0 and gives
// 0 / 0 = NaN, as the composed softmax (and PyTorch 1.13) does, and its logsumexp is -inf, so its
// gradients are NaN too.

// q [..., L, E], k [..., S, E], v [..., S, Ev] of one dtype (float32 or float64), one batch shape,
// L, S > 0, each with unit stride along its last dim (other strides are free: heads split from a
// [B, T, H, D] view are read in place). `mask` is undefined, or bool (true = attend) or q's dtype
// (added to the scores), already broadcast (expanded, any strides) to [..., L, S]. `causal` drops
// key j > query i. Returns the output [..., L, Ev] and logsumexp [..., L] (q's dtype). With
// `keep_probs` and few keys (attention_keeps_probs), also the probabilities [..., L, S] (contiguous;
// entries past a query's causal reach are 0), for backward to read instead of recomputing them.
struct AttentionForward {
  Tensor out, logsumexp, probs;
};
AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
                                   double scale, bool keep_probs = false);

// Note [Kept probabilities]
// FlashAttention recomputes each tile's probabilities in backward so that no [L, S] matrix is held.
// With few keys (S <= 64: train_gpt's T = 32) the matrix is small (at most 64 floats per query, the
// size of a 64-wide output row) and recomputing it (a tile product, a transpose and an exp per score)
// was about a fifth of the backward, so the forward keeps it.
bool attention_keeps_probs(int64_t S);

// The gradients of q, k and v (their shapes) from dout (any strides) and the forward's inputs, output
// and logsumexp, and its kept probabilities when defined.
struct AttentionGrads {
  Tensor dq, dk, dv;
};
AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& logsumexp, const Tensor& mask, bool causal,
                                  double scale, const Tensor& probs = Tensor());

}  // namespace weft::kernels
