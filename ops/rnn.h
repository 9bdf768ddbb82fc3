// Recurrent layers as ops: torch.lstm and torch.gru, multi-layer, bidirectional, batch_first.
#pragma once

#include <tuple>

#include "framework/tensor.h"

namespace weft {

// torch.lstm: input (T, N, I) ((N, T, I) when batch_first; (T, I) unbatched), hx = {h0, c0} each
// (num_layers * D, N, H) or empty for zeros, params per layer and direction (D = 2 when
// bidirectional, the reverse direction second): w_ih (4H, in), w_hh (4H, H), then b_ih, b_hh (4H)
// when has_biases; gates i, f, g, o as PyTorch's. Dropout with probability `dropout` on every
// layer's output but the last when `train`. Returns (output (T, N, D*H), h_n, c_n).
// float32 runs on oneDNN's LSTM primitive; float64 (and gradcheck) on the same cell written in ops.
std::tuple<Tensor, Tensor, Tensor> lstm(const Tensor& input, const TensorList& hx, const TensorList& params,
                                        bool has_biases, int64_t num_layers, double dropout, bool train,
                                        bool bidirectional, bool batch_first);

// torch.gru: as lstm with hx = h0 (undefined for zeros), weights (3H, *) in PyTorch's gate order
// r, z, n, and n = tanh(W_in x + b_in + r * (W_hn h + b_hn)). Returns (output, h_n). float32 runs on
// oneDNN's linear-before-reset GRU, which is this cell.
std::tuple<Tensor, Tensor> gru(const Tensor& input, const Tensor& hx, const TensorList& params, bool has_biases,
                               int64_t num_layers, double dropout, bool train, bool bidirectional, bool batch_first);

}  // namespace weft
