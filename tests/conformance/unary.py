"""Conformance cases of the elementwise unary ops (ops/unary.h) against PyTorch 1.13."""
import sys

import torch

from conformance import Suite, T, randn

s = Suite()
x = randn(3, 4)
for layout in ("contiguous", "transposed", "strided"):
    s.case("exp", torch.exp, T(x, layout=layout, grad=True))
s.case("exp", torch.exp, T(x, dtype=torch.float32))
s.case("exp", torch.exp, T([1, 2, 3], dtype=torch.int64))
s.case("exp", torch.exp, T(torch.zeros(0, 3)))
s.case("clamp", torch.clamp, T(x, grad=True), min=-0.5, max=0.5)
s.case("clamp", torch.clamp, T(x, grad=True), min=0.5, max=-0.5)  # min > max: every value is max
s.write(sys.argv[1])
