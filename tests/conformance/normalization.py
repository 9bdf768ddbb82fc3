"""Conformance cases of layer_norm and rms_norm (ops/normalization.h) against PyTorch 1.13.

PyTorch 1.13 has no rms_norm (2.4 added it): its reference here is the formula of 2.4's
torch.nn.functional.rms_norm, x * rsqrt(mean(x^2 over normalized_shape) + eps) * weight, with eps by
default the epsilon of the dtype the kernel computes in (float32 for float32 and the 16-bit floats,
as 2.4's C++ kernel does, float64 for float64)."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")


def rms_norm(x, normalized_shape, weight=None, eps=None):
    if eps is None:
        eps = torch.finfo(torch.float64 if x.dtype == torch.float64 else torch.float32).eps
    if x.dtype in (torch.bfloat16, torch.float16):  # computed in float32, as weft and 2.4 do
        return rms_norm(x.float(), normalized_shape, None if weight is None else weight.float(), eps).to(x.dtype)
    dims = tuple(range(-len(normalized_shape), 0))
    if tuple(x.shape[x.dim() - len(normalized_shape):]) != tuple(normalized_shape) or not normalized_shape:
        raise RuntimeError("rms_norm: normalized_shape must be the input's trailing dims")
    if weight is not None and tuple(weight.shape) != tuple(normalized_shape):
        raise RuntimeError("rms_norm: weight must have normalized_shape")
    y = x * torch.rsqrt(torch.mean(x * x, dims, keepdim=True) + eps)
    return y * weight if weight is not None else y


def half_via_float(fn):
    """fn computed in float32 and rounded to float16: PyTorch 1.13 has no CPU float16 kernel for
    layer_norm (later versions compute it so); weft takes float16 (a deliberate difference)."""
    def run(x, shape, weight=None, bias=None, eps=1e-5):
        f = lambda t: None if t is None else t.float()
        return fn(x.float(), shape, f(weight), f(bias), eps).half()
    return run


x = randn(2, 3, 4, seed=1)
w3, b3 = randn(3, 4, seed=2), randn(3, 4, seed=3)
w1, b1 = randn(4, seed=4), randn(4, seed=5)
for layout in ("contiguous", "transposed", "strided"):
    s.case("layer_norm", F.layer_norm, T(x, layout=layout, grad=True), [4], T(w1, grad=True), T(b1, grad=True))
    s.case("layer_norm", F.layer_norm, T(x, layout=layout, grad=True), [3, 4], T(w3, grad=True),
           T(b3, layout=layout, grad=True))
    s.case("rms_norm", rms_norm, T(x, layout=layout, grad=True), [4], T(w1, grad=True))
    s.case("rms_norm", rms_norm, T(x, layout=layout, grad=True), [3, 4], T(w3, layout=layout, grad=True))
s.case("layer_norm", F.layer_norm, T(x, grad=True), [4])
s.case("layer_norm", F.layer_norm, T(x, grad=True), [2, 3, 4], None, None, 0.1)
s.case("layer_norm", F.layer_norm, T(x, grad=True), [4], T(w1, grad=True), None)
s.case("layer_norm", F.layer_norm, T(x, grad=True), [4], None, T(b1, grad=True))
s.case("rms_norm", rms_norm, T(x, grad=True), [4])
s.case("rms_norm", rms_norm, T(x, grad=True), [2, 3, 4], None, 0.5)
s.case("rms_norm", rms_norm, T(x, grad=True), [4], T(w1, grad=True), 1e-3)
for dtype in (torch.float32, torch.bfloat16):
    s.case("layer_norm", F.layer_norm, T(x, dtype=dtype), [4], T(w1, dtype=dtype), T(b1, dtype=dtype))
    s.case("rms_norm", rms_norm, T(x, dtype=dtype), [3, 4], T(w3, dtype=dtype))
    s.case("rms_norm", rms_norm, T(x, dtype=dtype), [4])
s.case("layer_norm", half_via_float(F.layer_norm), T(x, dtype=torch.float16), [4], T(w1, dtype=torch.float16),
       T(b1, dtype=torch.float16))
s.case("rms_norm", rms_norm, T(x, dtype=torch.float16), [4], T(w1, dtype=torch.float16))
for dtype in (torch.int64, torch.int32, torch.bool):
    s.case("layer_norm", F.layer_norm, T([[1, 0], [0, 1]], dtype=dtype), [2])
    s.case("rms_norm", rms_norm, T([[1, 0], [0, 1]], dtype=dtype), [2])
# a constant row (variance 0: the output is 0 / sqrt(eps)), extremes
rows = [[1.0, 1.0, 1.0, 1.0], [NAN, 0.0, 1.0, 2.0], [INF, 0.0, 1.0, 2.0], [1e150, -1e150, 0.0, 1.0],
        [1e-300, -1e-300, 0.0, -0.0]]
s.case("layer_norm", F.layer_norm, T(rows), [4])
s.case("rms_norm", rms_norm, T(rows), [4])
s.case("layer_norm", F.layer_norm, T([[1.0, 1.0, 1.0], [2.0, -1.0, 5.0]], grad=True), [3])
# empty and 0-dim
s.case("layer_norm", F.layer_norm, T(torch.zeros(0, 4, dtype=torch.float64)), [4])
s.case("rms_norm", rms_norm, T(torch.zeros(0, 4, dtype=torch.float64)), [4])
s.case("layer_norm", F.layer_norm, T(torch.tensor(2.0, dtype=torch.float64)), [])
s.case("rms_norm", rms_norm, T(torch.tensor(2.0, dtype=torch.float64)), [])
# errors: normalized_shape not the trailing dims, weight of another shape or dtype
s.case("layer_norm", F.layer_norm, T(x), [3])
s.case("layer_norm", F.layer_norm, T(x), [2, 3, 4, 5])
s.case("layer_norm", F.layer_norm, T(x), [4], T(randn(3)))
s.case("layer_norm", F.layer_norm, T(x), [4], T(w1), T(randn(3, 4)))
s.case("layer_norm", F.layer_norm, T(x), [4], T(w1, dtype=torch.float32))
s.case("rms_norm", rms_norm, T(x), [3])
s.case("rms_norm", rms_norm, T(x), [4], T(randn(3)))
s.write(sys.argv[1])
