"""Conformance cases of the losses (ops/losses.h) against PyTorch 1.13: cross_entropy (class indices
with ignore_index, label_smoothing, weight and every reduction, (N, C, d1, ...) inputs, and
probability targets), nll_loss and mse_loss."""
import sys
import warnings

import torch
import torch.nn.functional as F

from conformance import Suite, T, randn

warnings.simplefilter("ignore")  # mse_loss warns of the broadcasting cases, on purpose
s = Suite()
NAN, INF = float("nan"), float("inf")
REDUCTIONS = ("none", "mean", "sum")


def idx(values):
    return T(values, dtype=torch.int64)


x = randn(4, 5, seed=2)
t = [1, 0, 4, 2]
w = T(torch.rand(5, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 0.5)

# cross_entropy, class indices
for r in REDUCTIONS:
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx(t), reduction=r)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx([1, -100, 4, -100]), reduction=r)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx([1, 3, 4, 3]), reduction=r, ignore_index=3)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx(t), reduction=r, label_smoothing=0.2)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx([1, 2, -100, 2]), reduction=r,
           label_smoothing=0.3)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx(t), reduction=r, weight=w)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx([1, -100, 4, 0]), reduction=r, weight=w,
           label_smoothing=0.25)
    # (N, C, d1, d2) and unbatched (C) with a 0-dim target
    s.case("cross_entropy", F.cross_entropy, T(randn(2, 3, 2, 2, seed=5), grad=True),
           idx([[[0, 2], [1, 1]], [[2, -100], [0, 1]]]), reduction=r)
    s.case("cross_entropy", F.cross_entropy, T(randn(2, 3, 4, seed=6), grad=True),
           idx([[0, 2, 1, 1], [2, 2, 0, 1]]), reduction=r, label_smoothing=0.1,
           weight=T([0.2, 1.0, 3.0], dtype=torch.float64))
    s.case("cross_entropy", F.cross_entropy, T(randn(5, seed=7), grad=True), idx(3), reduction=r)
    # every target ignored: the mean is 0/0
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), idx([-100] * 4), reduction=r)
s.case("cross_entropy", F.cross_entropy, T(x, layout="transposed", grad=True), idx(t))
s.case("cross_entropy", F.cross_entropy, T(x, layout="strided", grad=True), idx(t), label_smoothing=0.1)
s.case("cross_entropy", F.cross_entropy, T(x, dtype=torch.float32), idx(t))
s.case("cross_entropy", F.cross_entropy, T(x, dtype=torch.float32), idx(t), reduction="none", label_smoothing=0.5)
s.case("cross_entropy", F.cross_entropy, T(x, dtype=torch.bfloat16), idx(t))
# float16: PyTorch 1.13 has no CPU log_softmax for it (later versions compute it in float32, as weft
# does); the reference is float32, rounded (a deliberate difference)
s.case("cross_entropy", lambda u, v, **kw: F.cross_entropy(u.float(), v, **kw).half(), T(x, dtype=torch.float16),
       idx(t), label_smoothing=0.1)
s.case("cross_entropy", lambda u, v, **kw: F.cross_entropy(u.float(), v.float(), **kw).half(),
       T(x, dtype=torch.float16), T(torch.softmax(randn(4, 5, seed=8), 1), dtype=torch.float16), reduction="none")
s.case("cross_entropy", F.cross_entropy, T(x, dtype=torch.float32), idx(t), weight=T(w.tensor, dtype=torch.float32))
s.case("cross_entropy", F.cross_entropy, T([[1e308, -1e308, 0.0], [INF, 0.0, 1.0], [NAN, 0.0, 1.0]]),
       idx([0, 1, 2]), reduction="none")
s.case("cross_entropy", F.cross_entropy, T(torch.zeros(0, 5, dtype=torch.float64)), idx([]), reduction="sum")
s.case("cross_entropy", F.cross_entropy, T(torch.zeros(0, 5, dtype=torch.float64)), idx([]), reduction="none")
s.case("cross_entropy", F.cross_entropy, T(torch.zeros(0, 5, dtype=torch.float64)), idx([]))

