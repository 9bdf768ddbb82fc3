"""Conformance cases of indexing against PyTorch 1.13: gather and index_select (ops/indexing.h),
and x[...] / x[...] = v (ops/tensor_index.h: index, index_put_) with ints, slices, None, Ellipsis,
bools, bool masks and int64 index tensors, negative and out-of-range indices.

An index is written as a list whose items are ints, None, "...", ("slice", start, stop, step),
bools, or tensors T(...); the C++ side builds weft's TensorIndex list from the same spelling."""
import sys
import warnings

import torch

from conformance import ALL_DTYPES, LAYOUTS, Suite, T, ints, randn

s = Suite()
warnings.filterwarnings("ignore", message="indexing with dtype torch.uint8")


def I(*v):  # an int64 index tensor
    return T(list(v) if len(v) != 1 or not isinstance(v[0], list) else v[0], dtype=torch.int64)


x = randn(3, 4)
# index_select
for layout in LAYOUTS:
    for d, idx in ((0, I(2, 0)), (1, I(3, 3, 0)), (-1, I(1)), (0, I([])), (-2, I(-1, 0)), (1, T(2, dtype=torch.int64))):
        s.case("index_select", torch.index_select, T(x, layout=layout, grad=True), d, idx)
for dtype in ALL_DTYPES:
    s.case("index_select", torch.index_select, T(ints([3, 2], dtype)), 0, I(2, 1, 2))
s.case("index_select", torch.index_select, T(x, grad=True), 0, T([1, 2], dtype=torch.int32))
s.case("index_select", torch.index_select, T(torch.tensor(5.0), grad=True), 0, I(0))
s.case("index_select", torch.index_select, T(torch.zeros(0, 3)), 1, I(0, 2))
s.case("index_select", torch.index_select, T(torch.tensor(5.0)), -1, T(0, dtype=torch.int64))
s.case("index_select", torch.index_select, T(torch.tensor(5.0)), 0, I(0, 0), expect_error=True,
       why="PyTorch 1.13 gives a 0-d result for two indices into a 0-d tensor; weft takes one index")
s.case("index_select", torch.index_select, T(x), 0, I(3))
s.case("index_select", torch.index_select, T(x), 1, I(-5))
s.case("index_select", torch.index_select, T(x), 2, I(0))
s.case("index_select", torch.index_select, T(x), 0, I([[0, 1]]))
s.case("index_select", torch.index_select, T(x), 0, T([0.0, 1.0]))
s.case("index_select", torch.index_select, T(x), 0, T([0, 1], dtype=torch.int8))

# gather
g2 = [[0, 2, 1, 0], [2, 2, 0, 1]]
for layout in LAYOUTS:
    s.case("gather", torch.gather, T(x, layout=layout, grad=True), 0, I(g2))
    s.case("gather", torch.gather, T(x, layout=layout, grad=True), 1, I([[3, 0], [1, 1], [2, 0]]))
    s.case("gather", torch.gather, T(x, layout=layout, grad=True), -1, I([[0], [3]]))
    s.case("gather", torch.gather, T(x, layout=layout, grad=True), 1, T(torch.tensor([[0, 3], [1, 2]]).t(), layout="transposed"))
for dtype in ALL_DTYPES:
    s.case("gather", torch.gather, T(ints([2, 3], dtype)), 1, I([[2, 0], [1, 1]]))
s.case("gather", torch.gather, T(torch.tensor(5.0), grad=True), 0, T(0, dtype=torch.int64))
s.case("gather", torch.gather, T(torch.zeros(0, 3)), 1, T(torch.zeros(0, 2, dtype=torch.int64)))
s.case("gather", torch.gather, T(x, grad=True), 1, T(torch.zeros(3, 0, dtype=torch.int64)))
s.case("gather", torch.gather, T(torch.tensor(5.0)), -1, T(0, dtype=torch.int64))
s.case("gather", torch.gather, T(torch.tensor(5.0)), 0, T(1, dtype=torch.int64))
s.case("gather", torch.gather, T(x), 0, I([[3]]))
s.case("gather", torch.gather, T(x), 0, I([[-1]]))
s.case("gather", torch.gather, T(x), 2, I([[0]]))
s.case("gather", torch.gather, T(x), 0, I([0]))
s.case("gather", torch.gather, T(x), 0, I([[0, 1, 2, 3, 0]]))  # larger than x outside dim
s.case("gather", torch.gather, T(x), 0, T([[0, 1]], dtype=torch.int32))


