// test_functional: autograd::functional (vjp, jvp, hvp, jacobian, hessian) against a hand-worked
// quadratic, and, tagged [torch], against PyTorch 1.13 (tests/double_backward_oracle.py): the
// Hessian and a Hessian-vector product of a small MLP's loss, and a WGAN-GP critic step whose
// gradient penalty is differentiated through the input gradient.
#include <cmath>

#include "autograd/functional.h"
#include "python_oracle.h"
#include "test_util.h"
#include "weft.h"

using namespace weft;
using autograd::variable_list;
namespace fn = autograd::functional;

namespace {

// Requires |got[i] - want[i]| <= tol everywhere.
void require_within(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  test::require_within(got, want, [tol](size_t) { return tol; });
}

Tensor f64(const std::vector<double>& values, const Shape& shape) { return tensor(values, shape, dtype(kFloat64)); }

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

void require_close(const Tensor& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  require_within(values(got), want, tol);
}

// f(x) = 1/2 x^T A x + b^T x: gradient A x + b, Hessian A (symmetric), in closed form.
const std::vector<double> kA = {2.0, -1.0, 0.5, -1.0, 3.0, 0.25, 0.5, 0.25, 1.5};
const std::vector<double> kB = {0.5, -2.0, 1.0};
Tensor quadratic(const Tensor& x) {
  Tensor a = f64(kA, {3, 3}), b = f64(kB, {3});
  return add(mul(sum(mul(x, matmul(a, x))), 0.5), sum(mul(b, x)));
}

}  // namespace

TEST_CASE("functional: a quadratic's derivatives in closed form", "[functional]") {
  Tensor x = f64({1.0, -2.0, 0.5}, {3});
  Tensor v = f64({0.3, 0.1, -0.7}, {3});
  std::vector<double> av(3), ax_b(3);  // A v and A x + b by hand
  std::vector<double> xv = values(x), vv = values(v);
  for (int i = 0; i < 3; ++i) {
    av[i] = ax_b[i] = 0;
    for (int j = 0; j < 3; ++j) av[i] += kA[i * 3 + j] * vv[j], ax_b[i] += kA[i * 3 + j] * xv[j];
    ax_b[i] += kB[i];
  }
  auto f = [](const variable_list& in) { return quadratic(in[0]); };

  auto [y, hv] = fn::hvp(f, {x}, {v});
  CHECK(values(y)[0] == Approx(values(quadratic(x))[0]));
  require_close(hv[0], av, 1e-12);
  CHECK_FALSE(hv[0].requires_grad());

  auto hess = fn::hessian(f, {x});
  REQUIRE(hess[0][0].shape() == Shape{3, 3});
  require_close(hess[0][0], kA, 1e-12);

  // The gradient map g(x) = A x + b: its Jacobian is A, jvp A v, vjp A^T u = A u.
  auto grad_map = [](const variable_list& in) {
    return autograd::grad({quadratic(in[0])}, {in[0]}, {}, false, false, /*create_graph=*/true);
  };
  auto jac = fn::jacobian(grad_map, {x});
  require_close(jac[0][0], kA, 1e-12);
  auto [gx, jv] = fn::jvp(grad_map, {x}, {v});
  require_close(gx[0], ax_b, 1e-12);
  require_close(jv[0], av, 1e-12);
  auto [gx2, ut_j] = fn::vjp(grad_map, {x}, {v});
  require_close(ut_j[0], av, 1e-12);

  // Several inputs and outputs: f(p, q) = (p * q, sum(p^2)) -> the Jacobian blocks by hand.
  Tensor p = f64({1.0, 2.0}, {2}), q = f64({3.0, -1.0}, {2});
  auto two = [](const variable_list& in) { return variable_list{mul(in[0], in[1]), sum(mul(in[0], in[0]))}; };
  auto blocks = fn::jacobian(two, {p, q});
  require_close(blocks[0][0], {3.0, 0.0, 0.0, -1.0}, 0);  // diag(q)
  require_close(blocks[0][1], {1.0, 0.0, 0.0, 2.0}, 0);   // diag(p)
  require_close(blocks[1][0], {2.0, 4.0}, 0);             // 2 p
  require_close(blocks[1][1], {0.0, 0.0}, 0);             // q is not used
  auto [outs, jvp2] = fn::jvp(two, {p, q}, {f64({1.0, 0.0}, {2}), f64({0.0, 1.0}, {2})});
  require_close(jvp2[0], {3.0, 2.0}, 0);
  require_close(jvp2[1], {2.0}, 0);
}

