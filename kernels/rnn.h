// kernels/rnn.h: one recurrent layer, LSTM or PyTorch's GRU (oneDNN's linear-before-reset GRU), in
// one or both directions, on oneDNN's RNN primitives: forward for training, and backward.
#pragma once

#include "framework/tensor.h"

namespace weft::kernels {

enum class RnnCell { kLstm, kGru };

// Gate blocks in the weights (4 for LSTM, 3 for GRU) and in the bias (GRU has a fourth: the
// hidden-side bias of the new gate, applied before the reset gate multiplies it).
inline int64_t rnn_gates(RnnCell cell) { return cell == RnnCell::kLstm ? 4 : 3; }
inline int64_t rnn_bias_gates(RnnCell) { return 4; }

// A layer's weights, float32 contiguous, D directions: w_layer (D, G, H, I) and w_iter (D, G, H, H)
// (oneDNN's "ldgoi", which is PyTorch's (G*H, in) layout stacked), bias (D, Gb, H) ("ldgo"), gates
// in oneDNN's order (LSTM i, f, c, o as PyTorch; GRU u, r, o, u' where PyTorch has r, z, n).
struct RnnWeights {
  Tensor w_layer, w_iter, bias;
};

// y (T, N, D*H), the directions concatenated; h_n and c_n (D, N, H) (c_n: LSTM only); what
// backward needs besides: the primitive's workspace.
struct RnnForward {
  Tensor y, h_n, c_n, workspace;
};

// x (T, N, I), h0 and c0 (D, N, H) (c0 undefined for GRU), float32 contiguous.
RnnForward rnn_forward(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const RnnWeights& w);

struct RnnBackward {
  Tensor dx, dh0, dc0;
  RnnWeights dw;  // in the layouts of RnnWeights
};

// The gradients of the layer given those of y, h_n and c_n (float32 contiguous, dc_n undefined for
// GRU); `fwd` is what rnn_forward returned for the same operands.
RnnBackward rnn_backward(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const RnnWeights& w,
                         const RnnForward& fwd, const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n);

}  // namespace weft::kernels
