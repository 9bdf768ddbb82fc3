"""Conformance cases of the elementwise unary ops (ops/unary.h) against PyTorch 1.13.

Every op over every dtype (torch decides which it takes; where it raises weft must raise), the three
layouts, extreme values (NaN, +-inf, -0.0, huge, tiny, the integer limits), 0-dim and empty tensors,
and float64 gradients on inputs inside each op's domain.
"""
import functools
import sys

import torch
import torch.nn.functional as F

from conformance import ALL_DTYPES, Suite, T, randn

s = Suite()
INTEGRAL = (torch.uint8, torch.int8, torch.int32, torch.int64)


def half_upcast(fn):
    """torch 1.13 lacks some float16 CPU kernels; weft has them, computing in float32 as torch does for
    the kernels it has. The reference is then torch's float32 result rounded to float16."""
    @functools.wraps(fn)
    def wrapped(x, *args, **kwargs):
        try:
            return fn(x, *args, **kwargs)
        except RuntimeError as e:
            if "Half" not in str(e) or x.dtype != torch.float16:
                raise
            return fn(x.float(), *args, **kwargs).half()
    return wrapped


FLOAT_VALUES = [-2.5, -1.0, -0.5, -0.0, 0.0, 0.3, 0.5, 1.0, 1.5, 2.5, 3.5, -3.5, 100.0, -100.0,
                float("nan"), float("inf"), float("-inf"), 1e30, -1e30, 1e-30, 0.999, -0.999, 7.25, 2.0]


def values_for(dtype):
    if dtype == torch.bool:
        return torch.tensor([True, False, True, True, False, False]).reshape(2, 3)
    if dtype == torch.uint8:
        return torch.tensor([0, 1, 2, 5, 200, 255], dtype=dtype).reshape(2, 3)
    if dtype in INTEGRAL:
        info = torch.iinfo(dtype)
        return torch.tensor([-3, -1, 0, 1, 2, 7, info.min, info.max], dtype=dtype).reshape(2, 4)
    return torch.tensor(FLOAT_VALUES, dtype=torch.float64).to(dtype).reshape(4, 6)


# op name -> (torch function, domain of its gradient inputs: a function of a randn tensor)
ANY = lambda x: x
POSITIVE = lambda x: x.abs() + 0.1
UNIT = lambda x: torch.tanh(x) * 0.9
ABOVE_ONE = lambda x: x.abs() + 1.1
AWAY_FROM_INTEGERS = lambda x: torch.floor(x * 3) / 3 + 0.15  # no gradient kink at an integer
AWAY_FROM_ZERO = lambda x: x.sign() * (x.abs() + 0.1)
OPS = {
    "neg": (torch.neg, ANY), "abs": (torch.abs, AWAY_FROM_ZERO), "exp": (torch.exp, ANY),
    "log": (torch.log, POSITIVE), "sqrt": (torch.sqrt, POSITIVE), "rsqrt": (torch.rsqrt, POSITIVE),
    "sin": (torch.sin, ANY), "cos": (torch.cos, ANY), "tanh": (torch.tanh, ANY),
    "sigmoid": (torch.sigmoid, ANY), "relu": (torch.relu, AWAY_FROM_ZERO), "gelu": (F.gelu, ANY),
    "silu": (F.silu, ANY), "sign": (torch.sign, ANY), "reciprocal": (torch.reciprocal, AWAY_FROM_ZERO),
    "erf": (torch.erf, ANY), "erfinv": (torch.erfinv, UNIT), "log1p": (torch.log1p, POSITIVE),
    "expm1": (torch.expm1, ANY), "log2": (torch.log2, POSITIVE), "log10": (torch.log10, POSITIVE),
    "sinh": (torch.sinh, ANY), "cosh": (torch.cosh, ANY), "asin": (torch.asin, UNIT),
    "acos": (torch.acos, UNIT), "atan": (torch.atan, ANY), "asinh": (torch.asinh, ANY),
    "acosh": (torch.acosh, ABOVE_ONE), "atanh": (torch.atanh, UNIT), "floor": (torch.floor, AWAY_FROM_INTEGERS),
    "ceil": (torch.ceil, AWAY_FROM_INTEGERS), "round": (torch.round, AWAY_FROM_INTEGERS),
    "trunc": (torch.trunc, AWAY_FROM_INTEGERS), "frac": (torch.frac, AWAY_FROM_INTEGERS),
    "isnan": (torch.isnan, ANY), "isinf": (torch.isinf, ANY), "isfinite": (torch.isfinite, ANY),
    "nan_to_num": (torch.nan_to_num, ANY),
}

