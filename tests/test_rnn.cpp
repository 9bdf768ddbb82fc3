// lstm and gru: PyTorch's torch.nn.LSTM/GRU outputs and gradients (tests/rnn_oracle.py, tag [torch])
// in float64 (the cell in ops) and float32 (oneDNN), gradcheck, oneDNN against the float64 path,
// the modules, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;
using nlohmann::json;

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
  static const json data = [] {
    test::TempDir dir;
    std::string cmd = "/usr/bin/python3 " WEFT_TESTS_DIR "/rnn_oracle.py " + (dir / "rnn.json");
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(dir / "rnn.json");
    return json::parse(in);
  }();
  return data;
}

}  // namespace

TEST_CASE("lstm and gru match torch.nn.LSTM/GRU: outputs and every gradient", "[rnn][torch]") {
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    std::printf("SKIP: PyTorch (Debian's python3-torch) is not installed for /usr/bin/python3\n");
    std::exit(77);  // meson's exit code for a skipped test
  }
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
