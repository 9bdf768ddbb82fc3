"""Conformance cases of the logical and bitwise ops (ops/logical.h), the comparisons (eq, ne, lt, le,
gt, ge of ops/binary.h) and their operators (== != < <= > >= & | ^ ~ !) against PyTorch 1.13.

Every pair of dtypes, numbers on either side, 0-dim operands, NaN, -0.0 and infinities, broadcasting,
layouts, empty tensors, and the errors torch raises (bitwise ops on floating tensors, shapes that do
not broadcast). None of these ops is differentiable.

Deliberate difference: uint8 with int8 promotes to int32 in weft, to int16 in torch (weft has no
int16); where torch's result is int16 the reference is cast to int32 (the bits are the same).
"""
import sys

import torch

from conformance import ALL_DTYPES, Suite, T, no_int16

s = Suite()
INF, NAN = float("inf"), float("nan")


def lhs(dtype):
    if dtype == torch.bool:
        return torch.tensor([True, False, True, True, False, False, True, False]).reshape(2, 4)
    if dtype == torch.uint8:
        return torch.tensor([0, 1, 2, 5, 200, 255, 7, 3], dtype=dtype).reshape(2, 4)
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        return torch.tensor([-3, -1, 0, 1, 2, 7, info.min, info.max], dtype=dtype).reshape(2, 4)
    return torch.tensor([-2.5, -0.0, 0.0, 1.5, float("nan"), float("inf"), -float("inf"), 3.0],
                        dtype=torch.float64).to(dtype).reshape(2, 4)


def rhs(dtype):
    if dtype == torch.bool:
        return torch.tensor([True, True, False, True, False, True, True, True]).reshape(2, 4)
    if dtype == torch.uint8:
        return torch.tensor([1, 1, 3, 4, 200, 6, 7, 8], dtype=dtype).reshape(2, 4)
    if not dtype.is_floating_point:
        return torch.tensor([2, -1, 1, -2, 5, 7, 3, -1], dtype=dtype).reshape(2, 4)
    return torch.tensor([2.0, 0.0, -0.0, float("nan"), 2.5, float("inf"), 3.0, 3.0],
                        dtype=torch.float64).to(dtype).reshape(2, 4)


COMPARE = {"eq": (torch.eq, lambda a, b: a == b), "ne": (torch.ne, lambda a, b: a != b),
           "lt": (torch.lt, lambda a, b: a < b), "le": (torch.le, lambda a, b: a <= b),
           "gt": (torch.gt, lambda a, b: a > b), "ge": (torch.ge, lambda a, b: a >= b)}
LOGICAL = {"logical_and": torch.logical_and, "logical_or": torch.logical_or, "logical_xor": torch.logical_xor}
BITWISE = {"bitwise_and": (torch.bitwise_and, lambda a, b: a & b),
           "bitwise_or": (torch.bitwise_or, lambda a, b: a | b),
           "bitwise_xor": (torch.bitwise_xor, lambda a, b: a ^ b)}

# Every pair of dtypes.
for da in ALL_DTYPES:
    for db in ALL_DTYPES:
        for op, (fn, _) in COMPARE.items():
            s.case(op, fn, T(lhs(da)), T(rhs(db)))
        for op, fn in LOGICAL.items():
            s.case(op, fn, T(lhs(da)), T(rhs(db)))
        for op, (fn, _) in BITWISE.items():
            s.case(op, no_int16(fn), T(lhs(da)), T(rhs(db)))
for d in ALL_DTYPES:
    s.case("logical_not", torch.logical_not, T(lhs(d)))
    s.case("bitwise_not", torch.bitwise_not, T(lhs(d)))
    s.case("bitwise_not.operator", lambda a: ~a, T(lhs(d)))
    s.case("logical_not.operator", torch.logical_not, T(lhs(d)))  # C++'s ! is logical_not

# 0-dim against dimensioned (a 0-dim operand counts by category only) and numbers.
for da in ALL_DTYPES:
    for db in (torch.bool, torch.int64, torch.float64, torch.uint8):
        z = rhs(db)[0, 3]
        for op in ("eq", "lt", "ge"):
            s.case(op, COMPARE[op][0], T(lhs(da)), T(z))
            s.case(op, COMPARE[op][0], T(z), T(lhs(da)))
        s.case("bitwise_and", no_int16(torch.bitwise_and), T(lhs(da)), T(z))
        s.case("bitwise_or", no_int16(torch.bitwise_or), T(z), T(lhs(da)))
        s.case("logical_xor", torch.logical_xor, T(z), T(lhs(da)))
    for v in (True, 2, -1, 2.5, -0.0, float("nan"), float("inf"), 300):
        for op, (fn, operator) in COMPARE.items():
            s.case(op + ".scalar", fn, T(lhs(da)), v)
            s.case(op + ".operator_scalar", operator, T(lhs(da)), v)
            s.case(op + ".operator_rscalar", lambda a, b, f=operator: f(a, b), v, T(lhs(da)))
    for v in (True, False, 6, -2, 2.5):
        for op, (fn, operator) in BITWISE.items():
            s.case(op + ".scalar", fn, T(lhs(da)), v)
            s.case(op + ".operator_scalar", operator, T(lhs(da)), v)
            s.case(op + ".operator_rscalar", lambda a, b, f=operator: f(a, b), v, T(lhs(da)))

