// interpolate.cpp: interpolate, forward and backward on kernels/interpolate.h; "area" on 1-D and 2-D
// inputs through adaptive_avg_pool2d (ops/pooling.h), as PyTorch's F.interpolate dispatches it.
#include "ops/interpolate.h"
#include "ops/reduced_float.h"

#include <cmath>
#include <sstream>

#include "autograd/node.h"
#include "kernels/interpolate.h"
#include "ops/pooling.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

using kernels::ResampleMode;

// A mode as F.interpolate dispatches it: the kernel's rule, the rank it needs (0: any of 3-D to 5-D),
// whether it interpolates (and so takes align_corners), and its part of PyTorch's backward name.
struct Mode {
  ResampleMode rule;
  int64_t rank;
  bool interpolating;
  const char* name;
};

std::optional<Mode> mode_named(const std::string& mode) {
  if (mode == "nearest") return Mode{ResampleMode::nearest, 0, false, "Nearest"};
  if (mode == "nearest-exact") return Mode{ResampleMode::nearest_exact, 0, false, "NearestExact"};
  if (mode == "area") return Mode{ResampleMode::area, 0, false, "Area"};
  if (mode == "linear") return Mode{ResampleMode::linear, 3, true, "Linear"};
  if (mode == "bilinear") return Mode{ResampleMode::linear, 4, true, "Bilinear"};
  if (mode == "bicubic") return Mode{ResampleMode::cubic, 4, true, "Bicubic"};
  if (mode == "trilinear") return Mode{ResampleMode::linear, 5, true, "Trilinear"};
  return std::nullopt;
}

struct ResampleBackward final : autograd::Node {
  Shape x_shape;
  std::vector<kernels::ResampleAxis> axes;
  ResampleMode mode = ResampleMode::nearest;
  bool align_corners = false;
  const char* mode_name = "";
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::resample_backward(grads[0], x_shape, axes, mode, align_corners)};
  }
  // PyTorch's names: UpsampleNearest1DBackward, UpsampleBicubic2DAaBackward, AdaptiveAvgPool3DBackward...
  std::string name() const override {
    const std::string dims = std::to_string(axes.size()) + "D";
    if (mode == ResampleMode::area) return "AdaptiveAvgPool" + dims + "Backward";
    const bool aa = mode == ResampleMode::linear_antialias || mode == ResampleMode::cubic_antialias;
    return std::string("Upsample") + mode_name + dims + (aa ? "Aa" : "") + "Backward";
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

// F.interpolate's dispatch by rank and mode, and its errors where none matches.
void check_rank(const Tensor& input, const std::string& mode, const Mode& m, const char* op) {
  static constexpr const char* kLayouts[] = {"a 3-D input [N, C, L]", "a 4-D input [N, C, H, W]",
                                             "a 5-D input [N, C, D, H, W]"};
  const bool any_rank = input.dim() >= 3 && input.dim() <= 5 && m.rank == 0;
  if (any_rank || input.dim() == m.rank) return;
  // F.interpolate names the rank a linear mode needs; for bicubic and for other ranks it has one message.
  const bool linear_family = m.rank != 0 && m.rule != ResampleMode::cubic;
  WEFT_CHECK(!(linear_family && input.dim() >= 3 && input.dim() <= 5), op, ": Got ", input.dim(), "D input, but ",
             mode, " mode needs ", m.rank, "D input (shape ", input.shape(), ")");
  WEFT_CHECK(false, op, ": Input Error: Only 3D, 4D and 5D input Tensors supported (got ", input.dim(),
             "D) for the modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact (got \"",
             mode, "\"): expected ", m.rank ? kLayouts[m.rank - 3] : "a 3-D input [N, C, L], a 4-D input "
             "[N, C, H, W] or a 5-D input [N, C, D, H, W]", ", but got shape ", input.shape());
}

// The output axes from size or scale_factor: one value for every spatial dim, or one per dim.
// `area` takes an output size of 0 (an empty result), as adaptive average pooling does.
std::vector<kernels::ResampleAxis> output_axes(const Tensor& input, const std::optional<OutputSize>& size,
                                               const std::optional<ScaleFactor>& scale_factor, bool area,
                                               const char* op) {
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
    WEFT_CHECK(scale > 0 || (area && scale == 0), op, ": expected a positive scale_factor but got ",
               listed(scale_factor->values));
    axes[d] = {static_cast<int64_t>(std::floor(double(input.size(int64_t(2 + d))) * scale)), scale};
  }
  std::vector<int64_t> outs;
  for (const auto& a : axes) outs.push_back(a.out);
  for (int64_t o : outs)
    WEFT_CHECK(o > 0 || (area && o == 0), op, ": the output size ", listed(outs), " must be ",
               area ? "non-negative" : "positive", "; input ", input.shape());
  return axes;
}

