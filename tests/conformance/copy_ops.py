"""Conformance cases of the copying ops (ops/copy_ops.h) against PyTorch 1.13: cat, stack, clone,
contiguous, to_dtype (every dtype pair, and floats out of an integer dtype's range), tril, triu."""
import sys

import torch

from conformance import ALL_DTYPES, DTYPES, DTYPE_NAMES, FLOATING, LAYOUTS, Suite, T, ints, randn

s = Suite()


a, b, c = randn(2, 3, seed=1), randn(2, 3, seed=2), randn(2, 1, seed=3)
# cat: sizes agree except in dim; mixed dtypes promote; empty 1-D tensors are skipped (legacy)
for layout in LAYOUTS:
    for d in (0, 1, -1, -2):
        s.case("cat", torch.cat, [T(a, layout=layout, grad=True), T(b, grad=True)], d)
s.case("cat", torch.cat, [T(a, grad=True), T(c, layout="transposed", grad=True), T(b, grad=True)], 1)
s.case("cat", torch.cat, [T(a, grad=True)], 0)
s.case("cat", torch.cat, [T(a, grad=True), T(torch.zeros(0, 3), grad=True)], 0)
s.case("cat", torch.cat, [T(torch.zeros(0, 3)), T(torch.zeros(0, 3))], 0)
s.case("cat", torch.cat, [T(a, grad=True), T(torch.zeros(0), grad=True)], 0)  # legacy: [0] is skipped
s.case("cat", torch.cat, [T(torch.zeros(0)), T(a)], 1)
s.case("cat", torch.cat, [T(torch.zeros(0, dtype=torch.float64)), T(a, dtype=torch.int32)], -1)
s.case("cat", torch.cat, [T(torch.zeros(0)), T(torch.zeros(0, dtype=torch.int8))], 0)
s.case("cat", torch.cat, [T(torch.zeros(0)), T(a)], 2)
for d1 in ALL_DTYPES:
    s.case("cat", torch.cat, [T(ints([2, 2], d1)), T(ints([1, 2], d1))], 0)
    for d2 in (torch.bool, torch.int32, torch.float16, torch.bfloat16, torch.float64):
        s.case("cat", torch.cat, [T(ints([2], d1)), T(ints([3], d2))], 0)
s.case("cat", torch.cat, [T(randn(2, 3, 4)), T(randn(2, 1, 4))], -2)
s.case("cat", torch.cat, [], 0)
s.case("cat", torch.cat, [T(torch.tensor(1.0)), T(torch.tensor(2.0))], 0)
s.case("cat", torch.cat, [T(a), T(c)], 0)
s.case("cat", torch.cat, [T(a), T(randn(2, 3, 1))], 0)
s.case("cat", torch.cat, [T(a), T(b)], 2)
s.case("cat", torch.cat, [T(a), T(b)], -3)

# stack: one shape, a new dim
for layout in LAYOUTS:
    for d in (0, 1, 2, -1, -3):
        s.case("stack", torch.stack, [T(a, layout=layout, grad=True), T(b, grad=True)], d)
for d1 in ALL_DTYPES:
    s.case("stack", torch.stack, [T(ints([2], d1)), T(ints([2], d1))], 0)
    s.case("stack", torch.stack, [T(ints([2], d1)), T(ints([2], torch.float32))], 1)
s.case("stack", torch.stack, [T(torch.tensor(1.0), grad=True), T(torch.tensor(2.0), grad=True)], 0)
s.case("stack", torch.stack, [T(torch.zeros(0, 2)), T(torch.zeros(0, 2))], 1)
s.case("stack", torch.stack, [], 0)
s.case("stack", torch.stack, [T(a), T(c)], 0)
s.case("stack", torch.stack, [T(a), T(b)], 3)
s.case("stack", torch.stack, [T(a), T(b)], -4)

# clone and contiguous (contiguous returns its input itself when it is already contiguous)
for layout in LAYOUTS:
    s.case("clone", torch.clone, T(a, layout=layout, grad=True), views=True)
    s.case("contiguous", lambda t: t.contiguous(), T(a, layout=layout, grad=True), views=True)
for dtype in ALL_DTYPES:
    s.case("clone", torch.clone, T(ints([3], dtype)), views=True)
    s.case("contiguous", lambda t: t.contiguous(), T(ints([2, 2], dtype), layout="transposed"), views=True)
s.case("clone", torch.clone, T(torch.tensor(-0.0), grad=True), views=True)
s.case("clone", torch.clone, T(torch.zeros(0, 2)))
s.case("clone", torch.clone, T([float("nan"), float("inf"), -float("inf"), -0.0, 1e-310, 1e308]), views=True)
s.case("contiguous", lambda t: t.contiguous(), T(torch.tensor(3.0)), views=True)
s.case("contiguous", lambda t: t.contiguous(), T(torch.zeros(3, 0), layout="transposed"))

# to_dtype (dtypes by name): every pair; the same dtype returns the input itself; the gradient
# flows to floating results only
def to(t, d):
    return t.to(DTYPES[d])


special = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 2.7, -2.7, 100.0, 127.0, -128.0, 255.0, 1e-40, 65504.0,
           3.0e38, float("nan"), float("inf"), -float("inf")]
