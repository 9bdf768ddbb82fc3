"""PyTorch 1.13's indexing as the oracle for tests/test_tensor_index.cpp: for each case, the result's
shape and values and the gradients of sum(result * w) (w = cos(0, 1, 2, ...)), written as JSON."""
import json
import sys

import torch

torch.set_default_dtype(torch.float64)


def base():
    return torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5).requires_grad_()


def weights(shape):
    return torch.cos(torch.arange(torch.Size(shape).numel(), dtype=torch.float64)).reshape(shape)


L = torch.tensor
mask23 = base().detach()[:, :, 0, 0] > 10
mask4 = L([True, False, True, True])

# name -> index, as the C++ test spells it
reads = {
    "int": lambda x: x[1],
    "negative_int_slice": lambda x: x[-1, 1:3],
    "step": lambda x: x[:, ::2],
    "ellipsis_int": lambda x: x[..., 1],
    "none_ellipsis": lambda x: x[None, 0, ..., None],
    "clamped_step": lambda x: x[:, 1:10:3, -2],
    "negative_bounds": lambda x: x[:, -2:, -10:3],
    "empty_slice": lambda x: x[:, 2:1],
    "tensor": lambda x: x[L([1, 0, 1])],
    "tensor_2d_repeats": lambda x: x[:, L([[0, 2], [1, 1]])],
    "separated": lambda x: x[L([0, 1]), :, L([3, 0])],
    "adjacent_broadcast": lambda x: x[:, L([[0], [2]]), L([1, 3])],
    "mask": lambda x: x[mask23],
    "int_slice_mask": lambda x: x[1, :, mask4],
    "true": lambda x: x[True],
    "false": lambda x: x[False],
    "negative_tensor": lambda x: x[..., -1:, L([-1, 0])],
    "scalar": lambda x: x[0, 0, 0, 0],
    "zero_dim_tensor": lambda x: x[L(1)],
}


def put(index, values, accumulate=False):
    def run(x, v):
        y = x.clone()
        if accumulate:
            y.index_put_(index, v, accumulate=True)  # tensor indices only, as torch requires
        else:
            y[index] = v
        return y
    return run, values


puts = {
    "put_basic": put((1, slice(None), 2), (3, 5)),
    "put_broadcast": put((L([1, 0]),), (5,)),
    "put_adjacent": put((slice(None), L([[0], [2]]), L([1, 3])), (2, 2, 5)),
    "put_accumulate": put((L([0, 0, 1]),), (3, 1, 5), accumulate=True),
    "put_separated": put((L([0, 1]), slice(None), L([3, 0])), (2, 3, 5)),
    "put_mask": put((mask23,), (5,)),
}

out = {}
for name, fn in reads.items():
    x = base()
    y = fn(x)
    (y * weights(y.shape)).sum().backward()
    out[name] = {"shape": list(y.shape), "values": y.detach().flatten().tolist(), "grad_x": x.grad.flatten().tolist()}
for name, (fn, vshape) in puts.items():
    x = base()
    v = (torch.arange(torch.Size(vshape).numel(), dtype=torch.float64) * 0.5 - 3).reshape(vshape).requires_grad_()
    y = fn(x, v)
    (y * weights(y.shape)).sum().backward()
    out[name] = {"shape": list(y.shape), "values": y.detach().flatten().tolist(),
                 "grad_x": x.grad.flatten().tolist(), "grad_v": v.grad.flatten().tolist()}
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
