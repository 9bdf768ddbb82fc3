"""Conformance cases of ops/scatter.h against PyTorch 1.13: scatter, scatter_add, scatter_reduce
(every reduce, with and without include_self), index_fill, index_copy, masked_select,
masked_scatter, nonzero, unique."""
import sys
import warnings

import torch

from conformance import ALL_DTYPES, LAYOUTS, Suite, T, ints, randn

s = Suite()
warnings.filterwarnings("ignore", message="scatter_reduce\\(\\) is in beta")
warnings.filterwarnings("ignore", message="masked_select received a mask with dtype torch.uint8")
REDUCES = ("sum", "prod", "mean", "amax", "amin")


def I(v):
    return T(v, dtype=torch.int64)


x = randn(3, 4)
src = randn(3, 4, seed=3)
# distinct targets (scatter's result is then defined) and repeated ones (reductions)
idx0 = [[2, 0, 1, 2], [0, 1, 2, 0]]            # dim 0, index [2, 4]
idx1 = [[3, 0], [1, 2], [2, 3]]                  # dim 1, index [3, 2]
rep0 = [[0, 0, 1, 2], [0, 2, 1, 2], [0, 0, 0, 2]]  # dim 0, repeated targets
rep1 = [[1, 1, 1, 0], [3, 3, 2, 3], [0, 1, 0, 1]]  # dim 1

for layout in LAYOUTS:
    # (PyTorch 1.13's backward fails for a src larger than index: those cases compare no gradient)
    s.case("scatter", torch.scatter, T(x, layout=layout, grad=True), 0, I(idx0), T(randn(2, 4, seed=5), grad=True))
    s.case("scatter", torch.scatter, T(x, grad=True), 1, I(idx1), T(randn(3, 2, seed=6), layout=layout, grad=True))
    s.case("scatter", torch.scatter, T(x, layout=layout), 0, I(idx0), T(src, layout=layout))
    s.case("scatter", torch.scatter, T(x, layout=layout, grad=True), -1, I(rep1), T(src, grad=True))
    s.case("scatter.value", torch.scatter, T(x, layout=layout, grad=True), 1, I(idx1), 2.5)
    s.case("scatter_add", torch.scatter_add, T(x, layout=layout, grad=True), 0, I(rep0), T(src, grad=True))
    s.case("scatter_add", torch.scatter_add, T(x, grad=True), -1, I(rep1), T(src, layout=layout, grad=True))


# PyTorch 1.13's amax/amin gradient without include_self still counts x's own value among the ties
# where it equals the result (x[0, 0] = 1 below), so the tied src values get a third of the gradient
# each and the shares sum to less than one; later versions leave x out. Deliberate difference: weft
# shares among the values that took part, and the case compares with torch on the same problem
# spelled with x's reached elements replaced by the identity (-inf for amax), include_self=True.
def scatter_reduce_excluding_self(x, d, index, src, reduce, include_self):
    reached = torch.zeros_like(x, dtype=torch.bool).scatter(d, index, True)
    identity = -float("inf") if reduce == "amax" else float("inf")
    return torch.scatter_reduce(x.masked_fill(reached, identity), d, index, src, reduce, include_self=True)


for reduce in REDUCES:
    for include_self in (True, False):
        for d, index in ((0, rep0), (1, rep1), (-2, idx0)):
            grad = True
            s.case("scatter_reduce", torch.scatter_reduce, T(x, grad=grad), d, I(index),
                   T(src[:len(index)], grad=grad), reduce, include_self=include_self)
        s.case("scatter_reduce", torch.scatter_reduce, T(x), 1, I(idx1), T(src), reduce, include_self=include_self)
        # ties: every tied contribution gets an equal share of amax/amin's gradient
        tied = T([[1.0, 2.0], [1.0, 2.0], [3.0, 0.5]], grad=True)
        fn = torch.scatter_reduce
        if reduce in ("amax", "amin") and not include_self:
            fn = scatter_reduce_excluding_self
        s.case("scatter_reduce", fn, T([[1.0, 0.0], [5.0, 2.0]], grad=True), 0,
               I([[0, 0], [0, 0], [1, 0]]), tied, reduce, include_self=include_self)
        for dtype in ALL_DTYPES:
            a = ints([2, 3], dtype, 1)
            s.case("scatter_reduce", torch.scatter_reduce, T(a), 1, I([[0, 0, 2], [1, 1, 1]]), T(ints([2, 3], dtype, 2)),
                   reduce, include_self=include_self)
        special = T([[float("nan"), 1.0], [float("inf"), -0.0], [-float("inf"), 0.0]])
        s.case("scatter_reduce", torch.scatter_reduce, T([[0.0, 0.0], [1.0, 1.0]]), 0, I([[0, 0], [0, 0], [1, 1]]),
               special, reduce, include_self=include_self)
