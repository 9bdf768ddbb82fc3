// Registers the plain-tensor gradient arithmetic with the engine when the library loads.
// See Note [Gradient arithmetic hooks].
#include "autograd/engine.h"
#include "kernels/elementwise.h"
#include "ops/reduce.h"

namespace weft {
namespace {

// The engine adds gradients under no-grad already; this is the bare kernel, no recording.
Tensor plain_add(const Tensor& a, const Tensor& b) {
  DType dt = promote_types(a.dtype(), b.dtype());
  return kernels::binary(kernels::BinaryOp::Add, kernels::cast(a, dt), kernels::cast(b, dt));
}

Tensor plain_sum_to(const Tensor& grad, const Shape& shape) {
  NoGradGuard no_grad;
  return sum_to(grad, shape);
}

Tensor plain_cast(const Tensor& grad, DType dtype) {
  Tensor out = kernels::cast(grad, dtype);
  return out.is_same(grad) ? grad.detach() : out;
}

struct Registrar {
  Registrar() {
    auto& arithmetic = autograd::gradient_arithmetic();
    // The distributed layer may have wrapped `add` already (load order); keep its wrapper.
    if (arithmetic.add == nullptr) arithmetic.add = &plain_add;
    arithmetic.sum_to = &plain_sum_to;
    arithmetic.cast = &plain_cast;
    arithmetic.has_nan = &kernels::has_nan;
  }
};
const Registrar registrar;

}  // namespace
}  // namespace weft
