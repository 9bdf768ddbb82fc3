"""Conformance cases of ops/linalg.h (mm, bmm, matmul over every rank pair torch takes, addmm,
linear, outer) and ops/einsum.h against PyTorch 1.13.

Floating cases compare with torch computed in float64 and rounded to the case's dtype (its
gradients too), so a float32 or bfloat16 result is held to the exact answer within the dtype's
tolerance rather than to torch's own rounding."""
import functools
import sys

import torch

from conformance import FLOATING, LAYOUTS, Suite, T, randn

s = Suite()
INTS = (torch.uint8, torch.int8, torch.int32, torch.int64)


def exact(fn):
    """fn computed in float64 and rounded back to the floating inputs' dtype."""
    def run(*args, **kwargs):
        dtypes = [t.dtype for a in args for t in (a if isinstance(a, list) else [a]) if isinstance(t, torch.Tensor)]
        dtype = functools.reduce(torch.promote_types, dtypes) if dtypes else torch.float64
        if not dtype.is_floating_point:
            return fn(*args, **kwargs)
        wide = [a.double() if isinstance(a, torch.Tensor) else
                [t.double() for t in a] if isinstance(a, list) else a for a in args]
        out = fn(*wide, **kwargs)
        return out.to(dtype)
    return run


def vals(*shape, dtype=torch.float64, seed=1):
    """Small integers in integer dtypes (no overflow: uint8 products stay below 256 for small K)."""
    if dtype.is_floating_point:
        return randn(*shape, seed=seed).to(dtype)
    g = torch.Generator().manual_seed(seed)
    lo = 0 if dtype == torch.uint8 else -3
    return torch.randint(lo, 4, shape, generator=g).to(dtype)


# PyTorch 1.13 has no CPU matmul for float16 (later versions do); weft takes it, with float32
# accumulation. Deliberate difference: float16 cases compare with the float64 answer like the rest.
# mm
for layout in LAYOUTS:
    s.case("mm", exact(torch.mm), T(randn(3, 4), layout=layout, grad=True), T(randn(4, 2, seed=2), grad=True))
    s.case("mm", exact(torch.mm), T(randn(3, 4), grad=True), T(randn(4, 2, seed=2), layout=layout, grad=True))
for dtype in FLOATING + INTS:
    grad = dtype.is_floating_point
    s.case("mm", exact(torch.mm), T(vals(5, 7, dtype=dtype), grad=grad), T(vals(7, 3, dtype=dtype, seed=2), grad=grad))
    s.case("mm", exact(torch.mm), T(vals(2, 3, dtype=dtype), layout="transposed"), T(vals(3, 4, dtype=dtype, seed=2), layout="transposed"))
s.case("mm", exact(torch.mm), T(randn(64, 48)), T(randn(48, 40, seed=2)))  # past oneDNN's small-size path
s.case("mm", exact(torch.mm), T(randn(64, 48), dtype=torch.float32), T(randn(48, 40, seed=2), dtype=torch.float32),
       rtol=1e-5, atol=1e-4)  # 48-term sums of O(1) products in float32: |error| ~ 48 * 2^-24 * 7
s.case("mm", exact(torch.mm), T(torch.zeros(0, 3), grad=True), T(randn(3, 2), dtype=torch.float32, grad=True))
s.case("mm", exact(torch.mm), T(torch.zeros(2, 0), grad=True), T(torch.zeros(0, 3), grad=True))
s.case("mm", exact(torch.mm), T([[float("inf"), 1.0]], dtype=torch.float64), T([[1.0], [float("nan")]], dtype=torch.float64))
s.case("mm", exact(torch.mm), T([[1e300, 1e300]], dtype=torch.float64), T([[1e10], [-1e10]], dtype=torch.float64))
s.case("mm", torch.mm, T(vals(2, 2, dtype=torch.bool)), T(vals(2, 2, dtype=torch.bool)))
s.case("mm", torch.mm, T(randn(2, 3)), T(randn(2, 3)))
s.case("mm", torch.mm, T(randn(2, 3)), T(randn(3)))
s.case("mm", torch.mm, T(randn(2, 3)), T(randn(3, 2), dtype=torch.float32))
s.case("mm", torch.mm, T(randn(2, 3, 1)), T(randn(3, 2)))

# bmm
for layout in LAYOUTS:
    s.case("bmm", exact(torch.bmm), T(randn(2, 3, 4), layout=layout, grad=True), T(randn(2, 4, 5, seed=2), grad=True))
    s.case("bmm", exact(torch.bmm), T(randn(2, 3, 4), grad=True), T(randn(2, 4, 5, seed=2), layout=layout, grad=True))
