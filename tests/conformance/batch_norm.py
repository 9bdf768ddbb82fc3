"""Conformance cases of batch_norm, instance_norm and group_norm (ops/batch_norm.h) against PyTorch
1.13. The running statistics batch_norm and instance_norm update in place are compared too: the
cases return them after the call as extra outputs."""
import sys

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

s = Suite()
NAN, INF = float("nan"), float("inf")


def batch_norm(x, rm, rv, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    y = F.batch_norm(x, rm, rv, weight, bias, training, momentum, eps)
    return (y,) + tuple(t for t in (rm, rv) if t is not None)


def instance_norm(x, rm=None, rv=None, weight=None, bias=None, use_input_stats=True, momentum=0.1, eps=1e-5):
    y = F.instance_norm(x, rm, rv, weight, bias, use_input_stats, momentum, eps)
    return (y,) + tuple(t for t in (rm, rv) if t is not None)


def group_norm_raising(*args):
    """F.group_norm, its ZeroDivisionError for 0 groups (a Python check) taken as the error it is."""
    try:
        return F.group_norm(*args)
    except ZeroDivisionError as e:
        raise ValueError("group_norm: " + str(e))


def stats(c, seed):
    return T(randn(c, seed=seed)), T(randn(c, seed=seed + 1).abs() + 0.5)


x4 = randn(3, 2, 2, 3, seed=1)
x3 = randn(4, 3, 5, seed=2)
w2, b2 = randn(2, seed=3), randn(2, seed=4)
w3, b3 = randn(3, seed=5), randn(3, seed=6)

# batch_norm: training with and without running statistics, evaluation, affine or not
for x, w, b in ((x4, w2, b2), (x3, w3, b3), (randn(5, 3, seed=7), w3, b3)):
    c = x.shape[1]
    rm, rv = stats(c, 10)
    s.case("batch_norm", batch_norm, T(x, grad=True), rm, rv, T(w, grad=True), T(b, grad=True), True)
    s.case("batch_norm", batch_norm, T(x, grad=True), rm, rv, T(w, grad=True), T(b, grad=True), False)
    s.case("batch_norm", batch_norm, T(x, grad=True), None, None, T(w, grad=True), T(b, grad=True), True)
    s.case("batch_norm", batch_norm, T(x, grad=True), rm, rv, None, None, True, 0.3, 1e-3)
    s.case("batch_norm", batch_norm, T(x, grad=True), rm, rv, None, T(b, grad=True), False, 0.1, 0.5)
for layout in ("transposed", "strided"):
    rm, rv = stats(2, 12)
    s.case("batch_norm", batch_norm, T(x4, layout=layout, grad=True), rm, rv, T(w2, grad=True), T(b2, grad=True),
           True)
    s.case("batch_norm", batch_norm, T(x4, layout=layout, grad=True), rm, rv, T(w2, grad=True), T(b2, grad=True),
           False)
s.case("batch_norm", batch_norm, T(x4, grad=True), *stats(2, 14), T(w2, grad=True), T(b2, grad=True), True, 1.0)
s.case("batch_norm", batch_norm, T(x4, grad=True), *stats(2, 14), T(w2, grad=True), T(b2, grad=True), True, 0.0)
s.case("batch_norm", batch_norm, T(x4, dtype=torch.float32), *(T(t.tensor, dtype=torch.float32) for t in stats(2, 16)),
       T(w2, dtype=torch.float32), T(b2, dtype=torch.float32), True)
s.case("batch_norm", batch_norm, T(x4, dtype=torch.float32), *(T(t.tensor, dtype=torch.float32) for t in stats(2, 16)),
       T(w2, dtype=torch.float32), T(b2, dtype=torch.float32), False)
# bfloat16: statistics of its dtype or float32 (PyTorch's mixed case); float16 raises in 1.13 (later
# versions compute it as weft does, in float32): its reference is float32, rounded
bf = dict(dtype=torch.bfloat16)
s.case("batch_norm", batch_norm, T(x4, **bf), *(T(t.tensor, **bf) for t in stats(2, 16)), T(w2, **bf), T(b2, **bf),
       True)
s.case("batch_norm", batch_norm, T(x4, **bf), *(T(t.tensor, dtype=torch.float32) for t in stats(2, 16)),
       T(w2, dtype=torch.float32), T(b2, dtype=torch.float32), True)
s.case("batch_norm", batch_norm, T(x4, **bf), *(T(t.tensor, **bf) for t in stats(2, 16)), None, None, False)
s.case("batch_norm", batch_norm, T(x4, **bf), *(T(t.tensor, dtype=torch.float64) for t in stats(2, 16)), None, None,
       True)


def batch_norm_half(x, rm, rv, weight, bias, training):
    y, rm32, rv32 = batch_norm(x.float(), rm.float(), rv.float(), None, None, training)
    return y.half(), rm.copy_(rm32), rv.copy_(rv32)


s.case("batch_norm", batch_norm_half, T(x4, dtype=torch.float16),
       *(T(t.tensor, dtype=torch.float16) for t in stats(2, 16)), None, None, True)
s.case("instance_norm", instance_norm, T(x3, **bf), *(T(t.tensor, **bf) for t in stats(3, 30)), T(w3, **bf),
       T(b3, **bf), True)
for dtype in (torch.int64, torch.int32):
    s.case("batch_norm", batch_norm, T([[1, 2], [3, 4]], dtype=dtype), T([0, 0], dtype=dtype),
           T([1, 1], dtype=dtype), None, None, True)
# a constant channel (variance 0), NaN and inf in one channel
s.case("batch_norm", batch_norm, T([[1.0, NAN, 2.0], [1.0, 0.0, INF], [1.0, 1.0, 0.0]], dtype=torch.float64),
       *stats(3, 18), None, None,
       True)
# errors: shapes of the statistics and the affine, one value per channel in training, 1-D input
s.case("batch_norm", batch_norm, T(x4), *stats(3, 20), None, None, True)
s.case("batch_norm", batch_norm, T(x4), *stats(2, 20), T(w3), None, True)
s.case("batch_norm", batch_norm, T(x4), *stats(2, 20), None, T(b3), False)
s.case("batch_norm", batch_norm, T(randn(1, 3, seed=22)), *stats(3, 20), None, None, True)
s.case("batch_norm", batch_norm, T(randn(1, 3, seed=22)), *stats(3, 20), None, None, False)
s.case("batch_norm", batch_norm, T(randn(3, seed=22)), *stats(3, 20), None, None, False)

# instance_norm
for x, w, b in ((x4, w2, b2), (x3, w3, b3)):
    c = x.shape[1]
    s.case("instance_norm", instance_norm, T(x, grad=True))
    s.case("instance_norm", instance_norm, T(x, grad=True), None, None, T(w, grad=True), T(b, grad=True))
    s.case("instance_norm", instance_norm, T(x, grad=True), *stats(c, 30), T(w, grad=True), T(b, grad=True), True,
           0.2)
    s.case("instance_norm", instance_norm, T(x, grad=True), *stats(c, 30), T(w, grad=True), T(b, grad=True), False)
    s.case("instance_norm", instance_norm, T(x, layout="transposed", grad=True), None, None, None, None, True, 0.1,
           1e-2)
s.case("instance_norm", instance_norm, T(x3, layout="strided", grad=True), *stats(3, 32))
s.case("instance_norm", instance_norm, T(x3, dtype=torch.float32))
s.case("instance_norm", instance_norm, T([[[1, 2]]], dtype=torch.int64))
s.case("instance_norm", instance_norm, T(x3), *stats(2, 34))
s.case("instance_norm", instance_norm, T(x3), None, None, T(w2))
s.case("instance_norm", instance_norm, T(randn(2, 3, 1, seed=36)))  # one value per instance
s.case("instance_norm", instance_norm, T(x3), None, None, None, None, False)  # no statistics to use

# group_norm
x6 = randn(2, 6, 3, seed=40)
w6, b6 = randn(6, seed=41), randn(6, seed=42)
for groups in (1, 2, 3, 6):
    s.case("group_norm", F.group_norm, T(x6, grad=True), groups, T(w6, grad=True), T(b6, grad=True))
s.case("group_norm", F.group_norm, T(x6, grad=True), 2)
# a bias without a weight: values only, PyTorch 1.13's backward of it fails ("tensor does not have a
# device"), a bug of 1.13
s.case("group_norm", F.group_norm, T(x6), 3, None, T(b6), 0.1)
s.case("group_norm", F.group_norm, T(x4, layout="transposed", grad=True), 2, T(w2, grad=True), T(b2, grad=True))
s.case("group_norm", F.group_norm, T(x4, layout="strided", grad=True), 1, T(w2, grad=True))
s.case("group_norm", F.group_norm, T(randn(3, 4, seed=43), grad=True), 2, T(randn(4, seed=44), grad=True))
s.case("group_norm", F.group_norm, T(x6, dtype=torch.float32), 3, T(w6, dtype=torch.float32),
       T(b6, dtype=torch.float32))
s.case("group_norm", F.group_norm, T(x6, dtype=torch.bfloat16), 3)
s.case("group_norm", F.group_norm, T(torch.zeros(0, 6, 2, dtype=torch.float64)), 3)
s.case("group_norm", F.group_norm, T([[[1, 2]]], dtype=torch.int64), 1)
s.case("group_norm", F.group_norm, T(x6), 4)
s.case("group_norm", group_norm_raising, T(x6), 0)
s.case("group_norm", F.group_norm, T(x6), 3, T(w3))
s.write(sys.argv[1])