# cross_entropy, probability targets (the disagreement: weft refused them)
p = torch.softmax(randn(4, 5, seed=8), 1)
for r in REDUCTIONS:
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), T(p, grad=True), reduction=r)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), T(p, grad=True), reduction=r, label_smoothing=0.3)
    s.case("cross_entropy", F.cross_entropy, T(x, grad=True), T(p, grad=True), reduction=r, weight=w)
    s.case("cross_entropy", F.cross_entropy, T(randn(2, 3, 2, seed=9), grad=True),
           T(torch.softmax(randn(2, 3, 2, seed=10), 1), grad=True), reduction=r)
s.case("cross_entropy", F.cross_entropy, T(randn(5, seed=11), grad=True), T(p[0], grad=True))
s.case("cross_entropy", F.cross_entropy, T(x, layout="transposed", grad=True), T(p, layout="strided", grad=True))
s.case("cross_entropy", F.cross_entropy, T(x, dtype=torch.float32), T(p, dtype=torch.float32))
s.case("cross_entropy", F.cross_entropy, T(x, dtype=torch.bfloat16), T(p, dtype=torch.bfloat16))
# a target that is not a distribution is taken as it is
s.case("cross_entropy", F.cross_entropy, T(x, grad=True), T(randn(4, 5, seed=12), grad=True))

# cross_entropy errors
s.case("cross_entropy", F.cross_entropy, T(x), idx([1, 0, 5, 2]))  # class out of range
s.case("cross_entropy", F.cross_entropy, T(x), idx([1, 0, -1, 2]))
s.case("cross_entropy", F.cross_entropy, T(x), idx([1, 0, 4]))  # target shape
s.case("cross_entropy", F.cross_entropy, T(x), T(p[:3]))
s.case("cross_entropy", F.cross_entropy, T(x), T(t, dtype=torch.int32))  # target dtype
s.case("cross_entropy", F.cross_entropy, T(x), idx(t), label_smoothing=1.5)
s.case("cross_entropy", F.cross_entropy, T(x), idx(t), reduction="average")
s.case("cross_entropy", F.cross_entropy, T(x), idx(t), weight=T([1.0, 2.0]))
s.case("cross_entropy", F.cross_entropy, T([[1, 2], [3, 4]], dtype=torch.int64), idx([0, 1]))
s.case("cross_entropy", F.cross_entropy, T(torch.tensor(1.0, dtype=torch.float64)), idx(0))

# nll_loss
lp = torch.log_softmax(x, 1)
for r in REDUCTIONS:
    s.case("nll_loss", F.nll_loss, T(lp, grad=True), idx(t), reduction=r)
    s.case("nll_loss", F.nll_loss, T(lp, grad=True), idx([1, -100, 4, -100]), reduction=r)
    s.case("nll_loss", F.nll_loss, T(lp, grad=True), idx([2, 2, 4, 0]), reduction=r, ignore_index=2)
    s.case("nll_loss", F.nll_loss, T(lp, grad=True), idx([1, -100, 4, 0]), reduction=r, weight=w)
    s.case("nll_loss", F.nll_loss, T(randn(2, 3, 2, 2, seed=13), grad=True),
           idx([[[0, 2], [1, 1]], [[2, -100], [0, 1]]]), reduction=r)
    s.case("nll_loss", F.nll_loss, T(x[0], grad=True), idx(2), reduction=r)
    s.case("nll_loss", F.nll_loss, T(lp, grad=True), idx([-100] * 4), reduction=r)
