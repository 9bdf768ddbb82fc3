"""Conformance cases of interpolate (ops/interpolate.h) against PyTorch 1.13: nearest, nearest-exact and
area on [N, C, L], [N, C, H, W] and [N, C, D, H, W] inputs, linear, bilinear and trilinear on the rank
each needs, and bicubic on [N, C, H, W]; recompute_scale_factor; antialias; the errors of each."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")



def interpolate(x, scale_d=None, scale_h=None, scale_w=None, **kwargs):
    """F.interpolate, a scale per dim given as scale_h and scale_w (and scale_d for 5-D inputs; the
    replayer reads numbers, not lists of floats)."""
    if scale_h is not None:
        kwargs["scale_factor"] = (scale_h, scale_w) if scale_d is None else (scale_d, scale_h, scale_w)
    return F.interpolate(x, **kwargs)


x = randn(2, 3, 4, 5, seed=1)
for mode, corners in (("nearest", None), ("bilinear", False), ("bilinear", True)):
    kw = {"mode": mode, "align_corners": corners}
    for size in (8, [6, 7], [3, 2], [4, 5], [1, 1], [9, 3]):
        s.case("interpolate", F.interpolate, T(x, grad=True), size=size, **kw)
    for scale in (2, 1.5, 0.5, 1.3):
        s.case("interpolate", F.interpolate, T(x, grad=True), scale_factor=scale, **kw)
    for scale_h, scale_w in ((2.0, 0.7), (3.0, 1.0), (0.6, 2.5)):
        s.case("interpolate", interpolate, T(x, grad=True), scale_h=scale_h, scale_w=scale_w, **kw)
        s.case("interpolate", interpolate, T(x, grad=True), scale_h=scale_h, scale_w=scale_w,
               recompute_scale_factor=True, **kw)
    s.case("interpolate", F.interpolate, T(x, grad=True), scale_factor=1.7, recompute_scale_factor=True, **kw)
    s.case("interpolate", F.interpolate, T(x, layout="transposed", grad=True), size=[7, 3], **kw)
    s.case("interpolate", F.interpolate, T(x, layout="strided", grad=True), scale_factor=1.5, **kw)
    s.case("interpolate", F.interpolate, T(x, dtype=torch.float32), size=[7, 9], **kw)
    # bfloat16 bilinear: PyTorch 1.13 computes the weights in bfloat16, 0.03 off the float64 result on
    # this case; weft computes in float32 and rounds once (0.007 off), which is the reference here.
    s.case("interpolate", F.interpolate if mode == "nearest" else
           lambda t, **k: F.interpolate(t.float(), **k).bfloat16(), T(x, dtype=torch.bfloat16), size=[7, 9], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(0, 3, 4, 5, dtype=torch.float64)), size=[2, 3], **kw)
    s.case("interpolate", F.interpolate, T([[[[1.0, NAN], [INF, -0.0]]]], dtype=torch.float64), size=[3, 3], **kw)
    s.case("interpolate", F.interpolate, T(torch.arange(20).reshape(1, 1, 4, 5), dtype=torch.int64), size=[3, 3],
           **kw)
    s.case("interpolate", F.interpolate, T(torch.arange(20).reshape(1, 1, 4, 5), dtype=torch.uint8), size=[3, 3],
           **kw, **({} if mode == "bilinear" else dict(expect_error=True, why="weft interpolates floating inputs "
                                                        "only; PyTorch 1.13's nearest also takes uint8")))
    s.case("interpolate", F.interpolate, T(x[0, 0]), size=[3, 3], **kw)  # 2-D: no batch and channels
# float16: PyTorch 1.13 has no CPU kernel (later versions have one); weft computes it in float32 and
# rounds, the reference here (a deliberate difference)
for mode in ("nearest", "bilinear"):
    s.case("interpolate", lambda t, **kw: F.interpolate(t.float(), **kw).half(), T(x, dtype=torch.float16),
           size=[7, 9], mode=mode)
# errors
s.case("interpolate", F.interpolate, T(x), size=[3, 3], scale_factor=2)
s.case("interpolate", F.interpolate, T(x))
s.case("interpolate", F.interpolate, T(x), size=[3, 3], mode="nearest", align_corners=True)
s.case("interpolate", F.interpolate, T(x), size=[0, 3])
s.case("interpolate", F.interpolate, T(x), scale_factor=-1.0)
s.case("interpolate", F.interpolate, T(x), size=[3, 3], mode="trilinear")
s.case("interpolate", F.interpolate, T(torch.zeros(1, 2, 0, 3, dtype=torch.float64)), size=[2, 2])
# Nearest with a scale_factor that makes out == in or out == 2 in: PyTorch's forward copies / halves
# on 4-D and 5-D inputs of one channel (its channels-last kernel) and computes floor(o / scale)
# otherwise (Note [Nearest shortcuts] in kernels/interpolate.cpp); weft's forward follows both. Its
# backward always takes the shortcuts, so on more channels, and on 3-D inputs, it is not the
# gradient of its forward: those cases compare outputs only (weft passes gradcheck there).
ODD_SCALES = (1.1, 2.05)  # 4, 5 and 7 scaled: out == in or out == 2 in
for scale_h, scale_w in ((1.1, 2.05), (2.1, 1.2)):
    s.case("interpolate", interpolate, T(x), scale_h=scale_h, scale_w=scale_w)
    s.case("interpolate", interpolate, T(x[:, :1], grad=True), scale_h=scale_h, scale_w=scale_w)
# 1-D: [N, C, L], nearest and linear
x1 = randn(2, 3, 7, seed=2)
for mode, corners in (("nearest", None), ("linear", False), ("linear", True)):
    kw = {"mode": mode, "align_corners": corners}
    for size in (12, [4], [7], [1], [15]):
        s.case("interpolate", F.interpolate, T(x1, grad=True), size=size, **kw)
    for scale in (2, 1.5, 0.5, 1.1, 2.05, 0.3):
        grad = mode != "nearest" or scale not in ODD_SCALES
        s.case("interpolate", F.interpolate, T(x1, grad=grad), scale_factor=scale, **kw)
    s.case("interpolate", F.interpolate, T(x1, grad=True), scale_factor=1.7, recompute_scale_factor=True, **kw)
    s.case("interpolate", F.interpolate, T(x1, layout="transposed", grad=True), size=[9], **kw)
    s.case("interpolate", F.interpolate, T(x1, layout="strided", grad=True), scale_factor=1.5, **kw)
    s.case("interpolate", F.interpolate, T(x1, dtype=torch.float32), size=[11], **kw)
    s.case("interpolate", lambda t, **k: F.interpolate(t.float(), **k).bfloat16(), T(x1, dtype=torch.bfloat16),
           size=[11], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(0, 3, 5, dtype=torch.float64)), size=[3], **kw)
    s.case("interpolate", F.interpolate, T([[[1.0, NAN, INF, -0.0, 2.0]]], dtype=torch.float64), size=[8], **kw)
    s.case("interpolate", F.interpolate, T(torch.arange(5).reshape(1, 1, 5), dtype=torch.int64), size=[3], **kw)
    s.case("interpolate", F.interpolate, T(x1), size=[3, 3], **kw)  # one size per spatial dim, or one
    s.case("interpolate", F.interpolate, T(x1), size=[0], **kw)
# 3-D: [N, C, D, H, W], nearest and trilinear
x3 = randn(2, 2, 3, 4, 5, seed=3)
for mode, corners in (("nearest", None), ("trilinear", False), ("trilinear", True)):
    kw = {"mode": mode, "align_corners": corners}
    for size in (6, [5, 6, 7], [2, 3, 2], [3, 4, 5], [1, 1, 1], [3, 8, 10]):
        s.case("interpolate", F.interpolate, T(x3, grad=True), size=size, **kw)
    for scale in (2, 1.5, 0.6, 1.1, 2.05):
        grad = mode != "nearest" or scale not in ODD_SCALES
        s.case("interpolate", F.interpolate, T(x3, grad=grad), scale_factor=scale, **kw)
        s.case("interpolate", F.interpolate, T(x3[:1, :1], grad=True), scale_factor=scale, **kw)
    for scale_d, scale_h, scale_w in ((2.0, 0.7, 1.3), (1.0, 2.5, 0.5), (1.1, 2.0, 2.05)):
        grad = mode != "nearest" or scale_d not in ODD_SCALES
        s.case("interpolate", interpolate, T(x3, grad=grad), scale_d=scale_d, scale_h=scale_h, scale_w=scale_w, **kw)
        s.case("interpolate", interpolate, T(x3[:, :1], grad=True), scale_d=scale_d, scale_h=scale_h,
               scale_w=scale_w, **kw)
        s.case("interpolate", interpolate, T(x3, grad=True), scale_d=scale_d, scale_h=scale_h, scale_w=scale_w,
               recompute_scale_factor=True, **kw)
    s.case("interpolate", F.interpolate, T(x3, layout="transposed", grad=True), size=[4, 3, 6], **kw)
    s.case("interpolate", F.interpolate, T(x3, layout="strided", grad=True), scale_factor=1.5, **kw)
    s.case("interpolate", F.interpolate, T(x3, dtype=torch.float32), size=[5, 7, 9], **kw)
    s.case("interpolate", lambda t, **k: F.interpolate(t.float(), **k).bfloat16(), T(x3, dtype=torch.bfloat16),
           size=[5, 7, 9], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(0, 2, 3, 4, 5, dtype=torch.float64)), size=[2, 3, 4], **kw)
    s.case("interpolate", F.interpolate, T([[[[[1.0, NAN], [INF, -0.0]], [[2.0, 3.0], [-INF, 4.0]]]]],
                                           dtype=torch.float64), size=[3, 3, 3], **kw)
    s.case("interpolate", F.interpolate, T(x3), size=[3, 3], **kw)
    s.case("interpolate", interpolate, T(x3), scale_h=2.0, scale_w=2.0, **kw)
    s.case("interpolate", F.interpolate, T(x3), size=[2, 0, 2], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(1, 2, 3, 0, 5, dtype=torch.float64)), size=[2, 2, 2], **kw)
# a mode that does not match the rank
for t, modes in ((x1, ("bilinear", "trilinear")), (x, ("linear", "trilinear")), (x3, ("linear", "bilinear"))):
    for mode in modes:
        s.case("interpolate", F.interpolate, T(t), size=3, mode=mode)
s.case("interpolate", F.interpolate, T(x3), size=3, mode="nearest", align_corners=False)
s.case("interpolate", F.interpolate, T(x1), scale_factor=0.0, mode="linear")
s.case("interpolate", F.interpolate, T(randn(1, 2, 2, 2, 2, 2, seed=4)), size=3)  # 6-D
s.case("interpolate", F.interpolate, T(x), size=[3, 3], recompute_scale_factor=True)
s.case("interpolate", F.interpolate, T(x, grad=True), size=[3, 7], recompute_scale_factor=False)
s.case("interpolate", F.interpolate, T(x, grad=True), scale_factor=1.3, recompute_scale_factor=False)
s.case("interpolate", F.interpolate, T(x), size=[3, 3], mode="cubic")


def upcast(t, **kw):
    """The reference for bfloat16 and float16: in float32, rounded once, as weft computes them. PyTorch
    1.13 has no float16 kernel for these modes, nor a bfloat16 one for nearest-exact on one channel,
    and its bfloat16 bicubic rounds its weights to bfloat16."""
    return F.interpolate(t.float(), **kw).to(t.dtype)


# nearest-exact: src = floor((dst + 0.5) * scale), in float, clamped; on every rank
for t, sizes, scales in ((x1, (12, [4], [7], [1], [15], [5], [9]), (2, 1.5, 0.5, 1.1, 2.05, 0.3, 1 / 3, 2 / 3)),
                         (x, (8, [6, 7], [3, 2], [1, 1], [9, 3], [4, 5]), (2, 1.5, 0.5, 1.3, 1.1, 2.05, 0.7)),
                         (x3, (6, [5, 6, 7], [2, 3, 2], [1, 1, 1], [3, 8, 10]), (2, 1.5, 0.6, 1.1, 2.05))):
    kw = {"mode": "nearest-exact"}
    for size in sizes:
        s.case("interpolate", F.interpolate, T(t, grad=True), size=size, **kw)
    for scale in scales:
        s.case("interpolate", F.interpolate, T(t, grad=True), scale_factor=scale, **kw)
        s.case("interpolate", F.interpolate, T(t[:1, :1], grad=True), scale_factor=scale, **kw)
        s.case("interpolate", F.interpolate, T(t, grad=True), scale_factor=scale, recompute_scale_factor=True, **kw)
    s.case("interpolate", F.interpolate, T(t, layout="transposed", grad=True), size=sizes[1], **kw)
    s.case("interpolate", F.interpolate, T(t, layout="strided", grad=True), scale_factor=1.5, **kw)
    s.case("interpolate", F.interpolate, T(t, dtype=torch.float32), size=sizes[1], **kw)
    s.case("interpolate", upcast, T(t, dtype=torch.bfloat16), size=sizes[1], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(0, *t.shape[1:], dtype=torch.float64)), size=sizes[2], **kw)
    s.case("interpolate", F.interpolate, T(t), size=sizes[1], align_corners=False, **kw)
    s.case("interpolate", F.interpolate, T(t), size=sizes[1], align_corners=True, **kw)
    s.case("interpolate", F.interpolate, T(t), size=0, **kw)
    s.case("interpolate", F.interpolate, T(t), scale_factor=-1.0, **kw)
    s.case("interpolate", F.interpolate, T(t.long()), size=3, **kw)
for out in range(1, 26):  # every size from 1 to 25 on 7 samples: where (dst + 0.5) * scale rounds
    s.case("interpolate", F.interpolate, T(x1), size=out, mode="nearest-exact")
s.case("interpolate", F.interpolate, T([[[[1.0, NAN], [INF, -0.0]]]], dtype=torch.float64), size=[3, 5],
       mode="nearest-exact")
s.case("interpolate", F.interpolate, T(randn(1, 1, 1, 1, 1, 1, seed=4)), size=3, mode="nearest-exact")
# area: adaptive average pooling to the output size (from scale_factor, the scale itself unused)
for t, sizes, scales in ((x1, (3, [7], [5], [1], [12], [4]), (0.5, 1.5, 0.3, 2.0)),
                         (x, ([2, 3], [3, 3], [1, 1], [4, 5], [6, 7], [3, 2], 2), (0.5, 0.7, 1.3, 2.0)),
                         (x3, ([2, 3, 4], [1, 1, 1], [3, 4, 5], [5, 6, 7], [2, 2, 3], 2), (0.5, 0.7, 1.6))):
    kw = {"mode": "area"}
    for size in sizes:
        s.case("interpolate", F.interpolate, T(t, grad=True), size=size, **kw)
    for scale in scales:
        s.case("interpolate", F.interpolate, T(t, grad=True), scale_factor=scale, **kw)
        s.case("interpolate", F.interpolate, T(t, grad=True), scale_factor=scale, recompute_scale_factor=False, **kw)
    s.case("interpolate", F.interpolate, T(t, layout="transposed", grad=True), size=sizes[0], **kw)
    s.case("interpolate", F.interpolate, T(t, layout="strided", grad=True), size=sizes[0], **kw)
    s.case("interpolate", F.interpolate, T(t, dtype=torch.float32), size=sizes[0], **kw)
    s.case("interpolate", upcast, T(t, dtype=torch.bfloat16), size=sizes[0], **kw)
    s.case("interpolate", upcast, T(t, dtype=torch.float16), size=sizes[0], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(0, *t.shape[1:], dtype=torch.float64)), size=sizes[0], **kw)
    s.case("interpolate", F.interpolate, T(t), size=0, **kw)  # an empty result, not an error
    s.case("interpolate", F.interpolate, T(t), scale_factor=0.1, **kw)
    s.case("interpolate", F.interpolate, T(t), scale_factor=-1.0, **kw)
    s.case("interpolate", F.interpolate, T(t), size=-2, **kw)
    s.case("interpolate", F.interpolate, T(t), size=sizes[0], align_corners=False, **kw)
    s.case("interpolate", F.interpolate, T(t), size=sizes[0], align_corners=True, **kw)
    s.case("interpolate", F.interpolate, T(t.long()), size=sizes[0], **kw)
    empty = list(t.shape)
    empty[2] = 0
    s.case("interpolate", F.interpolate, T(torch.zeros(*empty, dtype=torch.float64)), size=sizes[0], **kw)
for scale_d, scale_h, scale_w in ((2.0, 0.7, 1.3), (0.5, 1.0, 0.4)):
    s.case("interpolate", interpolate, T(x3, grad=True), scale_d=scale_d, scale_h=scale_h, scale_w=scale_w,
           mode="area")
s.case("interpolate", interpolate, T(x, grad=True), scale_h=0.6, scale_w=2.5, mode="area")
s.case("interpolate", F.interpolate, T([[[[1.0, NAN, 2.0], [INF, -0.0, 3.0]]]], dtype=torch.float64), size=[1, 2],
       mode="area")
s.case("interpolate", F.interpolate, T([[[[[1.0, NAN], [INF, -0.0]], [[2.0, 3.0], [-INF, 4.0]]]]],
                                       dtype=torch.float64), size=[1, 2, 1], mode="area")
s.case("interpolate", F.interpolate, T(x[0, 0]), size=[3, 3], mode="area")  # 2-D: no batch and channels
# bicubic: [N, C, H, W] only; four taps per axis, A = -0.75, the taps clamped at the borders
xb = randn(1, 2, 9, 11, seed=5)
for corners in (False, True):
    kw = {"mode": "bicubic", "align_corners": corners}
    for size in (8, [6, 7], [3, 2], [4, 5], [1, 1], [9, 3], [2, 9], [1, 6]):
        s.case("interpolate", F.interpolate, T(x, grad=True), size=size, **kw)
    for size in ([4, 3], [5, 5], [9, 11], [17, 23], [3, 11]):
        s.case("interpolate", F.interpolate, T(xb, grad=True), size=size, **kw)
    # 4 x 5 scaled by 1.1 is 4 x 5: PyTorch 1.13's forward interpolates with the scale given, but its
    # backward copies whenever out == in on both axes, so its gradient there is not its forward's (its
    # own gradcheck fails). That case compares outputs only; weft's gradient is its forward's
    # (gradcheck in tests/test_interpolate_modes.cpp).
    for scale in (2, 1.5, 0.5, 1.3, 1.1, 0.3):
        s.case("interpolate", F.interpolate, T(x, grad=scale != 1.1), scale_factor=scale, **kw)
        s.case("interpolate", F.interpolate, T(xb, grad=True), scale_factor=scale, recompute_scale_factor=True, **kw)
    for scale_h, scale_w in ((2.0, 0.7), (3.0, 1.0), (0.6, 2.5), (0.45, 0.3)):
        s.case("interpolate", interpolate, T(xb, grad=True), scale_h=scale_h, scale_w=scale_w, **kw)
        s.case("interpolate", interpolate, T(xb, grad=True), scale_h=scale_h, scale_w=scale_w,
               recompute_scale_factor=True, **kw)
        s.case("interpolate", interpolate, T(xb, grad=True), scale_h=scale_h, scale_w=scale_w,
               recompute_scale_factor=False, **kw)
    s.case("interpolate", F.interpolate, T(x, layout="transposed", grad=True), size=[7, 3], **kw)
    s.case("interpolate", F.interpolate, T(x, layout="strided", grad=True), scale_factor=1.5, **kw)
    s.case("interpolate", F.interpolate, T(x, dtype=torch.float32), size=[7, 9], **kw)
    s.case("interpolate", F.interpolate, T(xb, dtype=torch.float32), scale_factor=0.7, **kw)
    s.case("interpolate", upcast, T(x, dtype=torch.bfloat16), size=[7, 9], **kw)
    s.case("interpolate", upcast, T(x, dtype=torch.float16), size=[7, 9], **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(0, 3, 4, 5, dtype=torch.float64)), size=[2, 3], **kw)
    s.case("interpolate", F.interpolate, T([[[[1.0, NAN, 2.0], [INF, -0.0, 3.0], [4.0, 5.0, 6.0]]]],
                                           dtype=torch.float64), size=[5, 5], **kw)
    s.case("interpolate", F.interpolate, T(x.long()), size=[3, 3], **kw)
    s.case("interpolate", F.interpolate, T(x1), size=3, **kw)
    s.case("interpolate", F.interpolate, T(x3), size=3, **kw)
    s.case("interpolate", F.interpolate, T(x[0, 0]), size=[3, 3], **kw)
    s.case("interpolate", F.interpolate, T(x), size=[0, 3], **kw)
    s.case("interpolate", F.interpolate, T(x), scale_factor=0.1, **kw)
    s.case("interpolate", F.interpolate, T(torch.zeros(1, 2, 0, 3, dtype=torch.float64)), size=[2, 2], **kw)
s.case("interpolate", F.interpolate, T(x, grad=True), size=[6, 7], mode="bicubic")  # align_corners None
s.case("interpolate", F.interpolate, T(x), size=[3, 3], mode="bicubic", recompute_scale_factor=True)
# antialias: bilinear and bicubic on [N, C, H, W], the filter stretched when downsampling
for mode in ("bilinear", "bicubic"):
    for corners in (False, True):
        kw = {"mode": mode, "align_corners": corners, "antialias": True}
        for size in ([4, 3], [5, 17], [20, 6], [1, 1], [9, 11], [2, 5]):
            s.case("interpolate", F.interpolate, T(xb, grad=True), size=size, **kw)
        for scale_h, scale_w in ((0.45, 0.3), (1.7, 0.6), (0.2, 1.0)):
            s.case("interpolate", interpolate, T(xb, grad=True), scale_h=scale_h, scale_w=scale_w, **kw)
            s.case("interpolate", interpolate, T(xb, grad=True), scale_h=scale_h, scale_w=scale_w,
                   recompute_scale_factor=True, **kw)
        s.case("interpolate", F.interpolate, T(xb, layout="transposed", grad=True), size=[3, 4], **kw)
        s.case("interpolate", F.interpolate, T(xb, dtype=torch.float32), size=[4, 3], **kw)
        s.case("interpolate", upcast, T(xb, dtype=torch.bfloat16), size=[4, 3], **kw)
        s.case("interpolate", F.interpolate, T([[[[1.0, NAN, 2.0], [INF, -0.0, 3.0], [4.0, 5.0, 6.0]]]],
                                               dtype=torch.float64), size=[2, 2], **kw)
for mode in ("nearest", "nearest-exact", "area", "bilinear"):
    s.case("interpolate", F.interpolate, T(x3 if mode == "bilinear" else x), size=3, mode=mode, antialias=True)
s.case("interpolate", F.interpolate, T(x1), size=3, mode="linear", antialias=True)
s.case("interpolate", F.interpolate, T(x3), size=3, mode="trilinear", antialias=True)
s.write(sys.argv[1])
