// lstm and gru: PyTorch's torch.nn.LSTM/GRU outputs and gradients (tests/rnn_oracle.py, tag [torch])
// in float64 (the cell in ops) and float32 (oneDNN), gradcheck, oneDNN against the float64 path,
// the modules, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/python_oracle.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;
using nlohmann::json;
using autograd::variable_list;

namespace {

std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.defined());
  std::vector<double> g = values_of(got);
  test::require_within(g, want, [&](size_t i) { return tol * (1.0 + std::fabs(want[i])); });
}

Tensor from_json(const json& values, const json& shape, DType dt) {
  return tensor(values.get<std::vector<double>>(), to_shape(shape.get<std::vector<int64_t>>()), dtype(dt));
}

// Values shaped and typed like t.
Tensor like(const json& values, const Tensor& t) {
  return tensor(values.get<std::vector<double>>(), t.shape(), dtype(t.dtype()));
}

// What one run of a case gives: the outputs and every input with its gradient.
struct Run {
  Tensor output, h_n, c_n, x, h0, c0;
  TensorList params;
};

// Runs oracle case `c` through weft's op in `dt` and backpropagates the case's loss.
Run run_case(const json& c, DType dt) {
  Run r;
  const bool lstm = c["cell"] == "lstm";
  r.x = from_json(c["x"], c["x_shape"], dt).requires_grad_();
  r.h0 = from_json(c["h0"], c["state_shape"], dt).requires_grad_();
  r.c0 = from_json(c["c0"], c["state_shape"], dt).requires_grad_();
  for (size_t i = 0; i < c["params"].size(); ++i)
    r.params.push_back(from_json(c["params"][i], c["param_shapes"][i], dt).requires_grad_());
  const bool states = c["states"], bias = c["bias"], bidir = c["bidirectional"], batch_first = c["batch_first"];
  const int64_t layers = c["layers"];
  if (lstm) {
    TensorList hx = states ? TensorList{r.h0, r.c0} : TensorList{};
    std::tie(r.output, r.h_n, r.c_n) = weft::lstm(r.x, hx, r.params, bias, layers, 0.0, false, bidir, batch_first);
  } else {
    std::tie(r.output, r.h_n) = weft::gru(r.x, states ? r.h0 : Tensor(), r.params, bias, layers, 0.0, false, bidir,
                                          batch_first);
  }
  Tensor loss = (r.output * like(c["a"], r.output)).sum() + (r.h_n * like(c["b"], r.h_n)).sum();
  if (lstm) loss = loss + (r.c_n * like(c["c"], r.c_n)).sum();
  loss.backward();
  return r;
}

const json& oracle() {
  static const json data = test::run_python_oracle(WEFT_TESTS_DIR "/rnn_oracle.py");
  return data;
}

}  // namespace

TEST_CASE("lstm and gru match torch.nn.LSTM/GRU: outputs and every gradient", "[rnn][torch]") {
  test::skip_without_torch();
  for (const auto& [name, c] : oracle().items()) {
    // float64 runs the cell written in ops; float32 runs oneDNN's primitives.
    for (auto [dt, tol] : {std::pair{kFloat64, 1e-10}, std::pair{kFloat32, 2e-5}}) {
      INFO("case " << name << ", " << dt);
      Run r = run_case(c, dt);
      check_close(r.output, c["output"], tol);
      check_close(r.h_n, c["h_n"], tol);
      if (c["cell"] == "lstm") check_close(r.c_n, c["c_n"], tol);
      check_close(r.x.grad(), c["grad_x"], tol);
      if (c["states"]) {
        check_close(r.h0.grad(), c["grad_h0"], tol);
        if (c["cell"] == "lstm") check_close(r.c0.grad(), c["grad_c0"], tol);
      }
      for (size_t i = 0; i < r.params.size(); ++i) {
        INFO("parameter " << i);
        check_close(r.params[i].grad(), c["grad_params"][i], tol);
      }
    }
  }
}

namespace {

// Random parameters in PyTorch's order for `layers` layers, D directions, G gates.
TensorList random_params(int64_t layers, int64_t D, int64_t G, int64_t I, int64_t H, bool bias, DType dt) {
  TensorList out;
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      out.push_back(rand({G * H, l == 0 ? I : D * H}, dtype(dt)) - 0.5);
      out.push_back(rand({G * H, H}, dtype(dt)) - 0.5);
      if (bias) {
        out.push_back(rand({G * H}, dtype(dt)) - 0.5);
        out.push_back(rand({G * H}, dtype(dt)) - 0.5);
      }
    }
  for (Tensor& t : out) t = t.detach().requires_grad_();
  return out;
}

