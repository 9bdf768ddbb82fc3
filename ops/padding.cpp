// padding.cpp: pad, forward and backward on kernels/pad.h.
#include "ops/padding.h"

#include <algorithm>

#include "autograd/node.h"
#include "kernels/pad.h"
#include "ops/copy_ops.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

using kernels::PadAmounts;
using kernels::PadMode;

PadMode pad_mode(const std::string& mode) {
  if (mode == "constant") return PadMode::kConstant;
  if (mode == "reflect") return PadMode::kReflect;
  if (mode == "replicate") return PadMode::kReplicate;
  WEFT_CHECK(mode == "circular", "pad: mode must be \"constant\", \"reflect\", \"replicate\" or \"circular\", but got \"",
             mode, "\"");
  return PadMode::kCircular;
}

// The amounts per padded dim, outermost first, checked against the mode's limits.
PadAmounts pad_amounts(const Tensor& x, const std::vector<int64_t>& pad, PadMode mode, const std::string& name) {
  const char* op = "pad";
  WEFT_CHECK(pad.size() % 2 == 0 && static_cast<int64_t>(pad.size() / 2) <= x.dim(), op,
             ": expected an even number of amounts, two per padded dim, for at most ", x.dim(),
             " dims (the input's), but got ", pad.size());
  PadAmounts amounts(pad.size() / 2);
  for (size_t j = 0; j < amounts.size(); ++j) {
    const int64_t dim = x.dim() - 1 - static_cast<int64_t>(j), size = x.size(dim);
    const int64_t before = pad[2 * j], after = pad[2 * j + 1];
    amounts[amounts.size() - 1 - j] = {before, after};
    WEFT_CHECK(size + before + after >= 0, op, ": padding (", before, ", ", after, ") of dim ", dim, " (size ", size,
               ") leaves a negative size");
    if (mode == PadMode::kConstant) continue;
    const int64_t limit = mode == PadMode::kReflect ? size - 1 : mode == PadMode::kCircular ? size : INT64_MAX;
    WEFT_CHECK(size > 0 && before <= limit && after <= limit, op, ": ", name, " padding (", before, ", ", after,
               ") of dim ", dim, " must be ",
               mode == PadMode::kReflect ? "smaller than" : mode == PadMode::kCircular ? "at most" : "used on",
               " the dim's size (", size, ")", mode == PadMode::kReplicate ? ", which must not be 0" : "");
  }
  return amounts;
}

struct PadBackward final : autograd::Node {
  Shape x_shape;
  PadAmounts pads;
  PadMode mode = PadMode::kConstant;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::pad_backward(grads[0], x_shape, pads, mode)};
  }
  std::string name() const override { return "PadBackward"; }
};

}  // namespace

Tensor pad(const Tensor& input, const std::vector<int64_t>& pad, const std::string& mode, double value) {
  detail::check_plain(input, "pad");
  const PadMode m = pad_mode(mode);
  if (m != PadMode::kConstant && std::any_of(pad.begin(), pad.end(), [](int64_t a) { return a < 0; })) {
    // Negative amounts crop in every mode, as in PyTorch: the crop first, then the positive amounts
    // pad (reflecting or wrapping around the cropped dim, which is PyTorch's result too).
    pad_amounts(input, pad, PadMode::kConstant, mode);  // the amounts' count and the sizes they leave
    Tensor cropped = input;
    std::vector<int64_t> positive(pad.size());
    for (size_t j = 0; j < pad.size() / 2; ++j) {
      const int64_t dim = input.dim() - 1 - static_cast<int64_t>(j);
      const int64_t before = std::max<int64_t>(-pad[2 * j], 0), after = std::max<int64_t>(-pad[2 * j + 1], 0);
      cropped = narrow(cropped, dim, before, input.size(dim) - before - after);
      positive[2 * j] = std::max<int64_t>(pad[2 * j], 0);
      positive[2 * j + 1] = std::max<int64_t>(pad[2 * j + 1], 0);
    }
    return weft::pad(cropped, positive, mode, value);
  }
  PadAmounts amounts = pad_amounts(input, pad, m, mode);
  if (amounts.empty()) return clone(input);
  Tensor y = kernels::pad_forward(input, amounts, m, value);
  return autograd::record<PadBackward>(std::move(y), [&](PadBackward& n) {
    n.x_shape = input.shape();
    n.pads = std::move(amounts);
    n.mode = m;
  }, input);
}

}  // namespace weft
