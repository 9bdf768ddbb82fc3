// interpolate with torch.nn.functional.interpolate's signature, for [N, C, H, W] inputs: "nearest"
// and "bilinear" modes.
#pragma once

#include <optional>
#include <string>

#include "framework/tensor.h"
#include "ops/conv.h"

namespace weft {

// A scale per spatial dim, or one for both.
struct ScaleFactor {
  ScaleFactor(double v) : h(v), w(v) {}  // NOLINT: implicit, as Python's float is
  ScaleFactor(double h_, double w_) : h(h_), w(w_) {}
  double h, w;
};

// Exactly one of size and scale_factor (the output is floor(input size * scale)). align_corners is
// bilinear's only (default false).
Tensor interpolate(const Tensor& input, std::optional<Size2d> size = std::nullopt,
                   std::optional<ScaleFactor> scale_factor = std::nullopt, const std::string& mode = "nearest",
                   std::optional<bool> align_corners = std::nullopt);

}  // namespace weft
