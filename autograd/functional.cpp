// autograd::functional: each helper evaluates the function on fresh leaves (Note [Functional
// inputs]) and asks grad() for one or two reverse passes.
#include "autograd/functional.h"

#include "autograd/engine.h"
#include "autograd/gradient_ops.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/toolkit.h"

namespace weft::autograd::functional {
namespace {

// The inputs the function sees: see Note [Functional inputs].
variable_list prepare(const variable_list& inputs, bool create_graph, const char* op) {
  variable_list xs;
  xs.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    WEFT_CHECK(x.defined(), op, ": input ", i, " is undefined");
    WEFT_CHECK(is_floating(x.dtype()), op, ": input ", i, " must be a floating point tensor but got ", x.dtype(),
               " of shape ", x.shape());
    if (create_graph && requires_grad_fast(x)) {
      EnableGradGuard grad_mode;
      xs.push_back(recorded_clone(x));  // a new tensor that keeps x's history
    } else {
      xs.push_back(x.detach().requires_grad_(true));
    }
  }
  return xs;
}

variable_list evaluate(const TensorsFn& f, const variable_list& xs) {
  EnableGradGuard grad_mode;
  return f(xs);
}

// grad() of the `roots` that require grad (each with its entry of `seeds`) with respect to `wrt`;
// zeros where nothing reaches an input.
variable_list gradients(const variable_list& roots, const variable_list& seeds, const variable_list& wrt,
                        bool create_graph, bool retain_graph) {
  variable_list live_roots, live_seeds;
  for (size_t k = 0; k < roots.size(); ++k) {
    if (!roots[k].defined() || !requires_grad_fast(roots[k])) continue;
    live_roots.push_back(roots[k]);
    live_seeds.push_back(seeds[k]);
  }
  variable_list out(wrt.size());
  if (!live_roots.empty()) {
    EnableGradGuard grad_mode;
    out = grad(live_roots, wrt, live_seeds, retain_graph, /*allow_unused=*/true, create_graph);
  }
  for (size_t i = 0; i < wrt.size(); ++i) {
    if (!out[i].defined()) out[i] = zeros(wrt[i].shape(), wrt[i].dtype());
    else if (!create_graph) out[i] = out[i].detach();
  }
  return out;
}

void check_seeds(const variable_list& seeds, const variable_list& like, const char* op, const char* what) {
  WEFT_CHECK(seeds.size() == like.size(), op, ": v must hold one tensor per ", what, " (", like.size(), ") but holds ",
             seeds.size());
  for (size_t k = 0; k < seeds.size(); ++k)
    WEFT_CHECK(seeds[k].defined() && seeds[k].shape() == like[k].shape(), op, ": v[", k, "] must have the shape of ",
               what, " ", k, ", ", like[k].shape(), ", but has ", seeds[k].defined() ? seeds[k].shape() : Shape{});
}

variable_list detached(variable_list ts, bool create_graph) {
  if (!create_graph)
    for (Tensor& t : ts)
      if (t.defined()) t = t.detach();
  return ts;
}

Shape concat(const Shape& a, const Shape& b) {
  Shape out = a;
  for (int64_t size : b) out.push_back(size);
  return out;
}

}  // namespace

std::pair<variable_list, variable_list> vjp(const TensorsFn& f, const variable_list& inputs, const variable_list& v,
                                            bool create_graph) {
  variable_list xs = prepare(inputs, create_graph, "vjp");
  variable_list outs = evaluate(f, xs);
  check_seeds(v, outs, "vjp", "output");
  variable_list result = gradients(outs, v, xs, create_graph, create_graph);
  return {detached(outs, create_graph), result};
}

std::pair<variable_list, variable_list> jvp(const TensorsFn& f, const variable_list& inputs, const variable_list& v,
                                            bool create_graph) {
  check_seeds(v, inputs, "jvp", "input");
  variable_list xs = prepare(inputs, create_graph, "jvp");
  variable_list outs = evaluate(f, xs);
  // u^T J as a function of u (zeros: the value is irrelevant, only the linear map matters).
  variable_list us;
  for (size_t k = 0; k < outs.size(); ++k) {
    WEFT_CHECK(outs[k].defined() && is_floating(outs[k].dtype()), "jvp: output ", k, " must be a floating point "
               "tensor but got ", outs[k].defined() ? std::string(dtype_name(outs[k].dtype())) : std::string("an undefined tensor"));
    us.push_back(zeros(outs[k].shape(), outs[k].dtype()).requires_grad_(true));
  }
  variable_list ut_j = gradients(outs, us, xs, /*create_graph=*/true, /*retain_graph=*/true);
  variable_list result = gradients(ut_j, v, us, create_graph, create_graph);
  return {detached(outs, create_graph), result};
}

std::pair<Tensor, variable_list> hvp(const ScalarFn& f, const variable_list& inputs, const variable_list& v,
                                     bool create_graph) {
  check_seeds(v, inputs, "hvp", "input");
  variable_list xs = prepare(inputs, create_graph, "hvp");
  Tensor y = evaluate([&](const variable_list& in) { return variable_list{f(in)}; }, xs)[0];
  WEFT_CHECK(y.defined() && y.numel() == 1, "hvp: the function must return a tensor with one element but returned "
             "shape ", y.defined() ? y.shape() : Shape{});
  variable_list g = gradients({y}, {ones(y.shape(), y.dtype())}, xs, /*create_graph=*/true, /*retain_graph=*/true);
  variable_list result = gradients(g, v, xs, create_graph, create_graph);
  return {create_graph ? y : y.detach(), result};
}

std::vector<variable_list> jacobian(const TensorsFn& f, const variable_list& inputs) {
  variable_list xs = prepare(inputs, /*create_graph=*/false, "jacobian");
  variable_list outs = evaluate(f, xs);
  std::vector<variable_list> jac(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor& out = outs[i];
    WEFT_CHECK(out.defined(), "jacobian: output ", i, " is undefined");
    for (const Tensor& x : xs) jac[i].push_back(zeros(concat(out.shape(), x.shape()), x.dtype()));
    if (!requires_grad_fast(out)) continue;  // a constant: zero rows
    for (int64_t r = 0; r < out.numel(); ++r) {
      Tensor onehot = zeros(out.shape(), out.dtype());
      kernels::fill_out(kernels::make_alias(onehot, {}, {}, r), 1);
      variable_list row = gradients({out}, {onehot}, xs, /*create_graph=*/false, /*retain_graph=*/true);
      for (size_t j = 0; j < xs.size(); ++j) {
        const Shape& s = xs[j].shape();
        kernels::copy_into(kernels::make_alias(jac[i][j], s, contiguous_strides(s), r * xs[j].numel()), row[j]);
      }
    }
  }
  return jac;
}

std::vector<variable_list> hessian(const ScalarFn& f, const variable_list& inputs) {
  return jacobian([&](const variable_list& xs) {
    Tensor y = f(xs);
    WEFT_CHECK(y.defined() && y.numel() == 1, "hessian: the function must return a tensor with one element but "
               "returned shape ", y.defined() ? y.shape() : Shape{});
    return gradients({y}, {ones(y.shape(), y.dtype())}, xs, /*create_graph=*/true, /*retain_graph=*/true);
  }, inputs);
}

}  // namespace weft::autograd::functional
