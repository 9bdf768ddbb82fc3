"""Conformance cases of the rearranging ops (ops/rearrange.h) against PyTorch 1.13: flip, roll,
repeat, tile, repeat_interleave, movedim, unbind, diagonal, diag, trace."""
import sys

import torch

from conformance import ALL_DTYPES, LAYOUTS, Suite, T, ints, randn

s = Suite()


x = randn(2, 3, 4)
m = randn(3, 4, seed=2)

# flip
for layout in LAYOUTS:
    for dims in ([0], [1, 2], [-1], [0, 1, 2], []):
        s.case("flip", torch.flip, T(x, layout=layout, grad=True), dims)
for dtype in ALL_DTYPES:
    s.case("flip", torch.flip, T(ints([2, 3], dtype)), [1])
s.case("flip", torch.flip, T(torch.tensor(1.0), grad=True), [0])
s.case("flip", torch.flip, T(torch.tensor(1.0)), [])
s.case("flip", torch.flip, T(torch.zeros(0, 3)), [0, 1])
s.case("flip", torch.flip, T(x), [3])
s.case("flip", torch.flip, T(x), [0, 0])
s.case("flip", torch.flip, T(x), [-1, 2])

# roll: with dims, each dim by its shift; without, the flattened tensor
for layout in LAYOUTS:
    for shifts, dims in ((1, 0), (-1, 1), (5, -1), ([1, 2], [0, 2]), (7, None), (-13, None), (0, 0), ([1, 1], [1, 1])):
        if dims is None:
            s.case("roll", torch.roll, T(x, layout=layout, grad=True), shifts)
        else:
            s.case("roll", torch.roll, T(x, layout=layout, grad=True), shifts, dims)
for dtype in ALL_DTYPES:
    s.case("roll", torch.roll, T(ints([5], dtype)), 2, 0)
s.case("roll", torch.roll, T(torch.tensor(1.0), grad=True), 3)
s.case("roll", torch.roll, T(torch.zeros(0, 3)), 1, 0)
s.case("roll", torch.roll, T(torch.zeros(0, 3)), 1)
s.case("roll", torch.roll, T(torch.tensor(1.0)), 1, 0)
s.case("roll", torch.roll, T(x), [1, 2], [0])
s.case("roll", torch.roll, T(x), [1, 2])
s.case("roll", torch.roll, T(x), 1, 3)

# repeat (as many repeats as dims or more) and tile (fewer are padded with ones)
for layout in LAYOUTS:
    for r in ([1, 1], [2, 3], [2, 1, 2], [0, 2], [1, 2, 1, 1]):
        s.case("repeat", lambda t, r: t.repeat(r), T(m, layout=layout, grad=True), r)
    for r in ([2], [2, 3], [2, 1, 2], [0], []):
        s.case("tile", torch.tile, T(m, layout=layout, grad=True), r)
for dtype in ALL_DTYPES:
    s.case("repeat", lambda t, r: t.repeat(r), T(ints([2], dtype)), [2, 2])
    s.case("tile", torch.tile, T(ints([2, 2], dtype)), [3])
s.case("repeat", lambda t, r: t.repeat(r), T(torch.tensor(2.0), grad=True), [3])
s.case("repeat", lambda t, r: t.repeat(r), T(torch.tensor(2.0), grad=True), [])
s.case("repeat", lambda t, r: t.repeat(r), T(torch.zeros(0, 2)), [2, 2])
s.case("repeat", lambda t, r: t.repeat(r), T(m), [2])
s.case("repeat", lambda t, r: t.repeat(r), T(m), [2, -1])
s.case("tile", torch.tile, T(torch.tensor(2.0), grad=True), [2, 2])
s.case("tile", torch.tile, T(torch.zeros(0, 2)), [2, 2])
s.case("tile", torch.tile, T(m), [-1])

# repeat_interleave: a count for all, or one per element (int64 tensor); without dim, flattened
v = randn(3, 2)
for layout in LAYOUTS:
    for r, d in ((2, 0), (3, 1), (2, -1), (1, None), (3, None), (0, 0)):
        s.case("repeat_interleave", torch.repeat_interleave, T(v, layout=layout, grad=True), r, dim=d)
    s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v, layout=layout, grad=True),
           T([1, 0, 2], dtype=torch.int64), dim=0)
    s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v, layout=layout, grad=True),
           T([2], dtype=torch.int64), dim=1)
    s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v, layout=layout, grad=True),
           T([1, 2, 0, 1, 1, 3], dtype=torch.int64))
for dtype in ALL_DTYPES:
    s.case("repeat_interleave", torch.repeat_interleave, T(ints([2], dtype)), 2, dim=0)
s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v), T(3, dtype=torch.int64), dim=0)
s.case("repeat_interleave", torch.repeat_interleave, T(torch.tensor(2.0), grad=True), 3)
s.case("repeat_interleave", torch.repeat_interleave, T(torch.zeros(0, 2)), 2, dim=0)
s.case("repeat_interleave", torch.repeat_interleave, T(v), -1, dim=0)
s.case("repeat_interleave", torch.repeat_interleave, T(v), 2, dim=2)
s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v), T([1, 2], dtype=torch.int64), dim=0)
s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v), T([1, -1, 2], dtype=torch.int64), dim=0)
s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v), T([1.0, 2.0, 1.0]), dim=0)
s.case("repeat_interleave.tensor", torch.repeat_interleave, T(v), T([[1, 2, 1]], dtype=torch.int64), dim=0)