TensorList to_dtype_leaves(const TensorList& ts, DType dt) {
  TensorList out;
  for (const Tensor& t : ts) out.push_back(t.detach().to(dt).requires_grad_());
  return out;
}

}  // namespace

TEST_CASE("lstm and gru pass gradcheck in float64", "[rnn]") {
  manual_seed(3);
  const int64_t T = 3, N = 2, I = 3, H = 2;
  SECTION("lstm, 2 layers, bidirectional, batch_first") {
    TensorList params = random_params(2, 2, 4, I, H, true, kFloat64);
    variable_list inputs = {rand({N, T, I}, dtype(kFloat64)).requires_grad_(),
                            rand({4, N, H}, dtype(kFloat64)).requires_grad_(),
                            rand({4, N, H}, dtype(kFloat64)).requires_grad_()};
    inputs.insert(inputs.end(), params.begin(), params.end());
    REQUIRE(autograd::gradcheck(
        [](const variable_list& in) {
          TensorList p(in.begin() + 3, in.end());
          auto [y, h, c] = lstm(in[0], {in[1], in[2]}, p, true, 2, 0.0, false, true, true);
          return variable_list{y, h, c};
        },
        inputs));
  }
  SECTION("gru, 2 layers, bidirectional, no bias") {
    TensorList params = random_params(2, 2, 3, I, H, false, kFloat64);
    variable_list inputs = {rand({T, N, I}, dtype(kFloat64)).requires_grad_(),
                            rand({4, N, H}, dtype(kFloat64)).requires_grad_()};
    inputs.insert(inputs.end(), params.begin(), params.end());
    REQUIRE(autograd::gradcheck(
        [](const variable_list& in) {
          TensorList p(in.begin() + 2, in.end());
          auto [y, h] = gru(in[0], in[1], p, false, 2, 0.0, false, true, false);
          return variable_list{y, h};
        },
        inputs));
  }
}

TEST_CASE("float32 on oneDNN agrees with the float64 cell written in ops", "[rnn]") {
  manual_seed(8);
  const int64_t T = 7, N = 5, I = 6, H = 8;
  for (bool is_lstm : {true, false}) {
    for (bool bidir : {false, true}) {
      INFO((is_lstm ? "lstm" : "gru") << (bidir ? ", bidirectional" : ""));
      const int64_t D = bidir ? 2 : 1, G = is_lstm ? 4 : 3;
      TensorList p64 = random_params(2, D, G, I, H, true, kFloat64), p32 = to_dtype_leaves(p64, kFloat32);
      Tensor x64 = rand({T, N, I}, dtype(kFloat64)).requires_grad_(), x32 = x64.detach().to(kFloat32).requires_grad_();
      Tensor w = rand({T, N, D * H}, dtype(kFloat64));
      auto run = [&](const Tensor& x, const TensorList& p) {
        Tensor y, h, c;
        if (is_lstm) std::tie(y, h, c) = lstm(x, {}, p, true, 2, 0.0, false, bidir, false);
        else std::tie(y, h) = gru(x, Tensor(), p, true, 2, 0.0, false, bidir, false);
        (y * w.to(x.dtype())).sum().backward();
        return y;
      };
      Tensor y32 = run(x32, p32), y64 = run(x64, p64);
      // A layer's output comes straight from the oneDNN Function.
      REQUIRE_THAT(y32.grad_fn()->name(), Contains("OnednnRnnLayer"));
      check_close(y32, values_of(y64), 1e-5);
      check_close(x32.grad(), values_of(x64.grad()), 1e-5);
      for (size_t i = 0; i < p32.size(); ++i) check_close(p32[i].grad(), values_of(p64[i].grad()), 1e-5);
    }
  }
}

