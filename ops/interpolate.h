// interpolate with torch.nn.functional.interpolate's signature: "nearest", "nearest-exact" and "area"
// on [N, C, L], [N, C, H, W] and [N, C, D, H, W] inputs, the linear mode of each rank ("linear",
// "bilinear", "trilinear"), and "bicubic" on [N, C, H, W].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "ops/conv.h"

namespace weft {

// The output size: one number for every spatial dim, or one per dim ({l}, {h, w} or {d, h, w}).
struct OutputSize {
  OutputSize(int64_t v) : values{v} {}  // NOLINT: implicit, as Python's int is
  OutputSize(Size2d s) : values{s.h, s.w} {}  // NOLINT
  OutputSize(int64_t h, int64_t w) : values{h, w} {}
  OutputSize(int64_t d, int64_t h, int64_t w) : values{d, h, w} {}
  explicit OutputSize(std::vector<int64_t> v) : values(std::move(v)) {}
  std::vector<int64_t> values;
};

// A scale per spatial dim, or one for all of them.
struct ScaleFactor {
  ScaleFactor(double v) : values{v} {}  // NOLINT: implicit, as Python's float is
  ScaleFactor(double h, double w) : values{h, w} {}
  ScaleFactor(double d, double h, double w) : values{d, h, w} {}
  explicit ScaleFactor(std::vector<double> v) : values(std::move(v)) {}
  std::vector<double> values;
};

// Exactly one of size and scale_factor (the output is floor(input size * scale), and the scale is
// used as given to place the samples, unless recompute_scale_factor is true: then the samples are
// placed by input size / output size, as if that size had been given). The mode must match the
// rank: "linear" 3-D, "bilinear" and "bicubic" 4-D, "trilinear" 5-D; "nearest", "nearest-exact"
// and "area" (adaptive average pooling to the output size) any of them. align_corners is the
// interpolating modes' only (linear, bilinear, bicubic, trilinear; default false). antialias
// (bilinear and bicubic only) stretches the filter when downsampling, as Pillow and PyTorch do.
Tensor interpolate(const Tensor& input, std::optional<OutputSize> size = std::nullopt,
                   std::optional<ScaleFactor> scale_factor = std::nullopt, const std::string& mode = "nearest",
                   std::optional<bool> align_corners = std::nullopt,
                   std::optional<bool> recompute_scale_factor = std::nullopt, bool antialias = false);

}  // namespace weft
