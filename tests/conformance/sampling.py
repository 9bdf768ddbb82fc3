"""Conformance cases of the random sampling ops (ops/sampling.h) against PyTorch 1.13.

Their draws come from weft's generator, not torch's, so only what does not depend on the draw is
compared here: the errors torch raises, and draws that have one possible outcome (a single
category of nonzero weight, probabilities of 0 and 1, a permutation of 0 or 1 items). The
distributions are tested in tests/test_sampling.cpp (see not_covered.txt)."""
import sys

import torch

from conformance import DTYPES, FLOATING, Suite, T

s = Suite()


def randperm(n, dtype):
    return torch.randperm(n, dtype=DTYPES[dtype])


for n in (0, 1):
    for dtype in ("int64", "int32", "float32", "float64"):
        s.case("randperm", randperm, n, dtype)
s.case("randperm", randperm, -1, "int64")

# multinomial: one category of nonzero weight is drawn every time (with replacement), and the
# errors: negative, infinite or NaN weights, rows summing to zero, too many draws without
# replacement, no draws, the wrong rank or dtype
# PyTorch 1.13 has no CPU multinomial or bernoulli for float16; weft takes it. Deliberate difference:
# those cases compare with torch in float32 (the outcomes are certain; bernoulli's converted back).
def via_float32(fn):
    def run(t, *args):
        out = fn(t.float(), *args)
        return out.to(t.dtype) if out.is_floating_point() else out
    return run


for dtype in FLOATING:
    multinomial = via_float32(torch.multinomial) if dtype == torch.float16 else torch.multinomial
    s.case("multinomial", multinomial, T([0.0, 0.0, 2.5, 0.0], dtype=dtype), 3, True)
    s.case("multinomial", multinomial, T([[0.0, 1.0, 0.0], [0.0, 0.0, 7.0]], dtype=dtype), 2, True)
    s.case("multinomial", multinomial, T([0.0, 0.0, 2.5, 0.0], dtype=dtype), 1, False)
s.case("multinomial", torch.multinomial, T([0.5, -0.1, 0.6]), 1, True)
s.case("multinomial", torch.multinomial, T([[0.5, 0.5], [-1.0, 2.0]]), 1, True)
s.case("multinomial", torch.multinomial, T([0.5, float("inf")]), 1, True)
s.case("multinomial", torch.multinomial, T([0.5, float("nan")]), 1, True)
s.case("multinomial", torch.multinomial, T([0.0, 0.0]), 1, True)
s.case("multinomial", torch.multinomial, T([[1.0, 0.0], [0.0, 0.0]]), 1, True)
s.case("multinomial", torch.multinomial, T([0.5, 0.5]), 3, False)
s.case("multinomial", torch.multinomial, T([0.5, 0.0, 0.0]), 2, False, expect_error=True,
       why="two draws without replacement from one category of nonzero weight: PyTorch 1.13 draws a category "
           "of weight zero; weft raises")
s.case("multinomial", torch.multinomial, T([0.5, 0.5]), 0, True)
s.case("multinomial", torch.multinomial, T([0.5, 0.5]), -1, True)
s.case("multinomial", torch.multinomial, T(torch.tensor(1.0)), 1, True)
s.case("multinomial", torch.multinomial, T(torch.ones(2, 2, 2)), 1, True)
s.case("multinomial", torch.multinomial, T([1, 2], dtype=torch.int64), 1, True)


# bernoulli: probabilities of 0 and 1 give themselves; p outside [0, 1] and non-floating inputs raise
def bernoulli_p(t, p):
    return torch.bernoulli(t, p)


for dtype in FLOATING:
    bernoulli = via_float32(torch.bernoulli) if dtype == torch.float16 else torch.bernoulli
    p_form = via_float32(bernoulli_p) if dtype == torch.float16 else bernoulli_p
    s.case("bernoulli", bernoulli, T([[0.0, 1.0], [1.0, 0.0]], dtype=dtype))
    s.case("bernoulli.p", p_form, T(torch.zeros(2, 3).to(dtype)), 0.0)
    s.case("bernoulli.p", p_form, T(torch.zeros(2, 3).to(dtype)), 1.0)
s.case("bernoulli", torch.bernoulli, T(torch.tensor(1.0)))
s.case("bernoulli", torch.bernoulli, T(torch.zeros(0, 2)))
s.case("bernoulli", torch.bernoulli, T([0.5, 1.5]))
s.case("bernoulli", torch.bernoulli, T([0.5, -0.5]))
s.case("bernoulli", torch.bernoulli, T([0.5, float("nan")]))
s.case("bernoulli.p", bernoulli_p, T(torch.zeros(2)), 1.5)
s.case("bernoulli.p", bernoulli_p, T(torch.zeros(2)), -0.1)
s.write(sys.argv[1])
