"""What every conformance script shares: cases written against PyTorch 1.13, run here, and saved as
the JSON that tests/conformance/conformance.h reads back and replays through weft.

A family script (tests/conformance/<family>.py) builds a Suite, adds cases and calls
suite.write(sys.argv[1]). A case names the weft op ("clamp", or "sum.dims" for one of its overloads:
the part before the dot is the op the coverage check counts), the PyTorch callable, and its
arguments. Tensor arguments are wrapped in T(...), which fixes their layout (contiguous, transposed
or strided: weft sees the same layout) and whether their gradient is compared. The script records
torch's outputs, or that torch raised, and, for arguments marked grad=True, the gradients of
sum(output * weight) for a random weight per floating output.

Run by Debian's /usr/bin/python3, which sees python3-torch.
"""
import functools
import json
import math

import torch

DTYPE_NAMES = {
    torch.bool: "bool", torch.uint8: "uint8", torch.int8: "int8", torch.int32: "int32",
    torch.int64: "int64", torch.bfloat16: "bfloat16", torch.float16: "float16",
    torch.float32: "float32", torch.float64: "float64",
}
DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}
FLOATING = (torch.bfloat16, torch.float16, torch.float32, torch.float64)
ALL_DTYPES = list(DTYPE_NAMES)  # every dtype weft has, for the scripts' "every dtype" loops
LAYOUTS = ("contiguous", "transposed", "strided")  # the memory layouts T(...) and conformance.h know


def encode_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # "nan", "inf", "-inf": JSON has no spelling for them
    return v


def encode_tensor(t, layout="contiguous", grad=False):
    t = t.detach()
    data = t.reshape(-1).tolist() if t.dtype not in (torch.bfloat16, torch.float16) else \
        t.reshape(-1).double().tolist()  # exact: every 16-bit float is a double
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "layout": layout, "grad": grad,
            "data": [encode_value(v) for v in data]}


def with_layout(t, layout):
    """t's values in the named memory layout, as weft's reader builds it (conformance.h)."""
    if layout == "contiguous":
        return t.clone()
    if layout == "transposed":  # the last two dims swapped in memory
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "strided":  # every other element of a buffer twice as long in the last dim
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    raise ValueError("unknown layout " + layout)


class T:
    """A tensor argument: `value` (a tensor or nested list), `dtype` when value is a list."""

    def __init__(self, value, dtype=None, layout="contiguous", grad=False):
        t = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=dtype)
        if dtype is not None:
            t = t.to(dtype)
        if layout != "contiguous" and t.dim() < (2 if layout == "transposed" else 1):
            raise ValueError("layout %s needs more dims than %d" % (layout, t.dim()))
        self.tensor, self.layout, self.grad = t, layout, grad

    def materialize(self):
        t = with_layout(self.tensor, self.layout)
        return t.requires_grad_() if self.grad else t


def encode_arg(a):
    if isinstance(a, T):
        return {"t": encode_tensor(a.tensor, a.layout, a.grad)}
    if isinstance(a, (list, tuple)):
        return [encode_arg(x) for x in a]
    if a is None or isinstance(a, (bool, str)):
        return a
    if isinstance(a, (int, float)):
        return encode_value(a)
    raise TypeError("cannot encode argument %r" % (a,))


def materialize(a):
    if isinstance(a, T):
        return a.materialize()
    if isinstance(a, (list, tuple)):
        return type(a)(materialize(x) for x in a)
    return a


def live_tensors(a):
    """The tensors among materialized arguments in order, nested lists flattened."""
    if isinstance(a, torch.Tensor):
        return [a]
    if isinstance(a, (list, tuple)):
        return [t for x in a for t in live_tensors(x)]
    return []


def shared_storage(out, tensors):
    """The number of the first of `tensors` whose storage `out` shares, else -1 (always -1 for an
    empty output, which has no elements to share)."""
    if out.numel() == 0:
        return -1
    for k, t in enumerate(tensors):
        if out.storage().data_ptr() == t.storage().data_ptr() and t.storage().size() > 0:
            return k
    return -1