// PyTorch's adaptive_avg_pool1d (a height of one through the 2-D pool) and adaptive_avg_pool2d; the
// 3-D average on the resampling kernel.
Tensor area(const Tensor& input, const std::vector<kernels::ResampleAxis>& axes) {
  if (input.dim() == 3) return squeeze(adaptive_avg_pool2d(unsqueeze(input, 2), Size2d(1, axes[0].out)), 2);
  return adaptive_avg_pool2d(input, Size2d(axes[0].out, axes[1].out));
}

}  // namespace

Tensor interpolate(const Tensor& input, std::optional<OutputSize> size, std::optional<ScaleFactor> scale_factor,
                   const std::string& mode, std::optional<bool> align_corners,
                   std::optional<bool> recompute_scale_factor, bool antialias) {
  const char* op = "interpolate";
  if (input.defined() && is_reduced_float(input.dtype()))  // in float32, rounded back once
    return interpolate(detail::widened(input), size, scale_factor, mode, align_corners, recompute_scale_factor,
                       antialias)
        .to(input.dtype());
  detail::check_plain(input, op);
  WEFT_CHECK(input.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ",
             input.dtype());
  const std::optional<Mode> m = mode_named(mode);
  WEFT_CHECK(m.has_value(), op, ": mode must be \"nearest\", \"nearest-exact\", \"area\", \"linear\", \"bilinear\", "
             "\"bicubic\" or \"trilinear\", but got \"", mode, "\"");
  WEFT_CHECK(m->interpolating || !align_corners, op, ": align_corners option can only be set with the "
             "interpolating modes: linear | bilinear | bicubic | trilinear, but the mode is ", mode);
  WEFT_CHECK(size.has_value() != scale_factor.has_value(), op, ": expected exactly one of size and scale_factor, "
             "but got ", size ? "both" : "neither");
  WEFT_CHECK(!(recompute_scale_factor.value_or(false) && size), op,
             ": recompute_scale_factor is not meaningful with an explicit size.");
  WEFT_CHECK(!antialias || ((mode == "bilinear" || mode == "bicubic") && input.dim() == 4), op,
             ": Anti-alias option is only supported for bilinear and bicubic modes (on 4D input), but got mode ",
             mode, " on an input of shape ", input.shape());
  check_rank(input, mode, *m, op);
  for (int64_t d = 2; d < input.dim(); ++d)
    WEFT_CHECK(input.size(d) > 0, op, ": expected non-empty spatial dims but got ", input.shape());
  const bool is_area = m->rule == ResampleMode::area;
  std::vector<kernels::ResampleAxis> axes = output_axes(input, size, scale_factor, is_area, op);
  // Recomputed: the samples placed as if the computed size had been given (PyTorch's Python layer
  // computes floor(input size * scale) and passes that size alone). Area always uses sizes alone.
  if (recompute_scale_factor.value_or(false) || is_area)
    for (auto& a : axes) a.scale_factor.reset();
  if (is_area && input.dim() < 5) return area(input, axes);
  const bool align = align_corners.value_or(false);
  const ResampleMode rule = !antialias                      ? m->rule
                            : m->rule == ResampleMode::cubic ? ResampleMode::cubic_antialias
                                                            : ResampleMode::linear_antialias;
  Tensor y = kernels::resample_forward(input, axes, rule, align);
  return autograd::record<ResampleBackward>(std::move(y), [&](ResampleBackward& n) {
    n.x_shape = input.shape();
    n.axes = axes;
    n.mode = rule;
    n.align_corners = align;
    n.mode_name = m->name;
  }, input);
}

}  // namespace weft
