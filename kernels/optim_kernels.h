// optim_kernels.h: the fused loops of the optimizers and gradient clipping: one Adam/AdamW or SGD pass
// over every parameter of a step, a sum of squares, and an in-place scale, float32 ISA-dispatched.
#pragma once

#include <cstdint>
#include <vector>

namespace weft::kernels {

// One parameter's contiguous data, gradient and Adam moments, with its own step's scalars (a
// parameter's step count, hence its bias corrections, can differ from another's).
template <class T>
struct AdamSpan {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  int64_t n;
  double step_size;             // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

struct AdamScalars {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW: p *= 1 - lr*wd; Adam: g += wd*p
};

// torch.optim.Adam(W)'s update (amsgrad off) of every span, in one parallel region over pieces of
// all of them, so that many small parameters cost one team wake-up instead of one each:
// m += (1-b1)(g-m); v = b2 v + (1-b2) g^2; p -= step_size m / (sqrt(v)/bc2 + eps).
void adam_step(const std::vector<AdamSpan<float>>& spans, const AdamScalars& s);
void adam_step(const std::vector<AdamSpan<double>>& spans, const AdamScalars& s);

// One parameter's contiguous data, gradient and (with momentum) momentum buffer for SGD.
template <class T>
struct SgdSpan {
  T* param;
  const T* grad;
  T* momentum_buffer;  // nullptr: no momentum
  int64_t n;
  bool first;  // the buffer's first step: it becomes the (decayed) gradient, undamped (PyTorch's clone)
};

struct SgdScalars {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

// torch.optim.SGD's update of every span in one parallel region over pieces of all of them:
// d = g + wd p; buf = d (first) or momentum buf + (1 - dampening) d; d = d + momentum buf (nesterov)
// or buf; p -= lr d. float32 runs the widest of three compiled copies, as adam_step.
void sgd_step(const std::vector<SgdSpan<float>>& spans, const SgdScalars& s);
void sgd_step(const std::vector<SgdSpan<double>>& spans, const SgdScalars& s);

// The sum of x[i]^2 in double (lanes of partial sums, so not the serial order's rounding).
double sum_of_squares(const float* x, int64_t n);
double sum_of_squares(const double* x, int64_t n);

// x[i] *= scale in place.
void scale_in_place(float* x, int64_t n, float scale);
void scale_in_place(double* x, int64_t n, double scale);

}  // namespace weft::kernels
