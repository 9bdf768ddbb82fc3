// test_tensor_index.cpp: x.index({...}) and x.index_put_({...}, v) against PyTorch 1.13
// (tests/index_oracle.py, run by /usr/bin/python3: shapes, values and the gradients of
// sum(result * cos(0, 1, ...)) for x and v, in float64), views where PyTorch gives views, and the
// errors a user can cause.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tests/python_oracle.h"
#include "tests/test_util.h"
#include "weft.h"

using namespace weft;
using namespace weft::indexing;
using weft::test::require_error;

namespace {

Tensor base() {
  Tensor x = reshape(arange(0, 120, 1, kFloat64), {2, 3, 4, 5});
  x.requires_grad_(true);
  return x;
}

Tensor weights(const Shape& shape) { return reshape(cos(arange(0, static_cast<double>(numel_of(shape)), 1, kFloat64)), shape); }

Tensor ints(const std::vector<int64_t>& v, const Shape& shape) { return from_vector<int64_t>(v, shape); }

Tensor mask23() { return gt(select(select(base().detach(), 3, 0), 2, 0), 10.0); }
Tensor mask4() { return from_vector<bool>({true, false, true, true}, {4}); }

using Read = std::function<Tensor(const Tensor&)>;
std::vector<std::pair<std::string, Read>> reads() {
  return {
      {"int", [](const Tensor& x) { return x.index({1}); }},
      {"negative_int_slice", [](const Tensor& x) { return x.index({-1, Slice(1, 3)}); }},
      {"step", [](const Tensor& x) { return x.index({Slice(), Slice(None, None, 2)}); }},
      {"ellipsis_int", [](const Tensor& x) { return x.index({Ellipsis, 1}); }},
      {"none_ellipsis", [](const Tensor& x) { return x.index({None, 0, Ellipsis, None}); }},
      {"clamped_step", [](const Tensor& x) { return x.index({Slice(), Slice(1, 10, 3), -2}); }},
      {"negative_bounds", [](const Tensor& x) { return x.index({Slice(), Slice(-2, None), Slice(-10, 3)}); }},
      {"empty_slice", [](const Tensor& x) { return x.index({Slice(), Slice(2, 1)}); }},
      {"tensor", [](const Tensor& x) { return x.index({ints({1, 0, 1}, {3})}); }},
      {"tensor_2d_repeats", [](const Tensor& x) { return x.index({Slice(), ints({0, 2, 1, 1}, {2, 2})}); }},
      {"separated", [](const Tensor& x) { return x.index({ints({0, 1}, {2}), Slice(), ints({3, 0}, {2})}); }},
      {"adjacent_broadcast", [](const Tensor& x) { return x.index({Slice(), ints({0, 2}, {2, 1}), ints({1, 3}, {2})}); }},
      {"mask", [](const Tensor& x) { return x.index({mask23()}); }},
      {"int_slice_mask", [](const Tensor& x) { return x.index({1, Slice(), mask4()}); }},
      {"true", [](const Tensor& x) { return x.index({true}); }},
      {"false", [](const Tensor& x) { return x.index({false}); }},
      {"negative_tensor", [](const Tensor& x) { return x.index({Ellipsis, Slice(-1, None), ints({-1, 0}, {2})}); }},
      {"scalar", [](const Tensor& x) { return x.index({0, 0, 0, 0}); }},
      {"zero_dim_tensor", [](const Tensor& x) { return x.index({ints({1}, {})}); }},
  };
}

using Put = std::function<Tensor(const Tensor&, const Tensor&)>;
std::vector<std::tuple<std::string, Shape, Put>> puts() {
  auto put = [](std::vector<TensorIndex> index, bool accumulate = false) {
    return [index, accumulate](const Tensor& x, const Tensor& v) {
      Tensor y = x.clone();
      index_put_(y, index, v, accumulate);
      return y;
    };
  };
  return {
      {"put_basic", {3, 5}, put({1, Slice(), 2})},
      {"put_broadcast", {5}, put({ints({1, 0}, {2})})},
      {"put_adjacent", {2, 2, 5}, put({Slice(), ints({0, 2}, {2, 1}), ints({1, 3}, {2})})},
      {"put_accumulate", {3, 1, 5}, put({ints({0, 0, 1}, {3})}, true)},
      {"put_separated", {2, 3, 5}, put({ints({0, 1}, {2}), Slice(), ints({3, 0}, {2})})},
      {"put_mask", {5}, put({mask23()})},
  };
}

void require_matches(const Tensor& actual, const nlohmann::json& expected, const std::string& what) {
  INFO(what);
  std::vector<double> want = expected.get<std::vector<double>>();
  std::vector<double> got = actual.contiguous().to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(1e-12));
}

