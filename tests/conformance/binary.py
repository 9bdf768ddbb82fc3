"""Conformance cases of the elementwise binary ops (ops/binary.h) and the arithmetic operators of
framework/tensor.h (+ - * / %, unary -, += -= *= /=) against PyTorch 1.13.

Every pair of dtypes, dimensioned and 0-dim operands in both orders, Python numbers (bool, int,
float) on either side, broadcasting, the three layouts, empty tensors, extreme values, integer
overflow (which wraps, as in torch), errors (shapes that do not broadcast, an in-place result that
the destination's dtype cannot hold, integer division by zero), and float64 gradients.

Deliberate difference: uint8 with int8 promotes to int32 in weft, to int16 in torch (weft has no
int16); where torch's result is int16 the reference is cast to int32 (the values are the same).
"""
import functools
import sys

import torch

from conformance import ALL_DTYPES, Suite, T, no_int16, randn

s = Suite()


def half_upcast(fn):
    """torch 1.13 lacks a few float16 CPU kernels (e.g. hypot); weft has them, computing in float32 as
    torch does for its other float16 kernels. The reference is torch's float32 result rounded."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RuntimeError as e:
            if "'Half'" not in str(e):
                raise
            up = [a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.float16 else a for a in args]
            return fn(*up, **kwargs).half()
    return wrapped


def lhs(dtype):
    if dtype == torch.bool:
        return torch.tensor([True, False, True, True, False, False, True, False]).reshape(2, 4)
    if dtype == torch.uint8:
        return torch.tensor([0, 1, 2, 5, 200, 255, 7, 3], dtype=dtype).reshape(2, 4)
    if not dtype.is_floating_point:
        return torch.tensor([-3, -1, 0, 1, 2, 7, 5, 4], dtype=dtype).reshape(2, 4)
    return torch.tensor([-2.5, -0.0, 0.0, 1.5, float("nan"), float("inf"), -float("inf"), 3.0],
                        dtype=torch.float64).to(dtype).reshape(2, 4)


def rhs(dtype):
    if dtype == torch.bool:
        return torch.tensor([True, True, False, True, False, True, True, True]).reshape(2, 4)
    if dtype == torch.uint8:
        return torch.tensor([1, 2, 3, 4, 5, 6, 7, 8], dtype=dtype).reshape(2, 4)
    if not dtype.is_floating_point:
        return torch.tensor([2, 3, 1, -2, 5, 1, 3, -1], dtype=dtype).reshape(2, 4)
    return torch.tensor([2.0, -0.0, 0.5, float("nan"), 2.5, -float("inf"), 3.0, -1.5],
                        dtype=torch.float64).to(dtype).reshape(2, 4)


def iop(fn):
    """An in-place operator on a copy of the first operand (a leaf cannot be changed in place)."""
    def wrapped(a, b):
        a = a.clone()
        return fn(a, b)
    return wrapped


def iadd(a, b):
    a += b
    return a


def isub(a, b):
    a -= b
    return a


def imul(a, b):
    a *= b
    return a


def idiv(a, b):
    a /= b
    return a


PAIR_OPS = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum, "atan2": torch.atan2, "hypot": torch.hypot,
    "remainder": torch.remainder, "fmod": torch.fmod,
}
# Every pair of dtypes, both dimensioned.
for op, fn in PAIR_OPS.items():
    fn = no_int16(half_upcast(fn))
    for da in ALL_DTYPES:
        for db in ALL_DTYPES:
            if op == "pow" and {da, db} == {torch.uint8, torch.int8}:
                continue  # torch computes in int16, weft in int32: 7 ** 6 wraps differently (see below)
            s.case(op, fn, T(lhs(da)), T(rhs(db)))
s.case("pow", no_int16(torch.pow), T(torch.tensor([[0, 1, 2, 3]], dtype=torch.uint8)),
       T(torch.tensor([[3, 2, 1, 0]], dtype=torch.int8)))  # no overflow in int16: the same values

# A 0-dim tensor against a dimensioned one, both orders, every pair of dtypes: a 0-dim operand
# counts only when its category (bool < integral < floating) is higher (float64 0-dim + float32 is
# float32, one of the four disagreements).
for op in ("add", "mul", "maximum"):
    fn = no_int16(PAIR_OPS[op])
    for da in ALL_DTYPES:
        for db in ALL_DTYPES:
            zero_dim = rhs(db)[0, 0]
            s.case(op, fn, T(lhs(da)), T(zero_dim))
            s.case(op, fn, T(zero_dim), T(lhs(da)))
for op in ("sub", "div", "pow", "atan2", "hypot", "remainder", "fmod", "minimum"):
    fn = no_int16(half_upcast(PAIR_OPS[op]))
    for da, db in ((torch.float32, torch.float64), (torch.int64, torch.float64), (torch.int8, torch.int64),
                   (torch.bfloat16, torch.float64), (torch.uint8, torch.int64), (torch.bool, torch.float32)):
        s.case(op, fn, T(lhs(da)), T(rhs(db)[0, 1]))
        s.case(op, fn, T(rhs(db)[0, 1]), T(lhs(da)))
# The disagreement, by name: a 0-dim float64 tensor plus a float32 tensor is float32.
s.case("add", torch.add, T(torch.tensor(0.1, dtype=torch.float64), grad=True), T(x32 := randn(2, 3, dtype=torch.float32)))
s.case("add.operator", lambda a, b: a + b, T(x32), T(torch.tensor(0.1, dtype=torch.float64)))
# Two 0-dim tensors: they promote as equals.
s.case("add", torch.add, T(torch.tensor(1.5, dtype=torch.float64)), T(torch.tensor(2.0, dtype=torch.float32)))
s.case("add", torch.add, T(torch.tensor(3, dtype=torch.int8)), T(torch.tensor(2.0, dtype=torch.float16)))

# Python numbers on the right (bool, int, float), every dtype.
SCALARS = (True, 3, -2, 2.5, -0.5)
SCALAR_OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
              "maximum": None, "minimum": None, "remainder": torch.remainder, "fmod": torch.fmod}
for op, fn in SCALAR_OPS.items():
    if fn is None:  # torch.maximum takes no number: weft's overload is torch.maximum with a 0-dim tensor
        fn = functools.partial(lambda f, a, b: f(a, torch.tensor(b)), getattr(torch, op))
    fn = no_int16(half_upcast(fn))
    for d in ALL_DTYPES:
        for v in SCALARS:
            if op == "pow" and d == torch.float16 and v == -0.5:
                # Deliberate difference: torch 1.13 computes x ** -0.5 as rsqrt(x) for float32, float64
                # and bfloat16 (rsqrt(-0.0) = -inf, rsqrt(-inf) = NaN) but as std::pow for float16 (+inf,
                # 0); weft computes float16 as it does bfloat16, so the reference is the float32 result.
                s.case(op + ".scalar", lambda a, b: torch.pow(a.float(), b).half(), T(lhs(d)), v)
                continue
            s.case(op + ".scalar", fn, T(lhs(d)), v)
# remainder with the number first.
for d in ALL_DTYPES:
    for v in (3, -2.5):
        s.case("remainder.rscalar", half_upcast(torch.remainder), v, T(rhs(d)))

# add and sub with alpha.
for d in (torch.float64, torch.float32, torch.int64, torch.int32, torch.bfloat16, torch.bool):
    s.case("add.alpha", torch.add, T(lhs(d)), T(rhs(d)), alpha=2)
    s.case("sub.alpha", torch.sub, T(lhs(d)), T(rhs(d)), alpha=3)
s.case("add.alpha", torch.add, T(lhs(torch.float64)), T(rhs(torch.float64)), alpha=0.5)
s.case("add.alpha", torch.add, T(lhs(torch.int64)), T(rhs(torch.int64)), alpha=0.5)  # torch raises
s.case("add.alpha", torch.add, T(lhs(torch.bool)), T(rhs(torch.bool)), alpha=True)
s.case("sub.alpha", torch.sub, T(lhs(torch.float32)), T(rhs(torch.float32)), alpha=-1.5)

# Integer overflow wraps, as in torch (two's complement).
for d in (torch.int8, torch.uint8, torch.int32, torch.int64):
    info = torch.iinfo(d)
    big = torch.tensor([[info.max, info.min, info.max - 1, info.min + 1]], dtype=d)
    for op in ("add", "sub", "mul"):
        s.case(op, PAIR_OPS[op], T(big), T(torch.tensor([[1, 2, 3, 4]], dtype=d)))
    s.case("add.scalar", torch.add, T(big), 5)
    s.case("mul.scalar", torch.mul, T(big), 3)

# Integer division by zero: div is true division (inf and NaN), remainder and fmod raise.
for d in (torch.int64, torch.int32, torch.uint8):
    s.case("div", torch.div, T(lhs(d)), T(torch.zeros(2, 4, dtype=d)))
    s.case("remainder", torch.remainder, T(lhs(d)), T(torch.zeros(2, 4, dtype=d)))
    s.case("fmod", torch.fmod, T(lhs(d)), T(torch.zeros(2, 4, dtype=d)))
    s.case("remainder.scalar", torch.remainder, T(lhs(d)), 0)
    s.case("fmod.scalar", torch.fmod, T(lhs(d)), 0)
# Integer powers: negative exponents of an integer tensor.
s.case("pow.scalar", torch.pow, T(lhs(torch.int64)), -1)
s.case("pow.scalar", torch.pow, T(torch.tensor([[1, -1, 2]])), -2)
s.case("pow", torch.pow, T(torch.tensor([[2, 3, 1, -1, 0]])), T(torch.tensor([[10, 0, -3, -3, 0]])))
s.case("pow.scalar", torch.pow, T(torch.tensor([[2.0, -8.0, 0.0, -0.0]])), 1.0 / 3)
s.case("pow.scalar", torch.pow, T(torch.tensor([[2.0, -8.0, 0.0, -0.0]])), -1.0)
s.case("pow.scalar", torch.pow, T(torch.tensor([[2.0, -8.0, 0.0, -0.0]], dtype=torch.float32)), 0.5)

# Broadcasting, layouts, empty tensors, shape errors.
x, y = randn(3, 4), randn(3, 4, seed=2)
for op, fn in PAIR_OPS.items():
    a_dom, b_dom = x, y
    if op == "pow":
        a_dom = x.abs() + 0.5
    if op in ("remainder", "fmod"):
        b_dom = y.sign() * (y.abs() + 1.0)  # no gradient jump nearby
    if op in ("maximum", "minimum"):
        b_dom = y + 0.01  # no ties
    for la, lb in (("contiguous", "contiguous"), ("transposed", "strided"), ("strided", "transposed")):
        s.case(op, fn, T(a_dom, layout=la, grad=True), T(b_dom, layout=lb, grad=True))
    s.case(op, fn, T(a_dom[:, :1], grad=True), T(b_dom[:1, :], grad=True))  # (3,1) with (1,4)
    s.case(op, fn, T(a_dom.reshape(1, 3, 4).expand(2, 3, 4).clone(), grad=True), T(b_dom[0], grad=True))
    s.case(op, fn, T(a_dom[0, 0], grad=True), T(b_dom, grad=True))  # 0-dim with dims
    s.case(op, fn, T(a_dom, layout="transposed", dtype=torch.float32), T(b_dom[0:1], dtype=torch.float32))
    s.case(op, fn, T(torch.zeros(0, 4)), T(torch.ones(1, 4)))
    s.case(op, fn, T(torch.zeros(0, 4)), T(torch.ones(0, 1)))
    s.case(op, fn, T(torch.zeros(3, 4)), T(torch.ones(2, 4)))  # do not broadcast: torch raises
    s.case(op, fn, T(torch.zeros(3, 4)), T(torch.ones(0, 4)))
for op in ("add", "sub", "mul", "div", "pow", "remainder", "fmod"):
    fn = SCALAR_OPS[op]
    s.case(op + ".scalar", fn, T(x.abs() + 0.5 if op == "pow" else x, grad=True), 1.7)
    s.case(op + ".scalar", fn, T(x.abs() + 0.5 if op == "pow" else x, layout="strided", grad=True), -2)
for op in ("maximum", "minimum"):
    s.case(op + ".scalar", lambda a, b, f=getattr(torch, op): f(a, torch.tensor(b)), T(x, grad=True), 0.25)
s.case("remainder.rscalar", torch.remainder, 2.5, T(y.sign() * (y.abs() + 1.0)))  # torch has no gradient here

# Long rows in float32, bfloat16, float16 and int32: the vectorised paths and their tails, with a
# broadcast row and a 0-dim operand.
wa, wb = randn(4, 257, seed=11) * 3, randn(4, 257, seed=12) * 3
for op, fn in PAIR_OPS.items():
    a_dom = wa.abs() + 0.5 if op == "pow" else wa
    b_dom = wb.sign() * (wb.abs() + 0.5) if op in ("remainder", "fmod", "div") else wb
    for d in (torch.float32, torch.bfloat16, torch.float16):
        s.case(op, half_upcast(fn), T(a_dom, dtype=d), T(b_dom, dtype=d))
        s.case(op, half_upcast(fn), T(a_dom, dtype=d), T(b_dom[:1], dtype=d, layout="strided"))
    if op not in ("pow", "atan2", "hypot"):
        s.case(op, fn, T((wa * 10).to(torch.int32)), T((b_dom * 10).to(torch.int32)))
        s.case(op, fn, T((wa * 10).to(torch.int32)), T(torch.tensor(7, dtype=torch.int32)))

# The operators of framework/tensor.h.
OPERATORS = {
    "add": (lambda a, b: a + b, iop(iadd)), "sub": (lambda a, b: a - b, iop(isub)),
    "mul": (lambda a, b: a * b, iop(imul)), "div": (lambda a, b: a / b, iop(idiv)),
    "remainder": (lambda a, b: a % b, None),
}
for op, (fn, ifn) in OPERATORS.items():
    rfn = fn  # called as fn(number, tensor): Python's reflected operator
    for da, db in ((torch.float64, torch.float64), (torch.float32, torch.float64), (torch.int64, torch.int32),
                   (torch.bfloat16, torch.float32), (torch.int8, torch.uint8), (torch.bool, torch.int64)):
        s.case(op + ".operator", no_int16(fn), T(lhs(da)), T(rhs(db)))
        s.case(op + ".operator_scalar", fn, T(lhs(da)), 2)
        s.case(op + ".operator_scalar", fn, T(lhs(da)), -1.5)
        s.case(op + ".operator_rscalar", rfn, 3, T(rhs(da)))
        s.case(op + ".operator_rscalar", rfn, 0.5, T(rhs(da)))
        if ifn is not None:
            s.case(op + ".operator_inplace", no_int16(ifn), T(lhs(da)), T(rhs(db)))
            s.case(op + ".operator_inplace_scalar", ifn, T(lhs(da)), 2)
            s.case(op + ".operator_inplace_scalar", ifn, T(lhs(da)), 0.5)
    b_dom = y.sign() * (y.abs() + 1.0)
    s.case(op + ".operator", fn, T(x, grad=True), T(b_dom, layout="transposed", grad=True))
    s.case(op + ".operator_scalar", fn, T(x, grad=True), 1.25)
    s.case(op + ".operator_rscalar", rfn, 1.25, T(b_dom, grad=op != "remainder"))  # torch: no gradient there
    if ifn is not None:
        s.case(op + ".operator_inplace", ifn, T(x, grad=True), T(b_dom, grad=True))
        s.case(op + ".operator_inplace", ifn, T(x, grad=True), T(b_dom[0], grad=True))  # broadcast b
        s.case(op + ".operator_inplace", ifn, T(x[0]), T(b_dom))  # a cannot grow: torch raises
        s.case(op + ".operator_inplace", ifn, T(x), T(b_dom[0, 0], dtype=torch.float32))
        s.case(op + ".operator_inplace", ifn, T(x[0, 0]), T(b_dom[0, 1]))  # 0-dim in place
        s.case(op + ".operator_inplace", ifn, T(lhs(torch.int64)), T(torch.tensor(2.5, dtype=torch.float64)))
        s.case(op + ".operator_inplace_scalar", ifn, T(x, grad=True), 0.75)
s.case("neg.operator", lambda a: -a, T(x, grad=True))
# In place, an out-of-range integer wraps as out of place does (int8 += 300 adds 44).
for ifn, name in ((iop(iadd), "add"), (iop(isub), "sub"), (iop(imul), "mul")):
    s.case(name + ".operator_inplace_scalar", ifn, T(torch.tensor([[44, 50, 100, -128]], dtype=torch.int8)), 300)
    s.case(name + ".operator_inplace_scalar", ifn, T(lhs(torch.uint8)), -1)
    s.case(name + ".operator_inplace", ifn, T(lhs(torch.uint8)), T(torch.tensor(-1)))
for d in ALL_DTYPES:
    s.case("neg.operator", lambda a: -a, T(lhs(d)))

# lerp: floating tensors, weight a tensor or a number.
for d in (torch.float64, torch.float32, torch.bfloat16, torch.float16, torch.int64):
    s.case("lerp", half_upcast(torch.lerp), T(lhs(d)), T(rhs(d)), T(torch.full((2, 4), 0.25, dtype=d)))
    s.case("lerp.scalar", half_upcast(torch.lerp), T(lhs(d)), T(rhs(d)), 0.75)
s.case("lerp", torch.lerp, T(x, grad=True), T(y, layout="transposed", grad=True), T(randn(4, seed=5), grad=True))
s.case("lerp", torch.lerp, T(x[0, 0], grad=True), T(y, grad=True), T(randn(3, 1, seed=5), grad=True))
s.case("lerp", torch.lerp, T(x), T(y), T(randn(2, 4, seed=5)))  # do not broadcast
s.case("lerp", torch.lerp, T(x), T(y, dtype=torch.float32), T(randn(4, seed=5)))  # dtypes differ
s.case("lerp.scalar", torch.lerp, T(x, grad=True), T(y, layout="strided", grad=True), 0.3)
s.case("lerp.scalar", torch.lerp, T(x, grad=True), T(y, grad=True), 1.5)
s.case("lerp.scalar", torch.lerp, T(torch.zeros(0, 4)), T(torch.zeros(0, 4)), 0.3)

# where: a bool condition, operands promoted together.
cond = torch.tensor([[True, False, True, False], [False, False, True, True]])
for da, db in ((torch.float64, torch.float64), (torch.float32, torch.float64), (torch.int64, torch.float32),
               (torch.int8, torch.uint8), (torch.bool, torch.bool), (torch.bfloat16, torch.float16),
               (torch.int32, torch.int32)):
    s.case("where", no_int16(torch.where), T(cond), T(lhs(da)), T(rhs(db)))
s.case("where", torch.where, T(cond[:, :1]), T(x[:2], grad=True), T(y[0], grad=True))  # broadcast all three
s.case("where", torch.where, T(cond, layout="transposed"), T(x[:2], layout="strided", grad=True), T(y[:2], grad=True))
s.case("where", torch.where, T(torch.tensor(True)), T(x[0, 0], grad=True), T(y, grad=True))
s.case("where", torch.where, T(cond.int()), T(x[:2]), T(y[:2]))  # an int condition: torch raises
s.case("where", torch.where, T(cond), T(x), T(y))  # do not broadcast
s.case("where", torch.where, T(torch.zeros(0, 4, dtype=torch.bool)), T(torch.zeros(0, 4)), T(torch.ones(1, 4)))

# masked_fill: a bool mask broadcast against x, the value converted to x's dtype.
for d in ALL_DTYPES:
    s.case("masked_fill", torch.masked_fill, T(lhs(d)), T(cond), 1)
    s.case("masked_fill", torch.masked_fill, T(lhs(d)), T(cond[0]), True)
for v in (-1.5, float("inf"), float("nan")):
    s.case("masked_fill", torch.masked_fill, T(lhs(torch.float32)), T(cond), v)
s.case("masked_fill", torch.masked_fill, T(lhs(torch.int64)), T(cond), 2.5)
# Values the dtype cannot hold raise (torch's checked conversion); uint8 wraps -255..-1.
for d, v in ((torch.int8, 300), (torch.int8, -129), (torch.int8, 127), (torch.uint8, -1), (torch.uint8, -256),
             (torch.uint8, 256), (torch.uint8, -1.0), (torch.int8, 2.5), (torch.int8, -128.9), (torch.int32, 2 ** 40),
             (torch.int32, float("inf")), (torch.int32, float("nan")), (torch.int64, 1e30), (torch.int64, 2 ** 63 - 1),
             (torch.float16, 1e6), (torch.float16, float("inf")), (torch.bfloat16, 1e300), (torch.float32, 1e300),
             (torch.float32, float("nan")), (torch.bool, 5), (torch.bool, 0.5)):
    s.case("masked_fill", torch.masked_fill, T(lhs(d)), T(cond), v)
# Out-of-range integers with arithmetic wrap instead (the number becomes a 0-dim tensor of the
# tensor's dtype), comparisons included: int8 44 == 300.
wrap8 = torch.tensor([[44, 50, 100, -128]], dtype=torch.int8)
for v in (300, -129, 1000):
    s.case("add.scalar", torch.add, T(wrap8), v)
    s.case("mul.scalar", torch.mul, T(wrap8), v)
    s.case("sub.scalar", torch.sub, T(wrap8), v)
    s.case("maximum.scalar", lambda a, b: torch.maximum(a, torch.tensor(b)), T(wrap8), v)
    s.case("remainder.scalar", torch.remainder, T(wrap8), v)
s.case("add.scalar", torch.add, T(lhs(torch.uint8)), -1)
s.case("mul.scalar", torch.mul, T(lhs(torch.uint8)), -3)
s.case("add.scalar", torch.add, T(lhs(torch.int32)), 2 ** 40 + 5)
s.case("masked_fill", torch.masked_fill, T(x[:2], grad=True, layout="transposed"), T(cond), 0.5)
s.case("masked_fill", torch.masked_fill, T(x[:2], grad=True), T(cond[:, :1]), -3.0)
s.case("masked_fill", torch.masked_fill, T(x[:2]), T(cond.int()), 0.5, expect_error=True,
       why="weft takes bool masks only; torch 1.13 still reads integer masks of 0 and 1")
s.case("masked_fill", torch.masked_fill, T(x[:2]), T(cond[:1, :3]), 0.5)  # do not broadcast
s.case("masked_fill", torch.masked_fill, T(x[:2, :1]), T(cond), 0.5)  # the mask cannot grow x

# result_type, as an empty tensor of that dtype.
def result_type(a, b):
    d = torch.result_type(a, b)
    return torch.empty(0, dtype=torch.int32 if d == torch.int16 else d)


for da in ALL_DTYPES:
    for db in ALL_DTYPES:
        s.case("result_type", result_type, T(lhs(da)), T(rhs(db)))
        s.case("result_type", result_type, T(lhs(da)), T(rhs(db)[0, 0]))
    for v in SCALARS:
        s.case("result_type.scalar", result_type, T(lhs(da)), v)
        s.case("result_type.scalar", result_type, T(lhs(da)[0, 0]), v)

# Edges, written out per op (the coverage check reads the op names of the .case calls).
INF, NAN = float("inf"), float("nan")
zs = torch.tensor([0.0, -0.0, 0.0, -0.0, INF, -INF, NAN, 1.0], dtype=torch.float64)
ws = torch.tensor([0.0, 0.0, -0.0, -0.0, INF, INF, 1.0, NAN], dtype=torch.float64)
for d in (torch.float64, torch.float32):
    s.case("atan2", torch.atan2, T(zs, dtype=d), T(ws, dtype=d))  # signed zeros pick the quadrant
    s.case("hypot", torch.hypot, T(zs, dtype=d), T(ws, dtype=d))  # inf beats NaN
    s.case("maximum", torch.maximum, T(zs, dtype=d), T(ws, dtype=d))  # NaN from either side
    s.case("minimum", torch.minimum, T(zs, dtype=d), T(ws, dtype=d))
s.write(sys.argv[1])
