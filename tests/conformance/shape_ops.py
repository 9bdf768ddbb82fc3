"""Conformance cases of the view ops (ops/shape_ops.h) against PyTorch 1.13: values, gradients,
errors, and (views=True) that weft's result shares its input's storage exactly where torch's does."""
import sys

import torch

from conformance import ALL_DTYPES, LAYOUTS, Suite, T, ints, randn

s = Suite()
x = randn(2, 3, 4)


# reshape: a view where the geometry allows one, else a copy; -1 infers a dim
for layout in LAYOUTS:
    for shape in ([4, 6], [-1], [6, -1], [2, 12], [24], [2, 3, 2, 2], [1, 24, 1]):
        s.case("reshape", torch.reshape, T(x, layout=layout, grad=True), shape, views=True)
for dtype in ALL_DTYPES:
    s.case("reshape", torch.reshape, T(ints([2, 3], dtype)), [3, 2], views=True)
s.case("reshape", torch.reshape, T(torch.tensor(5.0), grad=True), [1, 1], views=True)  # 0-dim
s.case("reshape", torch.reshape, T(randn(1, 1)), [], views=True)
s.case("reshape", torch.reshape, T(torch.zeros(0, 3)), [3, 0, 5])
s.case("reshape", torch.reshape, T(torch.zeros(0, 3)), [-1])
# reshape of an expanded tensor: a view where its zero strides allow one, else a copy
def reshape_expanded(t, sh):
    return t.expand(3, 4).reshape(sh)


for shape in ([3, 4], [12], [3, 2, 2], [1, 3, 4, 1], [4, 3]):
    s.case("reshape.of_expanded", reshape_expanded, T(randn(3, 1), grad=True), shape, views=True)
    s.case("reshape.of_expanded", reshape_expanded, T(randn(4), grad=True), shape, views=True)
s.case("reshape", torch.reshape, T(x), [5, -1])  # 24 not divisible
s.case("reshape", torch.reshape, T(x), [-1, -1])
s.case("reshape", torch.reshape, T(x), [25])
s.case("reshape", torch.reshape, T(x), [-2, 12])
s.case("reshape", torch.reshape, T(torch.zeros(0, 3)), [0, -1])  # -1 with zero elements is ambiguous

# view: never copies, raises where reshape would copy
for layout in LAYOUTS:
    for shape in ([4, 6], [2, 12], [6, 4], [2, 3, 2, 2], [-1]):
        s.case("view", lambda t, sh: t.view(sh), T(x, layout=layout, grad=True), shape, views=True)
for dtype in ALL_DTYPES:
    s.case("view", lambda t, sh: t.view(sh), T(ints([2, 3], dtype)), [6], views=True)
s.case("view", lambda t, sh: t.view(sh), T(torch.tensor(3.0)), [1], views=True)
s.case("view", lambda t, sh: t.view(sh), T(torch.zeros(2, 0)), [0, 7])
s.case("view", lambda t, sh: t.view(sh), T(x), [7, -1])

# flatten
for layout in LAYOUTS:
    for a, b in ((0, -1), (1, 2), (0, 1), (-2, -1), (2, 2), (1, -1)):
        s.case("flatten", torch.flatten, T(x, layout=layout, grad=True), a, b, views=True)
for dtype in ALL_DTYPES:
    s.case("flatten", torch.flatten, T(ints([2, 2], dtype)), views=True)
s.case("flatten", torch.flatten, T(torch.tensor(2.5), grad=True), views=True)  # 0-dim -> [1]
s.case("flatten", torch.flatten, T(torch.zeros(2, 0, 3)), 0, 1)
s.case("flatten", torch.flatten, T(x), 2, 1)
s.case("flatten", torch.flatten, T(x), 0, 3)
s.case("flatten", torch.flatten, T(x), -4, 1)

# squeeze / unsqueeze
y = randn(1, 3, 1, 2)
for layout in LAYOUTS:
    s.case("squeeze", torch.squeeze, T(y, layout=layout, grad=True), views=True)
    for d in (0, 1, 2, -1, -4, -2):
        s.case("squeeze.dim", torch.squeeze, T(y, layout=layout, grad=True), d, views=True)
for dtype in ALL_DTYPES:
    s.case("squeeze", torch.squeeze, T(ints([1, 2, 1], dtype)), views=True)
    s.case("unsqueeze", torch.unsqueeze, T(ints([2, 2], dtype)), 1, views=True)
s.case("squeeze", torch.squeeze, T(torch.tensor(1.0), grad=True), views=True)
s.case("squeeze", torch.squeeze, T(torch.zeros(1, 0, 1)))
s.case("squeeze.dim", torch.squeeze, T(torch.tensor(1.0), grad=True), 0, views=True)  # 0-dim takes dim 0 or -1
s.case("squeeze.dim", torch.squeeze, T(torch.tensor(1.0)), -1, views=True)
s.case("squeeze.dim", torch.squeeze, T(torch.tensor(1.0)), 1)
s.case("squeeze.dim", torch.squeeze, T(y), 4)
s.case("squeeze.dim", torch.squeeze, T(y), -5)
for layout in LAYOUTS:
    for d in (0, 1, 2, 3, -1, -4, -2):
        s.case("unsqueeze", torch.unsqueeze, T(x, layout=layout, grad=True), d, views=True)
