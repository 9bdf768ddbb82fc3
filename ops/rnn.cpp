// torch.lstm and torch.gru: the layer loop, the cell written in ops (float64, gradcheck) and the
// float32 layer on oneDNN's primitives (kernels/rnn.h) as one autograd Function.
#include "ops/rnn.h"

#include "autograd/function.h"
#include "framework/factories.h"
#include "kernels/rnn.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/linalg.h"
#include "ops/dropout.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace weft {

namespace {

using autograd::variable_list;
using kernels::RnnCell;

const char* op_name(RnnCell cell) { return cell == RnnCell::kLstm ? "lstm" : "gru"; }

// One direction's weights, PyTorch's layout; biases undefined without has_biases.
struct DirectionParams {
  Tensor w_ih, w_hh, b_ih, b_hh;
};

// The problem, checked: T steps, N sequences, I inputs, H hidden units, L layers, D directions.
struct RnnShape {
  RnnCell cell;
  int64_t L, D, H;
  bool has_biases;
};

// --- the cell in ops (float64, and float32 when oneDNN cannot run it) ---

// One step: the new (h, c) from the input's projection `xg` (N, G*H, biases included) and (h, c).
std::pair<Tensor, Tensor> cell_step(RnnCell cell, const Tensor& xg, const Tensor& h, const Tensor& c,
                                    const DirectionParams& p) {
  Tensor hg = linear(h, p.w_hh, p.b_hh);
  if (cell == RnnCell::kLstm) {
    TensorList g = chunk(xg + hg, 4, 1);
    Tensor c_new = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
    return {sigmoid(g[3]) * tanh(c_new), c_new};
  }
  TensorList x3 = chunk(xg, 3, 1), h3 = chunk(hg, 3, 1);
  Tensor r = sigmoid(x3[0] + h3[0]), z = sigmoid(x3[1] + h3[1]);
  Tensor n = tanh(x3[2] + r * h3[2]);
  return {n + z * (h - n), Tensor()};  // (1 - z) n + z h
}

// One direction of one layer over x (T, N, in): (y (T, N, H), h_n (N, H), c_n (N, H)).
std::tuple<Tensor, Tensor, Tensor> reference_direction(RnnCell cell, const Tensor& x, Tensor h, Tensor c,
                                                       const DirectionParams& p, bool reverse) {
  const int64_t T = x.size(0);
  Tensor xg = linear(x, p.w_ih, p.b_ih);  // every step's input projection in one product
  TensorList ys(static_cast<size_t>(T));
  for (int64_t s = 0; s < T; ++s) {
    int64_t t = reverse ? T - 1 - s : s;
    std::tie(h, c) = cell_step(cell, select(xg, 0, t), h, c, p);
    ys[static_cast<size_t>(t)] = h;
  }
  return {stack(ys, 0), h, c};
}

// --- the float32 layer on oneDNN ---

// PyTorch's gate blocks of a (G*H, ...) weight or (G*H) bias in oneDNN's order: GRU's r, z, n
// become u (= z), r, o (= n), a swap of the first two that is its own inverse; LSTM's are the same.
Tensor swap_gru_gates(RnnCell cell, const Tensor& w, int64_t H) {
  if (cell == RnnCell::kLstm) return w;
  return cat({narrow(w, 0, H, H), narrow(w, 0, 0, H), narrow(w, 0, 2 * H, H)}, 0);
}

// The layer's weights in oneDNN's layouts (kernels/rnn.h), D directions stacked.
kernels::RnnWeights onednn_weights(RnnCell cell, const std::vector<DirectionParams>& dirs, int64_t H) {
  TensorList w_layer, w_iter, bias;
  for (const DirectionParams& p : dirs) {
    w_layer.push_back(swap_gru_gates(cell, p.w_ih, H));
    w_iter.push_back(swap_gru_gates(cell, p.w_hh, H));
    Tensor b_ih = p.b_ih.defined() ? p.b_ih : zeros({p.w_ih.size(0)}, kFloat32);
    Tensor b_hh = p.b_hh.defined() ? p.b_hh : zeros({p.w_ih.size(0)}, kFloat32);
    if (cell == RnnCell::kLstm) {
      bias.push_back(b_ih + b_hh);
    } else {  // u and r summed over both sides, o's input side, then u': o's hidden side, applied before r
      auto both = [&](int64_t gate) { return narrow(b_ih, 0, gate * H, H) + narrow(b_hh, 0, gate * H, H); };
      bias.push_back(cat({both(1), both(0), narrow(b_ih, 0, 2 * H, H), narrow(b_hh, 0, 2 * H, H)}, 0));
    }
  }
  const int64_t G = kernels::rnn_gates(cell);
  const int64_t in = dirs[0].w_ih.size(1), D = static_cast<int64_t>(dirs.size());
  auto stacked = [&](const TensorList& ws, int64_t cols) {  // one direction's is a view, no copy
    return kernels::dense(reshape(D == 1 ? ws[0] : stack(ws, 0), {D, G, H, cols}));
  };
  return {stacked(w_layer, in), stacked(w_iter, H),
          kernels::dense(reshape(stack(bias, 0), {D, kernels::rnn_bias_gates(cell), H}))};
}

// The gradients of one direction's PyTorch weights from the oneDNN layer's (direction d).
DirectionParams torch_weight_grads(RnnCell cell, const kernels::RnnWeights& dw, int64_t d, bool has_biases) {
  const int64_t G = dw.w_layer.size(1), H = dw.w_layer.size(2), in = dw.w_layer.size(3);
  DirectionParams g;
  g.w_ih = contiguous(swap_gru_gates(cell, reshape(select(dw.w_layer, 0, d), {G * H, in}), H));
  g.w_hh = contiguous(swap_gru_gates(cell, reshape(select(dw.w_iter, 0, d), {G * H, H}), H));
  if (!has_biases) return g;
  Tensor db = select(dw.bias, 0, d);  // (4, H)
  if (cell == RnnCell::kLstm) {
    g.b_ih = contiguous(reshape(db, {4 * H}));
    g.b_hh = g.b_ih.clone();
  } else {
    g.b_ih = cat({select(db, 0, 1), select(db, 0, 0), select(db, 0, 2)}, 0);
    g.b_hh = cat({select(db, 0, 1), select(db, 0, 0), select(db, 0, 3)}, 0);
  }
  return g;
}

// One layer, all its directions, on oneDNN. Inputs: x, h0, c0 (LSTM only), then each direction's
// w_ih, w_hh (and b_ih, b_hh); outputs y, h_n, c_n (LSTM only).
struct OnednnRnnLayer : autograd::Function<OnednnRnnLayer> {
  struct State {
    RnnCell cell = RnnCell::kLstm;
    int64_t D = 1;
    bool has_biases = true;
    kernels::RnnWeights w;  // the weights as oneDNN took them
    Tensor workspace;
  };

