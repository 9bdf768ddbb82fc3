"""Writes PATH (JSON): PyTorch 1.13's nn.MaxPool1d/3d, nn.AvgPool1d/3d and nn.Upsample on seeded
float64 inputs, and what F.max_pool1d/2d/3d do when the output size would be zero or negative, which
test_nn_pooling.cpp checks weft against.

  nn_pooling_oracle.py PATH

"modules": for each case, the input x, the output y, the gradient gy fed to backward, dx, and for
forward_with_indices (return_indices=True) the indices. "edges": for each call, the output shape or
the first line of torch's error. "upsample_errors": torch's messages for both and neither of size and
scale_factor. The C++ side builds the same modules from each case's name (test_nn_pooling.cpp).
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


def flat(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


MODULES = {
    "maxpool1d_default": (lambda: nn.MaxPool1d(3), (2, 3, 11)),
    "maxpool1d_full": (lambda: nn.MaxPool1d(3, 2, 1, 2, return_indices=True, ceil_mode=True), (2, 3, 12)),
    "maxpool1d_unbatched": (lambda: nn.MaxPool1d(2, 1), (3, 7)),
    "maxpool3d_default": (lambda: nn.MaxPool3d(2), (2, 2, 4, 5, 6)),
    "maxpool3d_full": (lambda: nn.MaxPool3d((2, 3, 2), (1, 2, 2), (1, 1, 0), (1, 1, 2), return_indices=True,
                                                   ceil_mode=True),
                       (1, 2, 5, 6, 7)),
    "avgpool1d_default": (lambda: nn.AvgPool1d(3), (2, 3, 10)),
    "avgpool1d_full": (lambda: nn.AvgPool1d(4, 3, 2, True, False), (2, 2, 11)),
    "avgpool3d_default": (lambda: nn.AvgPool3d(2), (2, 2, 4, 5, 6)),
    "avgpool3d_full": (lambda: nn.AvgPool3d((3, 2, 3), (2, 1, 2), (1, 0, 1), True, False), (1, 2, 5, 6, 7)),
    "avgpool3d_divisor": (lambda: nn.AvgPool3d(2, 1, 0, False, True, 3), (1, 2, 3, 4, 5)),
    "upsample_nearest_size1d": (lambda: nn.Upsample(size=7), (2, 3, 4)),
    "upsample_nearest_scale2d": (lambda: nn.Upsample(scale_factor=(2.0, 1.5)), (1, 2, 3, 4)),
    "upsample_nearest_size3d": (lambda: nn.Upsample(size=(3, 5, 4)), (1, 2, 2, 3, 4)),
    "upsample_linear": (lambda: nn.Upsample(scale_factor=2.5, mode="linear"), (2, 2, 5)),
    "upsample_bilinear_aligned": (lambda: nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), (1, 2, 3, 4)),
    "upsample_trilinear": (lambda: nn.Upsample(scale_factor=(1.5, 2.0, 0.75), mode="trilinear"), (1, 2, 3, 3, 4)),
}

modules = {}
for name, (make, shape) in MODULES.items():
    m = make()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = m(x)
    y, idx = out if isinstance(out, tuple) else (out, None)
    gy = torch.randn_like(y)
    y.backward(gy)
    case = {"x": flat(x), "y": flat(y), "gy": flat(gy), "dx": flat(x.grad), "repr": repr(m)}
    if idx is not None:
        case["idx"] = idx.reshape(-1).tolist()
    modules[name] = case

# Output sizes of zero or below: F.max_poolNd(x, kernel, stride, padding, dilation, ceil_mode) for every
# combination of return_indices, requires_grad and grad mode.
EDGES = [
    ("max_pool1d", (2, 3, 4), 5, None, 0, 1, False),  # zero
    ("max_pool1d", (2, 3, 4), 9, None, 0, 1, False),  # zero with the default stride
    ("max_pool1d", (3, 4), 7, None, 1, 1, False),  # unbatched, zero with padding
    ("max_pool1d", (2, 3, 4), 3, 1, 0, 2, False),  # zero by dilation
    ("max_pool1d", (2, 3, 4), 5, 1, 0, 1, True),  # zero in ceil mode
    ("max_pool1d", (2, 3, 4), 9, 1, 0, 1, False),  # negative
    ("max_pool1d", (2, 3, 4), 3, 1, 1, 3, False),  # negative by dilation
    ("max_pool1d", (0, 3, 4), 5, None, 0, 1, False),  # empty batch
    ("max_pool1d", (2, 3, 4), 5, None, 2, 1, False),  # padding makes room: one output
    ("max_pool2d", (2, 3, 4, 8), (5, 2), None, 0, 1, False),
    ("max_pool2d", (3, 4, 8), (9, 2), 1, 0, 1, False),
    ("max_pool3d", (2, 3, 4, 8, 8), (2, 9, 2), None, 0, 1, False),
    ("max_pool3d", (3, 4, 8, 8), (2, 12, 2), 1, 0, 1, False),
]
edges = []
for op, shape, kernel, stride, padding, dilation, ceil_mode in EDGES:
    for return_indices in (False, True):
        for requires_grad in (False, True):
            for grad_mode in ((True, False) if requires_grad else (True,)):
                x = torch.randn(shape, dtype=torch.float64, requires_grad=requires_grad)
                record = {"op": op, "shape": list(shape), "kernel": kernel, "stride": stride, "padding": padding,
                          "dilation": dilation, "ceil_mode": ceil_mode, "return_indices": return_indices,
                          "requires_grad": requires_grad, "grad_mode": grad_mode}
                try:
                    with torch.set_grad_enabled(grad_mode):
                        out = getattr(F, op)(x, kernel, stride, padding, dilation, ceil_mode, return_indices)
                    y = out[0] if return_indices else out
                    record["out_shape"] = list(y.shape)
                    record["out_requires_grad"] = y.requires_grad
                except RuntimeError as e:
                    record["error"] = str(e).splitlines()[0]
                edges.append(record)

upsample_errors = {}
for name, m in (("both", nn.Upsample(size=4, scale_factor=2.0)), ("neither", nn.Upsample())):
    try:
        m(torch.randn(1, 1, 3))
    except ValueError as e:
        upsample_errors[name] = str(e)

with open(sys.argv[1], "w") as f:
    json.dump({"modules": modules, "edges": edges, "upsample_errors": upsample_errors}, f)
