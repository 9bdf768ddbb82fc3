"""Conformance cases of the 2-D pooling ops (ops/pooling.h) against PyTorch 1.13."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")


def max_pool2d_with_indices(*args, **kwargs):
    return F.max_pool2d(*args, return_indices=True, **kwargs)


def reduced_via_float(fn):
    """fn in float32, rounded back: PyTorch 1.13 lacks these CPU kernels for the 16-bit floats (later
    versions have them) and weft computes them so: a deliberate difference."""
    def run(x, *args, **kwargs):
        out = fn(x.float(), *args, **kwargs)
        return tuple(o.to(x.dtype) if o.is_floating_point() else o for o in out) if isinstance(out, tuple) \
            else out.to(x.dtype)
    return run


x = randn(2, 3, 6, 7, seed=1)
WINDOWS = ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2}, {"kernel_size": [3, 2], "stride": [1, 2]},
           {"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": [2, 4], "padding": [1, 2]},
           {"kernel_size": 3, "stride": 2, "ceil_mode": True}, {"kernel_size": 2, "stride": 3, "ceil_mode": True},
           {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True})
for kw in WINDOWS + ({"kernel_size": 2, "dilation": 2}, {"kernel_size": 3, "dilation": [2, 1], "padding": 1},
                     {"kernel_size": 2, "stride": 2, "dilation": 2, "ceil_mode": True}):
    kw = dict(kw)
    ks = kw.pop("kernel_size")
    s.case("max_pool2d", F.max_pool2d, T(x, grad=True), ks, **kw)
    s.case("max_pool2d_with_indices", max_pool2d_with_indices, T(x, grad=True), ks, **kw)
for kw in WINDOWS:
    kw = dict(kw)
    ks = kw.pop("kernel_size")
    s.case("avg_pool2d", F.avg_pool2d, T(x, grad=True), ks, **kw)
    if kw.get("padding"):
        s.case("avg_pool2d", F.avg_pool2d, T(x, grad=True), ks, count_include_pad=False, **kw)
    s.case("avg_pool2d", F.avg_pool2d, T(x, grad=True), ks, divisor_override=3, **kw)
for size in (1, 2, 3, [4, 5], [6, 7], [5, 3], [7, 9]):
    s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x, grad=True), size)
# layouts, unbatched, dtypes
for layout in ("transposed", "strided"):
    s.case("max_pool2d", F.max_pool2d, T(x, layout=layout, grad=True), 2, stride=1)
    s.case("max_pool2d_with_indices", max_pool2d_with_indices, T(x, layout=layout, grad=True), 3, padding=1)
    s.case("avg_pool2d", F.avg_pool2d, T(x, layout=layout, grad=True), 3, stride=2, padding=1)
    s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x, layout=layout, grad=True), [4, 3])
s.case("max_pool2d", F.max_pool2d, T(x[0], grad=True), 2)
s.case("max_pool2d_with_indices", max_pool2d_with_indices, T(x[0], grad=True), 3, stride=2, padding=1)
s.case("avg_pool2d", F.avg_pool2d, T(x[0], grad=True), 2, padding=1, count_include_pad=False)
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x[0], grad=True), 4)
for dtype in (torch.float32, torch.bfloat16):
    s.case("max_pool2d", F.max_pool2d, T(x, dtype=dtype), 3, stride=2, padding=1)
    s.case("max_pool2d_with_indices", max_pool2d_with_indices, T(x, dtype=dtype), 2)
    s.case("avg_pool2d", F.avg_pool2d, T(x, dtype=dtype), 3, stride=2, padding=1)
    s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x, dtype=dtype), [4, 3])
s.case("max_pool2d", reduced_via_float(F.max_pool2d), T(x, dtype=torch.float16), 3, stride=2, padding=1)
s.case("max_pool2d_with_indices", reduced_via_float(max_pool2d_with_indices), T(x, dtype=torch.float16), 2)
s.case("avg_pool2d", reduced_via_float(F.avg_pool2d), T(x, dtype=torch.float16), 3, stride=2, padding=1)
s.case("adaptive_avg_pool2d", reduced_via_float(F.adaptive_avg_pool2d), T(x, dtype=torch.float16), [4, 3])
for dtype in (torch.int64, torch.uint8):
    xi = T(torch.arange(16).reshape(1, 1, 4, 4), dtype=dtype)
    s.case("max_pool2d", F.max_pool2d, xi, 2)
    s.case("max_pool2d_with_indices", max_pool2d_with_indices, xi, 2)
    s.case("avg_pool2d", F.avg_pool2d, xi, 2)
    s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, xi, 2)
# int64 averages divide as integers, truncating toward zero (negative sums round up)
xn = T(torch.arange(-12, 13).reshape(1, 1, 5, 5), dtype=torch.int64)
s.case("avg_pool2d", F.avg_pool2d, xn, 3, stride=2, padding=1)
s.case("avg_pool2d", F.avg_pool2d, xn, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
s.case("avg_pool2d", F.avg_pool2d, xn, [2, 3], stride=1, divisor_override=-3)
s.case("avg_pool2d", F.avg_pool2d, T(torch.arange(-8, 8).reshape(1, 4, 4), dtype=torch.int64), 2)
s.case("avg_pool2d", F.avg_pool2d, T(torch.zeros(0, 2, 4, 4, dtype=torch.int64)), 2)
for dtype in (torch.int32, torch.int8, torch.bool):
    s.case("avg_pool2d", F.avg_pool2d, T(torch.ones(1, 1, 4, 4, dtype=dtype)), 2)
s.case("avg_pool2d", F.avg_pool2d, T(x, grad=True), [2, 3], stride=1, divisor_override=-3)
# ties (the first maximum wins), NaN (it is the maximum), infinities, -0.0
xe = torch.tensor([[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [NAN, 1.0, -INF, -INF], [3.0, NAN, -INF, -INF]],
                    [[-0.0, 0.0, INF, 1.0], [0.0, -0.0, 1.0, 1e308], [1e308, 1e308, -1.0, -2.0],
                     [1e-310, 0.0, 5.0, 5.0]]]],
                  dtype=torch.float64)
s.case("max_pool2d", F.max_pool2d, T(xe), 2)
s.case("max_pool2d_with_indices", max_pool2d_with_indices, T(xe), 2, stride=1)
s.case("max_pool2d", F.max_pool2d, T(torch.tensor([[[[1.0, 1.0], [1.0, 0.5]]]], dtype=torch.float64), grad=True), 2)
s.case("avg_pool2d", F.avg_pool2d, T(xe), 2)
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(xe), 3)
# empty batch
s.case("max_pool2d", F.max_pool2d, T(torch.zeros(0, 2, 4, 4, dtype=torch.float64)), 2)
s.case("avg_pool2d", F.avg_pool2d, T(torch.zeros(0, 2, 4, 4, dtype=torch.float64)), 2)
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(torch.zeros(0, 2, 4, 4, dtype=torch.float64)), 2)
# errors: padding above half the kernel, windows larger than the input, non-positive sizes, dims
s.case("max_pool2d", F.max_pool2d, T(x), 2, padding=2)
s.case("max_pool2d", F.max_pool2d, T(x), 8)
s.case("max_pool2d", F.max_pool2d, T(x), 0)
s.case("max_pool2d", F.max_pool2d, T(x), 2, stride=0)
s.case("max_pool2d", F.max_pool2d, T(x), 2, dilation=0)
s.case("max_pool2d", F.max_pool2d, T(x[0, 0]), 2)
s.case("max_pool2d_with_indices", max_pool2d_with_indices, T(x), 3, padding=2)
s.case("avg_pool2d", F.avg_pool2d, T(x), 3, padding=2)
s.case("avg_pool2d", F.avg_pool2d, T(x), 7)
s.case("avg_pool2d", F.avg_pool2d, T(x), 2, divisor_override=0)
s.case("avg_pool2d", F.avg_pool2d, T(x[0, 0]), 2)
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x), 0)  # an empty output
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x), -1)
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(x[0, 0]), 2)
s.case("adaptive_avg_pool2d", F.adaptive_avg_pool2d, T(torch.zeros(1, 2, 0, 4, dtype=torch.float64)), 2)
s.write(sys.argv[1])
