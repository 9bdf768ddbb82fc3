// Losses: cross_entropy, nll_loss and mse_loss. reduction: "none", "mean" or "sum".
// weight (C), optional: a rescaling per class, as PyTorch's; with class-index targets the mean is
// then divided by the summed weights of the counted targets rather than by their number.
#pragma once

#include <string>

#include "framework/tensor.h"

namespace weft {

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean",
                     int64_t ignore_index = -100, double label_smoothing = 0.0, const Tensor& weight = Tensor());
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const std::string& reduction = "mean",
                int64_t ignore_index = -100, const Tensor& weight = Tensor());
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");

}  // namespace weft
