"""Conformance cases of the reductions (ops/reduce.h) against PyTorch 1.13: sum, mean, prod, max, min,
argmax, argmin, all, any, var, std, logsumexp, norm (every p torch takes), equal, allclose, sum_to,
and the int-dim overloads (x.sum(1)).

Every dtype, all dims / one dim / several dims, negative dims, keepdim, the three layouts, 0-dim and
empty tensors, NaN, infinities and ties, bad dims (torch raises), and float64 gradients (ties
included: max() shares the gradient evenly among ties, max(dim) gives it to the index it returns).
"""
import sys

import torch

from conformance import ALL_DTYPES, Suite, T, Upcast, randn

s = Suite()


# torch 1.13 has no CPU prod for bfloat16/float16 nor logsumexp for float16: computed in float32.
torch_prod, torch_logsumexp = Upcast(torch.prod), Upcast(torch.logsumexp)
INF, NAN = float("inf"), float("nan")


def values_for(dtype):
    """(3, 4) values of `dtype` with ties, zeros and (for floats) no NaN."""
    if dtype == torch.bool:
        return torch.tensor([[True, False, True, True], [False, False, False, False], [True, True, True, True]])
    if dtype == torch.uint8:
        return torch.tensor([[0, 1, 2, 5], [200, 255, 7, 3], [7, 7, 0, 1]], dtype=dtype)
    if not dtype.is_floating_point:
        return torch.tensor([[-3, -1, 0, 1], [2, 7, 5, 4], [7, 7, -3, 1]], dtype=dtype)
    return torch.tensor([[-2.5, -0.0, 0.0, 1.5], [3.0, 0.25, -1.0, 3.0], [0.5, -2.5, 2.0, 1.0]],
                        dtype=torch.float64).to(dtype)


EXTREMES = torch.tensor([[1.0, NAN, -1.0, 2.0], [INF, 1.0, -INF, 0.0], [1e300, 1e300, -1e-300, 5.0]])
x = randn(3, 4)
cube = randn(2, 3, 4, seed=3)

# Full reductions and single dims, every dtype.
FULL = {"sum": torch.sum, "mean": torch.mean, "prod": torch_prod, "max": torch.max, "min": torch.min,
        "argmax": torch.argmax, "argmin": torch.argmin, "all": torch.all, "any": torch.any, "var": torch.var,
        "std": torch.std, "norm": torch.norm}
for d in ALL_DTYPES:
    v = values_for(d)
    for op, fn in FULL.items():
        s.case(op, fn, T(v))
    for dim in (0, 1, -1):
        s.case("sum.dims", torch.sum, T(v), [dim])
        s.case("sum.dim", torch.sum, T(v), dim)
        s.case("mean.dims", torch.mean, T(v), [dim])
        s.case("prod.dim", torch_prod, T(v), dim)
        s.case("max.dim", torch.max, T(v), dim)
        s.case("min.dim", torch.min, T(v), dim)
        s.case("argmax.dim", torch.argmax, T(v), dim)
        s.case("argmin.dim", torch.argmin, T(v), dim)
        s.case("all.dim", torch.all, T(v), dim)
        s.case("any.dim", torch.any, T(v), dim)
        s.case("var.dims", torch.var, T(v), [dim])
        s.case("std.dims", torch.std, T(v), [dim])
        s.case("logsumexp", torch_logsumexp, T(v), [dim])
        s.case("norm.dims", torch.norm, T(v), 2.0, [dim])
    s.case("sum.dims", torch.sum, T(v), [0, 1])
    s.case("sum.dims", torch.sum, T(v), [])  # every dim
    s.case("logsumexp", torch_logsumexp, T(v), [0, 1])

# NaN and infinities.
for d in (torch.float64, torch.float32, torch.bfloat16, torch.float16):
    e = EXTREMES.to(d)
    for op in ("sum", "mean", "prod", "max", "min", "argmax", "argmin", "all", "any", "var", "std", "norm"):
        s.case(op, FULL[op], T(e))
    for dim in (0, 1):
        s.case("max.dim", torch.max, T(e), dim)
        s.case("min.dim", torch.min, T(e), dim)
        s.case("argmax.dim", torch.argmax, T(e), dim)
        s.case("argmin.dim", torch.argmin, T(e), dim)
        s.case("logsumexp", torch_logsumexp, T(e), [dim])
        s.case("sum.dims", torch.sum, T(e), [dim])
        s.case("prod.dim", torch_prod, T(e), dim)
        for p in (INF, -INF, 0.0, 1.0, 2.0):
            s.case("norm.dims", torch.norm, T(e), p, [dim])
