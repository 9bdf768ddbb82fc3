// interpolate.cpp: interpolate, forward and backward on kernels/interpolate.h.
#include "ops/interpolate.h"
#include "ops/reduced_float.h"

#include <cmath>
#include <sstream>

#include "autograd/node.h"
#include "kernels/interpolate.h"

namespace weft {
namespace {

struct ResampleBackward final : autograd::Node {
  Shape x_shape;
  std::vector<kernels::ResampleAxis> axes;
  bool linear = false, align_corners = false;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::resample_backward(grads[0], x_shape, axes, linear, align_corners)};
  }
  // PyTorch's names: UpsampleNearest1DBackward, UpsampleBilinear2DBackward, UpsampleTrilinear3DBackward...
  std::string name() const override {
    static const char* const kLinear[] = {"Linear", "Bilinear", "Trilinear"};
    return std::string("Upsample") + (linear ? kLinear[axes.size() - 1] : "Nearest") + std::to_string(axes.size()) +
           "DBackward";
  }
};

// "(5, 7)": an argument list as the errors print it.
template <class T>
std::string listed(const std::vector<T>& v) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << ")";
  return s.str();
}

// The rank each linear mode needs, as F.interpolate checks it (nearest takes every rank).
int64_t rank_of_mode(const std::string& mode) { return mode == "linear" ? 3 : mode == "bilinear" ? 4 : 5; }

// The output axes from size or scale_factor: one value for every spatial dim, or one per dim.
std::vector<kernels::ResampleAxis> output_axes(const Tensor& input, const std::optional<OutputSize>& size,
                                               const std::optional<ScaleFactor>& scale_factor, const char* op) {
  const auto dims = static_cast<size_t>(input.dim() - 2);
  const size_t given = size ? size->values.size() : scale_factor->values.size();
  WEFT_CHECK(given == 1 || given == dims, op, ": input and ", size ? "output size" : "scale_factor",
             " must have the same number of spatial dimensions, but got input of shape ", input.shape(), " (", dims,
             " spatial) and ", size ? "size " : "scale_factor ",
             size ? listed(size->values) : listed(scale_factor->values));
  std::vector<kernels::ResampleAxis> axes(dims);
  for (size_t d = 0; d < dims; ++d) {
    const size_t i = given == 1 ? 0 : d;
    if (size) {
      axes[d].out = size->values[i];
      continue;
    }
    const double scale = scale_factor->values[i];
    WEFT_CHECK(scale > 0, op, ": expected a positive scale_factor but got ", listed(scale_factor->values));
    axes[d] = {static_cast<int64_t>(std::floor(double(input.size(int64_t(2 + d))) * scale)), scale};
  }
  return axes;
}

}  // namespace

Tensor interpolate(const Tensor& input, std::optional<OutputSize> size, std::optional<ScaleFactor> scale_factor,
                   const std::string& mode, std::optional<bool> align_corners) {
  const char* op = "interpolate";
  if (input.defined() && is_reduced_float(input.dtype()))  // in float32, rounded back once
    return interpolate(detail::widened(input), size, scale_factor, mode, align_corners).to(input.dtype());
  detail::check_plain(input, op);
  WEFT_CHECK(input.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ",
             input.dtype());
  WEFT_CHECK(mode == "nearest" || mode == "linear" || mode == "bilinear" || mode == "trilinear", op,
             ": mode must be \"nearest\", \"linear\", \"bilinear\" or \"trilinear\", but got \"", mode, "\"");
  const bool linear = mode != "nearest";
  WEFT_CHECK(linear || !align_corners, op, ": align_corners is for the interpolating modes (linear, bilinear, "
             "trilinear) only, but the mode is ", mode);
  WEFT_CHECK(size.has_value() != scale_factor.has_value(), op, ": expected exactly one of size and scale_factor, "
             "but got ", size ? "both" : "neither");
  WEFT_CHECK(input.dim() >= 3 && input.dim() <= 5, op, ": expected a 3-D input [N, C, L], a 4-D input [N, C, H, W] "
             "or a 5-D input [N, C, D, H, W], but got shape ", input.shape());
  WEFT_CHECK(!linear || input.dim() == rank_of_mode(mode), op, ": Got ", input.dim(), "D input, but ", mode,
             " mode needs ", rank_of_mode(mode), "D input (shape ", input.shape(), ")");
  for (int64_t d = 2; d < input.dim(); ++d)
    WEFT_CHECK(input.size(d) > 0, op, ": expected non-empty spatial dims but got ", input.shape());
  std::vector<kernels::ResampleAxis> axes = output_axes(input, size, scale_factor, op);
  std::vector<int64_t> outs;
  for (const auto& a : axes) outs.push_back(a.out);
  for (int64_t o : outs)
    WEFT_CHECK(o > 0, op, ": the output size ", listed(outs), " must be positive; input ", input.shape());
  const bool align = align_corners.value_or(false);
  Tensor y = kernels::resample_forward(input, axes, linear, align);
  return autograd::record<ResampleBackward>(std::move(y), [&](ResampleBackward& n) {
    n.x_shape = input.shape();
    n.axes = axes;
    n.linear = linear;
    n.align_corners = align;
  }, input);
}

}  // namespace weft
