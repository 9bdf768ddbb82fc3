// Random sampling with PyTorch's semantics: randperm, multinomial, bernoulli. Their results are
// indices or draws, not functions of the input, so they record no autograd history.
#pragma once

#include <cstdint>

#include "framework/generator.h"
#include "framework/tensor.h"

namespace weft {

// A random permutation of 0 .. n-1 (Fisher-Yates on the generator, the default one unless given).
Tensor randperm(int64_t n, TensorOptions options = dtype(kInt64), Generator* gen = nullptr);

// Draws num_samples category indices (int64) from each row of non-negative weights (1-D: one
// distribution, 2-D: one per row; rows need not sum to one). Without replacement, an index is
// drawn at most once per row, so a row needs at least num_samples categories of nonzero weight.
Tensor multinomial(const Tensor& input, int64_t num_samples, bool replacement = false, Generator* gen = nullptr);

// 1 with probability p (elementwise from the floating tensor `probs`, each in [0, 1], or the
// scalar p for every element of `input`'s shape), else 0, in the input's floating dtype.
Tensor bernoulli(const Tensor& probs, Generator* gen = nullptr);
Tensor bernoulli(const Tensor& input, double p, Generator* gen = nullptr);

}  // namespace weft