x = randn(3, 4)
for op, (fn, domain) in OPS.items():
    fn = half_upcast(fn)
    for dtype in ALL_DTYPES:
        s.case(op, fn, T(values_for(dtype)))
    grad = op not in ("isnan", "isinf", "isfinite")  # bool results: nothing to differentiate
    for layout in ("contiguous", "transposed", "strided"):
        s.case(op, fn, T(domain(x), layout=layout, grad=grad))
    s.case(op, fn, T(domain(randn(2, 3, seed=7)), dtype=torch.float32, layout="transposed"))
    s.case(op, fn, T(torch.tensor(0.75 if op != "acosh" else 1.75, dtype=torch.float64), grad=grad))  # 0-dim
    s.case(op, fn, T(torch.zeros(0, 3)))  # empty
    s.case(op, fn, T(torch.zeros(2, 0, dtype=torch.int64)))

# Long rows in every floating dtype: the vectorised paths and their tails (257 = 8 * 32 + 1).
wide = randn(4, 257, seed=11) * 3
for op, (fn, domain) in OPS.items():
    for d in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        s.case(op, half_upcast(fn), T(domain(wide), dtype=d))

# gelu's tanh form, and an unknown form (torch raises).
s.case("gelu.approximate", F.gelu, T(x, grad=True), approximate="tanh")
s.case("gelu.approximate", F.gelu, T(values_for(torch.float32)), approximate="tanh")
s.case("gelu.approximate", F.gelu, T(values_for(torch.bfloat16)), approximate="tanh")
s.case("gelu.approximate", F.gelu, T(x), approximate="sigmoid")

# nan_to_num's replacements.
for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
    s.case("nan_to_num.values", torch.nan_to_num, T(values_for(dtype)), nan=1.5, posinf=9.0, neginf=-9.0)
s.case("nan_to_num.values", torch.nan_to_num, T(values_for(torch.float64), grad=True), nan=-1.0)
s.case("nan_to_num.values", torch.nan_to_num, T(values_for(torch.int32)), nan=1.0, posinf=2.0, neginf=3.0)

# clamp: both bounds, one bound, min > max (every value is max), int bounds on ints, float bounds on
# ints (torch promotes), out-of-range bounds on the small integer types, NaN inputs, and no bound at all.
for dtype in ALL_DTYPES:
    s.case("clamp", half_upcast(torch.clamp), T(values_for(dtype)), min=0, max=2)
    s.case("clamp", half_upcast(torch.clamp), T(values_for(dtype)), min=-0.5, max=1.5)
    s.case("clamp", half_upcast(torch.clamp), T(values_for(dtype)), min=-1000, max=1000)
    s.case("clamp", half_upcast(torch.clamp), T(values_for(dtype)), min=300)
for layout in ("contiguous", "transposed", "strided"):
    s.case("clamp", torch.clamp, T(x, layout=layout, grad=True), min=-0.5, max=0.5)
s.case("clamp", torch.clamp, T(x, grad=True), min=0.5, max=-0.5)  # min > max: every value is max
s.case("clamp", torch.clamp, T(x, grad=True), min=-0.25)
s.case("clamp", torch.clamp, T(x, grad=True), max=0.25)
s.case("clamp", torch.clamp, T(x), min=float("nan"))
s.case("clamp", torch.clamp, T(x), max=float("-inf"))
s.case("clamp", torch.clamp, T(torch.tensor(2.0, dtype=torch.float64), grad=True), min=0.0, max=1.0)
s.case("clamp", torch.clamp, T(torch.zeros(0, 2)), min=0.0, max=1.0)
s.case("clamp", torch.clamp, T(x))  # neither bound: torch raises
s.case("clamp", torch.clamp, T(values_for(torch.uint8)), min=-1)  # torch's checked conversion: -1 is 255
s.case("clamp", torch.clamp, T(values_for(torch.uint8)), max=-255)
s.case("clamp", torch.clamp, T(values_for(torch.uint8)), max=256)
s.case("clamp", torch.clamp, T(values_for(torch.int8)), min=-129)
s.case("clamp", torch.clamp, T(values_for(torch.int32)), min=2 ** 31)
s.case("clamp", torch.clamp, T(values_for(torch.int32)), min=1e10)  # a float bound: float32
s.case("clamp", torch.clamp, T(values_for(torch.int64)), min=-2 ** 62, max=2 ** 40)
s.case("clamp", torch.clamp, T(values_for(torch.bool)), min=True)  # no bool kernel in torch
s.case("clamp", torch.clamp, T(values_for(torch.float32)), max=1e300)  # beyond float32: torch raises
s.case("clamp", torch.clamp, T(values_for(torch.bfloat16)), min=-1e300)
s.case("clamp", torch.clamp, T(values_for(torch.float32)), max=float("inf"))
s.case("clamp", torch.clamp, T(values_for(torch.int64)), min=2 ** 63 - 1)

