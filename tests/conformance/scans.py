"""Conformance cases of the running reductions (ops/scans.h) against PyTorch 1.13: cumsum, cumprod,
logcumsumexp along a dim.

Every dtype (bool and integers accumulate in int64), negative dims, the three layouts, 0-dim and empty
tensors, zeros in cumprod (its gradient divides by nothing), NaN and infinities, bad dims (torch
raises), and float64 gradients.
"""
import sys

import torch

from conformance import ALL_DTYPES, Suite, T, Upcast, randn

s = Suite()
INF, NAN = float("inf"), float("nan")


# torch 1.13 has no CPU logcumsumexp for bfloat16/float16 (nor cumsum/cumprod for some).
OPS = {"cumsum": Upcast(torch.cumsum), "cumprod": Upcast(torch.cumprod), "logcumsumexp": Upcast(torch.logcumsumexp)}


def values_for(dtype):
    if dtype == torch.bool:
        return torch.tensor([[True, False, True, True], [False, False, True, False]])
    if dtype == torch.uint8:
        return torch.tensor([[0, 1, 2, 5], [200, 255, 7, 3]], dtype=dtype)
    if not dtype.is_floating_point:
        return torch.tensor([[-3, -1, 2, 1], [2, 7, 5, 4]], dtype=dtype)
    return torch.tensor([[-2.5, -0.0, 0.5, 1.5], [3.0, 0.25, -1.0, 2.0]], dtype=torch.float64).to(dtype)


x = randn(3, 4)
cube = randn(2, 3, 4, seed=3)
extremes = torch.tensor([[1.0, NAN, -1.0, 2.0], [INF, 1.0, -INF, 0.0], [-INF, -INF, 3.0, INF], [1e300, 1e300, -1e300, 5.0]])
for op, fn in OPS.items():
    for d in ALL_DTYPES:
        for dim in (0, 1, -1):
            s.case(op, fn, T(values_for(d)), dim)
    for d in (torch.float64, torch.float32, torch.bfloat16):
        for dim in (0, 1):
            s.case(op, fn, T(extremes, dtype=d), dim)
    for layout in ("contiguous", "transposed", "strided"):
        for dim in (0, 1, 2, -1, -2):
            s.case(op, fn, T(cube, layout=layout, grad=True), dim)
    s.case(op, fn, T(x, dtype=torch.float32, layout="transposed"), 1)
    s.case(op, fn, T(torch.tensor(1.5, dtype=torch.float64), grad=True), 0)  # 0-dim
    s.case(op, fn, T(torch.tensor(1.5, dtype=torch.float64)), -1)
    s.case(op, fn, T(torch.tensor(1.5, dtype=torch.float64)), 1)  # out of range: torch raises
    s.case(op, fn, T(torch.zeros(0, 3)), 0)
    s.case(op, fn, T(torch.zeros(0, 3)), 1)
    s.case(op, fn, T(x), 2)
    s.case(op, fn, T(x), -3)

# cumprod's gradient through zeros (one zero, two zeros, a zero first or last in its lane).
zeros_in = torch.tensor([[1.5, 0.0, 2.0, 3.0], [0.0, 2.0, 0.0, -1.0], [2.0, -1.0, 0.5, 0.0]], dtype=torch.float64)
s.case("cumprod", torch.cumprod, T(zeros_in, grad=True), 1)
s.case("cumprod", torch.cumprod, T(zeros_in, grad=True), 0)
s.case("cumprod", torch.cumprod, T(zeros_in, layout="transposed", grad=True), -1)
# logcumsumexp of large values (no overflow) and -inf runs.
s.case("logcumsumexp", torch.logcumsumexp, T(torch.tensor([[1000.0, 1000.0, -1000.0], [-INF, -INF, 0.0]]), grad=True), 1)
s.case("logcumsumexp", torch.logcumsumexp, T(torch.tensor([[-INF, -INF, 1.0]], dtype=torch.float64)), 1)
# Long lanes (past any short-lane path), both dims.
long = randn(3, 1000, seed=9)
for op, fn in OPS.items():
    s.case(op, fn, T(long if op != "cumprod" else 1 + long / 100, dtype=torch.float32), 1)
    s.case(op, fn, T(long, layout="transposed"), 0)
# Narrow integers accumulate in int64: no wrap-around at 127 or 255.
s.case("cumsum", torch.cumsum, T(torch.tensor([[100, 100, 100, -128]], dtype=torch.int8)), 1)
s.case("cumsum", torch.cumsum, T(torch.tensor([[200, 255, 255]], dtype=torch.uint8)), 1)
s.case("cumsum", torch.cumsum, T(torch.tensor([[INF, -INF, 1.0], [NAN, 1.0, 2.0]])), 1)
s.write(sys.argv[1])
