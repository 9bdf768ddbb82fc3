// nn_kernels.h: the fused loops behind the neural-network ops (softmax, normalisation, losses,
// embedding, dropout masks). No autograd here; the differentiable wrappers live in ops/*.cpp.
#pragma once

#include <cstdint>

#include "framework/generator.h"
#include "framework/tensor.h"

namespace weft::kernels {

// Views a tensor as (outer, n, inner) around `dim`: the layout every per-row kernel walks.
struct RowGeometry {
  int64_t outer = 1, n = 1, inner = 1;
};
RowGeometry row_geometry(const Shape& shape, int64_t dim);

// softmax or log-softmax of a float tensor along `dim` (already wrapped); a new contiguous tensor.
// Rows are shifted by their max, so large logits do not overflow.
Tensor softmax(const Tensor& x, int64_t dim, bool log);

// Layer norm (subtract_mean) or RMS norm over the trailing `n` elements of each row of `x`.
// weight/bias may be undefined. Returns y and writes per-row mean (0 for RMS) and rstd (float64 for
// float64 inputs, else float32, shape (rows)).
struct NormResult {
  Tensor y, mean, rstd;
};
NormResult norm_forward(const Tensor& x, int64_t n, const Tensor& weight, const Tensor& bias, double eps,
                        bool subtract_mean);
// Gradients of norm_forward; each is computed only when its flag is set (else undefined).
struct NormGrads {
  Tensor dx, dweight, dbias;
};
NormGrads norm_backward(const Tensor& grad, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                        const Tensor& weight, int64_t n, bool subtract_mean, bool need_dx, bool need_dweight,
                        bool need_dbias);

// Cross entropy on logits laid out as (outer, C, inner) with class-index targets (outer, inner).
// Per-position loss (1-ε)·nll + ε/C·(-Σ log p), 0 where target == ignore_index, and the count of
// non-ignored targets.
struct CrossEntropyResult {
  Tensor loss;
  int64_t count = 0;
};
CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& target, int64_t class_dim,
                                         int64_t ignore_index, double label_smoothing, const char* op);
// d loss / d logits = scale_p · (softmax - (1-ε)·onehot - ε/C), where scale_p is grad_loss at the
// position (reduction none, numel = positions) or its one element (mean/sum), times `scale`.
Tensor cross_entropy_backward(const Tensor& grad_loss, double scale, const Tensor& logits, const Tensor& target,
                              int64_t class_dim, int64_t ignore_index, double label_smoothing);

// nll on log-probabilities (outer, C, inner): -lp[target], 0 where ignored; and the count.
struct NllResult {
  Tensor loss;
  int64_t count = 0;
};
NllResult nll_loss_forward(const Tensor& log_probs, const Tensor& target, int64_t class_dim, int64_t ignore_index,
                           const char* op);
Tensor nll_loss_backward(const Tensor& grad_loss, double scale, const Shape& input_shape, DType dtype, const Tensor& target,
                         int64_t class_dim, int64_t ignore_index);

// Rows of `weight` (V, D) picked by int64 `indices`: shape indices.shape + (D).
Tensor embedding(const Tensor& weight, const Tensor& indices);
// Zero (V, D) gradient with grad rows added at their indices.
Tensor embedding_backward(const Tensor& grad, const Tensor& indices, int64_t num_weights);

// A tensor of `dtype` holding 1/(1-p) with probability 1-p and 0 otherwise, drawn from `gen`
// in row-major order (so a seed fixes it).
Tensor dropout_mask(const Shape& shape, DType dtype, double p, Generator& gen);

}  // namespace weft::kernels
