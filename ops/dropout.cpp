// dropout.cpp: zeroes elements with probability p and scales the rest by 1/(1-p) while training.
#include "ops/dropout.h"
#include "kernels/nn_kernels.h"
#include "ops/binary.h"

namespace weft {

// The mask is drawn from the generator (the default one unless given), so manual_seed fixes it;
// y = x * mask goes through mul, whose backward (g * mask) is exactly dropout's.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_plain(x, "dropout");
  WEFT_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0.0) return x;
  WEFT_CHECK(x.is_floating_point(), "dropout: expected a floating point input but got ",
             x.dtype());
  Generator& g = gen ? *gen : default_generator();
  std::unique_lock<std::mutex> lock(g.mutex());  // see Note [Generator threads]
  // bfloat16 and float16: the mask drawn in float32 and rounded (its scale 1 / (1 - p) too, as in
  // PyTorch, whose mask has the input's dtype).
  Tensor mask = kernels::dropout_mask(x.shape(), is_reduced_float(x.dtype()) ? kFloat32 : x.dtype(), p, g);
  lock.unlock();
  if (mask.dtype() != x.dtype()) mask = mask.to(x.dtype());
  return mul(x, mask);
}

}  // namespace weft
