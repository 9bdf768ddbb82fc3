"""Conformance cases of softmax and log_softmax (ops/softmax.h) against PyTorch 1.13.

weft's softmax takes no dtype argument (PyTorch's `dtype=` casts the input first: x.to(dtype) then
softmax is the same thing in weft), so there are no cases of it."""
import sys

import torch

from conformance import Suite, T, randn

s = Suite()
NEG_INF, INF, NAN = float("-inf"), float("inf"), float("nan")


def softmax_case(fn, *args, **kwargs):
    s.case("softmax", fn, *args, **kwargs)


def log_softmax_case(fn, *args, **kwargs):
    s.case("log_softmax", fn, *args, **kwargs)


for case, fn in ((softmax_case, torch.softmax), (log_softmax_case, torch.log_softmax)):
    x = randn(2, 3, 4, seed=3)
    for dim in (0, 1, 2, -1, -2, -3):
        case(fn, T(x, grad=True), dim)
    for layout in ("transposed", "strided"):
        for dim in (-1, 1):
            case(fn, T(x, layout=layout, grad=True), dim)
    for dtype in (torch.float32, torch.bfloat16):
        for dim in (0, -1):
            case(fn, T(x, dtype=dtype), dim)
    # float16: PyTorch 1.13 has no CPU kernel for it (it raises; later versions compute it in float32
    # and round, as weft does), so the reference is that: a deliberate difference, weft takes float16.
    for dim in (0, -1):
        case(lambda t, d, fn=fn: fn(t.float(), d).half(), T(x, dtype=torch.float16), dim)
    for dtype in (torch.bool, torch.uint8, torch.int8, torch.int32, torch.int64):
        case(fn, T([[1, 0], [0, 1]], dtype=dtype), 1)
    # -inf: a row with some (their probability is 0) and a row of nothing but -inf (NaN, as 0/0)
    masked = [[0.5, NEG_INF, 1.0, NEG_INF], [NEG_INF, NEG_INF, NEG_INF, NEG_INF], [1.0, 2.0, 3.0, 4.0]]
    case(fn, T(masked), -1)
    case(fn, T(masked, dtype=torch.float32), 1)
    case(fn, T(masked), 0)
    case(fn, T([[0.5, NEG_INF, 1.0, NEG_INF], [1.0, 2.0, 3.0, 4.0]], grad=True), -1)
    # extremes: +inf and NaN poison their row; huge and tiny values must not overflow
    case(fn, T([[1.0, INF, 0.0], [1.0, NAN, 0.0], [1e308, -1e308, 0.0], [1e-310, -0.0, 0.0]]), 1)
    case(fn, T([[3e38, -3e38, 1.0], [1e-40, -0.0, 0.0]], dtype=torch.float32), 1)
    case(fn, T([[1000.0, 1000.0, -1000.0]], grad=True), 1)
    # 0-dim (one row of one element) and empty tensors
    case(fn, T(torch.tensor(1.5, dtype=torch.float64), grad=True), 0)
    case(fn, T(torch.tensor(1.5, dtype=torch.float64)), -1)
    case(fn, T(torch.zeros(0, 3, dtype=torch.float64)), 1)
    case(fn, T(torch.zeros(0, 3, dtype=torch.float64)), 0)
    case(fn, T(torch.zeros(2, 0, dtype=torch.float32)), 1)
    # one class: softmax 1, log_softmax 0
    case(fn, T(randn(4, 1), grad=True), 1)
    # errors: dims out of range
    case(fn, T(x), 3)
    case(fn, T(x), -4)
    case(fn, T(torch.tensor(1.5, dtype=torch.float64)), 1)
s.write(sys.argv[1])