# prod's gradient with zeros: a lone zero among the factors of an output, two zeros, a zero in x
zx = T([[0.0, 2.0, 3.0], [1.5, 0.0, -1.0]], dtype=torch.float64, grad=True)
zs = T([[2.0, 0.0, 0.5], [0.0, 0.0, 4.0], [3.0, -2.0, 0.0]], dtype=torch.float64, grad=True)
for include_self in (True, False):
    s.case("scatter_reduce", torch.scatter_reduce, zx, 0, I([[0, 1, 0], [0, 1, 1], [1, 1, 0]]), zs, "prod",
           include_self=include_self)
for dtype in ALL_DTYPES:
    s.case("scatter", torch.scatter, T(ints([2, 3], dtype)), 1, I([[2, 0], [1, 0]]), T(ints([2, 2], dtype, 5)))
    s.case("scatter.value", torch.scatter, T(ints([2, 3], dtype)), 0, I([[1, 0, 1]]), 1)
    s.case("scatter_add", torch.scatter_add, T(ints([2, 3], dtype)), 1, I([[2, 2], [0, 0]]), T(ints([2, 2], dtype, 5)))
s.case("scatter", torch.scatter, T(torch.tensor(1.0), grad=True), 0, T(0, dtype=torch.int64), T(torch.tensor(3.0), grad=True))
s.case("scatter_add", torch.scatter_add, T(torch.tensor(1.0), grad=True), 0, T(0, dtype=torch.int64), T(torch.tensor(3.0), grad=True))
s.case("scatter", torch.scatter, T(x, grad=True), 0, T(torch.zeros(0, 4, dtype=torch.int64)), T(src))
s.case("scatter_add", torch.scatter_add, T(torch.zeros(0, 2)), 1, T(torch.zeros(0, 2, dtype=torch.int64)), T(torch.zeros(0, 2)))
s.case("scatter", torch.scatter, T(x), 0, I([[3, 0]]), T(src))
s.case("scatter", torch.scatter, T(x), 0, I([[-1, 0]]), T(src))
s.case("scatter", torch.scatter, T(x), 2, I([[0]]), T(src))
s.case("scatter", torch.scatter, T(x), 0, I([0, 1]), T(src))
s.case("scatter", torch.scatter, T(x), 0, I([[0, 1, 2, 0, 1]]), T(randn(1, 5)))
s.case("scatter", torch.scatter, T(x), 0, I([[0, 1, 2, 0]] * 4), T(src))  # index larger than src
s.case("scatter", torch.scatter, T(x), 0, T([[0, 1]], dtype=torch.int32), T(src))
s.case("scatter", torch.scatter, T(x), 0, I([[0, 1]]), T(src, dtype=torch.float32))
s.case("scatter_add", torch.scatter_add, T(x), 1, I([[4]]), T(src))
s.case("scatter_reduce", torch.scatter_reduce, T(x), 0, I(rep0), T(src), "max")
s.case("scatter_reduce", torch.scatter_reduce, T(x), 0, I([[3, 0]]), T(src), "sum")

# index_fill / index_copy: slices along dim named by a 1-D index
for layout in LAYOUTS:
    for d, index in ((0, [2, 0]), (1, [3]), (-1, [1, 1, 0]), (0, []), (1, [-1])):
        s.case("index_fill", torch.index_fill, T(x, layout=layout, grad=True), d, I(index), -1.5)
    s.case("index_copy", torch.index_copy, T(x, layout=layout, grad=True), 0, I([2, 0]), T(randn(2, 4), grad=True))
    s.case("index_copy", torch.index_copy, T(x, grad=True), 1, I([3, 1, 0]), T(randn(3, 3), layout=layout, grad=True))
