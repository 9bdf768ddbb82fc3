"""Conformance cases of dropout (ops/dropout.h) against PyTorch 1.13: its deterministic cases only
(evaluation, p = 0, p = 1) and its errors. The random mask itself cannot be compared value by value
with torch's generator: tests/test_nn_functional.cpp checks its rate, its scaling and its seeding."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
x = randn(3, 4, seed=1)
for p, training in ((0.5, False), (0.0, True), (1.0, True), (1.0, False), (0.0, False)):
    s.case("dropout", F.dropout, T(x, grad=True), p, training)
    s.case("dropout", F.dropout, T(x, layout="transposed", grad=True), p, training)
s.case("dropout", F.dropout, T(x, dtype=torch.float32), 1.0, True)
s.case("dropout", F.dropout, T(x, dtype=torch.bfloat16), 1.0, True)
s.case("dropout", F.dropout, T(torch.zeros(0, 3, dtype=torch.float64)), 0.3, True)
s.case("dropout", F.dropout, T(torch.tensor(2.0, dtype=torch.float64), grad=True), 0.3, False)
s.case("dropout", F.dropout, T([1, 2, 3], dtype=torch.int64), 0.5, False)
# errors: p outside [0, 1]
for p in (-0.1, 1.5):
    s.case("dropout", F.dropout, T(x), p, True)
    s.case("dropout", F.dropout, T(x), p, False)
s.write(sys.argv[1])