for dtype in FLOATING + INTS:
    grad = dtype.is_floating_point
    s.case("bmm", exact(torch.bmm), T(vals(2, 3, 4, dtype=dtype), grad=grad), T(vals(2, 4, 2, dtype=dtype, seed=2), grad=grad))
s.case("bmm", exact(torch.bmm), T(torch.zeros(0, 3, 4), grad=True), T(torch.zeros(0, 4, 2), grad=True))
s.case("bmm", exact(torch.bmm), T(torch.zeros(2, 3, 0), grad=True), T(torch.zeros(2, 0, 2), grad=True))
s.case("bmm", torch.bmm, T(vals(2, 2, 2, dtype=torch.bool)), T(vals(2, 2, 2, dtype=torch.bool)))
s.case("bmm", torch.bmm, T(randn(2, 3, 4)), T(randn(3, 4, 5)))
s.case("bmm", torch.bmm, T(randn(2, 3, 4)), T(randn(2, 5, 4)))
s.case("bmm", torch.bmm, T(randn(3, 4)), T(randn(4, 5)))
s.case("bmm", torch.bmm, T(randn(2, 3, 4)), T(randn(2, 4, 5), dtype=torch.float32))

# matmul: every rank pair (1-D on the left is a row, on the right a column; batch dims broadcast)
shapes = [((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((3, 4), (4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
          ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
          ((1, 3, 4), (2, 1, 4, 2)), ((2, 2, 3, 4), (4,)), ((4,), (2, 2, 4, 1)), ((0, 3, 4), (4, 2)),
          ((3, 0), (0, 2)), ((2, 3, 4), (1, 4, 2))]
for sa, sb in shapes:
    s.case("matmul", exact(torch.matmul), T(randn(*sa), grad=True), T(randn(*sb, seed=2), grad=True))
for layout in LAYOUTS[1:]:
    s.case("matmul", exact(torch.matmul), T(randn(2, 3, 4), layout=layout, grad=True),
           T(randn(4, 5, seed=2), layout=layout, grad=True))
    s.case("matmul", exact(torch.matmul), T(randn(3, 4), layout=layout, grad=True), T(randn(4, seed=2), grad=True))
    s.case("matmul", exact(torch.matmul), T(randn(4), grad=True), T(randn(2, 4, 3, seed=2), layout=layout, grad=True))
for dtype in FLOATING + INTS:
    grad = dtype.is_floating_point
    for sa, sb in (((4,), (4,)), ((2, 3, 4), (4,)), ((3, 4), (2, 4, 2))):
        s.case("matmul", exact(torch.matmul), T(vals(*sa, dtype=dtype), grad=grad), T(vals(*sb, dtype=dtype, seed=2), grad=grad))
s.case("matmul", torch.matmul, T(torch.tensor(2.0)), T(randn(3)))
s.case("matmul", torch.matmul, T(randn(3)), T(torch.tensor(2.0)))
s.case("matmul", torch.matmul, T(randn(3)), T(randn(4)))
s.case("matmul", torch.matmul, T(randn(2, 3)), T(randn(4, 2)))
s.case("matmul", torch.matmul, T(randn(2, 2, 3)), T(randn(3, 3, 2)))
s.case("matmul", torch.matmul, T(randn(3)), T(randn(3), dtype=torch.float32))
s.case("matmul", torch.matmul, T(vals(3, dtype=torch.bool)), T(vals(3, dtype=torch.bool)))

# addmm: beta * input + alpha * a @ b, input broadcast
for layout in LAYOUTS:
    s.case("addmm", exact(torch.addmm), T(randn(3, 2, seed=3), layout=layout, grad=True), T(randn(3, 4), grad=True),
           T(randn(4, 2, seed=2), layout=layout, grad=True))
for inp in ((3, 2), (2,), (1, 2), (3, 1), ()):
    for beta, alpha in ((1, 1), (0.5, -2.0), (0, 1), (2, 0)):
        s.case("addmm", exact(torch.addmm), T(randn(*inp, seed=3) if inp else torch.tensor(0.7, dtype=torch.float64), grad=True),
               T(randn(3, 4), grad=True), T(randn(4, 2, seed=2), grad=True), beta=beta, alpha=alpha)
# beta = 0 ignores the input, NaN and all, as torch does
s.case("addmm", exact(torch.addmm), T([[float("nan"), 1.0]], dtype=torch.float64), T(randn(1, 2)), T(randn(2, 2)), beta=0)
for dtype in FLOATING + INTS:
    grad = dtype.is_floating_point
    s.case("addmm", exact(torch.addmm), T(vals(2, 3, dtype=dtype, seed=3), grad=grad), T(vals(2, 4, dtype=dtype), grad=grad),
           T(vals(4, 3, dtype=dtype, seed=2), grad=grad), beta=2, alpha=3)
# PyTorch 1.13 truncates a fractional beta or alpha to an integer for integer operands (beta=0.5
# drops the input); weft raises instead of computing something else than was written.
s.case("addmm", torch.addmm, T(vals(2, 2, dtype=torch.int64)), T(vals(2, 2, dtype=torch.int64)),
       T(vals(2, 2, dtype=torch.int64)), beta=0.5, expect_error=True,
       why="a fractional beta or alpha with integer operands: torch truncates it, weft raises")
s.case("addmm", torch.addmm, T(vals(2, 2, dtype=torch.int32)), T(vals(2, 2, dtype=torch.int32)),
       T(vals(2, 2, dtype=torch.int32)), alpha=1.5, expect_error=True,
       why="a fractional beta or alpha with integer operands: torch truncates it, weft raises")
s.case("addmm", torch.addmm, T(vals(2, 2, dtype=torch.int32)), T(vals(2, 2, dtype=torch.int32)),
       T(vals(2, 2, dtype=torch.int32)), beta=2.0, alpha=-1.0)  # whole numbers written as floats are fine
s.case("addmm", torch.addmm, T(randn(3, 3)), T(randn(3, 4)), T(randn(4, 2)))
s.case("addmm", torch.addmm, T(randn(3, 2)), T(randn(3, 4)), T(randn(3, 2)))
s.case("addmm", torch.addmm, T(randn(3, 2), dtype=torch.float32), T(randn(3, 4)), T(randn(4, 2)))

# linear: x @ weight^T + bias, any batch dims
for layout in LAYOUTS:
    s.case("linear", exact(torch.nn.functional.linear), T(randn(2, 3, 4), layout=layout, grad=True),
           T(randn(5, 4, seed=2), layout=layout, grad=True), T(randn(5, seed=3), grad=True))
for xs in ((4,), (3, 4), (2, 2, 3, 4), (0, 4)):
    s.case("linear", exact(torch.nn.functional.linear), T(randn(*xs), grad=True), T(randn(5, 4, seed=2), grad=True),
           T(randn(5, seed=3), grad=True))
    s.case("linear", exact(torch.nn.functional.linear), T(randn(*xs), grad=True), T(randn(5, 4, seed=2), grad=True))
for dtype in FLOATING + INTS:
    grad = dtype.is_floating_point
    s.case("linear", exact(torch.nn.functional.linear), T(vals(3, 4, dtype=dtype), grad=grad),
           T(vals(2, 4, dtype=dtype, seed=2), grad=grad), T(vals(2, dtype=dtype, seed=3), grad=grad))
s.case("linear", torch.nn.functional.linear, T(randn(3, 4)), T(randn(5, 3)))
s.case("linear", torch.nn.functional.linear, T(randn(3, 4)), T(randn(5, 4)), T(randn(4)))
s.case("linear", torch.nn.functional.linear, T(randn(3, 4), grad=True), T(randn(4), grad=True))  # one output
s.case("linear", torch.nn.functional.linear, T(randn(3, 4), grad=True), T(randn(4), grad=True), T(randn(1), grad=True))
s.case("linear", torch.nn.functional.linear, T(randn(3, 4)), T(randn(3)))
s.case("linear", torch.nn.functional.linear, T(randn(3, 4)), T(randn(5, 4), dtype=torch.float32))
s.case("linear", torch.nn.functional.linear, T(torch.tensor(1.0, dtype=torch.float64)), T(randn(5, 4)))

# outer
for layout in ("contiguous", "strided"):
    s.case("outer", exact(torch.outer), T(randn(3), layout=layout, grad=True), T(randn(4, seed=2), layout=layout, grad=True))
for dtype in FLOATING + INTS + (torch.bool,):
    s.case("outer", exact(torch.outer), T(vals(3, dtype=dtype)), T(vals(2, dtype=dtype, seed=2)))
s.case("outer", exact(torch.outer), T(torch.zeros(0), grad=True), T(randn(2), grad=True))
s.case("outer", exact(torch.outer), T([float("inf"), 0.0], dtype=torch.float64), T([0.0, -1.0], dtype=torch.float64))
s.case("outer", torch.outer, T(randn(3)), T(randn(2), dtype=torch.float32))  # mixed dtypes promote, as mul
s.case("outer", torch.outer, T(randn(3), dtype=torch.int64), T(randn(2)))
s.case("outer", torch.outer, T(randn(3, 1)), T(randn(2)))
s.case("outer", torch.outer, T(torch.tensor(1.0)), T(randn(2)))


# einsum
def einsum(eq, ops):
    return torch.einsum(eq, *ops)


def E(eq, *shapes, dtype=torch.float64, grad=True, layout="contiguous"):
    ops = [T(vals(*sh, dtype=dtype, seed=k + 1), grad=grad and dtype.is_floating_point,
             layout=layout if len(sh) >= 2 else "contiguous") for k, sh in enumerate(shapes)]
    s.case("einsum", exact(einsum), eq, ops)


E("ij,jk->ik", (3, 4), (4, 2))
E("ij,jk", (3, 4), (4, 2))
E("ij->ji", (3, 4))
E("ji", (3, 4))          # implicit output: the letters in order, so a transpose
E("ij", (3, 4))
E("ii->i", (3, 3))
E("ii", (3, 3))          # trace
E("ij->", (3, 4))
E("ij->j", (3, 4))
E("i,i->", (4,), (4,))
E("i,i", (4,), (4,))
E("i,j->ij", (3,), (4,))
E("i,j", (3,), (4,))
E("bij,bjk->bik", (2, 3, 4), (2, 4, 5))
E("bij,bkj->bik", (2, 3, 4), (2, 5, 4))
E("ij,ij->ij", (3, 4), (3, 4))
E("ij,ij->", (3, 4), (3, 4))
E("ab,ab->a", (3, 4), (3, 4))
E("ij,jk,kl->il", (2, 3), (3, 4), (4, 5))
E("iij->j", (3, 3, 2))
E("iji->j", (3, 2, 3))
E("iii->i", (2, 2, 2))
E("ijk,ikl->jl", (2, 3, 4), (2, 4, 5))
E("...ij,...jk->...ik", (2, 3, 4), (2, 4, 5))
E("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2))   # ellipsis dims broadcast
E("...ij,jk", (2, 3, 4), (4, 5))
E("i...->...", (3, 4, 5))
E("...i,i->...", (2, 3, 4), (4,))
E("...,...->...", (2, 3), (3,))
E("...", (2, 3))
E("i...j,j->i...", (2, 3, 4), (4,))
E("b...i,b...i->b", (2, 3, 4), (2, 3, 4))
E("ij,kl->ijkl", (2, 3), (2, 2))
E("i,i,i->i", (3,), (3,), (3,))
E("i->", (0,))
E("ij,jk->ik", (0, 3), (3, 2))
E("ij,jk->ik", (2, 0), (0, 3))
E(",->", (), ())
E("i,->i", (3,), ())
E("ij,jk->ik", (3, 4), (4, 2), layout="transposed")
E("bij,bjk->bik", (2, 3, 4), (2, 4, 5), layout="strided")
E("ii->i", (3, 3), layout="transposed")
E("ij,ji->", (3, 4), (4, 3), layout="strided")
E("i,i->i", (3,), (1,))        # a subscript of size 1 broadcasts against the others
E("ij,jk->ik", (2, 1), (3, 2))
E("ij,ij->ij", (1, 4), (3, 1))
E("bij,bjk->bik", (1, 2, 3), (4, 3, 2))
E("ijk->kji", (2, 3, 4))
E("ijk->", (2, 3, 4))
E("i j , j k -> i k", (2, 3), (3, 2))   # spaces are ignored
E("AB,Bc->Ac", (2, 3), (3, 2))           # capital letters are subscripts too
for dtype in FLOATING + INTS:
    E("ij,jk->ik", (2, 3), (3, 2), dtype=dtype)
    E("ii->i", (3, 3), dtype=dtype)
    E("bij,bjk->bik", (2, 2, 3), (2, 3, 2), dtype=dtype)
s.case("einsum", einsum, "ij,jk->ik", [T(randn(2, 3)), T(randn(4, 2))])
s.case("einsum", einsum, "ij,jk->ik", [T(randn(2, 3))])
s.case("einsum", einsum, "ij->ik", [T(randn(2, 3))])
s.case("einsum", einsum, "ij->ii", [T(randn(2, 3))])
s.case("einsum", einsum, "ijk->ij", [T(randn(2, 3))])
s.case("einsum", einsum, "ii->i", [T(randn(2, 3))])
s.case("einsum", einsum, "i1->i", [T(randn(2, 3))])
s.case("einsum", einsum, "i->i->i", [T(randn(2))])
s.case("einsum", einsum, "...i...->i", [T(randn(2, 3))])
s.case("einsum", einsum, "i..->i", [T(randn(2, 3))])
s.case("einsum", einsum, "...ij,...jk->...ik", [T(randn(2, 3, 4)), T(randn(3, 4, 5))])
s.case("einsum", einsum, "i,i->i", [T(randn(3)), T(randn(3), dtype=torch.float32)])
s.case("einsum", einsum, "ij->j", [T(vals(2, 3, dtype=torch.bool))])
s.write(sys.argv[1])
