"""Conformance cases of interpolate (ops/interpolate.h) against PyTorch 1.13: the nearest and
bilinear modes on [N, C, H, W] inputs. weft has no other modes (bicubic, area, the 1-D and 3-D ones)
and refuses other ranks: the cases that use them expect weft to raise (deliberate differences)."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")
ONLY_2D = "weft interpolates [N, C, H, W] inputs only (nearest and bilinear)"



def interpolate(x, scale_h=None, scale_w=None, **kwargs):
    """F.interpolate, a scale per dim given as scale_h and scale_w (the replayer reads numbers, not
    lists of floats)."""
    if scale_h is not None:
        kwargs["scale_factor"] = (scale_h, scale_w)
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
# what weft does not have: other modes and ranks
s.case("interpolate", F.interpolate, T(x), size=[3, 3], mode="bicubic", expect_error=True, why=ONLY_2D)
s.case("interpolate", F.interpolate, T(x), size=[3, 3], mode="area", expect_error=True, why=ONLY_2D)
s.case("interpolate", F.interpolate, T(x[0]), size=3, expect_error=True, why=ONLY_2D)
s.case("interpolate", F.interpolate, T(x[0]), size=3, mode="linear", expect_error=True, why=ONLY_2D)
s.write(sys.argv[1])
