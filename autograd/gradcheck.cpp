// gradcheck: builds both Jacobians column by column and reports the worst disagreement.
#include "autograd/gradcheck.h"

#include <cmath>
#include <random>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/gradient_ops.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"

namespace weft::autograd {
namespace {

// Flat float64 copies of the outputs, for finite differences.
std::vector<std::vector<double>> evaluate(const GradcheckFn& fn, const variable_list& inputs) {
  NoGradGuard no_grad;
  std::vector<std::vector<double>> values;
  for (const Tensor& out : fn(inputs)) values.push_back(out.defined() ? out.to_vector<double>() : std::vector<double>{});
  return values;
}

std::string index_str(int64_t flat, const Shape& shape) {
  std::ostringstream out;
  out << kernels::unravel(flat, shape);
  return out.str();
}

}  // namespace

bool gradcheck(const GradcheckFn& fn, const variable_list& inputs, double eps, double atol, double rtol, bool raise) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad())
      WEFT_CHECK(inputs[i].dtype() == kFloat64 && inputs[i].is_contiguous(), "gradcheck: input ", i,
                 " must be a contiguous float64 tensor (got ", inputs[i].dtype(), ")");
  variable_list outputs = fn(inputs);
  double worst = -1.0;
  std::string report;
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& out = outputs[o];
    if (!out.defined() || !is_floating(out.dtype())) continue;
    int64_t n_out = out.numel();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& in = inputs[i];
      if (!in.defined() || !in.requires_grad()) continue;
      double* data = in.data_ptr<double>();
      // Numeric Jacobian column k: perturb input element k.
      std::vector<double> numeric(static_cast<size_t>(n_out * in.numel()));
      for (int64_t k = 0; k < in.numel(); ++k) {
        double saved = data[k];
        data[k] = saved + eps;
        auto plus = evaluate(fn, inputs)[o];
        data[k] = saved - eps;
        auto minus = evaluate(fn, inputs)[o];
        data[k] = saved;
        for (int64_t r = 0; r < n_out; ++r) numeric[r * in.numel() + k] = (plus[r] - minus[r]) / (2 * eps);
      }
      // Analytic Jacobian row r: backward of a one-hot gradient.
      bool depends = requires_grad_fast(out);
      for (int64_t r = 0; r < n_out; ++r) {
        std::vector<double> row(static_cast<size_t>(in.numel()), 0.0);
        if (depends) {
          Tensor onehot = zeros(out.shape(), out.dtype());
          visit_floating(out.dtype(), "gradcheck", [&](auto tag) {
            static_cast<decltype(tag)*>(onehot.raw_data())[r] = 1;
          });
          Tensor g = grad({out}, {in}, {onehot}, /*retain_graph=*/true, /*allow_unused=*/true)[0];
          if (g.defined()) row = g.to_vector<double>();
        }
        for (int64_t k = 0; k < in.numel(); ++k) {
          double a = row[k], nval = numeric[r * in.numel() + k];
          double excess = std::fabs(a - nval) - (atol + rtol * std::fabs(nval));
          if (excess > 0 && excess > worst) {
            worst = excess;
            std::ostringstream msg;
            msg << "gradcheck: Jacobian mismatch for output " << o << " with respect to input " << i
                << ": d out" << index_str(r, out.shape()) << " / d in" << index_str(k, in.shape())
                << " is numerically " << nval << " but analytically " << a << " (atol " << atol << ", rtol "
                << rtol << ")";
            report = msg.str();
          }
        }
      }
    }
  }
  if (worst > 0 && raise) WEFT_ERROR(report);
  return worst <= 0;
}

bool gradcheck(const std::function<Tensor(const variable_list&)>& fn, const variable_list& inputs, double eps,
               double atol, double rtol, bool raise) {
  return gradcheck(GradcheckFn([&](const variable_list& in) { return variable_list{fn(in)}; }), inputs, eps, atol,
                   rtol, raise);
}

bool gradgradcheck(const GradcheckFn& fn, const variable_list& inputs, double eps, double atol, double rtol,
                   bool raise) {
  variable_list outputs;
  {
    EnableGradGuard grad_mode;
    outputs = fn(inputs);
  }
  // v: one fixed pseudo-random float64 tensor per floating output, itself differentiated.
  std::mt19937_64 rng(20261203);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<size_t> used;  // which outputs get a v
  variable_list all = inputs;
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (!outputs[o].defined() || !is_floating(outputs[o].dtype()) || !requires_grad_fast(outputs[o])) continue;
    std::vector<double> values(static_cast<size_t>(outputs[o].numel()));
    for (double& x : values) x = uniform(rng);
    all.push_back(tensor(values, outputs[o].shape(), dtype(kFloat64)).requires_grad_(true));
    used.push_back(o);
  }
  WEFT_CHECK(!used.empty(), "gradgradcheck: no output of the function requires grad");
  const size_t n_in = inputs.size();
  GradcheckFn first_order = [&](const variable_list& args) {
    EnableGradGuard grad_mode;  // gradcheck evaluates under no-grad; this function differentiates
    variable_list in(args.begin(), args.begin() + static_cast<ptrdiff_t>(n_in));
    variable_list outs = fn(in), roots, vs, wrt;
    for (size_t k = 0; k < used.size(); ++k) {
      if (!requires_grad_fast(outs[used[k]])) continue;
      Tensor v = args[n_in + k];
      roots.push_back(outs[used[k]]);
      vs.push_back(recorded_cast(v, outs[used[k]].dtype()));
    }
    for (const Tensor& t : in)
      if (t.defined() && t.requires_grad()) wrt.push_back(t);
    variable_list grads = grad(roots, wrt, vs, /*retain_graph=*/true, /*allow_unused=*/true, /*create_graph=*/true);
    for (size_t i = 0; i < grads.size(); ++i)  // an unused input's gradient is zero
      if (!grads[i].defined()) grads[i] = zeros(wrt[i].shape(), wrt[i].dtype());
    return grads;
  };
  return gradcheck(first_order, all, eps, atol, rtol, raise);
}

bool gradgradcheck(const std::function<Tensor(const variable_list&)>& fn, const variable_list& inputs, double eps,
                   double atol, double rtol, bool raise) {
  return gradgradcheck(GradcheckFn([&](const variable_list& in) { return variable_list{fn(in)}; }), inputs, eps,
                       atol, rtol, raise);
}

}  // namespace weft::autograd
