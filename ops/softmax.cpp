// softmax.cpp: softmax and log_softmax over any dim, forward on the fused kernel, backward with ops.
#include "ops/softmax.h"
#include "ops/reduced_float.h"
#include "autograd/node.h"
#include "ops/autocast.h"
#include "kernels/nn_kernels.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/unary.h"

namespace weft {
namespace {

// d softmax: y * (g - sum(g * y, dim)); d log_softmax: g - exp(y) * sum(g, dim). y is the output.
struct SoftmaxBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  autograd::SavedTensor result;
  int64_t dim = 0;
  bool log = false;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    Tensor y = result.unpack(this);
    const Tensor& g = grads[0];
    if (y.dim() == 0) return {mul(g, 0.0)};
    if (log) return {sub(g, mul(exp(y), sum(g, {dim}, /*keepdim=*/true)))};
    return {mul(y, sub(g, sum(mul(g, y), {dim}, /*keepdim=*/true)))};
  }
  std::string name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
};

// softmax or log_softmax of a floating tensor along dim; a 0-dim tensor is one row of length 1, as
// in PyTorch.
Tensor softmax_op(const Tensor& x, int64_t dim, bool log, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.is_floating_point(), op, ": expected a floating point tensor (float32 or float64) but got ",
             x.dtype(), " of shape ", x.shape());
  if (is_reduced_float(x.dtype())) return softmax_op(detail::widened(x), dim, log, op).to(x.dtype());
  int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor y = kernels::softmax(x, x.dim() == 0 ? 0 : d, log);
  return autograd::record<SoftmaxBackward>(y, [&](SoftmaxBackward& n) {
    n.dim = d;
    n.log = log;
    n.save(n.result, y, /*is_output=*/true);
  }, x);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kSoftmax, softmax, x, dim);
  return softmax_op(x, dim, /*log=*/false, "softmax");
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  if (autocast_enabled()) [[unlikely]] return autocast::call(autocast::Op::kLogSoftmax, log_softmax, x, dim);
  return softmax_op(x, dim, /*log=*/true, "log_softmax");
}

}  // namespace weft