s.case("logsumexp", torch_logsumexp, T(torch.full((2, 3), -INF)), [1])  # all -inf: -inf, not NaN
s.case("logsumexp", torch_logsumexp, T(torch.tensor([[INF, 1.0], [INF, -INF]])), [1])
s.case("logsumexp", torch_logsumexp, T(torch.tensor([[1000.0, 1000.0], [-1000.0, 0.0]])), [1])  # no overflow

# Integers sum and multiply in int64 (no wrap at the input's width); long 16-bit float sums accumulate
# in float32, as torch's (a bfloat16 accumulator would stall at 256 + 1).
s.case("sum", torch.sum, T(torch.tensor([[127, 127, 127], [-128, -128, -128]], dtype=torch.int8)))
s.case("sum.dims", torch.sum, T(torch.tensor([[255, 255, 255]], dtype=torch.uint8)), [1])
s.case("prod.dim", torch.prod, T(torch.tensor([[2 ** 20, 2 ** 20, 2 ** 20]], dtype=torch.int32)), 1)
s.case("sum", torch.sum, T(torch.ones(40, 50, dtype=torch.bfloat16)))
s.case("mean.dims", torch.mean, T(torch.ones(3, 1000, dtype=torch.float16)), [1])
s.case("sum.dims", torch.sum, T(torch.ones(3, 1000, dtype=torch.bfloat16), layout="transposed"), [-1])

# Long rows (the vectorised and parallel paths) along either dim, float32 and bfloat16.
wide = randn(4, 1000, seed=11)
for d in (torch.float32, torch.bfloat16):
    for dim in (0, 1):
        s.case("sum.dims", torch.sum, T(wide, dtype=d), [dim])
        s.case("mean.dims", torch.mean, T(wide, dtype=d), [dim])
        s.case("var.dims", torch.var, T(wide, dtype=d), [dim])
        s.case("std.dims", torch.std, T(wide, dtype=d), [dim])
        s.case("logsumexp", torch_logsumexp, T(wide, dtype=d), [dim])
        s.case("norm.dims", torch.norm, T(wide, dtype=d), 2.0, [dim])
        s.case("max.dim", torch.max, T(wide, dtype=d), dim)
        s.case("argmin.dim", torch.argmin, T(wide, dtype=d), dim)
        s.case("prod.dim", torch_prod, T(1 + wide / 100, dtype=d), dim)
        s.case("any.dim", torch.any, T(wide > 2.5, dtype=d), dim)

# Several dims, negative dims, keepdim, layouts, gradients.
for layout in ("contiguous", "transposed", "strided"):
    for keep in (False, True):
        s.case("sum.dims", torch.sum, T(cube, layout=layout, grad=True), [0, -1], keepdim=keep)
        s.case("mean.dims", torch.mean, T(cube, layout=layout, grad=True), [-2], keepdim=keep)
        s.case("prod.dim", torch_prod, T(cube, layout=layout, grad=True), -1, keepdim=keep)
        s.case("max.dim", torch.max, T(cube, layout=layout, grad=True), 1, keepdim=keep)
        s.case("min.dim", torch.min, T(cube, layout=layout, grad=True), -1, keepdim=keep)
        s.case("argmax.dim", torch.argmax, T(cube, layout=layout), 2, keepdim=keep)
        s.case("argmin.dim", torch.argmin, T(cube, layout=layout), 0, keepdim=keep)
        s.case("all.dim", torch.all, T(cube > 0, layout=layout), 1, keepdim=keep)
        s.case("any.dim", torch.any, T(cube > 1, layout=layout), -1, keepdim=keep)
        s.case("var.dims", torch.var, T(cube, layout=layout, grad=True), [0, 2], unbiased=keep, keepdim=keep)
        s.case("std.dims", torch.std, T(cube, layout=layout, grad=True), [1], unbiased=not keep, keepdim=keep)
        s.case("logsumexp", torch_logsumexp, T(cube, layout=layout, grad=True), [-1, 0], keepdim=keep)
        s.case("norm.dims", torch.norm, T(cube, layout=layout, grad=True), 3.0, [1, 2], keepdim=keep)
    for op in ("sum", "mean", "prod", "max", "min", "var", "std", "norm"):
        s.case(op, FULL[op], T(x, layout=layout, grad=True))
    s.case("argmax", torch.argmax, T(x, layout=layout))
    s.case("argmin", torch.argmin, T(x, layout=layout))