TEST_CASE("LSTM and GRU modules: PyTorch's parameter names, initialisation and forward", "[rnn][nn]") {
  manual_seed(4);
  nn::LSTM lstm_module(3, 4, {.num_layers = 2, .bidirectional = true});
  std::vector<std::string> names;
  for (auto& [name, t] : lstm_module.named_parameters()) names.push_back(name);
  REQUIRE(names == std::vector<std::string>{
                       "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                       "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1",
                       "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                       "bias_ih_l1_reverse", "bias_hh_l1_reverse"});
  REQUIRE(lstm_module.named_parameters()[8].second.shape() == Shape{16, 8});  // layer 1 reads both directions
  for (const Tensor& p : lstm_module.parameters())
    for (double v : values_of(p)) REQUIRE(std::fabs(v) <= 0.5);  // U(-1/sqrt(4), 1/sqrt(4))

  Tensor x = rand({5, 2, 3});
  auto [y, h, c] = lstm_module.forward(x);
  auto [y_op, h_op, c_op] = lstm(x, {}, lstm_module.flat_weights(), true, 2, 0.0, false, true, false);
  REQUIRE(y.shape() == Shape{5, 2, 8});
  REQUIRE(values_of(y) == values_of(y_op));
  REQUIRE(values_of(c) == values_of(c_op));

  nn::GRU gru_module(3, 4, {.num_layers = 2, .batch_first = true, .dropout = 0.5});
  REQUIRE(gru_module.parameters().size() == 8);
  REQUIRE(gru_module.parameters()[0].shape() == Shape{12, 3});
  Tensor xb = rand({2, 5, 3});
  // Dropout between the layers in training mode only.
  gru_module.eval();
  auto [e1, eh1] = gru_module.forward(xb);
  auto [e2, eh2] = gru_module.forward(xb);
  REQUIRE(values_of(e1) == values_of(e2));
  gru_module.train();
  auto [t1, th1] = gru_module.forward(xb);
  REQUIRE(values_of(t1) != values_of(e1));
  REQUIRE(e1.shape() == Shape{2, 5, 4});

  WEFT_REQUIRE_ERROR(nn::LSTM(0, 4), Contains("LSTM: expected input_size, hidden_size and num_layers > 0 but got 0, 4, 1"));
  WEFT_REQUIRE_ERROR(nn::GRU(3, 4, {.dropout = 1.5}), Contains("GRU: expected dropout in [0, 1] but got 1.5"));
}

TEST_CASE("lstm and gru errors name the op, what was given and what was expected", "[rnn]") {
  TensorList p = random_params(1, 1, 4, 3, 2, true, kFloat32);
  Tensor x = rand({4, 2, 3});
  WEFT_REQUIRE_ERROR(lstm(rand({4}), {}, p, true, 1, 0.0, false, false, false),
                     Contains("lstm: expected a float32 or float64 input of 3 dimensions (2 unbatched)"));
  WEFT_REQUIRE_ERROR(lstm(x, {}, p, true, 2, 0.0, false, false, false),
                     Contains("lstm: expected 8 parameters (num_layers 2 x directions 1 x 4) but got 4"));
  WEFT_REQUIRE_ERROR(lstm(rand({4, 2, 5}), {}, p, true, 1, 0.0, false, false, false),
                     Contains("lstm: weight_ih_l0 should be a float32 tensor of shape [8, 5] but got float32 of shape "
                              "[8, 3]"));
  WEFT_REQUIRE_ERROR(lstm(x.to(kFloat64), {}, p, true, 1, 0.0, false, false, false),
                     Contains("weight_ih_l0 should be a float64 tensor"));
  WEFT_REQUIRE_ERROR(lstm(x, {zeros({1, 3, 2}), zeros({1, 2, 2})}, p, true, 1, 0.0, false, false, false),
                     Contains("lstm: expected h0 to be a float32 tensor of shape [1, 2, 2] but got float32 of shape "
                              "[1, 3, 2]"));
  WEFT_REQUIRE_ERROR(lstm(x, {zeros({1, 2, 2})}, p, true, 1, 0.0, false, false, false),
                     Contains("lstm: expected hx = {h0, c0} or {} but got 1 tensors"));
  WEFT_REQUIRE_ERROR(lstm(x, {}, p, true, 1, 2.0, true, false, false), Contains("lstm: expected dropout in [0, 1]"));
  WEFT_REQUIRE_ERROR(gru(rand({0, 2, 3}), Tensor(), random_params(1, 1, 3, 3, 2, true, kFloat32), true, 1, 0.0, false,
                         false, false),
                     Contains("gru: expected at least one step and one sequence but got input of shape [0, 2, 3]"));
}

TEST_CASE("lstm's backward refuses weights modified in place after the forward", "[rnn]") {
  TensorList p = random_params(1, 1, 4, 3, 2, true, kFloat32);
  auto [y, h, c] = lstm(rand({4, 2, 3}), {}, p, true, 1, 0.0, false, false, false);
  {
    NoGradGuard no_grad;
    p[0].mul_(2.0);
  }
  WEFT_REQUIRE_ERROR(y.sum().backward(), Contains("modified by an inplace operation"));
}