# Tensor::clamp_ (in place, on a copy): the same bounds, and a result its dtype cannot hold.
@half_upcast
def clamp_inplace(t, **bounds):
    return t.clone().clamp_(**bounds)


for d in ALL_DTYPES:
    s.case("clamp.inplace", clamp_inplace, T(values_for(d)), min=0, max=2)
    s.case("clamp.inplace", clamp_inplace, T(values_for(d)), min=-0.5)  # a float bound on integers raises
    s.case("clamp.inplace", clamp_inplace, T(values_for(d)), max=300)
s.case("clamp.inplace", clamp_inplace, T(values_for(torch.int64)), min=-2 ** 63, max=2 ** 63 - 2)
s.case("clamp.inplace", clamp_inplace, T(values_for(torch.uint8)), min=-1)
s.case("clamp.inplace", clamp_inplace, T(x, grad=True), min=-0.5, max=0.25)
s.case("clamp.inplace", clamp_inplace, T(x, layout="transposed", grad=True), max=0.0)

# Rounding halfway cases (round is half to even).
halves = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0.49999997, 0.49999997, 4503599627370495.5, 1e300, -1e-300])
for op, fn in (("round", torch.round), ("floor", torch.floor), ("ceil", torch.ceil), ("trunc", torch.trunc),
               ("frac", torch.frac)):
    s.case(op, fn, T(halves, dtype=torch.float64))
    s.case(op, fn, T(halves, dtype=torch.float32))

# Each op at the edges of its domain, in float64 and float32 (written out: the coverage check reads
# the op names of the .case calls).
INF, NAN = float("inf"), float("nan")
for d in (torch.float64, torch.float32):
    e = lambda *v: T(torch.tensor(v, dtype=d))
    s.case("abs", torch.abs, e(-0.0, -INF, NAN))
    s.case("acos", torch.acos, e(1.0, -1.0, 1.0000001))
    s.case("acosh", torch.acosh, e(1.0, 0.5, INF))
    s.case("asin", torch.asin, e(1.0, -1.0, -1.5))
    s.case("asinh", torch.asinh, e(-INF, -0.0, 1e300))
    s.case("atan", torch.atan, e(INF, -INF, -0.0))
    s.case("atanh", torch.atanh, e(1.0, -1.0, 2.0))
    s.case("ceil", torch.ceil, e(-0.5, -0.0, 0.5))
    s.case("cos", torch.cos, e(INF, 0.0, 1e300))
    s.case("cosh", torch.cosh, e(710.0, -710.0, 0.0))
    s.case("erf", torch.erf, e(INF, -INF, -0.0))
    s.case("erfinv", torch.erfinv, e(1.0, -1.0, 0.999999))
    s.case("exp", torch.exp, e(709.7, 710.0, -746.0, -INF))
    s.case("expm1", torch.expm1, e(1e-10, -INF, 710.0))
    s.case("floor", torch.floor, e(-0.5, -0.0, 0.5))
    s.case("frac", torch.frac, e(-1.5, INF, -0.0))
    s.case("isfinite", torch.isfinite, e(NAN, INF, -INF, 0.0))
    s.case("isinf", torch.isinf, e(NAN, INF, -INF, 1e300))
    s.case("isnan", torch.isnan, e(NAN, INF, -0.0))
    s.case("log", torch.log, e(0.0, -0.0, -1.0, INF))
    s.case("log10", torch.log10, e(0.0, 1e-300, -1.0, INF))
    s.case("log1p", torch.log1p, e(-1.0, -2.0, 1e-20))
    s.case("log2", torch.log2, e(0.0, 1024.0, -INF))
    s.case("reciprocal", torch.reciprocal, e(0.0, -0.0, INF))
    s.case("relu", torch.relu, e(-0.0, NAN, -INF))
    s.case("round", torch.round, e(0.5, 1.5, -2.5, -0.4))
    s.case("rsqrt", torch.rsqrt, e(0.0, -0.0, INF, -1.0))
    s.case("sigmoid", torch.sigmoid, e(-INF, INF, -800.0))
    s.case("sign", torch.sign, e(-0.0, NAN, -INF))
    s.case("silu", F.silu, e(-INF, INF, NAN))
    s.case("sin", torch.sin, e(INF, -0.0, 1e300))
    s.case("sinh", torch.sinh, e(-0.0, 710.0, -710.0))
    s.case("sqrt", torch.sqrt, e(-0.0, -1.0, INF))
    s.case("tanh", torch.tanh, e(INF, -INF, 20.0))
    s.case("trunc", torch.trunc, e(-0.5, -0.0, 2.7))
s.write(sys.argv[1])
