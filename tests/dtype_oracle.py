"""PyTorch 1.13's answers for tests/test_dtypes.cpp: conversions (as raw bits), the promotion table,
integer and 16-bit float arithmetic, reductions and a bfloat16 matmul. Run by /usr/bin/python3 with
the path of the JSON file to write."""
import json
import math
import struct
import sys

import torch

DTYPES = {
    "bool": torch.bool, "int64": torch.int64, "float32": torch.float32, "float64": torch.float64,
    "uint8": torch.uint8, "int8": torch.int8, "int32": torch.int32, "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def bits16(t):
    return [int(v) & 0xFFFF for v in t.view(torch.int16).tolist()]


def f32(values):
    """Values as exact float32 numbers (JSON keeps doubles exactly; NaN and inf as strings)."""
    return [v if math.isfinite(v) else str(v) for v in torch.tensor(values, dtype=torch.float32).tolist()]


def conversions():
    g = torch.Generator().manual_seed(0)
    special = [0.0, -0.0, 1.0, -1.0, 1.00390625, 1.005859375, 1.01171875, 3.0e38, -3.4e38, 65504.0,
               65519.0, 65520.0, 65536.0, 1e-8, 6e-8, 3e-8, 5.960464477539063e-08, 2.9802322387695312e-08,
               6.103515625e-05, 6.0e-05, 1e-40, -1e-45, 0.1, 0.2, 0.3, math.pi, 1e5, float("inf"),
               float("-inf"), float("nan")]
    # float32 values whose dropped bits are exactly half an ulp (ties) of bfloat16 and float16
    ties = [struct.unpack("<f", struct.pack("<I", b))[0] for b in
            (0x3F808000, 0x3F818000, 0xBF808000, 0x3F801000, 0x3F803000, 0x47000000 | 0x1000)]
    rand = (torch.randn(200, generator=g) * torch.exp2(torch.randint(-30, 30, (200,), generator=g).float())).tolist()
    rand += (torch.randn(100, generator=g) * 0.001).tolist()
    values = f32(special + ties + rand)
    x = torch.tensor([float(v) for v in values], dtype=torch.float32)
    # float64 values that round differently directly and through float32 (PyTorch goes through float32)
    doubles = [1.0 + 2.0**-8 + 2.0**-30, 1.0 + 2.0**-11 + 2.0**-40, 0.1, 1.0 / 3.0, 2.0**-150, 1e300]
    xd = torch.tensor(doubles, dtype=torch.float64)
    ints = [0, 1, -1, 127, 128, 255, 256, 300, -129, -200, 2**31 - 1, 2**31 + 5, -(2**40) - 3]
    xi = torch.tensor(ints, dtype=torch.int64)
    return {
        "f32": values,
        "bf16_bits": bits16(x.to(torch.bfloat16)),
        "f16_bits": bits16(x.to(torch.float16)),
        "bf16_back": f32(x.to(torch.bfloat16).float().tolist()),
        "f16_back": f32(x.to(torch.float16).float().tolist()),
        "f64": doubles,
        "f64_bf16_bits": bits16(xd.to(torch.bfloat16)),
        "f64_f16_bits": bits16(xd.to(torch.float16)),
        "int64": ints,
        "int64_to_int8": xi.to(torch.int8).tolist(),
        "int64_to_uint8": xi.to(torch.uint8).tolist(),
        "int64_to_int32": xi.to(torch.int32).tolist(),
        "int64_to_bf16_bits": bits16(xi.to(torch.bfloat16)),
        "bf16_to_f16_bits": bits16(x.to(torch.bfloat16).to(torch.float16)),
        "f16_to_bf16_bits": bits16(x.to(torch.float16).to(torch.bfloat16)),
    }


def promotion():
    rows = []
    names = list(DTYPES)
    for a in names:
        for b in names:
            ta, tb = DTYPES[a], DTYPES[b]
            dim_a, dim_b = torch.ones(2, dtype=ta), torch.ones(2, dtype=tb)
            zero_a, zero_b = torch.ones((), dtype=ta), torch.ones((), dtype=tb)
            rows.append({
                "a": a, "b": b,
                "dim_dim": str(torch.result_type(dim_a, dim_b)).replace("torch.", ""),
                "dim_zero": str(torch.result_type(dim_a, zero_b)).replace("torch.", ""),
                "zero_dim": str(torch.result_type(zero_a, dim_b)).replace("torch.", ""),
                "zero_zero": str(torch.result_type(zero_a, zero_b)).replace("torch.", ""),
            })
    scalars = []
    for a in names:
        for kind, s in (("int", 2), ("float", 2.5), ("bool", True)):
            for zero in (False, True):
                t = torch.ones((), dtype=DTYPES[a]) if zero else torch.ones(2, dtype=DTYPES[a])
                scalars.append({"a": a, "scalar": kind, "zero": zero,
                                "result": str(torch.result_type(t, s)).replace("torch.", "")})
    return {"pairs": rows, "scalars": scalars}


def maybe(f):
    """f's bits, or None where PyTorch 1.13's CPU lacks the kernel (many float16 ops)."""
    try:
        return bits16(f())
    except RuntimeError:
        return None


def arithmetic():
    a8 = [100, -100, 127, -128, 5, -7, 0, 64]
    b8 = [100, -100, 1, -1, 3, 2, 9, 2]
    au = [200, 100, 255, 0, 5, 7, 0, 128]
    bu = [100, 200, 1, 1, 3, 2, 9, 2]
    out = {"a8": a8, "b8": b8, "au": au, "bu": bu}
    for name, (x, y, dt) in {"int8": (a8, b8, torch.int8), "uint8": (au, bu, torch.uint8)}.items():
        tx, ty = torch.tensor(x, dtype=dt), torch.tensor(y, dtype=dt)
        out[name] = {
            "add": (tx + ty).tolist(), "sub": (tx - ty).tolist(), "mul": (tx * ty).tolist(),
            "neg": (-tx).tolist(), "div": f32((tx / ty).tolist()), "div_dtype": str((tx / ty).dtype),
            "remainder": torch.remainder(tx, ty).tolist(), "max": torch.maximum(tx, ty).tolist(),
            "lt": (tx < ty).tolist(), "mul3": (tx * 3).tolist(), "add_f": f32((tx + 0.5).tolist()),
            "sum": int(tx.sum()), "sum_dtype": str(tx.sum().dtype), "max_all": int(tx.max()),
        }
    g = torch.Generator().manual_seed(1)
    x = torch.randn(37, generator=g) * 3
    y = torch.randn(37, generator=g) + 4
    for name, dt in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        tx, ty = x.to(dt), y.to(dt)
        out[name] = {
            "x_bits": bits16(tx), "y_bits": bits16(ty),
            "add": maybe(lambda: tx + ty), "mul": maybe(lambda: tx * ty), "div": maybe(lambda: tx / ty),
            "sub": maybe(lambda: tx - ty), "exp": maybe(lambda: torch.exp(tx)),
            "tanh": maybe(lambda: torch.tanh(tx)), "sqrt": maybe(lambda: torch.sqrt(ty)),
            "mul_scalar": maybe(lambda: tx * 0.1), "add_scalar": maybe(lambda: tx + 1.3),
            "sum": maybe(lambda: tx.sum().reshape(1)), "mean": maybe(lambda: tx.mean().reshape(1)),
            "max": maybe(lambda: tx.max().reshape(1)), "gt": (tx > ty).tolist(),
        }
    # a long bfloat16 sum: PyTorch accumulates in float, so the result is the rounded float sum
    long = (torch.rand(4099, generator=g) + 0.5).to(torch.bfloat16)
    out["long_sum"] = {"bits": bits16(long), "sum": bits16(long.sum().reshape(1)),
                       "rows": bits16(long[:4096].reshape(64, 64).sum(1))}
    return out


def matmul():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(17, 70, generator=g).to(torch.bfloat16)
    b = torch.randn(70, 23, generator=g).to(torch.bfloat16)
    return {"a_bits": bits16(a.reshape(-1)), "b_bits": bits16(b.reshape(-1)),
            "out_bits": bits16((a @ b).reshape(-1)),
            "exact_f32": f32((a.double() @ b.double()).float().reshape(-1).tolist())}


def main():
    data = {"conversions": conversions(), "promotion": promotion(), "arithmetic": arithmetic(), "matmul": matmul()}
    with open(sys.argv[1], "w") as f:
        json.dump(data, f)


if __name__ == "__main__":
    main()