s.case("sum.dim", torch.sum, T(cube, grad=True), -2, keepdim=True)
s.case("sum.method_dim", lambda t, d: t.sum(d), T(cube, grad=True), 1)
s.case("mean.dim", torch.mean, T(cube, grad=True), 0, keepdim=True)
s.case("mean.method_dim", lambda t, d: t.mean(d), T(cube, grad=True), -1)
s.case("mean.dims", torch.mean, T(values_for(torch.int64)), [0])  # torch raises: mean of integers
s.case("sum.dims", torch.sum, T(cube), [0, 0])  # a repeated dim: torch raises
s.case("sum.dims", torch.sum, T(cube), [3])  # out of range: torch raises
s.case("sum.dims", torch.sum, T(cube), [-4])
s.case("max.dim", torch.max, T(cube), 3)
s.case("argmax.dim", torch.argmax, T(cube), -4)
s.case("prod.dim", torch_prod, T(cube), 5)
s.case("all.dim", torch.all, T(cube > 0), 3)
s.case("var.dims", torch.var, T(cube), [7])
s.case("logsumexp", torch_logsumexp, T(cube), [3])
s.case("norm.dims", torch.norm, T(cube), 2.0, [3])

# Gradients through ties, zeros and degenerate lanes.
ties = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0], [0.0, -5.0, 4.0, 4.0]], dtype=torch.float64)
s.case("max", torch.max, T(ties, grad=True))
s.case("min", torch.min, T(-ties, grad=True))
s.case("max.dim", torch.max, T(ties, grad=True), 1)
s.case("min.dim", torch.min, T(ties, grad=True), 1)
s.case("argmax.dim", torch.argmax, T(ties), 1)  # the first of tied maxima
s.case("argmin.dim", torch.argmin, T(ties), 0)
s.case("argmax", torch.argmax, T(ties))
zeros_in = torch.tensor([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0], [1.5, -2.0, 0.5]], dtype=torch.float64)
s.case("prod", torch_prod, T(zeros_in[2:], grad=True))
s.case("prod", torch_prod, T(zeros_in[:1], grad=True))  # one zero
s.case("prod", torch_prod, T(zeros_in[:2], grad=True))  # three zeros
s.case("prod.dim", torch_prod, T(zeros_in, grad=True), 1)
s.case("prod.dim", torch_prod, T(zeros_in, grad=True), 0)
s.case("norm", torch.norm, T(torch.zeros(2, 3, dtype=torch.float64), grad=True))  # zero: gradient 0
s.case("var.dims", torch.var, T(x[:1], grad=True), [0])  # one element, unbiased: NaN
s.case("var.dims", torch.var, T(x[:1], grad=True), [0], unbiased=False)
s.case("std.dims", torch.std, T(torch.ones(2, 3, dtype=torch.float64), grad=True), [1])  # std 0: NaN grad? torch's
s.case("logsumexp", torch_logsumexp, T(ties, grad=True), [1])

# 0-dim and empty tensors.
z = torch.tensor(1.5, dtype=torch.float64)
for op in ("sum", "mean", "prod", "max", "min", "argmax", "argmin", "all", "any", "var", "std", "norm"):
    # var/std of one element is NaN; its gradient is NaN in weft (torch's 0-dim path gives inf).
    s.case(op, FULL[op], T(z, grad=op not in ("argmax", "argmin", "all", "any", "var", "std")))
    s.case(op, FULL[op], T(torch.zeros(0, 3)))
s.case("sum.dims", torch.sum, T(z, grad=True), [0])
s.case("sum.dims", torch.sum, T(z), [-1])
s.case("max.dim", torch.max, T(z, grad=True), 0)
s.case("argmax.dim", torch.argmax, T(z), -1)
s.case("logsumexp", torch_logsumexp, T(z, grad=True), [0])
s.case("prod.dim", torch_prod, T(z, grad=True), 0, keepdim=True)
empty = torch.zeros(0, 3)
for dim in (0, 1):
    s.case("sum.dims", torch.sum, T(empty), [dim])
    s.case("mean.dims", torch.mean, T(empty), [dim])
    s.case("prod.dim", torch_prod, T(empty), dim)
    s.case("max.dim", torch.max, T(empty), dim)  # over the empty dim torch raises
    s.case("min.dim", torch.min, T(empty), dim)
    s.case("argmax.dim", torch.argmax, T(empty), dim)
    s.case("all.dim", torch.all, T(empty), dim)
    s.case("any.dim", torch.any, T(empty), dim)
    s.case("var.dims", torch.var, T(empty), [dim])
    s.case("logsumexp", torch_logsumexp, T(empty), [dim])
    s.case("norm.dims", torch.norm, T(empty), 2.0, [dim])
    s.case("norm.dims", torch.norm, T(empty), INF, [dim])
    s.case("norm.dims", torch.norm, T(empty), -INF, [dim])
    s.case("norm.dims", torch.norm, T(empty), -1.0, [dim])
