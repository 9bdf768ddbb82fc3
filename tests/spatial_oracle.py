"""Writes DIR/spatial.npz: PyTorch's outputs and gradients of the convolution, pooling, normalization
and padding ops on seeded float64 inputs, which test_spatial_torch.cpp runs through weft.

  spatial_oracle.py DIR

For each case NAME: NAME.<input> (the inputs, float64), NAME.y (the output), NAME.gy (the gradient
fed to backward) and NAME.d<input> for each differentiable input; NAME.idx for max_pool2d's indices;
NAME.rm / NAME.rv after the call for the ops that update running statistics in place.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
out = {}


def case(name, fn, grads, **inputs):
    """Runs fn(**inputs) and records the inputs, output and the gradients named in `grads`."""
    tensors = {k: v.clone().double().requires_grad_(k in grads) for k, v in inputs.items()}
    for k, v in tensors.items():
        out[f"{name}.{k}"] = v.detach().numpy().copy()
    result = fn(**tensors)
    y, extra = (result[0], result[1]) if isinstance(result, tuple) else (result, None)
    gy = torch.randn_like(y)
    y.backward(gy)
    out[f"{name}.y"] = y.detach().numpy()
    out[f"{name}.gy"] = gy.numpy()
    for k in grads:
        out[f"{name}.d{k}"] = tensors[k].grad.numpy()
    if extra is not None:
        out[f"{name}.idx"] = extra.numpy()
    for k in ("rm", "rv"):
        if k in tensors:
            out[f"{name}.{k}_after"] = tensors[k].detach().numpy()


r = torch.randn
case("conv2d_basic", lambda x, w, b: F.conv2d(x, w, b, 1, 1), "xwb", x=r(2, 3, 7, 6), w=r(4, 3, 3, 3), b=r(4))
case("conv2d_strided", lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 2), (1, 2)), "xwb",
     x=r(2, 3, 8, 7), w=r(5, 3, 3, 2), b=r(5))
case("conv2d_same_groups", lambda x, w: F.conv2d(x, w, None, 1, "same", 2, 2), "xw", x=r(1, 4, 7, 6), w=r(6, 2, 4, 3))
case("conv1d", lambda x, w, b: F.conv1d(x, w, b, 2, 1), "xwb", x=r(2, 3, 10), w=r(5, 3, 3), b=r(5))
case("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1), "xwb",
     x=r(2, 4, 3, 4), w=r(4, 3, 3, 3), b=r(3))
case("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True), "x", x=r(2, 3, 7, 8))
case("max_pool2d_ceil_dilated", lambda x: F.max_pool2d(x, (2, 3), 2, 1, (1, 2), True, return_indices=True), "x",
     x=r(1, 2, 7, 9))
case("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), "x", x=r(2, 3, 7, 8))
case("avg_pool2d_ceil_nopad", lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), "x", x=r(1, 2, 8, 7))
case("avg_pool2d_divisor", lambda x: F.avg_pool2d(x, (2, 3), (1, 2), 0, False, True, 5), "x", x=r(1, 2, 5, 7))
case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), "x", x=r(2, 3, 7, 5))
case("batch_norm_train", lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, True, 0.2, 1e-5), "xwb",
     x=r(4, 3, 5, 5), rm=r(3), rv=torch.rand(3) + 0.5, w=r(3), b=r(3))
case("batch_norm_eval", lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, False), "xwb",
     x=r(4, 3, 5, 5), rm=r(3), rv=torch.rand(3) + 0.5, w=r(3), b=r(3))
case("batch_norm_1d", lambda x, rm, rv: F.batch_norm(x, rm, rv, None, None, True), "x",
     x=r(6, 4), rm=torch.zeros(4), rv=torch.ones(4))
case("group_norm", lambda x, w, b: F.group_norm(x, 3, w, b), "xwb", x=r(2, 6, 4, 3), w=r(6), b=r(6))
case("instance_norm", lambda x, rm, rv, w, b: F.instance_norm(x, rm, rv, w, b, True, 0.3), "xwb",
     x=r(2, 3, 4, 5), rm=r(3), rv=torch.rand(3) + 0.5, w=r(3), b=r(3))
case("pad_constant", lambda x: F.pad(x, (1, 2, -1, 3), "constant", 0.5), "x", x=r(2, 3, 4, 5))
case("pad_reflect", lambda x: F.pad(x, (2, 1, 1, 3), "reflect"), "x", x=r(2, 3, 5, 4))
case("pad_replicate", lambda x: F.pad(x, (3, 0, 1, 2), "replicate"), "x", x=r(2, 3, 4, 5))
case("pad_circular", lambda x: F.pad(x, (1, 2), "circular"), "x", x=r(2, 3, 4))
case("interpolate_nearest", lambda x: F.interpolate(x, (5, 7), mode="nearest"), "x", x=r(2, 3, 3, 4))
case("interpolate_nearest_scale", lambda x: F.interpolate(x, scale_factor=(2.0, 1.5), mode="nearest"), "x",
     x=r(1, 2, 3, 4))
case("interpolate_bilinear", lambda x: F.interpolate(x, (7, 5), mode="bilinear"), "x", x=r(2, 3, 4, 3))
case("interpolate_bilinear_aligned", lambda x: F.interpolate(x, (3, 8), mode="bilinear", align_corners=True), "x",
     x=r(1, 2, 5, 4))
case("interpolate_bilinear_scale", lambda x: F.interpolate(x, scale_factor=0.6, mode="bilinear"), "x", x=r(1, 2, 7, 9))
case("interpolate_nearest_exact", lambda x: F.interpolate(x, scale_factor=(1.7, 0.6), mode="nearest-exact"), "x",
     x=r(2, 3, 5, 6))
case("interpolate_area", lambda x: F.interpolate(x, (3, 4), mode="area"), "x", x=r(2, 3, 7, 9))
case("interpolate_area_3d", lambda x: F.interpolate(x, (2, 3, 4), mode="area"), "x", x=r(1, 2, 5, 4, 6))
case("interpolate_bicubic", lambda x: F.interpolate(x, scale_factor=1.6, mode="bicubic"), "x", x=r(2, 3, 4, 5))
case("interpolate_bicubic_aligned", lambda x: F.interpolate(x, (3, 8), mode="bicubic", align_corners=True), "x",
     x=r(1, 2, 6, 5))
case("interpolate_bilinear_aa", lambda x: F.interpolate(x, (4, 3), mode="bilinear", antialias=True), "x",
     x=r(1, 2, 9, 7))
np.savez(sys.argv[1] + "/spatial.npz", **out)