s.case("unsqueeze", torch.unsqueeze, T(torch.tensor(1.0), grad=True), 0, views=True)
s.case("unsqueeze", torch.unsqueeze, T(torch.tensor(1.0)), -1, views=True)
s.case("unsqueeze", torch.unsqueeze, T(torch.zeros(0, 2)), 1)
s.case("unsqueeze", torch.unsqueeze, T(x), 4)
s.case("unsqueeze", torch.unsqueeze, T(x), -5)
s.case("unsqueeze", torch.unsqueeze, T(torch.tensor(1.0)), 2)

# transpose / permute
for layout in LAYOUTS:
    for a, b in ((0, 1), (0, 2), (-1, -2), (1, 1), (2, -3)):
        s.case("transpose", torch.transpose, T(x, layout=layout, grad=True), a, b, views=True)
    for p in ([2, 0, 1], [0, 1, 2], [-1, 0, 1], [1, 2, 0]):
        s.case("permute", torch.permute, T(x, layout=layout, grad=True), p, views=True)
for dtype in ALL_DTYPES:
    s.case("transpose", torch.transpose, T(ints([2, 3], dtype)), 0, 1, views=True)
    s.case("permute", torch.permute, T(ints([2, 3], dtype)), [1, 0], views=True)
s.case("transpose", torch.transpose, T(torch.tensor(1.0), grad=True), 0, -1, views=True)
s.case("transpose", torch.transpose, T(torch.zeros(0, 3)), 0, 1)
s.case("transpose", torch.transpose, T(x), 0, 3)
s.case("transpose", torch.transpose, T(x), -4, 0)
# Tensor::t(): matrices transpose, fewer dims come back as they are, more raise
for layout in LAYOUTS:
    s.case("transpose.t", torch.t, T(randn(3, 4), layout=layout, grad=True), views=True)
s.case("transpose.t", torch.t, T(randn(3), grad=True), views=True)
s.case("transpose.t", torch.t, T(torch.tensor(1.0), grad=True), views=True)
s.case("transpose.t", torch.t, T(torch.zeros(0, 2)))
s.case("transpose.t", torch.t, T(x))
s.case("permute", torch.permute, T(torch.tensor(1.0), grad=True), [], views=True)
s.case("permute", torch.permute, T(torch.zeros(0, 3)), [1, 0])
s.case("permute", torch.permute, T(x), [0, 1])
s.case("permute", torch.permute, T(x), [0, 0, 1])
s.case("permute", torch.permute, T(x), [0, 1, 3])
s.case("permute", torch.permute, T(x), [0, 1, 2, 3])

# expand
e = randn(3, 1)
for layout in LAYOUTS:
    for shape in ([3, 4], [2, 3, 4], [-1, 5], [3, 1], [2, -1, 1], [1, 3, 0]):
        s.case("expand", lambda t, sh: t.expand(sh), T(e, layout=layout, grad=True), shape, views=True)
for dtype in ALL_DTYPES:
    s.case("expand", lambda t, sh: t.expand(sh), T(ints([1, 2], dtype)), [3, 2], views=True)
s.case("expand", lambda t, sh: t.expand(sh), T(torch.tensor(2.0), grad=True), [2, 3], views=True)
s.case("expand", lambda t, sh: t.expand(sh), T(torch.tensor(2.0)), [], views=True)
s.case("expand", lambda t, sh: t.expand(sh), T(torch.zeros(0, 1)), [0, 4])
s.case("expand", lambda t, sh: t.expand(sh), T(e), [4, 4])
s.case("expand", lambda t, sh: t.expand(sh), T(e), [4])
s.case("expand", lambda t, sh: t.expand(sh), T(e), [-1, 4, 1])  # -1 only for existing dims
s.case("expand", lambda t, sh: t.expand(sh), T(e), [3, -2])

# narrow / select
for layout in LAYOUTS:
    for d, st, n in ((0, 0, 1), (1, 1, 2), (2, 0, 4), (-1, 3, 1), (2, -3, 2), (1, 3, 0), (-3, -1, 1)):
        s.case("narrow", torch.narrow, T(x, layout=layout, grad=True), d, st, n, views=True)
    for d, i in ((0, 0), (1, 2), (2, -1), (-1, 0), (-2, -3), (0, -2)):
        s.case("select", torch.select, T(x, layout=layout, grad=True), d, i, views=True)
for dtype in ALL_DTYPES:
    s.case("narrow", torch.narrow, T(ints([4], dtype)), 0, 1, 2, views=True)
    s.case("select", torch.select, T(ints([2, 3], dtype)), 1, 1, views=True)
