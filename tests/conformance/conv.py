"""Conformance cases of conv1d, conv2d and conv_transpose2d (ops/conv.h) against PyTorch 1.13.

float64 runs on weft's reference loops (values and gradients to float64 tolerance); float32 on
oneDNN, whose kernels (blocked, Winograd-free direct or GEMM) sum in another order than PyTorch's:
those cases carry rtol/atol 1e-4 for that reason. A string padding ("same", "valid") is passed as
`padding_mode` so that `padding` is always numbers (the wrapper hands it to torch as padding)."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
F32 = dict(rtol=1e-4, atol=1e-4)  # oneDNN's summation order (see above)


def with_mode(fn):
    def run(*args, padding_mode=None, **kwargs):
        if padding_mode is not None:
            kwargs["padding"] = padding_mode
        return fn(*args, **kwargs)
    return run


conv2d, conv1d, conv_transpose2d = with_mode(F.conv2d), with_mode(F.conv1d), F.conv_transpose2d

x = randn(2, 4, 5, 6, seed=1)
w = randn(6, 4, 3, 3, seed=2)
b = randn(6, seed=3)
wg = randn(6, 2, 3, 2, seed=4)  # groups=2
# conv2d, float64 with gradients
for kw in ({}, {"stride": 2}, {"stride": [2, 1]}, {"padding": 1}, {"padding": [2, 0]}, {"dilation": 2},
           {"dilation": [1, 2], "padding": [1, 2]}, {"stride": 2, "padding": 1, "dilation": [2, 1]},
           {"padding_mode": "same"}, {"padding_mode": "same", "dilation": 2}, {"padding_mode": "valid"}):
    s.case("conv2d", conv2d, T(x, grad=True), T(w, grad=True), T(b, grad=True), **kw)
s.case("conv2d", conv2d, T(x, grad=True), T(randn(3, 4, 2, 4, seed=5), grad=True), None, padding_mode="same")
s.case("conv2d", conv2d, T(x, grad=True), T(randn(3, 4, 2, 4, seed=5), grad=True), None, padding_mode="same",
       dilation=[3, 1])
for groups, weight in ((2, wg), (4, randn(4, 1, 2, 2, seed=6)), (1, randn(2, 4, 1, 1, seed=7))):
    s.case("conv2d", conv2d, T(x, grad=True), T(weight, grad=True), None, groups=groups)
    s.case("conv2d", conv2d, T(x, grad=True), T(weight, grad=True), T(randn(weight.shape[0], seed=8), grad=True),
           groups=groups, stride=2, padding=1)
s.case("conv2d", conv2d, T(x[0], grad=True), T(w, grad=True), T(b, grad=True), padding=1)  # unbatched
s.case("conv2d", conv2d, T(x, layout="transposed", grad=True), T(w, layout="strided", grad=True), T(b, grad=True))
s.case("conv2d", conv2d, T(x, layout="strided", grad=True), T(w, layout="transposed", grad=True), None, stride=2)
s.case("conv2d", conv2d, T(torch.zeros(0, 4, 5, 6, dtype=torch.float64)), T(w), T(b))
s.case("conv2d", conv2d, T(randn(1, 4, 3, 3, seed=9), grad=True), T(w, grad=True), T(b, grad=True))  # 1x1 output
# float32 (oneDNN)
for kw in ({}, {"stride": 2, "padding": 1}, {"dilation": 2, "padding_mode": "same"}, {"groups": 2}):
    weight = wg if kw.get("groups") else w
    s.case("conv2d", conv2d, T(x, dtype=torch.float32), T(weight, dtype=torch.float32), T(b, dtype=torch.float32),
           **kw, **F32)
s.case("conv2d", conv2d, T(x[0], dtype=torch.float32, layout="transposed"), T(w, dtype=torch.float32), None, **F32)
# dtypes: integers raise in PyTorch; extremes propagate
INTEGERS = dict(expect_error=True, why="weft's convolutions are floating only (float32 on oneDNN, float64 on "
                "reference loops); PyTorch 1.13's CPU slow path also takes integers")
s.case("conv2d", conv2d, T(torch.ones(1, 1, 3, 3, dtype=torch.int64)), T(torch.ones(1, 1, 2, 2, dtype=torch.int64)),
       **INTEGERS)
s.case("conv2d", conv2d, T(x, dtype=torch.bfloat16), T(w, dtype=torch.bfloat16), T(b, dtype=torch.bfloat16), padding=1)
# PyTorch 1.13's bfloat16 conv_transpose2d raises, taking the weight as a forward conv's (a bug of
# 1.13); the reference is float32 rounded to bfloat16, which is what weft computes.
s.case("conv_transpose2d", lambda u, v, **kw: F.conv_transpose2d(u.float(), v.float(), **kw).bfloat16(),
       T(randn(2, 4, 3, 4), dtype=torch.bfloat16), T(randn(4, 3, 3, 2), dtype=torch.bfloat16), stride=2)
# float16: PyTorch 1.13 has no CPU kernel (it raises; later versions have one); weft computes it in
# float32 and rounds, which is the reference here: a deliberate difference.
s.case("conv2d", lambda *t, **kw: F.conv2d(*(None if u is None else u.float() for u in t), **kw).half(),
       T(x, dtype=torch.float16), T(w, dtype=torch.float16), T(b, dtype=torch.float16), padding=1)
s.case("conv1d", lambda *t, **kw: F.conv1d(*(None if u is None else u.float() for u in t), **kw).half(),
       T(x[0], dtype=torch.float16), T(w[:, :, 0], dtype=torch.float16), None, stride=2)
s.case("conv2d", conv2d, T(x), T(w, dtype=torch.float32))
xe = x[:1, :1].clone()
xe[0, 0, 0, 0], xe[0, 0, 2, 3], xe[0, 0, 4, 5] = float("nan"), float("inf"), 1e300
s.case("conv2d", conv2d, T(xe), T(randn(1, 1, 2, 2, seed=10).abs()))
# errors
s.case("conv2d", conv2d, T(x), T(randn(6, 3, 3, 3)))  # channels
s.case("conv2d", conv2d, T(x), T(wg), None, groups=4)  # groups do not divide the output channels
s.case("conv2d", conv2d, T(x), T(w), T(randn(5)))  # bias
s.case("conv2d", conv2d, T(x), T(w), None, stride=0)
s.case("conv2d", conv2d, T(x), T(w), None, padding=-1)
s.case("conv2d", conv2d, T(x), T(w), None, stride=2, padding_mode="same")
s.case("conv2d", conv2d, T(x), T(w), None, padding_mode="full")
s.case("conv2d", conv2d, T(x), T(randn(6, 4, 6, 3)))  # kernel larger than the input
s.case("conv2d", conv2d, T(x), T(randn(6, 4, 3)))  # 3-D weight
s.case("conv2d", conv2d, T(randn(4, 5)), T(w))  # 2-D input

# conv1d
x1, w1, b1 = randn(2, 4, 7, seed=11), randn(3, 4, 3, seed=12), randn(3, seed=13)
for kw in ({}, {"stride": 2}, {"padding": 2}, {"dilation": 2}, {"padding_mode": "same"},
           {"padding_mode": "same", "dilation": 3}, {"padding_mode": "valid"}, {"stride": 3, "padding": 1}):
    s.case("conv1d", conv1d, T(x1, grad=True), T(w1, grad=True), T(b1, grad=True), **kw)
s.case("conv1d", conv1d, T(x1, grad=True), T(randn(4, 2, 2, seed=14), grad=True), None, groups=2,
       padding_mode="same")
s.case("conv1d", conv1d, T(x1[0], grad=True), T(w1, grad=True), T(b1, grad=True))  # unbatched
s.case("conv1d", conv1d, T(x1, layout="transposed", grad=True), T(w1, layout="strided", grad=True), None)
s.case("conv1d", conv1d, T(x1, dtype=torch.float32), T(w1, dtype=torch.float32), T(b1, dtype=torch.float32),
       padding=1, **F32)
s.case("conv1d", conv1d, T(torch.zeros(0, 4, 7, dtype=torch.float64)), T(w1), None)
s.case("conv1d", conv1d, T(torch.ones(1, 1, 3, dtype=torch.int32)), T(torch.ones(1, 1, 2, dtype=torch.int32)),
       **INTEGERS)
s.case("conv1d", conv1d, T(x1), T(randn(3, 2, 3)))
s.case("conv1d", conv1d, T(x1), T(w))  # 4-D weight
s.case("conv1d", conv1d, T(x1), T(randn(3, 4, 9)))
s.case("conv1d", conv1d, T(x1), T(w1), None, stride=2, padding_mode="same")

# conv_transpose2d: weight [C_in, C_out / groups, KH, KW]
xt, wt, bt = randn(2, 4, 3, 4, seed=20), randn(4, 3, 3, 2, seed=21), randn(3, seed=22)
for kw in ({}, {"stride": 2}, {"stride": [2, 3], "padding": [1, 0]}, {"stride": 2, "output_padding": 1},
           {"stride": [3, 2], "output_padding": [2, 1], "padding": 1}, {"dilation": 2},
           {"dilation": [2, 1], "padding": 1}):
    s.case("conv_transpose2d", conv_transpose2d, T(xt, grad=True), T(wt, grad=True), T(bt, grad=True), **kw)
s.case("conv_transpose2d", conv_transpose2d, T(xt, grad=True), T(randn(4, 2, 2, 2, seed=23), grad=True),
       T(randn(4, seed=24), grad=True), groups=2, stride=2)
s.case("conv_transpose2d", conv_transpose2d, T(xt, grad=True), T(randn(4, 1, 2, 2, seed=25), grad=True), None,
       groups=4)
s.case("conv_transpose2d", conv_transpose2d, T(xt[0], grad=True), T(wt, grad=True), T(bt, grad=True), stride=2)
s.case("conv_transpose2d", conv_transpose2d, T(xt, layout="transposed", grad=True),
       T(wt, layout="strided", grad=True), None, padding=1)
s.case("conv_transpose2d", conv_transpose2d, T(xt, dtype=torch.float32), T(wt, dtype=torch.float32),
       T(bt, dtype=torch.float32), stride=2, padding=1, output_padding=1, **F32)
s.case("conv_transpose2d", conv_transpose2d, T(torch.zeros(0, 4, 3, 4, dtype=torch.float64)), T(wt), T(bt))
# output_padding below the dilation but not the stride: PyTorch takes it
s.case("conv_transpose2d", conv_transpose2d, T(xt, grad=True), T(wt, grad=True), None, dilation=2, output_padding=1)
s.case("conv_transpose2d", conv_transpose2d, T(xt, grad=True), T(wt, grad=True), T(bt, grad=True), dilation=[3, 2],
       output_padding=[2, 1], padding=[2, 1])
s.case("conv_transpose2d", conv_transpose2d, T(xt, dtype=torch.float32), T(wt, dtype=torch.float32), None,
       dilation=2, output_padding=1, **F32)
s.case("conv_transpose2d", conv_transpose2d, T(torch.ones(1, 1, 2, 2, dtype=torch.int64)),
       T(torch.ones(1, 1, 2, 2, dtype=torch.int64)), **INTEGERS)
s.case("conv_transpose2d", conv_transpose2d, T(xt), T(randn(3, 3, 3, 2)))
s.case("conv_transpose2d", conv_transpose2d, T(xt), T(wt), None, stride=2, output_padding=2)
s.case("conv_transpose2d", conv_transpose2d, T(xt), T(wt), T(randn(4)))
s.case("conv_transpose2d", conv_transpose2d, T(xt), T(wt), None, groups=3)
s.case("conv_transpose2d", conv_transpose2d, T(xt), T(wt), None, padding=3)
s.case("conv_transpose2d", conv_transpose2d, T(xt), T(wt), None, stride=0)
s.write(sys.argv[1])