s.case("norm", torch.norm, T(empty), INF)

# norm: every p torch.norm takes as a number (inf, -inf, 0, fractional, negative) and "fro"/"nuc".
for p in (2.0, 1.0, 3.0, 0.5, 1.5, 0.0, INF, -INF, -1.0, -2.5):
    s.case("norm", torch.norm, T(x, grad=p != 0.0), p)
    s.case("norm.dims", torch.norm, T(cube, grad=p != 0.0, layout="transposed"), p, [-1])
    s.case("norm.dims", torch.norm, T(cube, grad=p != 0.0), p, [0, 2], keepdim=True)
    s.case("norm.dims", torch.norm, T(cube, dtype=torch.float32), p, [1])
    s.case("norm.dims", torch.norm, T(cube, dtype=torch.bfloat16), p, [1])
    s.case("norm.dims", torch.norm, T(zeros_in, grad=p > 0 and p != INF), p, [1])  # zeros (no inf: tied)
s.case("norm.dims", torch.norm, T(ties, grad=True), INF, [1])  # tied largest |x|: torch shares the gradient
s.case("norm.dims", torch.norm, T(ties, grad=True), -INF, [1])
s.case("norm.str", torch.norm, T(x, grad=True), "fro")
s.case("norm.str", torch.norm, T(cube, grad=True), "fro", [1, 2])
s.case("norm.str", torch.norm, T(cube, grad=True), "fro", [0], keepdim=True)
s.case("norm.str", torch.norm, T(x), "nuc", expect_error=True,
       why="the nuclear norm (a sum of singular values) is not implemented; weft refuses it")
s.case("norm.str", torch.norm, T(x), "abc")
for d in ALL_DTYPES:
    s.case("norm", torch.norm, T(values_for(d)), 1.0)

# equal and allclose (booleans).
a = torch.tensor([[1.0, 2.0, NAN], [INF, -0.0, 1e-9]])
for other, d in ((a.clone(), None), (a + 1e-6, None), (a[:1], None), (a, torch.float32)):
    b = other if d is None else other.to(d)
    s.case("equal", torch.equal, T(a), T(b))
    s.case("allclose", torch.allclose, T(a), T(b))
s.case("allclose", torch.allclose, T(a), T(a + 1e-6), rtol=0.0, atol=1e-5)
s.case("allclose", torch.allclose, T(a), T(a + 1e-3), rtol=1e-2, atol=0.0)
s.case("allclose", torch.allclose, T(a[:1]), T(a))  # broadcast
s.case("allclose", torch.allclose, T(a), T(a[:, :2]))  # do not broadcast
s.case("equal", torch.equal, T(values_for(torch.int64)), T(values_for(torch.int64)))
s.case("equal", torch.equal, T(values_for(torch.int64)), T(values_for(torch.int32)))
s.case("equal", torch.equal, T(x, layout="transposed"), T(x, layout="strided"))
s.case("equal", torch.equal, T(torch.zeros(0, 2)), T(torch.zeros(0, 2)))
s.case("equal", torch.equal, T(torch.zeros(2)), T(torch.zeros(3)))

# sum_to: the gradient of a broadcast (torch's sum_to_size).
for shape in ((3, 4), (1, 4), (3, 1), (4,), (1,), (), (1, 1)):
    s.case("sum_to", lambda t, sh: t.sum_to_size(sh) if sh else t.sum(), T(x, grad=True, layout="transposed"), list(shape))
s.case("sum_to", lambda t, sh: t.sum_to_size(sh), T(cube, grad=True), [3, 1])
s.case("sum_to", lambda t, sh: t.sum_to_size(sh), T(values_for(torch.int32)), [1, 4])
s.case("sum_to", lambda t, sh: t.sum_to_size(sh), T(x), [2, 4])  # does not broadcast to x: torch raises
s.write(sys.argv[1])