s.case("narrow", torch.narrow, T(x), 1, 2, 2)
s.case("narrow", torch.narrow, T(x), 1, 4, 0)
s.case("narrow", torch.narrow, T(x), 1, -4, 1)
s.case("narrow", torch.narrow, T(x), 3, 0, 1)
s.case("narrow", torch.narrow, T(x), 0, 0, -1)
s.case("narrow", torch.narrow, T(torch.tensor(1.0)), 0, 0, 1)
s.case("select", torch.select, T(x), 0, 2)
s.case("select", torch.select, T(x), 1, -4)
s.case("select", torch.select, T(x), 3, 0)
s.case("select", torch.select, T(torch.tensor(1.0)), 0, 0)
s.case("select", torch.select, T(torch.zeros(0, 2)), 0, 0)
s.case("select", torch.select, T(torch.zeros(2, 0)), 0, 1)

# as_strided: sizes and strides over the input's storage (offset counted from its start)
a = randn(12)
for shape, strides, off in (([3, 4], [4, 1], 0), ([4, 3], [1, 4], 0), ([2, 2], [3, 1], 1), ([3], [4], 3),
                            ([], [], 5), ([2, 0], [1, 1], 0), ([5, 2], [2, 1], 2)):
    s.case("as_strided", torch.as_strided, T(a, grad=True), shape, strides, off, views=True)
for dtype in ALL_DTYPES:
    s.case("as_strided", torch.as_strided, T(ints([6], dtype)), [2, 2], [2, 1], 1, views=True)
s.case("as_strided", torch.as_strided, T(randn(3, 4), layout="transposed"), [2, 2], [1, 3], 0, views=True)
s.case("as_strided", torch.as_strided, T(randn(2, 3), layout="strided"), [3], [2], 0, views=True)
s.case("as_strided", torch.as_strided, T(a), [4, 4], [4, 1], 0)  # reaches past the storage
s.case("as_strided", torch.as_strided, T(a), [2, 2], [1], 0)
s.case("as_strided", torch.as_strided, T(a), [2], [-1], 4)
s.case("as_strided", torch.as_strided, T(a), [2], [1], -1)
s.case("as_strided", torch.as_strided, T(a), [-1], [1], 0)

# split (sizes or one size, the last chunk smaller) and chunk (ceil(n/chunks) per chunk)
z = randn(5, 4)
for layout in LAYOUTS:
    for size, d in ((2, 0), (1, 1), (3, -1), (5, 0), (7, 0), ([2, 3], 0), ([1, 0, 3], -1), ([4], 1)):
        op = "split.sizes" if isinstance(size, list) else "split"
        s.case(op, torch.split, T(z, layout=layout, grad=True), size, d, views=True)
    for c, d in ((2, 0), (3, 0), (5, 0), (6, 0), (1, 1), (3, -1), (4, 1)):
        s.case("chunk", torch.chunk, T(z, layout=layout, grad=True), c, d, views=True)
for dtype in ALL_DTYPES:
    s.case("split", torch.split, T(ints([5], dtype)), 2, views=True)
    s.case("chunk", torch.chunk, T(ints([5], dtype)), 2, views=True)
s.case("split", torch.split, T(torch.zeros(0, 2)), 2, 0)
s.case("split", torch.split, T(torch.zeros(4, 2)), 0, 1)  # split_size 0 of a nonempty dim
s.case("split", torch.split, T(torch.zeros(0, 2)), 0, 0)
s.case("split.sizes", torch.split, T(z), [2, 2], 0)
s.case("split.sizes", torch.split, T(z), [6, -1], 0)
s.case("split", torch.split, T(z), -1, 0)
s.case("split", torch.split, T(z), 2, 2)
s.case("split", torch.split, T(torch.tensor(1.0)), 1, 0)
s.case("chunk", torch.chunk, T(randn(6, 2), grad=True), 4, 0, views=True)  # ceil(6/4) = 2 rows: three chunks
s.case("chunk", torch.chunk, T(randn(7, 2), grad=True), 3, 0, views=True)
s.case("chunk", torch.chunk, T(torch.zeros(0, 2)), 3, 0)
s.case("chunk", torch.chunk, T(z), 0, 0)
s.case("chunk", torch.chunk, T(z), -1, 0)
s.case("chunk", torch.chunk, T(z), 2, 2)
s.case("chunk", torch.chunk, T(torch.tensor(1.0)), 1, 0)
# gradients keep the input's floating dtype
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    s.case("reshape", torch.reshape, T(x, dtype=dtype, grad=True), [4, 6], views=True)
    s.case("split", torch.split, T(z, dtype=dtype, grad=True), 2, 0, views=True)
    s.case("expand", lambda t, sh: t.expand(sh), T(e, dtype=dtype, grad=True), [2, 3, 4], views=True)
    s.case("as_strided", torch.as_strided, T(a, dtype=dtype, grad=True), [2, 2], [3, 1], 1, views=True)
s.write(sys.argv[1])