# The tensor operators, and layouts, broadcasting, empty tensors, errors.
for da, db in ((torch.float32, torch.float64), (torch.int64, torch.int32), (torch.bool, torch.bool),
               (torch.int8, torch.uint8), (torch.bfloat16, torch.float16), (torch.int32, torch.bool)):
    for op, (_, operator) in COMPARE.items():
        s.case(op + ".operator", operator, T(lhs(da)), T(rhs(db)))
    for op, (_, operator) in BITWISE.items():
        s.case(op + ".operator", no_int16(operator), T(lhs(da)), T(rhs(db)))
for op, fn in [(k, v[0]) for k, v in COMPARE.items()] + list(LOGICAL.items()) + [(k, v[0]) for k, v in BITWISE.items()]:
    d = torch.int32 if op.startswith("bitwise") else torch.float32
    a = torch.arange(12).reshape(3, 4).to(d) % 3
    b = torch.arange(12).reshape(3, 4).to(d) % 2
    s.case(op, fn, T(a, layout="transposed"), T(b, layout="strided"))
    s.case(op, fn, T(a, layout="strided"), T(b[:1]))
    s.case(op, fn, T(a[:, :1]), T(b[:1, :]))
    s.case(op, fn, T(torch.zeros(0, 4, dtype=d)), T(torch.ones(1, 4, dtype=d)))
    s.case(op, fn, T(a), T(b[:2]))  # do not broadcast: torch raises
for op, fn in (("logical_not", torch.logical_not), ("bitwise_not", torch.bitwise_not)):
    s.case(op, fn, T(torch.arange(12).reshape(3, 4) % 3, layout="transposed"))
    s.case(op, fn, T(torch.arange(12).reshape(3, 4) % 3, layout="strided"))
    s.case(op, fn, T(torch.zeros(0, 3, dtype=torch.int64)))
    s.case(op, fn, T(torch.tensor(5)))

# Edges, written out per op (the coverage check reads the op names of the .case calls): NaN is
# unequal to itself and truthy, -0.0 equals 0.0 and is falsy, int64 beyond 2^53 against float64
# compares in float64.
zs = torch.tensor([NAN, -0.0, 0.0, INF, -INF, 1.0])
ws = torch.tensor([NAN, 0.0, -0.0, INF, NAN, NAN])
big = torch.tensor([2 ** 53 + 1, -(2 ** 62), 3])
bigf = torch.tensor([2.0 ** 53, -(2.0 ** 62), 3.5], dtype=torch.float64)
s.case("eq", torch.eq, T(zs), T(ws))
s.case("eq", torch.eq, T(big), T(bigf))
s.case("ne", torch.ne, T(zs), T(ws))
s.case("ne", torch.ne, T(big), T(bigf))
s.case("lt", torch.lt, T(zs), T(ws))
s.case("lt", torch.lt, T(big), T(bigf))
s.case("le", torch.le, T(zs), T(ws))
s.case("gt", torch.gt, T(zs), T(ws))
s.case("ge", torch.ge, T(zs), T(ws))
s.case("ge", torch.ge, T(big), T(bigf))
s.case("logical_and", torch.logical_and, T(zs), T(ws))
s.case("logical_or", torch.logical_or, T(zs), T(torch.zeros(6)))
s.case("bitwise_xor", torch.bitwise_xor, T(torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0])), T(torch.tensor([-1, -1, -1])))
wrap8 = torch.tensor([[44, 50, 100, -128]], dtype=torch.int8)
for v in (300, -129, 1000, 2 ** 40 + 44):  # wrapped to int8, as torch does: 44 == 300
    s.case("eq.scalar", torch.eq, T(wrap8), v)
    s.case("lt.scalar", torch.lt, T(wrap8), v)
    s.case("ge.scalar", torch.ge, T(wrap8), v)
    s.case("bitwise_and.scalar", torch.bitwise_and, T(wrap8), v)
    s.case("bitwise_xor.scalar", torch.bitwise_xor, T(wrap8), v)
s.case("eq.scalar", torch.eq, T(torch.tensor([[255, 0, 1]], dtype=torch.uint8)), -1)
s.write(sys.argv[1])
