"""Conformance cases of sorting and selection (ops/sorting.h) against PyTorch 1.13: sort, argsort,
topk, kthvalue, median.

Every dtype, ascending and descending, ties (weft's sort is stable: compared with torch's
stable=True), NaN (ordered above every number, as in torch), infinities and -0.0, negative dims,
the three layouts, 0-dim and empty tensors, bad k and dims (torch raises), and float64 gradients of
the values. Where torch does not promise which of tied elements' indices it returns (topk,
kthvalue, median), a ties case compares the values only ("<op>.values").
"""
import sys

import torch

from conformance import ALL_DTYPES, Suite, T, Upcast, randn

s = Suite()
INF, NAN = float("inf"), float("nan")


def stable_sort(t, dim=-1, descending=False):
    return torch.sort(t, dim=dim, descending=descending, stable=True)


def stable_argsort(t, dim=-1, descending=False):
    return torch.sort(t, dim=dim, descending=descending, stable=True)[1]


# torch 1.13 lacks a few 16-bit CPU kernels here (e.g. float16 topk/kthvalue/median).
sort, argsort = Upcast(stable_sort), Upcast(stable_argsort)
topk, kthvalue, median = Upcast(torch.topk), Upcast(torch.kthvalue), Upcast(torch.median)


def values_only(fn):
    return lambda *a, **k: fn(*a, **k)[0]


def distinct(dtype):
    """(3, 4) values of `dtype` without ties within a row or a column."""
    if dtype == torch.bool:
        return torch.tensor([[True, False], [False, True]])
    if dtype == torch.uint8:
        return torch.tensor([[0, 9, 2, 255], [200, 1, 7, 3], [5, 8, 6, 4]], dtype=dtype)
    if not dtype.is_floating_point:
        return torch.tensor([[-3, 9, 2, 1], [2, -7, 5, 4], [7, 8, -2, 0]], dtype=dtype)
    return torch.tensor([[-2.5, 9.0, 0.5, 1.5], [3.0, 0.25, -1.0, 2.0], [7.0, -8.0, 1.0, -0.5]],
                        dtype=torch.float64).to(dtype)


def tied(dtype):
    """(3, 6) values with ties, and for floats NaN, infinities, -0.0 and 0.0."""
    if dtype == torch.bool:
        return torch.tensor([[True, False, True, True, False, False], [False, False, False, True, True, True],
                             [True] * 6])
    if dtype == torch.uint8:
        return torch.tensor([[3, 1, 3, 0, 1, 3], [255, 0, 255, 0, 7, 7], [2, 2, 2, 2, 2, 2]], dtype=dtype)
    if not dtype.is_floating_point:
        return torch.tensor([[3, -1, 3, 0, -1, 3], [5, 0, 5, 0, -7, -7], [2, 2, 2, 2, 2, 2]], dtype=dtype)
    return torch.tensor([[3.0, NAN, -0.0, 0.0, NAN, -INF], [1.0, INF, 1.0, -1.0, 1.0, INF],
                         [2.0, -0.0, 2.0, 0.0, -1.0, 2.0]], dtype=torch.float64).to(dtype)


x = randn(3, 5)
cube = randn(2, 3, 4, seed=3)
for d in ALL_DTYPES:
    for desc in (False, True):
        for dim in (0, 1, -1):
            s.case("sort", sort, T(distinct(d)), dim, desc)
            s.case("sort", sort, T(tied(d)), dim, desc)
            s.case("argsort", argsort, T(tied(d)), dim, desc)
    for dim in (0, -1):
        s.case("topk", topk, T(distinct(d)), 2, dim)
        s.case("topk", topk, T(distinct(d)), 1, dim, False)
        s.case("topk.values", values_only(topk), T(tied(d)), 3, dim)
        s.case("topk.values", values_only(topk), T(tied(d)), 2, dim, False)
        s.case("kthvalue", kthvalue, T(distinct(d)), 2, dim)
        s.case("kthvalue.values", values_only(kthvalue), T(tied(d)), 2, dim)
        s.case("median.dim", median, T(distinct(d)), dim)
        s.case("median.dim.values", values_only(median), T(tied(d)), dim)
    s.case("median", median, T(distinct(d)))
    s.case("median", median, T(tied(d)))