s.case("index_fill", torch.index_fill, T(x, grad=True), 1, T(2, dtype=torch.int64), float("nan"))
s.case("index_copy", torch.index_copy, T(x, grad=True), -1, I([]), T(torch.zeros(3, 0), grad=True))
for dtype in ALL_DTYPES:
    s.case("index_fill", torch.index_fill, T(ints([2, 3], dtype)), 1, I([0, 2]), 1)
    s.case("index_copy", torch.index_copy, T(ints([3, 2], dtype)), 0, I([2, 0]), T(ints([2, 2], dtype, 4)))
s.case("index_fill", torch.index_fill, T(torch.tensor(1.0), grad=True), 0, I([0]), 2.0)
s.case("index_copy", torch.index_copy, T(torch.tensor(1.0), grad=True), 0, I([0]), T(torch.tensor(2.0), grad=True))
s.case("index_fill", torch.index_fill, T(x), 0, I([3]), 1.0)
s.case("index_fill", torch.index_fill, T(x), 0, I([-4]), 1.0)
s.case("index_fill", torch.index_fill, T(x), 0, I([-3, 1]), 1.0)
s.case("index_copy", torch.index_copy, T(x), 1, I([-1]), T(randn(3, 1)))  # index_copy takes no negative index
s.case("index_fill", torch.index_fill, T(x), 2, I([0]), 1.0)
s.case("index_fill", torch.index_fill, T(x), 0, I([[0]]), 1.0)
s.case("index_fill", torch.index_fill, T(x), 0, T([0], dtype=torch.int32), 1.0)
s.case("index_copy", torch.index_copy, T(x), 0, I([3]), T(randn(1, 4)))
s.case("index_copy", torch.index_copy, T(x), 0, I([0, 1]), T(randn(2, 3)))
s.case("index_copy", torch.index_copy, T(x), 0, I([0]), T(randn(1, 4), dtype=torch.float32))
s.case("index_copy", torch.index_copy, T(x), 0, T([0], dtype=torch.int32), T(randn(1, 4)))

# masked_select / masked_scatter, the mask broadcast with x
m34 = T([[True, False, True, True], [False, False, False, False], [True, True, False, True]])
m4 = T([False, True, True, False])
m31 = T([[True], [False], [True]])


# PyTorch 1.13's masked_select gradient for a transposed input lands in memory order, not at the
# selected elements (x[0, 2] gets the gradient of x[2, 0]). Deliberate difference: weft's is right;
# those cases compare with torch's masked_select of a contiguous copy (the same function of x).
def masked_select_of_copy(t, mask):
    return torch.masked_select(t.contiguous(), mask)


for layout in LAYOUTS:
    for mask in (m34, m4, m31, T(True), T(False)):
        select = masked_select_of_copy if layout == "transposed" else torch.masked_select
        s.case("masked_select", select, T(x, layout=layout, grad=True), mask)
        s.case("masked_scatter", torch.masked_scatter, T(x, layout=layout, grad=True), mask,
               T(randn(4, 4, seed=4), grad=True))
s.case("masked_select", torch.masked_select, T(randn(4), grad=True), m34)  # x broadcast to the mask
s.case("masked_scatter", torch.masked_scatter, T(randn(4), grad=True), m34, T(randn(3, 5), grad=True))
s.case("masked_select", torch.masked_select, T(x), T(m34.tensor.t().contiguous().t(), layout="transposed"))
for dtype in ALL_DTYPES:
    s.case("masked_select", torch.masked_select, T(ints([2, 2], dtype)), T([[True, False], [True, True]]))
    s.case("masked_scatter", torch.masked_scatter, T(ints([2, 2], dtype)), T([True, False]), T(ints([3], dtype, 7)))