# movedim
for layout in LAYOUTS:
    for src, dst in ((0, 2), (-1, 0), (1, 1), ([0, 1], [2, 0]), ([2, 0], [0, 1]), ([], [])):
        op = "movedim.dims" if isinstance(src, list) else "movedim"
        s.case(op, torch.movedim, T(x, layout=layout, grad=True), src, dst)
for dtype in ALL_DTYPES:
    s.case("movedim", torch.movedim, T(ints([2, 3], dtype)), 0, 1)
s.case("movedim", torch.movedim, T(torch.tensor(1.0), grad=True), 0, -1)
s.case("movedim", torch.movedim, T(torch.zeros(0, 3)), 0, 1)
s.case("movedim", torch.movedim, T(x), 3, 0)
s.case("movedim", torch.movedim, T(x), 0, -4)
s.case("movedim.dims", torch.movedim, T(x), [0, 1], [1])
s.case("movedim.dims", torch.movedim, T(x), [0, 0], [1, 2])
s.case("movedim.dims", torch.movedim, T(x), [0, 1], [2, 2])

# unbind
for layout in LAYOUTS:
    for d in (0, 1, 2, -1):
        s.case("unbind", torch.unbind, T(x, layout=layout, grad=True), d, views=True)
for dtype in ALL_DTYPES:
    s.case("unbind", torch.unbind, T(ints([2, 2], dtype)), 1, views=True)
s.case("unbind", torch.unbind, T(torch.zeros(2, 0)), 0)
s.case("unbind", torch.unbind, T(torch.zeros(0, 2)), 0)
s.case("unbind", torch.unbind, T(torch.tensor(1.0)), 0)
s.case("unbind", torch.unbind, T(x), 3)

# diagonal (a view), diag (1-D -> matrix, 2-D -> its diagonal; a copy), trace
for layout in LAYOUTS:
    for off, d1, d2 in ((0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, 1, 0), (0, -1, -2), (5, 0, 1), (-5, 0, 1)):
        s.case("diagonal", torch.diagonal, T(m, layout=layout, grad=True), off, d1, d2, views=True)
    for off, d1, d2 in ((0, 0, 2), (1, 1, 2), (-1, 2, 0)):
        s.case("diagonal", torch.diagonal, T(x, layout=layout, grad=True), off, d1, d2, views=True)
    for off in (0, 1, -2, 4, -3):
        s.case("diag", torch.diag, T(m, layout=layout, grad=True), off)
    s.case("trace", torch.trace, T(m, layout=layout, grad=True))
for off in (0, 1, -2):
    s.case("diag", torch.diag, T(randn(3), grad=True), off)
    s.case("diag", torch.diag, T(randn(3), layout="strided", grad=True), off)


# PyTorch 1.13 has no CPU kernel for diag of float16, nor trace of bool, bfloat16 or float16 (later
# versions add some); weft takes every dtype. Deliberate difference: those cases compare with torch
# computed in a dtype it takes, converted to the dtype weft returns (the values are small integers:
# exact in every dtype).
def via(fn, compute_in, result):
    return lambda t, *a: fn(t.to(compute_in), *a).to(result)


for dtype in ALL_DTYPES:
    s.case("diagonal", torch.diagonal, T(ints([3, 3], dtype)), views=True)
    diag, trace = torch.diag, torch.trace
    if dtype == torch.float16:
        diag = via(torch.diag, torch.float32, dtype)
    if dtype in (torch.bfloat16, torch.float16):
        trace = via(torch.trace, torch.float32, dtype)
    if dtype == torch.bool:
        trace = via(torch.trace, torch.int64, torch.int64)
    s.case("diag", diag, T(ints([3, 3], dtype)))
    s.case("diag", diag, T(ints([2], dtype)), 1)
    s.case("trace", trace, T(ints([3, 3], dtype)))
# PyTorch 1.13's diag of a matrix with an offset beyond its corners (below -rows, above cols) raises an overflow of its own
# arithmetic, where the diagonal is simply empty (as diagonal gives).
# Deliberate difference: weft returns the empty diagonal; the case compares with torch's diagonal.
for off in (-4, -7, 5, 9):
    s.case("diag", lambda t, o: torch.diagonal(t, o).clone(), T(m, grad=True), off)
s.case("diagonal", torch.diagonal, T(torch.zeros(0, 3)))
s.case("diagonal", torch.diagonal, T(m), 0, 0, 0)
s.case("diagonal", torch.diagonal, T(m), 0, 0, 2)
s.case("diagonal", torch.diagonal, T(randn(3)))
s.case("diag", torch.diag, T(torch.zeros(0)))
s.case("diag", torch.diag, T(torch.zeros(0, 2)))
s.case("diag", torch.diag, T(torch.tensor(1.0)))
s.case("diag", torch.diag, T(x))
s.case("trace", torch.trace, T(torch.zeros(0, 3)))
s.case("trace", torch.trace, T(randn(2, 4), grad=True))
s.case("trace", torch.trace, T(torch.tensor([[float("nan"), 1.0], [2.0, float("inf")]])))
s.case("trace", torch.trace, T(randn(3)))
s.case("trace", torch.trace, T(x))
s.write(sys.argv[1])