# x[index] and x[index] = values
def spec(i):
    if isinstance(i, T):
        return i.tensor
    if isinstance(i, tuple) and i and i[0] == "slice":
        return slice(*i[1:])
    if isinstance(i, str) and i == "...":
        return Ellipsis
    return i


def get(t, index):
    return t[tuple(spec(i) for i in index)]


def put(t, index, values):
    y = t.clone()
    y[tuple(spec(i) for i in index)] = values
    return y


def put_acc(t, index, values):
    return t.clone().index_put_(tuple(index), values, accumulate=True)


def rnd(shape, seed):
    return randn(*shape, seed=seed) if len(shape) else randn(1, seed=seed).reshape(())


def S(start=None, stop=None, step=None):
    return ("slice", start, stop, step)


y = randn(3, 4, 5)
mask34 = T([[True, False, True, False], [False, False, False, False], [True, True, False, True]])
mask3 = T([True, False, True])
basic = [[0], [-1], [2, -2, 1], [S(1)], [S(None, -1)], [S(None, None, 2)], [S(-2, None)], [S(1, 3), 0],
         [S(5, 10)], [S(-10, 2)], [S(3, 1)], [None], [None, 0, None], ["..."], ["...", 1], [0, "..."],
         [1, "...", S(None, None, 3)], [None, "...", None], [True], [False], [0, True], [S(), False],
         [S(), S(), -5], [], [1, 2, 3]]
advanced = [[I(0, 2)], [I(-1, 0, 0)], [I([[0, 1], [2, 2]])], [S(), I(3, 0)], [I(0, 1), I(1, 2)],
            [I(0, 1), S(), I(1, 2)], [I([[0], [1]]), I(1, 2, 3)], [S(), I(1), I(0, 4)], [mask34], [mask3],
            [mask3, S(), I(1)], [S(), S(), T([True, False, False, True, True])], ["...", I(4, 0)],
            [None, I(1, 2), None], [I(0, 1), 2, I(1, 1)], [T(1, dtype=torch.int64)], [T(True)], [T(False)],
            [I([])], [S(), T(randn(4, 5, seed=9) > 0, layout="transposed")], [S(None, None, 2), I(1, 1)],
            [I(0, 2), True], [True, S(), I(1, 2)], [S(), True, 1], [T(True), I(1)],
            [I(0, 1), None, I(1, 2)], [None, I(0, 1), I(1, 2)], ["...", T(randn(4, 5, seed=11) > 0.3)],
            [I(-3, 2), S(None, None, -1 + 3), I(-1)], [0, I([[1, 2], [3, 0]]), S(1, 4)], [I(0, 1), "...", I(2, 3)],
            [T(torch.tensor([[0, 2], [1, 1]]).t().contiguous().t(), layout="transposed")]]
for index in basic + advanced:
    views = all(not isinstance(i, T) for i in index)
    for layout in LAYOUTS:
        s.case("index", get, T(y, layout=layout, grad=True), index, views=views)
for dtype in ALL_DTYPES:
    s.case("index", get, T(ints([3, 4], dtype)), [S(1), I(0, 3)])
    s.case("index", get, T(ints([3, 4], dtype)), [mask3, 1])
s.case("index", get, T(torch.tensor(3.0), grad=True), [None], views=True)
s.case("index", get, T(torch.tensor(3.0), grad=True), ["..."], views=True)
s.case("index", get, T(torch.tensor(3.0), grad=True), [True])
s.case("index", get, T(torch.tensor(3.0)), [0])
s.case("index", get, T(torch.zeros(0, 3)), [S(), 1], views=True)
s.case("index", get, T(torch.zeros(0, 3)), [I([])])
s.case("index", get, T(y), [3])
s.case("index", get, T(y), [0, -5])
s.case("index", get, T(y), [0, 0, 0, 0])
s.case("index", get, T(y), ["...", "..."], expect_error=True,
       why="PyTorch 1.13 lets a second ellipsis stand for no dims; NumPy and weft take one")
