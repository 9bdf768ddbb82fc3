"""torch.nn.LSTM and torch.nn.GRU in float64 with given weights, which test_rnn.cpp replays in weft.

  rnn_oracle.py FILE    writes FILE (JSON): per case its configuration, the input, initial states and
                        parameters (PyTorch's order: per layer and direction w_ih, w_hh, b_ih, b_hh),
                        the outputs, and the gradients of loss = sum(output * a) + sum(h_n * b)
                        (+ sum(c_n * c)) with respect to the input, the initial states and every
                        parameter. a, b, c are written too.
"""
import json
import sys

import numpy as np
import torch

CASES = [
    # name, cell, layers, bidirectional, batch_first, bias, (T, N, I, H), initial states given
    ("lstm_1layer", "lstm", 1, False, False, True, (5, 3, 4, 6), True),
    ("lstm_2layer_bidir_batch_first", "lstm", 2, True, True, True, (4, 2, 3, 5), True),
    ("lstm_nobias_zero_state", "lstm", 1, True, False, False, (3, 2, 4, 3), False),
    ("lstm_unbatched", "lstm", 2, False, False, True, (4, 0, 3, 4), True),
    ("gru_1layer", "gru", 1, False, False, True, (5, 3, 4, 6), True),
    ("gru_3layer_bidir", "gru", 3, True, False, True, (4, 2, 3, 4), True),
    ("gru_batch_first_nobias", "gru", 2, False, True, False, (3, 4, 5, 3), False),
]


def case(rng, name, cell, layers, bidir, batch_first, bias, dims, states):
    T, N, I, H = dims
    D = 2 if bidir else 1
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    m = cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidir).double()
    with torch.no_grad():
        for p in m._flat_weights:
            p.copy_(torch.tensor(rng.uniform(-0.6, 0.6, size=tuple(p.shape))))
    shape = (T, I) if N == 0 else ((N, T, I) if batch_first else (T, N, I))
    state_shape = (layers * D, H) if N == 0 else (layers * D, N, H)
    x = torch.tensor(rng.normal(size=shape), requires_grad=True)
    h0 = torch.tensor(rng.normal(size=state_shape) * 0.5, requires_grad=True)
    c0 = torch.tensor(rng.normal(size=state_shape) * 0.5, requires_grad=True)
    if cell == "lstm":
        out, (hn, cn) = m(x, (h0, c0)) if states else m(x)
    else:
        out, hn = m(x, h0) if states else m(x)
        cn = None
    a = torch.tensor(rng.normal(size=tuple(out.shape)))
    b = torch.tensor(rng.normal(size=tuple(hn.shape)))
    loss = (out * a).sum() + (hn * b).sum()
    c = None
    if cn is not None:
        c = torch.tensor(rng.normal(size=tuple(cn.shape)))
        loss = loss + (cn * c).sum()
    loss.backward()
    flat = lambda t: t.detach().numpy().ravel().tolist()
    res = {"cell": cell, "layers": layers, "bidirectional": bidir, "batch_first": batch_first, "bias": bias,
           "states": states, "x_shape": list(shape), "state_shape": list(state_shape),
           "x": flat(x), "h0": flat(h0), "c0": flat(c0),
           "params": [flat(p) for p in m._flat_weights], "param_shapes": [list(p.shape) for p in m._flat_weights],
           "output": flat(out), "h_n": flat(hn), "a": flat(a), "b": flat(b),
           "grad_x": flat(x.grad), "grad_params": [flat(p.grad) for p in m._flat_weights]}
    if states:
        res["grad_h0"] = flat(h0.grad)
        if cell == "lstm":
            res["grad_c0"] = flat(c0.grad)
    if cn is not None:
        res.update({"c_n": flat(cn), "c": flat(c)})
    return res


def main(path):
    rng = np.random.default_rng(29)
    out = {c[0]: case(rng, *c) for c in CASES}
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1])
