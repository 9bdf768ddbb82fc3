// test_spatial_torch.cpp: the convolution, pooling, normalization, padding and interpolation ops
// against PyTorch: tests/spatial_oracle.py (run by /usr/bin/python3 with Debian's python3-torch)
// writes seeded inputs with PyTorch's outputs and gradients; each case here makes the same call in
// weft, in float64 (to 1e-10) and in float32 (the oneDNN paths, to 1e-4).
#include <catch2/catch.hpp>

#include "tests/temp_dir.h"
#include "tests/test_util.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "weft.h"

using namespace weft;
using autograd::variable_list;

namespace {

struct OracleCase {
  std::string name;
  std::vector<std::string> inputs;  // the arguments, in call order
  std::string grads;                // the differentiable ones, by their one-letter names
  std::function<TensorList(const variable_list&)> fn;  // the output (and max_pool2d's indices)
};

std::vector<OracleCase> oracle_cases() {
  auto one = [](auto f) { return [f](const variable_list& in) { return TensorList{f(in)}; }; };
  return {
      {"conv2d_basic", {"x", "w", "b"}, "xwb", one([](auto& in) { return conv2d(in[0], in[1], in[2], 1, 1); })},
      {"conv2d_strided", {"x", "w", "b"}, "xwb",
       one([](auto& in) { return conv2d(in[0], in[1], in[2], {2, 1}, ConvPadding(1, 2), {1, 2}); })},
      {"conv2d_same_groups", {"x", "w"}, "xw",
       one([](auto& in) { return conv2d(in[0], in[1], Tensor(), 1, "same", 2, 2); })},
      {"conv1d", {"x", "w", "b"}, "xwb", one([](auto& in) { return conv1d(in[0], in[1], in[2], 2, 1); })},
      {"conv_transpose2d", {"x", "w", "b"}, "xwb",
       one([](auto& in) { return conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); })},
      {"max_pool2d", {"x"}, "x",
       [](auto& in) {
         auto [y, idx] = max_pool2d_with_indices(in[0], 3, Size2d(2), 1);
         return TensorList{y, idx};
       }},
      {"max_pool2d_ceil_dilated", {"x"}, "x",
       [](auto& in) {
         auto [y, idx] = max_pool2d_with_indices(in[0], {2, 3}, Size2d(2), 1, {1, 2}, true);
         return TensorList{y, idx};
       }},
      {"avg_pool2d", {"x"}, "x", one([](auto& in) { return avg_pool2d(in[0], 3, Size2d(2), 1); })},
      {"avg_pool2d_ceil_nopad", {"x"}, "x",
       one([](auto& in) { return avg_pool2d(in[0], 3, Size2d(2), 1, true, false); })},
      {"avg_pool2d_divisor", {"x"}, "x",
       one([](auto& in) { return avg_pool2d(in[0], {2, 3}, Size2d(1, 2), 0, false, true, 5); })},
      {"adaptive_avg_pool2d", {"x"}, "x", one([](auto& in) { return adaptive_avg_pool2d(in[0], {3, 2}); })},
      {"batch_norm_train", {"x", "rm", "rv", "w", "b"}, "xwb",
       one([](auto& in) { return batch_norm(in[0], in[1], in[2], in[3], in[4], true, 0.2, 1e-5); })},
      {"batch_norm_eval", {"x", "rm", "rv", "w", "b"}, "xwb",
       one([](auto& in) { return batch_norm(in[0], in[1], in[2], in[3], in[4], false); })},
      {"batch_norm_1d", {"x", "rm", "rv"}, "x", one([](auto& in) { return batch_norm(in[0], in[1], in[2], {}, {}, true); })},
      {"group_norm", {"x", "w", "b"}, "xwb", one([](auto& in) { return group_norm(in[0], 3, in[1], in[2]); })},
      {"instance_norm", {"x", "rm", "rv", "w", "b"}, "xwb",
       one([](auto& in) { return instance_norm(in[0], in[1], in[2], in[3], in[4], true, 0.3); })},
      {"pad_constant", {"x"}, "x", one([](auto& in) { return pad(in[0], {1, 2, -1, 3}, "constant", 0.5); })},
      {"pad_reflect", {"x"}, "x", one([](auto& in) { return pad(in[0], {2, 1, 1, 3}, "reflect"); })},
      {"pad_replicate", {"x"}, "x", one([](auto& in) { return pad(in[0], {3, 0, 1, 2}, "replicate"); })},
      {"pad_circular", {"x"}, "x", one([](auto& in) { return pad(in[0], {1, 2}, "circular"); })},
      {"interpolate_nearest", {"x"}, "x", one([](auto& in) { return interpolate(in[0], Size2d(5, 7)); })},
      {"interpolate_nearest_scale", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], std::nullopt, ScaleFactor(2.0, 1.5)); })},
      {"interpolate_bilinear", {"x"}, "x", one([](auto& in) { return interpolate(in[0], Size2d(7, 5), {}, "bilinear"); })},
      {"interpolate_bilinear_aligned", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], Size2d(3, 8), {}, "bilinear", true); })},
      {"interpolate_bilinear_scale", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], std::nullopt, 0.6, "bilinear"); })},
      {"interpolate_nearest_exact", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], std::nullopt, ScaleFactor(1.7, 0.6), "nearest-exact"); })},
      {"interpolate_area", {"x"}, "x", one([](auto& in) { return interpolate(in[0], Size2d(3, 4), {}, "area"); })},
      {"interpolate_area_3d", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], OutputSize(2, 3, 4), {}, "area"); })},
      {"interpolate_bicubic", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], std::nullopt, 1.6, "bicubic"); })},
      {"interpolate_bicubic_aligned", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], Size2d(3, 8), {}, "bicubic", true); })},
      {"interpolate_bilinear_aa", {"x"}, "x",
       one([](auto& in) { return interpolate(in[0], Size2d(4, 3), {}, "bilinear", false, std::nullopt, true); })},
  };
}

