"""Conformance cases of lstm and gru (ops/rnn.h) against torch.lstm and torch.gru of PyTorch 1.13,
which take the same arguments. Dropout between layers is random, so these cases use none (or
train=False); tests/test_rnn.cpp (tests/rnn_oracle.py) covers the modules and longer sequences.
float32 runs on oneDNN's RNN primitives, whose gate GEMMs sum in another order: rtol/atol 1e-4."""
import sys

import torch

from conformance import Suite, T, randn

s = Suite()
F32 = dict(rtol=1e-4, atol=1e-4)  # oneDNN's summation order


def params(gates, I, H, layers, directions, seed, dtype=torch.float64, grad=True, biases=True):
    out = []
    for layer in range(layers):
        for d in range(directions):
            size_in = I if layer == 0 else H * directions
            seed += 4
            out += [T(randn(gates * H, size_in, seed=seed) * 0.5, dtype=dtype, grad=grad),
                    T(randn(gates * H, H, seed=seed + 1) * 0.5, dtype=dtype, grad=grad)]
            if biases:
                out += [T(randn(gates * H, seed=seed + 2) * 0.5, dtype=dtype, grad=grad),
                        T(randn(gates * H, seed=seed + 3) * 0.5, dtype=dtype, grad=grad)]
    return out


def unbatched(fn):
    """torch.lstm / torch.gru on an unbatched (T, I) input with (layers * D, H) states, as nn.LSTM and
    nn.GRU run it (torch.lstm itself takes batches only): the batch dim added and taken off."""
    def run(x, hx, *args):
        hx = [h.unsqueeze(1) for h in hx] if isinstance(hx, list) else hx.unsqueeze(1)
        return tuple(o.squeeze(1) for o in fn(x.unsqueeze(1), hx, *args))
    return run


def lstm_case(*args, **kwargs):
    s.case("lstm", *args, **kwargs)


def gru_case(*args, **kwargs):
    s.case("gru", *args, **kwargs)


CONFIGS = (  # T, N, I, H, layers, bidirectional, batch_first, biases
    (4, 2, 3, 5, 1, False, False, True), (3, 2, 4, 3, 2, False, False, True), (5, 3, 2, 4, 1, True, False, True),
    (3, 2, 3, 2, 2, True, True, True), (4, 1, 3, 3, 1, False, True, False), (2, 2, 2, 3, 1, False, False, True))
for gates, name, fn in ((4, "lstm", torch.lstm), (3, "gru", torch.gru)):
    case = lstm_case if name == "lstm" else gru_case
    for i, (steps, n, size_in, h, layers, bidir, batch_first, biases) in enumerate(CONFIGS):
        D = 2 if bidir else 1
        x = randn(*((n, steps) if batch_first else (steps, n)), size_in, seed=200 + i)
        state = [T(randn(layers * D, n, h, seed=300 + i + k), grad=True) for k in range(2 if name == "lstm" else 1)]
        p = params(gates, size_in, h, layers, D, seed=400 + 10 * i, biases=biases)
        hx = state if name == "lstm" else state[0]
        case(fn, T(x, grad=True), hx, p, biases, layers, 0.0, True, bidir, batch_first)
    # train=False with a dropout: no dropout
    x = randn(3, 2, 3, seed=500)
    zero = [T(torch.zeros(2, 2, 4, dtype=torch.float64))] * (2 if name == "lstm" else 1)
    p = params(gates, 3, 4, 2, 1, seed=600)
    case(fn, T(x, grad=True), zero if name == "lstm" else zero[0], p, True, 2, 0.5, False, False, False)
    # unbatched (T, I)
    state = [T(randn(1, 4, seed=700 + k), grad=True) for k in range(2 if name == "lstm" else 1)]
    case(unbatched(fn), T(randn(5, 3, seed=710), grad=True), state if name == "lstm" else state[0],
           params(gates, 3, 4, 1, 1, seed=720), True, 1, 0.0, True, False, False)
    # non-contiguous input
    case(fn, T(randn(4, 2, 3, seed=730), layout="transposed", grad=True),
           [T(randn(1, 2, 4, seed=740 + k)) for k in range(2)] if name == "lstm" else T(randn(1, 2, 4, seed=740)),
           params(gates, 3, 4, 1, 1, seed=750), True, 1, 0.0, True, False, False)
    # float32 on oneDNN
    f32 = [T(randn(2, 2, 4, seed=760 + k), dtype=torch.float32) for k in range(2)]
    case(fn, T(randn(5, 2, 3, seed=770), dtype=torch.float32), f32 if name == "lstm" else f32[0],
           params(gates, 3, 4, 1, 2, seed=780, dtype=torch.float32, grad=False), True, 1, 0.0, True, True, False,
           **F32)
    # errors: input size, state shape, integer input
    case(fn, T(randn(3, 2, 5)), zero if name == "lstm" else zero[0], p, True, 2, 0.0, False, False, False)
    bad = [T(torch.zeros(2, 3, 4, dtype=torch.float64))] * (2 if name == "lstm" else 1)
    case(fn, T(x), bad if name == "lstm" else bad[0], p, True, 2, 0.0, False, False, False)
    case(fn, T(torch.zeros(3, 2, 3, dtype=torch.int64)), zero if name == "lstm" else zero[0], p, True, 2, 0.0,
           False, False, False)
s.write(sys.argv[1])