  static variable_list forward(autograd::AutogradContext* ctx, const TensorList& inputs, RnnCell cell, int64_t D,
                               bool has_biases) {
    State& s = ctx->state<State>();
    s = {cell, D, has_biases, {}, {}};
    const bool lstm = cell == RnnCell::kLstm;
    const size_t first = lstm ? 3 : 2, per = has_biases ? 4 : 2;
    std::vector<DirectionParams> dirs;
    for (int64_t d = 0; d < D; ++d) {
      const Tensor* p = &inputs[first + static_cast<size_t>(d) * per];
      dirs.push_back({p[0], p[1], has_biases ? p[2] : Tensor(), has_biases ? p[3] : Tensor()});
    }
    s.w = onednn_weights(cell, dirs, inputs[1].size(2));
    kernels::RnnForward out = kernels::rnn_forward(cell, kernels::dense(inputs[0]), kernels::dense(inputs[1]),
                                                   lstm ? kernels::dense(inputs[2]) : Tensor(), s.w);
    s.workspace = out.workspace;
    variable_list outputs = {out.y, out.h_n};
    if (lstm) outputs.push_back(out.c_n);
    // Every input, so that unpacking refuses weights modified in place since (s.w may alias them).
    variable_list saved = inputs;
    saved.insert(saved.end(), outputs.begin(), outputs.end());
    ctx->save_for_backward(saved);
    return outputs;
  }

  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    State& s = ctx->state<State>();
    const bool lstm = s.cell == RnnCell::kLstm;
    variable_list saved = ctx->get_saved_variables();
    const size_t outs = saved.size() - (lstm ? 3 : 2);  // the outputs follow the inputs
    const Tensor x = kernels::dense(saved[0]), h0 = kernels::dense(saved[1]);
    const Tensor c0 = lstm ? kernels::dense(saved[2]) : Tensor();
    kernels::RnnForward fwd{saved[outs], saved[outs + 1], lstm ? saved[outs + 2] : Tensor(), s.workspace};
    auto grad = [&](size_t i) { return kernels::dense(grads[i], kFloat32); };
    kernels::RnnBackward b = kernels::rnn_backward(s.cell, x, h0, c0, s.w, fwd, grad(0), grad(1),
                                                   lstm ? grad(2) : Tensor());
    variable_list result = {b.dx, b.dh0};
    if (lstm) result.push_back(b.dc0);
    for (int64_t d = 0; d < s.D; ++d) {
      DirectionParams g = torch_weight_grads(s.cell, b.dw, d, s.has_biases);
      result.push_back(g.w_ih);
      result.push_back(g.w_hh);
      if (s.has_biases) {
        result.push_back(g.b_ih);
        result.push_back(g.b_hh);
      }
    }
    return result;
  }
};