std::vector<double> as_doubles(const Tensor& t) { return t.to(kFloat64).contiguous().to_vector<double>(); }

void require_match(const Tensor& got, const Tensor& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  std::vector<double> w = as_doubles(want);
  test::require_within(as_doubles(got), w, [&](size_t i) { return tol * (1 + std::fabs(w[i])); });
}

void run_case(const OracleCase& c, const nn::StateDict& oracle, DType dt, double tol) {
  auto at = [&](const std::string& key) { return oracle.at(c.name + "." + key); };
  variable_list inputs, wrt;
  for (const std::string& name : c.inputs) {
    Tensor t = clone(at(name).to(dt));  // a copy: running statistics change in place
    if (name.size() == 1 && c.grads.find(name) != std::string::npos) wrt.push_back(t.requires_grad_());
    inputs.push_back(t);
  }
  TensorList outs = c.fn(inputs);
  require_match(outs[0], at("y"), tol);
  if (outs.size() > 1) CHECK(outs[1].to_vector<int64_t>() == at("idx").to_vector<int64_t>());
  variable_list grads = autograd::grad({outs[0]}, wrt, {at("gy").to(dt)});
  for (size_t i = 0; i < wrt.size(); ++i) {
    INFO("gradient of " << c.grads[i]);
    require_match(grads[i], at(std::string("d") + c.grads[i]), tol);
  }
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.inputs[i] != "rm" && c.inputs[i] != "rv") continue;
    INFO("running statistic " << c.inputs[i]);
    require_match(inputs[i], at(c.inputs[i] + "_after"), tol);
  }
}

}  // namespace

TEST_CASE("convolution, pooling, normalization, padding and interpolation match PyTorch", "[torch]") {
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    std::printf("SKIP: PyTorch (Debian's python3-torch) is not installed for /usr/bin/python3\n");
    std::exit(77);  // meson's exit code for a skipped test
  }
  test::TempDir dir;
  const std::string cmd = "/usr/bin/python3 " WEFT_TESTS_DIR "/spatial_oracle.py " + dir.path;
  REQUIRE(std::system(cmd.c_str()) == 0);
  nn::StateDict oracle = io::load_npz(dir / "spatial.npz");
  std::remove((dir / "spatial.npz").c_str());
  for (const OracleCase& c : oracle_cases()) {
    for (DType dt : {kFloat64, kFloat32}) {
      INFO(c.name << " in " << dtype_name(dt));
      run_case(c, oracle, dt, dt == kFloat64 ? 1e-10 : 1e-4);
    }
  }
}
