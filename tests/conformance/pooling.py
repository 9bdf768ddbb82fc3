"""Conformance cases of the pooling ops (ops/pooling.h: 1-D, 2-D and 3-D) against PyTorch 1.13."""
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
# the padding limit is half the kernel size, not of the dilated window
s.case("max_pool2d", F.max_pool2d, T(x), 2, padding=2, dilation=3)


def max_pool1d_with_indices(*args, **kwargs):
    return F.max_pool1d(*args, return_indices=True, **kwargs)


def max_pool3d_with_indices(*args, **kwargs):
    return F.max_pool3d(*args, return_indices=True, **kwargs)


# 1-D: [N, C, L] and unbatched [C, L]
x1 = randn(2, 3, 11, seed=5)
WINDOWS_1D = ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
              {"kernel_size": 4, "stride": 3, "ceil_mode": True}, {"kernel_size": 3, "stride": 2, "padding": 1,
                                                                  "ceil_mode": True}, {"kernel_size": 5, "padding": 2})
for kw in WINDOWS_1D + ({"kernel_size": 2, "dilation": 3}, {"kernel_size": 3, "dilation": 2, "padding": 1},
                        {"kernel_size": 2, "stride": 2, "dilation": 2, "ceil_mode": True}):
    kw = dict(kw)
    ks = kw.pop("kernel_size")
    s.case("max_pool1d", F.max_pool1d, T(x1, grad=True), ks, **kw)
    s.case("max_pool1d_with_indices", max_pool1d_with_indices, T(x1, grad=True), ks, **kw)
for kw in WINDOWS_1D:
    kw = dict(kw)
    ks = kw.pop("kernel_size")
    s.case("avg_pool1d", F.avg_pool1d, T(x1, grad=True), ks, **kw)
    if kw.get("padding"):
        s.case("avg_pool1d", F.avg_pool1d, T(x1, grad=True), ks, count_include_pad=False, **kw)
s.case("max_pool1d", F.max_pool1d, T(x1[0], grad=True), 3, stride=2)
s.case("max_pool1d_with_indices", max_pool1d_with_indices, T(x1[0], grad=True), 3, padding=1)
s.case("avg_pool1d", F.avg_pool1d, T(x1[0], grad=True), 3, stride=2, padding=1)
for layout in ("transposed", "strided"):
    s.case("max_pool1d", F.max_pool1d, T(x1, layout=layout, grad=True), 3, stride=2)
    s.case("avg_pool1d", F.avg_pool1d, T(x1, layout=layout, grad=True), 3, stride=2, padding=1)
s.case("max_pool1d", F.max_pool1d, T(x1, dtype=torch.float32), 3)
s.case("avg_pool1d", F.avg_pool1d, T(x1, dtype=torch.float32), 3, padding=1)
s.case("max_pool1d", F.max_pool1d, T(x1, dtype=torch.bfloat16), 3)
s.case("avg_pool1d", F.avg_pool1d, T(x1, dtype=torch.bfloat16), 3, padding=1)
s.case("max_pool1d", reduced_via_float(F.max_pool1d), T(x1, dtype=torch.float16), 3)
s.case("avg_pool1d", reduced_via_float(F.avg_pool1d), T(x1, dtype=torch.float16), 3, padding=1)
s.case("avg_pool1d", F.avg_pool1d, T(torch.arange(-8, 9).reshape(1, 1, 17), dtype=torch.int64), 3, stride=2, padding=1)
s.case("avg_pool1d", F.avg_pool1d, T(torch.arange(-8, 9).reshape(1, 1, 17), dtype=torch.int64), 4, padding=2,
       count_include_pad=False, ceil_mode=True)
s.case("max_pool1d", F.max_pool1d, T(torch.arange(8).reshape(1, 1, 8), dtype=torch.int64), 2)
s.case("max_pool1d_with_indices", max_pool1d_with_indices, T([[[1.0, NAN, 2.0, NAN, -INF, 3.0, 3.0]]],
                                                              dtype=torch.float64), 2, stride=1)