# NaN with topk/kthvalue/median: NaN counts as the largest value.
nan_rows = torch.tensor([[1.0, NAN, 3.0, -1.0], [2.0, 0.5, 4.0, NAN], [5.0, 6.0, 7.0, 8.0]], dtype=torch.float64)
s.case("topk", topk, T(nan_rows), 2, 1)
s.case("topk", topk, T(nan_rows), 2, 1, False)
s.case("kthvalue", kthvalue, T(nan_rows), 4, 1)
s.case("kthvalue", kthvalue, T(nan_rows), 3, 1)
s.case("median.dim", median, T(nan_rows), 1)
s.case("median", median, T(nan_rows))
s.case("median", median, T(nan_rows[2:]))

# Layouts, keepdim, largest, gradients.
for layout in ("contiguous", "transposed", "strided"):
    for dim in (0, 1, 2, -1):
        s.case("sort", sort, T(cube, layout=layout, grad=True), dim)
        s.case("sort", sort, T(cube, layout=layout, grad=True), dim, True)
        s.case("argsort", argsort, T(cube, layout=layout), dim, True)
        s.case("topk", topk, T(cube, layout=layout, grad=True), 2, dim)
        s.case("topk", topk, T(cube, layout=layout, grad=True), 2, dim, False)
        s.case("kthvalue", kthvalue, T(cube, layout=layout, grad=True), 2, dim)
        s.case("kthvalue", kthvalue, T(cube, layout=layout, grad=True), 1, dim, True)
        s.case("median.dim", median, T(cube, layout=layout, grad=True), dim)
        s.case("median.dim", median, T(cube, layout=layout, grad=True), dim, True)
    s.case("median", median, T(x, layout=layout, grad=True))
s.case("sort", sort, T(x, dtype=torch.float32, layout="transposed"), 0)
s.case("topk", topk, T(x, grad=True), 5)  # k = the whole dim
s.case("topk", topk, T(x, grad=True), 0)  # k = 0: empty
s.case("median", median, T(x[:, :4], grad=True))  # an even count: the lower middle value

# Ties with gradients: the gradient goes back to the position each value came from.
ties = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, -1.0, 2.0, 2.0]], dtype=torch.float64)
s.case("sort", sort, T(ties, grad=True), 1)
s.case("sort", sort, T(ties, grad=True), 1, True)

# Long lanes with many ties (stability beyond the short-lane paths), and selection in them.
g = torch.Generator().manual_seed(4)
many_ties = torch.randint(0, 5, (3, 300), generator=g)
s.case("sort", sort, T(many_ties), 1)
s.case("sort", sort, T(many_ties, dtype=torch.float32), 1, True)
s.case("argsort", argsort, T(many_ties, layout="transposed"), 0)
s.case("argsort", argsort, T(many_ties, dtype=torch.int8), -1, True)
long_distinct = torch.randperm(301, generator=g).reshape(1, 301).double() - 150.5
s.case("topk", topk, T(long_distinct, grad=True), 10)
s.case("topk", topk, T(long_distinct), 10, -1, False)
s.case("kthvalue", kthvalue, T(long_distinct, grad=True), 77)
s.case("median.dim", median, T(long_distinct, grad=True), 1)
s.case("median", median, T(long_distinct[:, :300]))

# 0-dim and empty tensors, bad k and dims.
z = torch.tensor(2.5, dtype=torch.float64)
s.case("sort", sort, T(z, grad=True), 0)
s.case("sort", sort, T(z), -1)
s.case("argsort", argsort, T(z), 0)
s.case("topk", topk, T(z, grad=True), 1, 0)
s.case("kthvalue", kthvalue, T(z, grad=True), 1, 0)
s.case("median", median, T(z, grad=True))
s.case("median.dim", median, T(z, grad=True), 0)
e = torch.zeros(0, 3)
for dim in (0, 1):
    s.case("sort", sort, T(e), dim)
    s.case("argsort", argsort, T(e), dim)
    s.case("topk", topk, T(e), 0, dim)
    s.case("median.dim", median, T(e), dim)  # over the empty dim torch raises
    s.case("kthvalue", kthvalue, T(e), 1, dim)
s.case("median", median, T(e))  # NaN
s.case("sort", sort, T(x), 2)
s.case("argsort", argsort, T(x), -3)
s.case("topk", topk, T(x), 6)  # k > size: torch raises
s.case("topk", topk, T(x), -1)
s.case("topk", topk, T(x), 1, 2)
s.case("kthvalue", kthvalue, T(x), 0)  # k from 1
s.case("kthvalue", kthvalue, T(x), 6)
s.case("kthvalue", kthvalue, T(x), 1, -3)
s.case("median.dim", median, T(x), 2)
s.write(sys.argv[1])
