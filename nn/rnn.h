// nn recurrent layers: LSTM and GRU modules over the lstm and gru ops (ops/rnn.h).
#pragma once

#include <tuple>

#include "nn/module.h"

namespace weft::nn {

struct RNNOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;  // between layers, in training mode
  bool bidirectional = false;
};

// What LSTM and GRU share: the parameters, named and ordered as PyTorch's (weight_ih_l0,
// weight_hh_l0, bias_ih_l0, bias_hh_l0, then "_reverse" for the second direction, then l1, ...),
// so that state dicts move between the two, and initialised as PyTorch's: U(-1/sqrt(H), 1/sqrt(H)).
class RNNBase : public Module {
 public:
  int64_t input_size, hidden_size;
  RNNOptions options;
  // Every parameter in the ops' order.
  TensorList flat_weights() const;
  std::string extra_repr() const override;

 protected:
  RNNBase(const char* type, int64_t gates, int64_t input_size, int64_t hidden_size, RNNOptions options);
};

// torch.nn.LSTM: forward(input, {h0, c0} or {}) -> (output, h_n, c_n).
class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, RNNOptions options = {});
  std::tuple<Tensor, Tensor, Tensor> forward(const Tensor& input, const TensorList& hx = {});
};

// torch.nn.GRU: forward(input, h0 or undefined) -> (output, h_n).
class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, RNNOptions options = {});
  std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& hx = Tensor());
};

}  // namespace weft::nn