s.case("index", get, T(y), [S(None, None, -1)])
s.case("index", get, T(y), [S(None, None, 0)])
s.case("index", get, T(y), [I(3)])
s.case("index", get, T(y), [S(), I(-5)])
s.case("index", get, T(y), [I(0, 1), I(0, 1, 2)])
s.case("index", get, T(y), [S(), False, I(1, 2)])  # false is an empty index tensor, which broadcasts with none
s.case("index", get, T(y), [T(mask34.tensor.t())])
s.case("index", get, T(y), [T([0, 1], dtype=torch.int32)])
s.case("index", get, T(y), [T([0.0])])
s.case("index", get, T(y), [T([1, 0, 1], dtype=torch.uint8)], expect_error=True,
       why="uint8 masks are deprecated in PyTorch (a warning); weft takes bool masks only")

for index in basic[:18] + advanced:
    for layout in LAYOUTS[:2]:
        shape = get(y, index).shape
        s.case("index_put_", put, T(y, layout=layout, grad=True), index, T(rnd(shape, 5), grad=True))
    shape = get(y, index).shape
    if len(shape) >= 1:  # values broadcast along the indexed result
        s.case("index_put_", put, T(y, grad=True), index, T(rnd(shape[-1:], 6), grad=True))
    s.case("index_put_.scalar", put, T(y, grad=True), index, 2.5)
for dtype in ALL_DTYPES:
    s.case("index_put_", put, T(ints([3, 4], dtype)), [S(1), I(0, 3)], T(ints([2, 2], dtype)))
    s.case("index_put_", put, T(ints([3, 4], dtype)), [mask3], T(ints([4], dtype)))
    s.case("index_put_.scalar", put, T(ints([3, 4], dtype)), [1], 1)
s.case("index_put_", put, T(y), [0], T(randn(4, 5), dtype=torch.float32))  # values converted to x's dtype
s.case("index_put_", put, T(y), [0], T(randn(3, 5)))
s.case("index_put_", put, T(y), [I(0, 1)], T(randn(3, 4, 5)))
s.case("index_put_", put, T(y), [I(3)], T(randn(4, 5)))
s.case("index_put_", put, T(y), [0, 0, 0, 0], T(randn(1)))
s.case("index_put_.scalar", put, T(y), [I(0, -4)], 1.0)
s.case("index_put_.scalar", put, T(torch.tensor(3.0), grad=True), [None], 1.0)
s.case("index_put_.scalar", put, T(torch.tensor(3.0), grad=True), [True], 1.0)
# accumulate: duplicates add up; tensors (or None) only, as torch's index_put_ takes
for index in ([I(0, 0, 2, 0)], [I(1, 1), I(2, 2)], [mask34], [I([[0], [2]]), I(1, 1, 3)]):
    shape = get(y, index).shape
    for layout in LAYOUTS[:2]:
        s.case("index_put_.accumulate", put_acc, T(y, layout=layout, grad=True), index,
               T(rnd(shape, 7), grad=True))
    s.case("index_put_.accumulate", put_acc, T(y, grad=True), index, T(rnd(shape[-1:], 8), grad=True))
for dtype in ALL_DTYPES:
    s.case("index_put_.accumulate", put_acc, T(ints([4], dtype)), [I(0, 0, 3)], T(ints([3], dtype)))
s.case("index_put_.accumulate", put_acc, T(y), [I(4)], T(randn(4, 5)))
# gradients keep the input's floating dtype
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    s.case("index", get, T(y, dtype=dtype, grad=True), [I(0, 2, 0), S(1)])
    s.case("gather", torch.gather, T(x, dtype=dtype, grad=True), 0, I(g2))
    s.case("index_select", torch.index_select, T(x, dtype=dtype, grad=True), 1, I(3, 3, 0))
    s.case("index_put_.accumulate", put_acc, T(y, dtype=dtype, grad=True), [I(0, 0)],
           T(rnd([2, 4, 5], 12), dtype=dtype, grad=True))
s.write(sys.argv[1])