class Suite:
    def __init__(self, seed=0):
        self.cases = []
        self.generator = torch.Generator().manual_seed(seed)

    def case(self, op, fn, *args, rtol=None, atol=None, expect_error=False, why=None, views=False,
             **kwargs):
        """Runs fn(*args, **kwargs) in torch and records it as a case of weft op `op`.

        expect_error: weft deliberately raises where torch returns (say why); the case then checks
        weft raises. When torch itself raises, the case expects weft to raise too, always.
        views: also record, for each output, which tensor argument's storage it shares (its number
        in the order of conformance.h's Args, or -1 for none): weft's output must share the same.
        """
        record = {"op": op, "args": [encode_arg(a) for a in args],
                  "kwargs": {k: encode_arg(v) for k, v in kwargs.items()}}
        if rtol is not None:
            record["rtol"] = rtol
        if atol is not None:
            record["atol"] = atol
        if why is not None:
            record["why"] = why
        live_args = [materialize(a) for a in args]
        live_kwargs = {k: materialize(v) for k, v in kwargs.items()}
        try:
            out = fn(*live_args, **live_kwargs)
        except (RuntimeError, IndexError, ValueError, TypeError) as e:
            record["error"] = str(e).splitlines()[0][:200]
            self.cases.append(record)
            return
        if expect_error:
            if why is None:
                raise ValueError(op + ": a deliberate difference needs its reason (why=...)")
            record["error"] = "weft raises: " + why
            self.cases.append(record)
            return
        outs = list(out) if isinstance(out, (tuple, list)) else [out]  # torch.return_types are tuples
        outs = [o if isinstance(o, torch.Tensor) else torch.tensor(o) for o in outs]
        record["out"] = [encode_tensor(o) for o in outs]

        # positional arguments first, then keyword arguments by name: conformance.h's order
        ordered = list(live_args) + [live_kwargs[k] for k in sorted(live_kwargs)]
        if views:
            record["views"] = [shared_storage(o, live_tensors(ordered)) for o in outs]
        grad_inputs = [t for t in live_tensors(ordered) if t.requires_grad]
        if grad_inputs:
            weights = [torch.randn(o.shape, generator=self.generator, dtype=torch.float64).to(o.dtype)
                       if o.dtype in FLOATING and o.requires_grad else None for o in outs]
            loss = sum((o * w).sum() for o, w in zip(outs, weights) if w is not None)
            grads = torch.autograd.grad(loss, grad_inputs, allow_unused=True)
            record["weights"] = [None if w is None else encode_tensor(w) for w in weights]
            record["grads"] = [None if g is None else encode_tensor(g) for g in grads]
        self.cases.append(record)

    def write(self, path):
        with open(path, "w") as f:
            json.dump({"cases": self.cases}, f)


def randn(*shape, dtype=torch.float64, seed=None, generator=None):
    g = generator if generator is not None else torch.Generator().manual_seed(seed if seed is not None else 1)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)  # shape () gives a 0-d tensor


def ints(shape, dtype, start=0):
    """Small distinct values start, start+1, ... of `shape` in any dtype (bool: alternating)."""
    n = 1
    for d in shape:
        n *= d
    v = torch.arange(start, start + n).reshape(shape)
    return (v % 2).to(dtype) if dtype == torch.bool else v.to(dtype)


def no_int16(fn):
    """fn with an int16 result cast to int32: weft has no int16, and promotes uint8 with int8 to int32."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out.to(torch.int32) if isinstance(out, torch.Tensor) and out.dtype == torch.int16 else out
    return wrapped


class Upcast:
    """fn of a tensor, computed in float32 and rounded back where torch 1.13 lacks the bfloat16/float16 CPU kernel."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, t, *args, **kwargs):
        try:
            return self.fn(t, *args, **kwargs)
        except RuntimeError as e:
            if t.dtype not in (torch.float16, torch.bfloat16) or "not implemented for" not in str(e):
                raise
            out = self.fn(t.float(), *args, **kwargs)
            outs = out if isinstance(out, tuple) else (out,)
            outs = tuple(o.to(t.dtype) if o.dtype == torch.float32 else o for o in outs)
            return outs if isinstance(out, tuple) else outs[0]
