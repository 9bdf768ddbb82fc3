// nn::Upsample: torch.nn.Upsample, a module over interpolate (ops/interpolate.h) for [N, C, L],
// [N, C, H, W] and [N, C, D, H, W] inputs.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "nn/module.h"
#include "ops/interpolate.h"

namespace weft::nn {

// Exactly one of size and scale_factor, checked when called, as PyTorch does (the fields are public
// and may be set after construction). mode, align_corners and recompute_scale_factor go to
// interpolate as given.
class Upsample : public UnaryModule {
 public:
  explicit Upsample(std::optional<OutputSize> size = std::nullopt,
                    std::optional<ScaleFactor> scale_factor = std::nullopt, std::string mode = "nearest",
                    std::optional<bool> align_corners = std::nullopt,
                    std::optional<bool> recompute_scale_factor = std::nullopt)
      : UnaryModule("Upsample"), size(std::move(size)), scale_factor(std::move(scale_factor)), mode(std::move(mode)),
        align_corners(align_corners), recompute_scale_factor(recompute_scale_factor) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::optional<OutputSize> size;
  std::optional<ScaleFactor> scale_factor;
  std::string mode;
  std::optional<bool> align_corners;
  std::optional<bool> recompute_scale_factor;
};

}  // namespace weft::nn