TEST_CASE("functional: create_graph keeps the results differentiable", "[functional]") {
  // hvp(x -> sum(x^4)) = 12 x^2 v; its gradient with respect to x is 24 x v.
  Tensor x = f64({1.0, 2.0}, {2}).requires_grad_();
  Tensor v = f64({0.5, -1.0}, {2});
  auto [y, hv] = fn::hvp([](const variable_list& in) { return sum(pow(in[0], 4.0)); }, {x}, {v}, true);
  require_close(hv[0], {6.0, -48.0}, 1e-12);
  REQUIRE(hv[0].requires_grad());
  require_close(autograd::grad({sum(hv[0])}, {x})[0], {12.0, -48.0}, 1e-12);
}

TEST_CASE("functional: errors name the helper", "[functional]") {
  Tensor x = f64({1.0, 2.0}, {2});
  auto f = [](const variable_list& in) { return sum(in[0]); };
  WEFT_REQUIRE_ERROR(fn::hvp(f, {x}, {f64({1.0}, {1})}), Catch::Contains("hvp: v[0] must have the shape of input 0"));
  WEFT_REQUIRE_ERROR(fn::hessian([](const variable_list& in) { return in[0]; }, {x}),
                     Catch::Contains("hessian: the function must return a tensor with one element"));
  auto identity = [](const variable_list& in) { return in; };
  WEFT_REQUIRE_ERROR(fn::jacobian(identity, {from_vector<int64_t>({1}, {1})}),
                     Catch::Contains("jacobian: input 0 must be a floating point tensor"));
}

namespace {

variable_list read_params(const nlohmann::json& c) {
  variable_list out;
  for (size_t i = 0; i < c["params"].size(); ++i) {
    Shape shape;
    for (int64_t s : c["shapes"][i]) shape.push_back(s);
    out.push_back(f64(c["params"][i].get<std::vector<double>>(), shape));
  }
  return out;
}

// The oracle's JSON, from one run of the script shared by both cases (torch takes seconds to start).
const nlohmann::json& oracle() {
  static const nlohmann::json json = test::run_python_oracle(WEFT_TESTS_DIR "/double_backward_oracle.py");
  return json;
}

}  // namespace

TEST_CASE("functional: an MLP's Hessian and hvp match PyTorch", "[functional][torch]") {
  test::skip_without_torch();
  const nlohmann::json& c = oracle()["mlp"];
  Tensor x = f64(c["x"].get<std::vector<double>>(), {3, 4});
  Tensor target = from_vector<int64_t>(c["target"].get<std::vector<int64_t>>(), {3});
  variable_list params = read_params(c);
  auto loss = [&](const variable_list& p) {
    return cross_entropy(linear(tanh(gelu(linear(x, p[0], p[1]))), p[2], p[3]), target);
  };
  CHECK(loss(params).item<double>() == Approx(c["loss"].get<double>()).epsilon(1e-12));
  auto hess = fn::hessian(loss, params);
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) {
      INFO("hessian block " << i << ", " << j);
      require_close(hess[i][j], c["hessian"][i][j].get<std::vector<double>>(), 1e-10);
    }
  variable_list v;
  for (size_t i = 0; i < 4; ++i) v.push_back(f64(c["v"][i].get<std::vector<double>>(), params[i].shape()));
  auto [y, hv] = fn::hvp(loss, params, v);
  for (size_t i = 0; i < 4; ++i) require_close(hv[i], c["hvp"][i].get<std::vector<double>>(), 1e-10);
}

TEST_CASE("functional: a WGAN-GP gradient penalty step matches PyTorch", "[functional][torch]") {
  test::skip_without_torch();
  const nlohmann::json& c = oracle()["wgan_gp"];
  Tensor real = f64(c["real"].get<std::vector<double>>(), {4, 3});
  Tensor fake = f64(c["fake"].get<std::vector<double>>(), {4, 3});
  Tensor eps = f64(c["eps"].get<std::vector<double>>(), {4, 1});
  variable_list p = read_params(c);
  for (Tensor& t : p) t.requires_grad_();
  auto critic = [&](const Tensor& z) { return linear(tanh(linear(z, p[0], p[1])), p[2], p[3]); };
  Tensor interp = add(mul(eps, real), mul(1.0 - eps, fake)).requires_grad_();
  Tensor g = autograd::grad({sum(critic(interp))}, {interp}, {}, false, false, /*create_graph=*/true)[0];
  Tensor gp = mean(pow(sub(norm(g, 2.0, {1}), 1.0), 2.0));
  Tensor loss = add(sub(mean(critic(fake)), mean(critic(real))), mul(gp, 10.0));
  CHECK(gp.item<double>() == Approx(c["gp"].get<double>()).epsilon(1e-12));
  CHECK(loss.item<double>() == Approx(c["loss"].get<double>()).epsilon(1e-12));
  loss.backward();
  for (size_t i = 0; i < 4; ++i) {
    INFO("critic parameter " << i);
    require_close(p[i].grad(), c["grads"][i].get<std::vector<double>>(), 1e-12);
  }
}
