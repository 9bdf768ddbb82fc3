"""Conformance cases of embedding (ops/embedding.h) against PyTorch 1.13. weft's embedding has no
max_norm (PyTorch's renormalises the weight's rows in place) nor scale_grad_by_freq / sparse."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")


def embedding(weight, indices, padding_idx=None):
    """F.embedding with weft's argument order (weight first); its AssertionError for a padding_idx
    out of range (a Python assert) taken as the error it is."""
    try:
        return F.embedding(indices, weight, padding_idx=padding_idx)
    except AssertionError as e:
        raise ValueError("embedding: " + str(e))


def idx(values, dtype=torch.int64):
    return T(values, dtype=dtype)


w = randn(6, 3, seed=1)
for indices in ([1, 4, 1, 0], [[0, 5, 2], [2, 2, 3]], 3, [], [[[1], [5]]]):
    s.case("embedding", embedding, T(w, grad=True), idx(indices))
s.case("embedding", embedding, T(w, layout="transposed", grad=True), idx([[0, 5], [2, 2]]))
s.case("embedding", embedding, T(w, layout="strided", grad=True), idx([3, 1, 3]))
s.case("embedding", embedding, T(w, grad=True), T(torch.tensor([[0, 1, 2, 3, 4, 5]]).t(), layout="transposed"))
s.case("embedding", embedding, T(w, grad=True), T([4, 0, 4, 5], dtype=torch.int64, layout="strided"))
# padding_idx: that row gets no gradient (its value is looked up as any other)
for p in (2, 0, -1, -6):
    s.case("embedding", embedding, T(w, grad=True), idx([[2, 0, 5], [2, 1, 0]]), padding_idx=p)
s.case("embedding", embedding, T(w), idx([1]), padding_idx=6)
s.case("embedding", embedding, T(w), idx([1]), padding_idx=-7)
# int32 indices, weights of every dtype, extremes
s.case("embedding", embedding, T(w, grad=True), idx([1, 5, 0], dtype=torch.int32))
for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.int64, torch.int32, torch.uint8, torch.bool):
    s.case("embedding", embedding, T([[1, 0], [2, 3], [0, 1]], dtype=dtype), idx([2, 0, 2]))
s.case("embedding", embedding, T([[NAN, -0.0], [INF, 1e308]], dtype=torch.float64), idx([1, 0]))
s.case("embedding", embedding, T(torch.zeros(0, 3, dtype=torch.float64)), idx([]))
s.case("embedding", embedding, T(torch.zeros(4, 0, dtype=torch.float64), grad=True), idx([1, 3]))
# errors: indices out of range, not integers, a weight not 2-D
s.case("embedding", embedding, T(w), idx([1, 6]))
s.case("embedding", embedding, T(w), idx([-1, 2]))
s.case("embedding", embedding, T(w), T([1.0, 2.0], dtype=torch.float64))
s.case("embedding", embedding, T(w), idx([1, 2], dtype=torch.int8))
s.case("embedding", embedding, T(w), idx([1, 2], dtype=torch.uint8))
s.case("embedding", embedding, T(torch.zeros(0, 3, dtype=torch.float64)), idx([0]))
s.write(sys.argv[1])