s.case("max_pool1d", F.max_pool1d, T(torch.zeros(0, 2, 4, dtype=torch.float64)), 2)
s.case("avg_pool1d", F.avg_pool1d, T(torch.zeros(0, 2, 4, dtype=torch.float64)), 2)
# 1-D errors
s.case("max_pool1d", F.max_pool1d, T(x1), 3, padding=2)
s.case("max_pool1d", F.max_pool1d, T(x1), 2, padding=2, dilation=3)
s.case("max_pool1d", F.max_pool1d, T(x1), 0)
s.case("max_pool1d", F.max_pool1d, T(x1), 2, stride=0)
s.case("max_pool1d", F.max_pool1d, T(x1), 2, dilation=0)
s.case("max_pool1d", F.max_pool1d, T(x1[None]), 2)
s.case("max_pool1d", F.max_pool1d, T(torch.zeros(1, 2, 0, dtype=torch.float64)), 1)
s.case("max_pool1d_with_indices", max_pool1d_with_indices, T(x1), 12)
s.case("max_pool1d", F.max_pool1d, T(x1, grad=True), 12)
# without a gradient or indices a window longer than the padded input gives an empty output; a
# negative output size is refused
s.case("max_pool1d", F.max_pool1d, T(x1), 12)
s.case("max_pool1d", F.max_pool1d, T(x1[0]), 13, padding=1)
s.case("max_pool1d", F.max_pool1d, T(x1), 12, stride=1, ceil_mode=True)
s.case("max_pool1d", F.max_pool1d, T(x1, dtype=torch.bfloat16), 12)
s.case("max_pool1d", F.max_pool1d, T(x1), 13, stride=1)
s.case("max_pool1d", F.max_pool1d, T(x1, grad=True), 13, stride=1)
s.case("avg_pool1d", F.avg_pool1d, T(x1), 3, padding=2)
s.case("avg_pool1d", F.avg_pool1d, T(x1), 12)
s.case("avg_pool1d", F.avg_pool1d, T(x1), 0)
s.case("avg_pool1d", F.avg_pool1d, T(x1[None]), 2)
s.case("avg_pool1d", F.avg_pool1d, T(torch.ones(1, 1, 4, dtype=torch.int32)), 2)
# 3-D: [N, C, D, H, W] and unbatched [C, D, H, W]
x3 = randn(2, 2, 5, 6, 7, seed=6)
WINDOWS_3D = ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2}, {"kernel_size": [2, 3, 2], "stride": [1, 2, 3]},
              {"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": [2, 3, 4], "padding": [1, 0, 2]},
              {"kernel_size": 3, "stride": 2, "ceil_mode": True},
              {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True})
for kw in WINDOWS_3D + ({"kernel_size": 2, "dilation": 2}, {"kernel_size": 3, "dilation": [2, 1, 2], "padding": 1},
                        {"kernel_size": 2, "stride": 2, "dilation": 2, "ceil_mode": True}):
    kw = dict(kw)
    ks = kw.pop("kernel_size")
    s.case("max_pool3d", F.max_pool3d, T(x3, grad=True), ks, **kw)
    s.case("max_pool3d_with_indices", max_pool3d_with_indices, T(x3, grad=True), ks, **kw)
for kw in WINDOWS_3D:
    kw = dict(kw)
    ks = kw.pop("kernel_size")
    s.case("avg_pool3d", F.avg_pool3d, T(x3, grad=True), ks, **kw)
    if kw.get("padding"):
        s.case("avg_pool3d", F.avg_pool3d, T(x3, grad=True), ks, count_include_pad=False, **kw)
    s.case("avg_pool3d", F.avg_pool3d, T(x3, grad=True), ks, divisor_override=5, **kw)