s.case("nll_loss", F.nll_loss, T(lp, layout="transposed", grad=True), idx(t))
s.case("nll_loss", F.nll_loss, T(lp, layout="strided", grad=True), idx(t), reduction="sum")
s.case("nll_loss", F.nll_loss, T(lp, dtype=torch.float32), idx(t))
s.case("nll_loss", F.nll_loss, T(lp, dtype=torch.bfloat16), idx(t))
s.case("nll_loss", lambda u, v, **kw: F.nll_loss(u.float(), v, **kw).half(), T(lp, dtype=torch.float16), idx(t),
       reduction="none")  # 1.13 has no CPU float16 nll_loss; float32 rounded (as cross_entropy above)
s.case("nll_loss", F.nll_loss, T(lp, dtype=torch.bfloat16), idx([1, -100, 4, 0]),
       weight=T(w.tensor, dtype=torch.bfloat16))
s.case("nll_loss", F.nll_loss, T([[NAN, 1.0], [-INF, 0.0]]), idx([0, 0]), reduction="none")
s.case("nll_loss", F.nll_loss, T(torch.zeros(0, 5, dtype=torch.float64)), idx([]), reduction="sum")
s.case("nll_loss", F.nll_loss, T(lp), idx([1, 0, 5, 2]))
s.case("nll_loss", F.nll_loss, T(lp), idx([1, 0, 4]))
s.case("nll_loss", F.nll_loss, T(lp), T(t, dtype=torch.int32))
s.case("nll_loss", F.nll_loss, T(lp), T(p))  # nll_loss takes no probabilities
s.case("nll_loss", F.nll_loss, T(lp), idx(t), reduction="mean_")
s.case("nll_loss", F.nll_loss, T(lp), idx(t), weight=T([1.0, 2.0, 3.0]))

# mse_loss
a, b = randn(3, 4, seed=14), randn(3, 4, seed=15)
for r in REDUCTIONS:
    s.case("mse_loss", F.mse_loss, T(a, grad=True), T(b, grad=True), reduction=r)
    s.case("mse_loss", F.mse_loss, T(a, layout="transposed", grad=True), T(b, layout="strided", grad=True),
           reduction=r)
    s.case("mse_loss", F.mse_loss, T(a, grad=True), T(b[0], grad=True), reduction=r)  # broadcast (torch warns)
    s.case("mse_loss", F.mse_loss, T(torch.zeros(0, 4, dtype=torch.float64)), T(torch.zeros(0, 4, dtype=torch.float64)),
           reduction=r)
    s.case("mse_loss", F.mse_loss, T(torch.tensor(2.0, dtype=torch.float64), grad=True),
           T(torch.tensor(0.5, dtype=torch.float64), grad=True), reduction=r)
for dtype in (torch.float32, torch.float16):
    s.case("mse_loss", F.mse_loss, T(a, dtype=dtype), T(b, dtype=dtype))
    s.case("mse_loss", F.mse_loss, T(a, dtype=dtype), T(b, dtype=dtype), reduction="none")
# bfloat16: PyTorch 1.13 has no CPU kernel for it (later versions have one); weft computes it, so
# the reference is float32 rounded to bfloat16: a deliberate difference.
for r in ("mean", "none"):
    s.case("mse_loss", lambda u, v, reduction: F.mse_loss(u.float(), v.float(), reduction=reduction).bfloat16(),
           T(a, dtype=torch.bfloat16), T(b, dtype=torch.bfloat16), reduction=r)
s.case("mse_loss", F.mse_loss, T(a, dtype=torch.float32), T(b), reduction="none")  # promotion
s.case("mse_loss", F.mse_loss, T([[1.0, INF, NAN, 1e200]]), T([[INF, INF, 0.0, -1e200]]), reduction="none")
for dtype in (torch.int64, torch.int32, torch.bool):
    s.case("mse_loss", F.mse_loss, T([1, 0], dtype=dtype), T([0, 1], dtype=dtype))
s.case("mse_loss", F.mse_loss, T(a), T(randn(2, 4)))
s.case("mse_loss", F.mse_loss, T(a), T(b), reduction="max")
s.write(sys.argv[1])