s.case("masked_select", torch.masked_select, T(torch.tensor(1.0), grad=True), T(True))
s.case("masked_select", torch.masked_select, T(torch.zeros(0, 4)), m4)
s.case("masked_scatter", torch.masked_scatter, T(torch.tensor(1.0), grad=True), T(True), T([5.0, 6.0], grad=True))
s.case("masked_select", torch.masked_select, T(x), T([True, False]))
s.case("masked_select", torch.masked_select, T(x), T([[1, 0, 1, 1]] * 3, dtype=torch.uint8), expect_error=True,
       why="uint8 masks are deprecated in PyTorch (a warning); weft takes bool masks only")
s.case("masked_select", torch.masked_select, T(x), T([[1, 0, 1, 1]] * 3, dtype=torch.int64))
s.case("masked_scatter", torch.masked_scatter, T(x), m34, T(randn(2)))
s.case("masked_scatter", torch.masked_scatter, T(x), T([True, False]), T(randn(8)))
s.case("masked_scatter", torch.masked_scatter, T(x), m34, T(randn(8), dtype=torch.float32))
s.case("masked_scatter", torch.masked_scatter, T(x), T([[1, 0, 1, 1]] * 3, dtype=torch.int64), T(randn(9)),
       expect_error=True, why="PyTorch 1.13 takes an integer mask of 0s and 1s here; weft takes bool masks only")

# nonzero: [count, rank] coordinates in row-major order
for layout in LAYOUTS:
    s.case("nonzero", torch.nonzero, T([[0.0, 1.5, 0.0], [-0.0, float("nan"), 2.0]], layout=layout))
for dtype in ALL_DTYPES:
    s.case("nonzero", torch.nonzero, T(ints([2, 3], dtype)))
s.case("nonzero", torch.nonzero, T(torch.tensor(3.0)))
s.case("nonzero", torch.nonzero, T(torch.tensor(0.0)))
s.case("nonzero", torch.nonzero, T(torch.zeros(0, 3)))
s.case("nonzero", torch.nonzero, T(torch.zeros(2, 2, 2)))
s.case("nonzero", torch.nonzero, T([float("inf"), -float("inf"), 1e-300, -1e-45]))


# unique (sorted), with inverse and counts as asked
def unique(t, inverse, counts):
    return torch.unique(t, sorted=True, return_inverse=bool(inverse), return_counts=bool(counts))


vals = T([[3.0, 1.0, 3.0], [-0.0, 0.0, 1.0]])
for layout in LAYOUTS:
    for inv, cnt in ((False, False), (True, False), (False, True), (True, True)):
        s.case("unique", unique, T(vals.tensor, layout=layout), inv, cnt)
# PyTorch 1.13 has no unique for float16 (later versions do); weft takes it. Deliberate difference:
# that case compares with torch's unique in float32, the values converted back (exact).
def unique_via_float32(t, inverse, counts):
    values, *rest = unique(t.float(), inverse, counts)
    return (values.half(), *rest)


for dtype in ALL_DTYPES:
    s.case("unique", unique_via_float32 if dtype == torch.float16 else unique,
           T(torch.tensor([[3, 1, 3], [0, 2, 1]]).to(dtype)), True, True)
s.case("unique", unique, T(torch.tensor(2.0)), True, True)
s.case("unique", unique, T(torch.zeros(0, 3)), True, True)
s.case("unique", unique, T([float("inf"), -float("inf"), 1.0, float("inf")]), True, True)
# NaNs: each is its own value, in torch as in weft; but PyTorch 1.13's inverse maps them to 0 and counts
# them 0 times (weft: their own positions, once each). Deliberate difference: only the values compared.
s.case("unique", unique, T([float("nan"), 1.0, float("nan"), -0.0, 0.0]), False, False)
# gradients keep the input's floating dtype
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    s.case("scatter_add", torch.scatter_add, T(x, dtype=dtype, grad=True), 0, I(rep0), T(src, dtype=dtype, grad=True))
    s.case("scatter_reduce", torch.scatter_reduce, T(x, dtype=dtype, grad=True), 1, I(rep1),
           T(src, dtype=dtype, grad=True), "mean")
    s.case("masked_select", torch.masked_select, T(x, dtype=dtype, grad=True), m34)
    s.case("index_copy", torch.index_copy, T(x, dtype=dtype, grad=True), 0, I([2, 0]),
           T(randn(2, 4), dtype=dtype, grad=True))
s.write(sys.argv[1])