Shape shape_of(const nlohmann::json& j) {
  Shape s;
  for (int64_t d : j.get<std::vector<int64_t>>()) s.push_back(d);
  return s;
}

}  // namespace

TEST_CASE("index and index_put_ match PyTorch: shapes, values, gradients", "[torch]") {
  weft::test::skip_without_torch();
  const nlohmann::json oracle = weft::test::run_python_oracle(WEFT_TESTS_DIR "/index_oracle.py");
  for (const auto& [name, fn] : reads()) {
    INFO(name);
    const nlohmann::json& c = oracle.at(name);
    Tensor x = base();
    Tensor y = fn(x);
    REQUIRE(y.shape() == shape_of(c["shape"]));
    require_matches(y, c["values"], name + " values");
    sum(mul(y, weights(y.shape()))).backward();
    require_matches(x.grad(), c["grad_x"], name + " grad x");
  }
  for (const auto& [name, vshape, fn] : puts()) {
    INFO(name);
    const nlohmann::json& c = oracle.at(name);
    Tensor x = base();
    Tensor v = sub(mul(reshape(arange(0, static_cast<double>(numel_of(vshape)), 1, kFloat64), vshape), 0.5), 3.0);
    v.requires_grad_(true);
    Tensor y = fn(x, v);
    REQUIRE(y.shape() == shape_of(c["shape"]));
    require_matches(y, c["values"], name + " values");
    sum(mul(y, weights(y.shape()))).backward();
    require_matches(x.grad(), c["grad_x"], name + " grad x");
    require_matches(v.grad(), c["grad_v"], name + " grad v");
  }
}

TEST_CASE("basic indices give views; advanced ones copy") {
  Tensor x = reshape(arange(0, 24, 1, kFloat64), {2, 3, 4});
  Tensor v = x.index({Slice(), Slice(None, None, 2), 1});
  REQUIRE(v.shape() == Shape{2, 2});
  REQUIRE(v.data_ptr<double>() == x.data_ptr<double>() + 1);  // a view: x's storage, from x[0, 0, 1]
  v.fill_(-1.0);                           // writes land in x
  REQUIRE(x.index({1, 2, 1}).item<double>() == -1.0);
  REQUIRE(x.index({1, 1, 1}).item<double>() == 17.0);
  Tensor c = x.index({ints({0}, {1})});
  c.fill_(7.0);
  REQUIRE(x.index({0, 0, 0}).item<double>() == 0.0);
  // index_put_ through a view writes into x, with a scalar value.
  x.index_put_({Slice(), 0, ints({3, 0}, {2})}, 9.0);
  REQUIRE(x.index({1, 0, 3}).item<double>() == 9.0);
  REQUIRE(x.index({1, 0, 0}).item<double>() == 9.0);
  REQUIRE(x.index({1, 0, 1}).item<double>() == -1.0);
}

TEST_CASE("indexing errors name the op and what was wrong") {
  Tensor x = zeros({2, 3});
  require_error([&] { x.index({0, 0, 0}); }, "index: too many indices for a tensor of dimension 2");
  require_error([&] { x.index({Ellipsis, 0, Ellipsis}); }, "index: an index can only have a single ellipsis");
  require_error([&] { x.index({2}); }, "index: index 2 is out of bounds for dimension 0 with size 2");
  require_error([&] { x.index({Slice(), -4}); }, "index: index -4 is out of bounds for dimension 1 with size 3");
  require_error([&] { x.index({Slice(None, None, 0)}); }, "index: slice step must be positive, but got 0");
  require_error([&] { x.index({Slice(), ints({0, 3}, {2})}); }, "index: index 3 is out of bounds for dimension 1 with size 3");
  require_error([&] { x.index({zeros({2})}); }, "index: tensors used as indices must be int64 or bool, but got float32");
  require_error([&] { x.index({from_vector<bool>({true, false, true}, {3})}); },
                "index: the shape of the mask [3] at index 0 does not match the shape of the indexed tensor [2, 3] at index 0");
  require_error([&] { x.index({ints({0, 1}, {2}), ints({0, 1, 2}, {3})}); }, "index");
  require_error([&] { x.index_put_({0}, zeros({2})); }, "index_put_");
  require_error([&] { index_put_(x, {ints({0, 1}, {2})}, zeros({4})); },
                "index_put_: shape mismatch: values of shape [4] cannot be broadcast to the indexing result of shape [2, 3]");
}
