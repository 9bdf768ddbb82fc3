"""Conformance cases of scaled_dot_product_attention (ops/attention.h).

PyTorch 1.13 has no scaled_dot_product_attention (2.0 added it): the reference is 2.0's documented
math, softmax(q k^T * scale + bias) v, with scale 1 / sqrt(E) unless given, a bool attn_mask keeping
the True positions (the others -inf), a float attn_mask added, and is_causal keeping the lower
triangle of the (L, S) scores aligned at the top left; a row with nothing to attend is NaN (0/0), as
2.0's math backend gives. 2.x refuses attn_mask together with is_causal, and so does weft."""
import math
import sys

import torch

from conformance import Suite, T, randn

s = Suite()


def sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None):
    for t in (k, v):
        if t.dim() < 2 or q.dim() < 2 or t.dtype != q.dtype or not q.is_floating_point():
            raise RuntimeError("scaled_dot_product_attention: expected q, k, v of one floating dtype, (..., L, E)")
    if k.shape[-1] != q.shape[-1] or v.shape[-2] != k.shape[-2]:
        raise RuntimeError("scaled_dot_product_attention: q, k, v shapes disagree")
    if attn_mask is not None and is_causal:
        raise RuntimeError("scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    L, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if attn_mask is not None:
        torch.broadcast_shapes(attn_mask.shape, scores.shape)
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        elif attn_mask.dtype != q.dtype:
            raise RuntimeError("scaled_dot_product_attention: attn_mask must be bool or the query's dtype")
        else:
            scores = scores + attn_mask
    if scores.shape != torch.broadcast_shapes(scores.shape, v.shape[:-2] + (1, 1)):
        raise RuntimeError("scaled_dot_product_attention: batch dims disagree")
    return torch.softmax(scores, -1) @ v


def qkv(batch, L, S, E, Ev, seed, dtype=torch.float64, grad=True, layout="contiguous"):
    return (T(randn(*batch, L, E, seed=seed), dtype=dtype, grad=grad, layout=layout),
            T(randn(*batch, S, E, seed=seed + 1), dtype=dtype, grad=grad),
            T(randn(*batch, S, Ev, seed=seed + 2), dtype=dtype, grad=grad, layout=layout))


# shapes: 4-D and 3-D and 2-D, L != S, Ev != E
for batch, L, S, E, Ev in (((2, 3), 4, 4, 8, 8), ((2, 3), 3, 5, 4, 6), ((2,), 5, 2, 3, 3), ((), 4, 6, 5, 2),
                           ((1, 2), 1, 7, 4, 4), ((2, 1), 6, 1, 2, 3)):
    s.case("scaled_dot_product_attention", sdpa, *qkv(batch, L, S, E, Ev, seed=L * 10 + S))
    s.case("scaled_dot_product_attention", sdpa, *qkv(batch, L, S, E, Ev, seed=L * 10 + S), is_causal=True)
    s.case("scaled_dot_product_attention", sdpa, *qkv(batch, L, S, E, Ev, seed=L * 10 + S), scale=0.3)
# masks: bool (keep True) and float (added), broadcast over the batch, causal with a scale
q, k, v = qkv((2, 3), 4, 5, 8, 6, seed=100)
keep = torch.rand(4, 5, generator=torch.Generator().manual_seed(7)) > 0.3
keep[:, 0] = True  # every row attends somewhere
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(keep))
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(keep.expand(2, 1, 4, 5).clone()))
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(keep[:1]))
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(randn(4, 5, seed=101), grad=True))
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(randn(3, 1, 5, seed=102), grad=True), scale=2.0)
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(randn(4, 5, seed=103), layout="transposed", grad=True))
s.case("scaled_dot_product_attention", sdpa, q, k, v, attn_mask=T(keep), scale=0.5)
s.case("scaled_dot_product_attention", sdpa, q, k, v, is_causal=True, scale=1.5)
# -inf in a float mask; a row with nothing to attend is NaN
bias = torch.zeros(4, 5, dtype=torch.float64)
bias[1, 2:] = float("-inf")
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(bias))
none = keep.clone()
none[2] = False
s.case("scaled_dot_product_attention", sdpa, T(q.tensor), T(k.tensor), T(v.tensor), T(none))
# causal with more queries than keys: the first rows see one key each
s.case("scaled_dot_product_attention", sdpa, *qkv((2,), 6, 3, 4, 4, seed=110), is_causal=True)
# layouts
s.case("scaled_dot_product_attention", sdpa, *qkv((2, 2), 5, 5, 4, 4, seed=120, layout="transposed"))
s.case("scaled_dot_product_attention", sdpa, *qkv((2, 2), 5, 3, 4, 4, seed=121, layout="strided"), is_causal=True)
# dtypes
def sdpa_half(q, k, v, **kwargs):
    """float16: PyTorch 1.13 has no CPU float16 matmul; the reference computes in float32 and rounds."""
    return sdpa(q.float(), k.float(), v.float(), **kwargs).half()


for dtype in (torch.float32, torch.bfloat16, torch.float16):
    fn = sdpa_half if dtype == torch.float16 else sdpa
    s.case("scaled_dot_product_attention", fn, *qkv((2, 2), 4, 6, 8, 8, seed=130, dtype=dtype, grad=False))
    s.case("scaled_dot_product_attention", fn, *qkv((2, 2), 4, 4, 8, 8, seed=131, dtype=dtype, grad=False),
           is_causal=True)
s.case("scaled_dot_product_attention", sdpa, *qkv((2,), 3, 3, 2, 2, seed=140, dtype=torch.int64, grad=False))
# empty
s.case("scaled_dot_product_attention", sdpa, *qkv((0, 2), 3, 4, 2, 2, seed=150, grad=False))
s.case("scaled_dot_product_attention", sdpa, *qkv((2,), 0, 4, 2, 2, seed=151, grad=False))
# errors
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(keep), is_causal=True)
s.case("scaled_dot_product_attention", sdpa, q, T(randn(2, 3, 5, 7)), v)
s.case("scaled_dot_product_attention", sdpa, q, k, T(randn(2, 3, 4, 6)))
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(randn(4, 4)))
s.case("scaled_dot_product_attention", sdpa, q, k, v, T(randn(4, 5), dtype=torch.float32))
s.case("scaled_dot_product_attention", sdpa, q, T(k.tensor, dtype=torch.float32), v)
s.case("scaled_dot_product_attention", sdpa, T(randn(4)), T(randn(4)), T(randn(4)))
s.write(sys.argv[1])