s.case("avg_pool3d", F.avg_pool3d, T(x3, grad=True), 2, divisor_override=-3)
s.case("max_pool3d", F.max_pool3d, T(x3[0], grad=True), 2)
s.case("max_pool3d_with_indices", max_pool3d_with_indices, T(x3[0], grad=True), 3, stride=2, padding=1)
s.case("avg_pool3d", F.avg_pool3d, T(x3[0], grad=True), 3, stride=2, padding=1)
for layout in ("transposed", "strided"):
    s.case("max_pool3d", F.max_pool3d, T(x3, layout=layout, grad=True), 2, stride=1)
    s.case("avg_pool3d", F.avg_pool3d, T(x3, layout=layout, grad=True), 3, stride=2, padding=1)
s.case("max_pool3d", F.max_pool3d, T(x3, dtype=torch.float32), 3, stride=2)
s.case("avg_pool3d", F.avg_pool3d, T(x3, dtype=torch.float32), 3, stride=2, padding=1)
for dtype in (torch.bfloat16, torch.float16):  # PyTorch 1.13 has no 16-bit 3-D pooling on the CPU
    s.case("max_pool3d", reduced_via_float(F.max_pool3d), T(x3, dtype=dtype), 3, stride=2)
    s.case("max_pool3d_with_indices", reduced_via_float(max_pool3d_with_indices), T(x3, dtype=dtype), 2)
    s.case("avg_pool3d", reduced_via_float(F.avg_pool3d), T(x3, dtype=dtype), 3, stride=2, padding=1)
xi3 = T(torch.arange(-60, 60).reshape(1, 2, 3, 4, 5), dtype=torch.int64)
s.case("avg_pool3d", F.avg_pool3d, xi3, 2)
s.case("avg_pool3d", F.avg_pool3d, xi3, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True)
s.case("avg_pool3d", F.avg_pool3d, xi3, [1, 2, 3], divisor_override=-4)
s.case("max_pool3d", F.max_pool3d, xi3, 2)
xe3 = torch.tensor([[[[[1.0, NAN], [INF, -0.0]], [[NAN, 2.0], [-INF, 1e308]]]]], dtype=torch.float64)
s.case("max_pool3d_with_indices", max_pool3d_with_indices, T(xe3), 2)
s.case("max_pool3d_with_indices", max_pool3d_with_indices, T(xe3), [1, 2, 1])
s.case("avg_pool3d", F.avg_pool3d, T(xe3), 2)
s.case("max_pool3d", F.max_pool3d, T(torch.zeros(0, 2, 4, 4, 4, dtype=torch.float64)), 2)
s.case("avg_pool3d", F.avg_pool3d, T(torch.zeros(0, 2, 4, 4, 4, dtype=torch.float64)), 2)
# 3-D errors
s.case("max_pool3d", F.max_pool3d, T(x3), 2, padding=2)
s.case("max_pool3d", F.max_pool3d, T(x3), [3, 2, 2], padding=[1, 1, 2])
s.case("max_pool3d", F.max_pool3d, T(x3), 6)
s.case("max_pool3d", F.max_pool3d, T(x3), 0)
s.case("max_pool3d", F.max_pool3d, T(x3), 2, stride=0)
s.case("max_pool3d", F.max_pool3d, T(x3), 2, dilation=0)
s.case("max_pool3d", F.max_pool3d, T(x3[0, 0]), 2)
s.case("max_pool3d_with_indices", max_pool3d_with_indices, T(x3), 3, padding=2)
s.case("avg_pool3d", F.avg_pool3d, T(x3), 3, padding=2)
s.case("avg_pool3d", F.avg_pool3d, T(x3), 6)
s.case("avg_pool3d", F.avg_pool3d, T(x3), 2, divisor_override=0)
s.case("avg_pool3d", F.avg_pool3d, T(x3[0, 0]), 2)
s.case("avg_pool3d", F.avg_pool3d, T(torch.ones(1, 1, 2, 2, 2, dtype=torch.int32)), 2)
s.write(sys.argv[1])
