// softmax.cpp: softmax and log_softmax over any dim, forward on the fused kernel, backward with ops.
#include "autograd/node.h"
#include "ops/binary.h"
#include "kernels/nn_kernels.h"
#include "ops/nn_functional.h"
#include "ops/reduce.h"
#include "ops/unary.h"

namespace weft {
namespace {

void check_softmax_input(const Tensor& x, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.is_floating_point(), op, ": expected a floating point tensor (float32 or float64) but got ",
             x.dtype(), " of shape ", x.shape());
}

// A 0-dim tensor is treated as one row of length 1, as PyTorch does.
int64_t softmax_dim(const Tensor& x, int64_t dim, const char* op) { return wrap_dim(dim, x.dim(), op); }

// d softmax: y * (g - sum(g * y, dim)).
struct SoftmaxBackward final : autograd::Node {
  autograd::SavedTensor result;
  int64_t dim = 0;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    Tensor y = result.unpack(this);
    const Tensor& g = grads[0];
    if (y.dim() == 0) return {mul(g, 0.0)};
    return {mul(y, sub(g, sum(mul(g, y), {dim}, /*keepdim=*/true)))};
  }
  std::string name() const override { return "SoftmaxBackward"; }
};
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  check_softmax_input(x, "softmax");
  int64_t d = softmax_dim(x, dim, "softmax");
  Tensor y = kernels::softmax(x, x.dim() == 0 ? 0 : d, /*log=*/false);
  return autograd::record<SoftmaxBackward>(y, [&](SoftmaxBackward& n) {
    n.dim = d;
    n.save(n.result, y, /*is_output=*/true);
  }, x);
}

namespace {
// d log_softmax: g - exp(y) * sum(g, dim).
struct LogSoftmaxBackward final : autograd::Node {
  autograd::SavedTensor result;
  int64_t dim = 0;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    Tensor y = result.unpack(this);
    const Tensor& g = grads[0];
    if (y.dim() == 0) return {mul(g, 0.0)};
    return {sub(g, mul(exp(y), sum(g, {dim}, /*keepdim=*/true)))};
  }
  std::string name() const override { return "LogSoftmaxBackward"; }
};
}  // namespace

Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_softmax_input(x, "log_softmax");
  int64_t d = softmax_dim(x, dim, "log_softmax");
  Tensor y = kernels::softmax(x, x.dim() == 0 ? 0 : d, /*log=*/true);
  return autograd::record<LogSoftmaxBackward>(y, [&](LogSoftmaxBackward& n) {
    n.dim = d;
    n.save(n.result, y, /*is_output=*/true);
  }, x);
}

}  // namespace weft
