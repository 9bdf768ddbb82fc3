// interpolate.cpp: interpolate, forward and backward on kernels/interpolate.h.
#include "ops/interpolate.h"
#include "ops/reduced_float.h"

#include <cmath>

#include "autograd/node.h"
#include "kernels/interpolate.h"

namespace weft {
namespace {

struct ResampleBackward final : autograd::Node {
  Shape x_shape;
  kernels::ResampleAxis h, w;
  bool bilinear = false, align_corners = false;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::resample_backward(grads[0], x_shape, h, w, bilinear, align_corners)};
  }
  std::string name() const override { return bilinear ? "UpsampleBilinear2DBackward" : "UpsampleNearest2DBackward"; }
};

}  // namespace

Tensor interpolate(const Tensor& input, std::optional<Size2d> size, std::optional<ScaleFactor> scale_factor,
                   const std::string& mode, std::optional<bool> align_corners) {
  const char* op = "interpolate";
  if (input.defined() && is_reduced_float(input.dtype()))  // in float32, rounded back once
    return interpolate(detail::widened(input), size, scale_factor, mode, align_corners).to(input.dtype());
  detail::check_plain(input, op);
  WEFT_CHECK(input.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ",
             input.dtype());
  WEFT_CHECK(input.dim() == 4, op, ": expected a 4-D input [N, C, H, W] but got shape ", input.shape());
  WEFT_CHECK(mode == "nearest" || mode == "bilinear", op, ": mode must be \"nearest\" or \"bilinear\", but got \"",
             mode, "\"");
  const bool bilinear = mode == "bilinear";
  WEFT_CHECK(bilinear || !align_corners, op, ": align_corners is for the bilinear mode only, but the mode is ", mode);
  WEFT_CHECK(size.has_value() != scale_factor.has_value(), op, ": expected exactly one of size and scale_factor, "
             "but got ", size ? "both" : "neither");
  WEFT_CHECK(input.size(2) > 0 && input.size(3) > 0, op, ": expected non-empty spatial dims but got ", input.shape());
  kernels::ResampleAxis h, w;
  if (size) {
    h.out = size->h;
    w.out = size->w;
  } else {
    WEFT_CHECK(scale_factor->h > 0 && scale_factor->w > 0, op, ": expected a positive scale_factor but got (",
               scale_factor->h, ", ", scale_factor->w, ")");
    h = {static_cast<int64_t>(std::floor(double(input.size(2)) * scale_factor->h)), scale_factor->h};
    w = {static_cast<int64_t>(std::floor(double(input.size(3)) * scale_factor->w)), scale_factor->w};
  }
  WEFT_CHECK(h.out > 0 && w.out > 0, op, ": the output size (", h.out, ", ", w.out, ") must be positive; input ",
             input.shape());
  const bool align = align_corners.value_or(false);
  Tensor y = kernels::resample_forward(input, h, w, bilinear, align);
  return autograd::record<ResampleBackward>(std::move(y), [&](ResampleBackward& n) {
    n.x_shape = input.shape();
    n.h = h;
    n.w = w;
    n.bilinear = bilinear;
    n.align_corners = align;
  }, input);
}

}  // namespace weft
