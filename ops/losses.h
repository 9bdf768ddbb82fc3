// Losses: cross_entropy, nll_loss and mse_loss. reduction: "none", "mean" or "sum".
#pragma once

#include <string>

#include "framework/tensor.h"

namespace weft {

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean",
                     int64_t ignore_index = -100, double label_smoothing = 0.0);
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const std::string& reduction = "mean",
                int64_t ignore_index = -100);
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");

}  // namespace weft