// --- the layer loop ---

std::string param_name(const char* kind, int64_t layer, int64_t d) {
  return std::string(kind) + "_l" + std::to_string(layer) + (d == 1 ? "_reverse" : "");
}

// Checks the parameters against PyTorch's names and shapes and returns layer l's directions.
std::vector<std::vector<DirectionParams>> check_params(RnnCell cell, const TensorList& params, const RnnShape& r,
                                                       int64_t I, DType dtype) {
  const char* op = op_name(cell);
  const int64_t G = kernels::rnn_gates(cell), per = r.has_biases ? 4 : 2;
  WEFT_CHECK(static_cast<int64_t>(params.size()) == r.L * r.D * per, op, ": expected ", r.L * r.D * per,
             " parameters (num_layers ", r.L, " x directions ", r.D, " x ", per, ") but got ", params.size());
  std::vector<std::vector<DirectionParams>> layers(static_cast<size_t>(r.L));
  for (int64_t l = 0; l < r.L; ++l) {
    const int64_t in = l == 0 ? I : r.D * r.H;
    for (int64_t d = 0; d < r.D; ++d) {
      const Tensor* p = &params[static_cast<size_t>((l * r.D + d) * per)];
      auto check = [&](const Tensor& t, const char* kind, const Shape& want) {
        WEFT_CHECK(t.defined() && t.shape() == want && t.dtype() == dtype, op, ": ", param_name(kind, l, d),
                   " should be a ", dtype, " tensor of shape ", want, " but got ",
                   t.defined() ? detail::str_cat(t.dtype(), " of shape ", t.shape()) : std::string("an undefined tensor"));
      };
      check(p[0], "weight_ih", {G * r.H, in});
      check(p[1], "weight_hh", {G * r.H, r.H});
      if (r.has_biases) {
        check(p[2], "bias_ih", {G * r.H});
        check(p[3], "bias_hh", {G * r.H});
      }
      layers[static_cast<size_t>(l)].push_back(
          {p[0], p[1], r.has_biases ? p[2] : Tensor(), r.has_biases ? p[3] : Tensor()});
    }
  }
  return layers;
}

// An initial state (L*D, N, H), zeros when undefined; `unbatched` states are (L*D, H).
Tensor initial_state(const Tensor& given, const char* op, const char* name, const Shape& want, bool unbatched,
                     DType dtype) {
  if (!given.defined()) return zeros(want, dtype);
  Shape expected = unbatched ? Shape{want[0], want[2]} : want;
  WEFT_CHECK(given.shape() == expected && given.dtype() == dtype, op, ": expected ", name, " to be a ", dtype,
             " tensor of shape ", expected, " but got ", given.dtype(), " of shape ", given.shape());
  return unbatched ? unsqueeze(given, 1) : given;
}

struct RnnResult {
  Tensor output, h_n, c_n;
};