for src in ALL_DTYPES:
    if src.is_floating_point:
        values = T(torch.tensor(special, dtype=torch.float64).to(src))
    elif src == torch.bool:
        values = T([True, False, True], dtype=torch.bool)
    else:
        info = torch.iinfo(src)
        values = T([v for v in (0, 1, -1, 127, -128, 255, 256, 1000, 65504, 65505, 16777217, 2**24 + 3, 2**53 + 1)
                    if info.min <= v <= info.max] + [info.max, info.min], dtype=src)
    for dst in ALL_DTYPES:
        if src.is_floating_point and not dst.is_floating_point and dst != torch.bool:
            continue  # float -> integer below: in range, and out of range
        s.case("to_dtype", to, values, DTYPE_NAMES[dst], views=True)
# float -> integer truncates toward zero
inrange = [0.0, -0.0, 0.5, -0.5, 1.9, -1.9, 100.7, -100.7, 127.0, -128.0]
for src in FLOATING:
    for dst in ("int8", "int32", "int64"):
        s.case("to_dtype", to, T(torch.tensor(inrange).to(src)), dst)
    s.case("to_dtype", to, T(torch.tensor([0.0, 0.9, 1.0, 200.5, 255.0]).to(src)), "uint8")
s.case("to_dtype", to, T([3.5e4, -3.5e4, 2.1e9, -2.1e9], dtype=torch.float64), "int32")
s.case("to_dtype", to, T([3.5e4, -3.5e4, 2.1e9, -2.1e9, 9.2e18, -9.2e18], dtype=torch.float64), "int64")
s.case("to_dtype", to, T([3.5e4, -3.5e4, 2.1e9, -2.1e9, 9.2e18, -9.2e18], dtype=torch.float32), "int64")
# float -> integer out of the integer's range (NaN, infinities, too large): OUT_OF_RANGE below
OUT_OF_RANGE = {}
for src in FLOATING:
    for dst in ("uint8", "int8", "int32", "int64"):
        OUT_OF_RANGE[(src, dst)] = [256.0, -1.0, 300.0, -129.0, 1000.0, 3e9, -3e9, 1e19, -1e19, float("nan"),
                                    float("inf"), -float("inf")]
for (src, dst), vals in OUT_OF_RANGE.items():
    s.case("to_dtype.out_of_range", to, T(torch.tensor(vals, dtype=torch.float64).to(src)), dst)
for src, dst in (("float32", "uint8"), ("float32", "int8"), ("float64", "int32"), ("float16", "int64")):
    vals = torch.tensor(OUT_OF_RANGE[(DTYPES[src], dst)] * 11, dtype=torch.float64).to(DTYPES[src])
    s.case("to_dtype.out_of_range", to, T(vals), dst)  # long enough for the vectorised loops
for layout in LAYOUTS:
    s.case("to_dtype", to, T(a, layout=layout, grad=True), "float32")
    s.case("to_dtype", to, T(a, layout=layout, grad=True), "float64", views=True)
s.case("to_dtype", to, T(a), "int32")
s.case("to_dtype", to, T(torch.tensor(1.5), grad=True), "bfloat16")
s.case("to_dtype", to, T(torch.tensor(1.5), grad=True), "float16")
s.case("to_dtype", to, T(torch.zeros(0, 2)), "int8")

# tril / triu, any diagonal, batched, every dtype
m = randn(3, 4)
for layout in LAYOUTS:
    for k in (0, 1, -1, 3, -3, 10, -10):
        s.case("tril", torch.tril, T(m, layout=layout, grad=True), k)
        s.case("triu", torch.triu, T(m, layout=layout, grad=True), k)
s.case("tril", torch.tril, T(randn(2, 3, 3), grad=True), 0)
s.case("triu", torch.triu, T(randn(2, 2, 3), grad=True), -1)
s.case("tril", torch.tril, T(randn(4, 2), grad=True))
for dtype in ALL_DTYPES:
    s.case("tril", torch.tril, T(ints([3, 3], dtype)), 0)
    s.case("triu", torch.triu, T(ints([3, 3], dtype)), 1)
s.case("tril", torch.tril, T(torch.tensor([[float("nan"), float("inf")], [-0.0, -float("inf")]])))
s.case("triu", torch.triu, T(torch.tensor([[float("nan"), float("inf")], [-0.0, -float("inf")]])))
s.case("tril", torch.tril, T(torch.zeros(0, 3)))
s.case("triu", torch.triu, T(torch.zeros(2, 0, 3)))
s.case("tril", torch.tril, T(randn(3)))
s.case("triu", torch.triu, T(torch.tensor(1.0)))
# gradients keep each input's floating dtype (cat promotes the output, the gradients come back down)
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    s.case("cat", torch.cat, [T(a, dtype=dtype, grad=True), T(b, grad=True)], 1)
    s.case("stack", torch.stack, [T(a, dtype=dtype, grad=True), T(b, dtype=dtype, grad=True)], 0)
    s.case("tril", torch.tril, T(a, dtype=dtype, grad=True), 0)
    s.case("to_dtype", to, T(a, dtype=dtype, grad=True), "float64")
s.write(sys.argv[1])
