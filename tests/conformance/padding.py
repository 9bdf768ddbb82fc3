"""Conformance cases of pad (ops/padding.h) against PyTorch 1.13, in every mode."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")


def pad_any_rank(x, pads, mode="constant", value=0.0):
    """F.pad of the trailing len(pads) / 2 dims of an input of any rank: PyTorch 1.13's reflect,
    replicate and circular take only inputs of one or two more dims than they pad (circular: two), so
    the reference pads the input reshaped to [1, everything else, padded dims...] and shapes it back.
    weft pads any rank in every mode (a deliberate generality); the values are PyTorch's."""
    k = len(pads) // 2
    y = F.pad(x.reshape(1, -1, *x.shape[x.dim() - k:]), pads, mode, value)
    return y.reshape(*x.shape[:x.dim() - k], *y.shape[2:])


def via_float(x, pads, mode):
    """PyTorch 1.13 lacks reflect and replicate for bfloat16 and integers on CPU (later versions have
    them); weft pads every dtype, so the reference pads in float64 (exact) and converts back."""
    return pad_any_rank(x.double(), pads, mode).to(x.dtype)


x3, x4, x5 = randn(2, 3, 5, seed=1), randn(2, 2, 4, 5, seed=2), randn(1, 2, 3, 4, 4, seed=3)
# constant: any number of dims, cropping with negative amounts, a fill value
for x, pads in ((x3, [1, 2]), (x3, [0, 0, 2, 1]), (x3, [1, 1, 1, 1, 1, 1]), (x4, [2, -1, -1, 3]),
                (x4, [-2, -2]), (x5, [1, 0, 0, 1, 2, 0]), (randn(5, seed=4), [3, 1]), (x3, [0, 0])):
    s.case("pad", F.pad, T(x, grad=True), pads)
    s.case("pad", F.pad, T(x, grad=True), pads, "constant", -2.5)
s.case("pad", F.pad, T(x4, layout="transposed", grad=True), [1, 2, 0, 1], value=1.0)
s.case("pad", F.pad, T(x4, layout="strided", grad=True), [1, -2])
s.case("pad", F.pad, T(x3, dtype=torch.float32), [1, 2], value=float("inf"))
s.case("pad", F.pad, T(x3), [1, 2], value=NAN)
for dtype in (torch.bool, torch.uint8, torch.int8, torch.int32, torch.int64, torch.bfloat16, torch.float16):
    s.case("pad", F.pad, T([[1, 0, 3], [4, 5, 0]], dtype=dtype), [1, 1, 0, 1], value=1)
s.case("pad", F.pad, T([[1, 2, 3]], dtype=torch.int64), [1, 1], value=-7)
s.case("pad", F.pad, T(torch.zeros(0, 3, dtype=torch.float64)), [1, 1, 2, 0])
s.case("pad", F.pad, T(torch.tensor(2.0, dtype=torch.float64)), [])
s.case("pad", F.pad, T([[-0.0, 1e308]], dtype=torch.float64), [1, 0], value=-0.0)
# reflect, replicate, circular on 2-D to 5-D inputs: the last dim of a 2-D or 3-D, the last two of a
# 3-D or 4-D, the last three of a 4-D or 5-D (PyTorch 1.13's limits)
for mode in ("reflect", "replicate", "circular"):
    for x, pads in ((x3, [2, 1]), (x3, [0, 3]), (x3[0], [1, 2]), (x4, [1, 2, 3, 0]), (x4, [4, 4, 3, 3]),
                    (x4[0], [2, 0, 1, 1]), (x5, [1, 2, 0, 1, 2, 1]), (x5[0], [1, 0, 2, 0, 1, 1])):
        s.case("pad", pad_any_rank, T(x, grad=True), pads, mode)
    # negative amounts crop, in every mode
    s.case("pad", F.pad, T(x3, grad=True), [-1, 2], mode)
    s.case("pad", F.pad, T(x4, grad=True), [2, -2, -1, -1], mode)
    s.case("pad", pad_any_rank, T(x4, grad=True), [1, 0, -1, 2, 0, -1], mode)
    s.case("pad", pad_any_rank, T(randn(7, seed=5), grad=True), [2, 3], mode)
    s.case("pad", pad_any_rank, T(x4, layout="transposed", grad=True), [1, 2, 2, 1], mode)
    s.case("pad", pad_any_rank, T(x4, layout="strided", grad=True), [2, 1, 0, 2], mode)
    s.case("pad", pad_any_rank, T(x4, dtype=torch.float32), [1, 2, 2, 1], mode)
    s.case("pad", via_float, T(x4, dtype=torch.bfloat16, grad=True), [1, 2, 2, 1], mode)
    s.case("pad", via_float, T([[[1, 2, 3], [4, 5, 6]]], dtype=torch.int64), [1, 2], mode)
    s.case("pad", via_float, T([[[1, 0, 1]]], dtype=torch.bool), [2, 2], mode)
    s.case("pad", F.pad, T([[[1.0, NAN, INF, -0.0]]], dtype=torch.float64), [2, 3], mode)
    # errors: amounts past the mode's limit, an empty dim
    s.case("pad", F.pad, T(x3), [5, 0], mode)
    s.case("pad", F.pad, T(x3), [6, 6], mode)
    s.case("pad", F.pad, T(torch.zeros(1, 2, 0, dtype=torch.float64)), [1, 1], mode)
# errors for every mode
s.case("pad", F.pad, T(x3), [1, 2, 3])
s.case("pad", F.pad, T(x3), [1, 1, 1, 1, 1, 1, 1, 1])
s.case("pad", F.pad, T(x3), [-3, -3])
s.case("pad", F.pad, T(x3), [1, 1], "mirror")
s.write(sys.argv[1])