RnnResult run_rnn(RnnCell cell, const Tensor& input, const Tensor& h0_in, const Tensor& c0_in, const TensorList& params,
                  bool has_biases, int64_t L, double dropout, bool train, bool bidirectional, bool batch_first) {
  const char* op = op_name(cell);
  const bool lstm = cell == RnnCell::kLstm;
  WEFT_CHECK(input.defined() && (input.dim() == 2 || input.dim() == 3) && input.is_floating_point(), op,
             ": expected a float32 or float64 input of 3 dimensions (2 unbatched) but got ",
             input.defined() ? detail::str_cat(input.dtype(), " of shape ", input.shape()) : std::string("an undefined tensor"));
  WEFT_CHECK(L >= 1, op, ": expected num_layers >= 1 but got ", L);
  WEFT_CHECK(dropout >= 0.0 && dropout <= 1.0, op, ": expected dropout in [0, 1] but got ", dropout);
  WEFT_CHECK(params.size() >= 2 && params[1].defined() && params[1].dim() == 2, op, ": expected weight_hh_l0 (G*H, H)",
             " as the second parameter");
  const bool unbatched = input.dim() == 2;
  Tensor x = unbatched ? unsqueeze(input, 1) : batch_first ? transpose(input, 0, 1) : input;
  WEFT_CHECK(x.size(0) >= 1 && x.size(1) >= 1, op, ": expected at least one step and one sequence but got input "
             "of shape ", input.shape());
  const RnnShape r{cell, L, bidirectional ? 2 : 1, params[1].size(1), has_biases};
  const auto layers = check_params(cell, params, r, x.size(2), input.dtype());
  const Shape state_shape = {L * r.D, x.size(1), r.H};
  Tensor h0 = initial_state(h0_in, op, "h0", state_shape, unbatched, input.dtype());
  Tensor c0 = lstm ? initial_state(c0_in, op, "c0", state_shape, unbatched, input.dtype()) : Tensor();
  const bool onednn = input.dtype() == kFloat32;
  TensorList h_n, c_n;
  for (int64_t l = 0; l < L; ++l) {
    Tensor h0_l = narrow(h0, 0, l * r.D, r.D), c0_l = lstm ? narrow(c0, 0, l * r.D, r.D) : Tensor();
    Tensor y;
    if (onednn) {
      TensorList inputs = {x, h0_l};
      if (lstm) inputs.push_back(c0_l);
      for (const DirectionParams& p : layers[static_cast<size_t>(l)])
        for (const Tensor& t : {p.w_ih, p.w_hh, p.b_ih, p.b_hh})
          if (t.defined()) inputs.push_back(t);
      variable_list out = OnednnRnnLayer::apply(inputs, cell, r.D, has_biases);
      y = out[0];
      h_n.push_back(out[1]);
      if (lstm) c_n.push_back(out[2]);
    } else {
      TensorList ys;
      for (int64_t d = 0; d < r.D; ++d) {
        auto [yd, hd, cd] = reference_direction(cell, x, select(h0_l, 0, d), lstm ? select(c0_l, 0, d) : Tensor(),
                                                layers[static_cast<size_t>(l)][static_cast<size_t>(d)], d == 1);
        ys.push_back(yd);
        h_n.push_back(unsqueeze(hd, 0));
        if (lstm) c_n.push_back(unsqueeze(cd, 0));
      }
      y = r.D == 2 ? cat(ys, 2) : ys[0];
    }
    x = dropout > 0.0 && train && l + 1 < L ? weft::dropout(y, dropout, true) : y;
  }
  RnnResult out{x, cat(h_n, 0), lstm ? cat(c_n, 0) : Tensor()};
  if (unbatched) {
    out.output = squeeze(out.output, 1);
    out.h_n = squeeze(out.h_n, 1);
    if (lstm) out.c_n = squeeze(out.c_n, 1);
  } else if (batch_first) {
    out.output = transpose(out.output, 0, 1);
  }
  return out;
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> lstm(const Tensor& input, const TensorList& hx, const TensorList& params,
                                        bool has_biases, int64_t num_layers, double dropout, bool train,
                                        bool bidirectional, bool batch_first) {
  WEFT_CHECK(hx.empty() || hx.size() == 2, "lstm: expected hx = {h0, c0} or {} but got ", hx.size(), " tensors");
  RnnResult r = run_rnn(RnnCell::kLstm, input, hx.empty() ? Tensor() : hx[0], hx.empty() ? Tensor() : hx[1], params,
                        has_biases, num_layers, dropout, train, bidirectional, batch_first);
  return {r.output, r.h_n, r.c_n};
}

std::tuple<Tensor, Tensor> gru(const Tensor& input, const Tensor& hx, const TensorList& params, bool has_biases,
                               int64_t num_layers, double dropout, bool train, bool bidirectional, bool batch_first) {
  RnnResult r = run_rnn(RnnCell::kGru, input, hx, Tensor(), params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first);
  return {r.output, r.h_n};
}

}  // namespace weft
