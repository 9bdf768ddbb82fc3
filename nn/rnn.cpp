// nn recurrent layers: PyTorch's parameter names, shapes and initialisation; forward through the ops.
#include "nn/rnn.h"

#include <cmath>
#include <sstream>

#include "kernels/toolkit.h"
#include "nn/init.h"
#include "ops/rnn.h"

namespace weft::nn {

RNNBase::RNNBase(const char* type, int64_t gates, int64_t in, int64_t hidden, RNNOptions opts)
    : Module(type), input_size(in), hidden_size(hidden), options(opts) {
  WEFT_CHECK(in > 0 && hidden > 0 && opts.num_layers > 0, type, ": expected input_size, hidden_size and num_layers "
             "> 0 but got ", in, ", ", hidden, ", ", opts.num_layers);
  WEFT_CHECK(opts.dropout >= 0.0 && opts.dropout <= 1.0, type, ": expected dropout in [0, 1] but got ", opts.dropout);
  const int64_t D = opts.bidirectional ? 2 : 1;
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
  auto make = [&](const Shape& shape) {
    return init::uniform_(kernels::make_empty(shape, kFloat32, type), -bound, bound);
  };
  for (int64_t l = 0; l < opts.num_layers; ++l) {
    for (int64_t d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
      register_parameter("weight_ih" + suffix, make({gates * hidden, l == 0 ? in : D * hidden}));
      register_parameter("weight_hh" + suffix, make({gates * hidden, hidden}));
      if (opts.bias) {
        register_parameter("bias_ih" + suffix, make({gates * hidden}));
        register_parameter("bias_hh" + suffix, make({gates * hidden}));
      }
    }
  }
}

TensorList RNNBase::flat_weights() const { return parameters(/*recurse=*/false); }

std::string RNNBase::extra_repr() const {
  std::ostringstream s;
  s << input_size << ", " << hidden_size;
  if (options.num_layers != 1) s << ", num_layers=" << options.num_layers;
  if (!options.bias) s << ", bias=false";
  if (options.batch_first) s << ", batch_first=true";
  if (options.dropout != 0.0) s << ", dropout=" << options.dropout;
  if (options.bidirectional) s << ", bidirectional=true";
  return s.str();
}

LSTM::LSTM(int64_t in, int64_t hidden, RNNOptions opts) : RNNBase("LSTM", 4, in, hidden, opts) {}

std::tuple<Tensor, Tensor, Tensor> LSTM::forward(const Tensor& input, const TensorList& hx) {
  return weft::lstm(input, hx, flat_weights(), options.bias, options.num_layers, options.dropout, is_training(),
                    options.bidirectional, options.batch_first);
}

GRU::GRU(int64_t in, int64_t hidden, RNNOptions opts) : RNNBase("GRU", 3, in, hidden, opts) {}

std::tuple<Tensor, Tensor> GRU::forward(const Tensor& input, const Tensor& hx) {
  return weft::gru(input, hx, flat_weights(), options.bias, options.num_layers, options.dropout, is_training(),
                   options.bidirectional, options.batch_first);
}

}  // namespace weft::nn
