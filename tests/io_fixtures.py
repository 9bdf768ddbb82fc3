"""Writes and checks the files test_io reads and writes, with NumPy (and PyTorch for the model).

  io_fixtures.py write DIR        NumPy-written .npy/.npz files and a safetensors file
  io_fixtures.py check DIR        checks the files weft wrote into DIR (exit status 1 on mismatch)
  io_fixtures.py torch DIR        a small PyTorch model: weights (.npz, .safetensors), input, output
  io_fixtures.py torch-check DIR  runs weft's saved weights in PyTorch against weft's output

Every array's values follow value(i) below (i: the row-major index), which test_io.cpp computes too.
"""
import json
import struct
import sys

import numpy as np

SHAPE = (3, 4, 5)
DTYPES = {"f4": np.float32, "f8": np.float64, "i8": np.int64, "i4": np.int32, "u1": np.uint8, "b1": np.bool_}


def value(code, shape):
    i = np.arange(int(np.prod(shape))).reshape(shape)
    if code == "b1":
        return i % 3 == 0
    if code == "u1":
        return (i * 37 % 256).astype(np.uint8)
    if code in ("i4", "i8"):
        return ((i * 7919) % 2001 - 1000).astype(DTYPES[code])
    return ((i * 0.37) % 5.0 - 2.5).astype(DTYPES[code])


def safetensors_bytes(tensors):
    """The safetensors layout written by hand from its specification (no Debian package has it)."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
             np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def parse_safetensors(path):
    codes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "BOOL": "|b1"}
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=codes[info["dtype"]]).reshape(info["shape"])
    return out


def write(d):
    for code in DTYPES:
        a = value(code, SHAPE)
        np.save(f"{d}/{code}_c.npy", a)
        np.save(f"{d}/{code}_f.npy", np.asfortranarray(a))
    for version in [(2, 0), (3, 0)]:
        with open(f"{d}/f8_v{version[0]}.npy", "wb") as f:
            np.lib.format.write_array(f, np.asfortranarray(value("f8", SHAPE)), version=version)
    np.save(f"{d}/f8_big.npy", value("f8", SHAPE).astype(">f8"))
    np.save(f"{d}/scalar.npy", np.float64(2.5))
    np.save(f"{d}/empty.npy", np.zeros((0, 3), np.float32))
    np.save(f"{d}/f2.npy", np.zeros(3, np.float16))
    np.save(f"{d}/c8.npy", np.zeros(3, np.complex64))
    np.save(f"{d}/structured.npy", np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    arrays = {"b.weight": value("f4", (4, 5)), "a.bias": value("i4", (7,)), "mask": value("b1", (2, 3))}
    np.savez(f"{d}/stored.npz", **arrays)
    np.savez_compressed(f"{d}/deflated.npz", **arrays)
    open(f"{d}/model.safetensors", "wb").write(safetensors_bytes(
        {"z.weight": value("f4", (4, 5)), "labels": value("u1", (6,)), "ids": value("i4", (2, 2)),
         "double": value("f8", (3,))}))


def check(d):
    """weft wrote save_npy/save_npz/save_safetensors output of the same values (int32/uint8 as int64)."""
    ok = True
    def same(name, got, want):
        nonlocal ok
        if got.shape != want.shape or got.dtype != want.dtype or not np.array_equal(got, want):
            print(f"mismatch in {name}: got {got.dtype}{got.shape} {got.ravel()[:6]}, want {want.dtype}{want.shape}")
            ok = False
    for code in ["f4", "f8", "i8", "b1"]:
        same(code, np.load(f"{d}/weft_{code}.npy"), value(code, SHAPE))
    same("1-d", np.load(f"{d}/weft_1d.npy"), value("f4", (7,)))
    same("0-d", np.load(f"{d}/weft_0d.npy"), np.array(2.5))
    with np.load(f"{d}/weft.npz") as z:
        if list(z.keys()) != ["b.weight", "a.bias", "mask"]:
            print("npz keys", list(z.keys())); ok = False
        else:
            same("npz b.weight", z["b.weight"], value("f4", (4, 5)))
            same("npz a.bias", z["a.bias"], value("i4", (7,)).astype(np.int64))
            same("npz mask", z["mask"], value("b1", (2, 3)))
    st = parse_safetensors(f"{d}/weft.safetensors")
    same("safetensors z.weight", st["z.weight"], value("f4", (4, 5)))
    same("safetensors labels", st["labels"], value("u1", (6,)).astype(np.int64))
    same("safetensors mask", st["mask"], value("b1", (2, 3)))
    sys.exit(0 if ok else 1)


def model(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.LayerNorm(16),
                               torch.nn.Linear(16, 3))


def torch_write(d):
    import torch
    m = model(torch)
    for p in m.parameters():  # LayerNorm starts at ones/zeros: move it so that loading it matters
        torch.nn.init.normal_(p, std=0.5)
    state = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    np.savez(f"{d}/torch.npz", **state)
    open(f"{d}/torch.safetensors", "wb").write(safetensors_bytes(state))
    x = torch.randn(5, 6)
    np.save(f"{d}/torch_x.npy", x.numpy())
    np.save(f"{d}/torch_y.npy", m(x).detach().numpy())


def torch_check(d):
    import torch
    m = model(torch)
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in parse_safetensors(f"{d}/weft_model.safetensors").items()})
    y = m(torch.from_numpy(np.load(f"{d}/torch_x.npy"))).detach().numpy()
    want = np.load(f"{d}/weft_model_y.npy")
    err = np.abs(y - want).max()
    print(f"max |torch - weft| = {err:.3g}")
    sys.exit(0 if err < 1e-5 else 1)


if __name__ == "__main__":
    {"write": write, "check": check, "torch": torch_write, "torch-check": torch_check}[sys.argv[1]](sys.argv[2])
