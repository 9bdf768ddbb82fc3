// conv.cpp: conv1d, conv2d and conv_transpose2d, forward and backward on the kernels of kernels/conv.h.
#include "ops/conv.h"

#include <utility>

#include "autograd/node.h"
#include "ops/autocast.h"
#include "kernels/conv.h"
#include "ops/binary.h"
#include "ops/reduced_float.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unbatched.h"

namespace weft {
namespace {

using kernels::ConvGeometry;

// Checks what every convolution needs of its tensors: plain, one floating dtype, `dims`-D input
// (one less unbatched, which the caller has already batched) and weight, a bias of the input's dtype.
void check_conv_tensors(const Tensor& x, const Tensor& w, const Tensor& bias, const char* op) {
  detail::check_plain(x, op);
  detail::check_plain(w, op);
  WEFT_CHECK(x.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ", x.dtype());
  WEFT_CHECK(w.dtype() == x.dtype(), op, ": expected the weight to have the input's dtype ", x.dtype(), " but got ",
             w.dtype());
  WEFT_CHECK(w.dim() == 4, op, ": expected a 4-D weight but got shape ", w.shape());
  WEFT_CHECK(x.dim() == 4, op, ": expected a 4-D input [N, C, H, W] (3-D unbatched) but got shape ", x.shape());
  if (!bias.defined()) return;
  detail::check_plain(bias, op);
  WEFT_CHECK(bias.dtype() == x.dtype(), op, ": expected the bias to have the input's dtype ", x.dtype(),
             " but got ", bias.dtype());
}

void check_bias(const Tensor& bias, int64_t out_channels, const char* op) {
  WEFT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == out_channels), op, ": expected a bias of shape [",
             out_channels, "] (the output channels) but got ", bias.shape());
}

void check_positive(Size2d v, const char* what, const char* op) {
  WEFT_CHECK(v.h > 0 && v.w > 0, op, ": expected a positive ", what, " but got (", v.h, ", ", v.w, ")");
}

// groups must divide both channel counts.
void check_grouping(const Tensor& x, int64_t groups, int64_t out_channels, const char* op) {
  WEFT_CHECK(groups > 0, op, ": expected groups > 0 but got ", groups);
  WEFT_CHECK(x.size(1) % groups == 0 && out_channels % groups == 0, op, ": groups=", groups,
             " must divide the input channels (", x.size(1), ") and the output channels (", out_channels, ")");
}

// A conv's padding, before and after each spatial dim, from numbers or "valid" / "same".
void set_padding(ConvGeometry& g, const ConvPadding& padding, const Tensor& w, const char* op) {
  if (!padding.mode.empty()) {
    WEFT_CHECK(padding.mode == "same" || padding.mode == "valid", op,
               ": padding must be a number, a pair, \"valid\" or \"same\", but got \"", padding.mode, "\"");
    if (padding.mode == "valid") return;
    WEFT_CHECK(g.stride[0] == 1 && g.stride[1] == 1, op, ": padding=\"same\" needs stride 1, but got stride (",
               g.stride[0], ", ", g.stride[1], ")");
    for (int d = 0; d < 2; ++d) {
      const int64_t total = g.dilation[d] * (w.size(2 + d) - 1);
      g.pad_before[d] = total / 2;
      g.pad_after[d] = total - total / 2;
    }
    return;
  }
  const auto& v = padding.values;
  WEFT_CHECK(v.size() == 1 || v.size() == 2, op, ": expected one padding or one per spatial dim, but got ", v.size(),
             " values");
  for (int d = 0; d < 2; ++d) {
    g.pad_before[d] = g.pad_after[d] = v[v.size() == 1 ? 0 : d];
    WEFT_CHECK(g.pad_before[d] >= 0, op, ": expected a non-negative padding but got ", g.pad_before[d]);
  }
}

// The padded input must hold one dilated kernel along each spatial dim.
void check_fits(const Tensor& x, const Tensor& w, const ConvGeometry& g, const char* op) {
  for (int d = 0; d < 2; ++d) {
    const int64_t padded = x.size(2 + d) + g.pad_before[d] + g.pad_after[d];
    const int64_t kernel = g.dilation[d] * (w.size(2 + d) - 1) + 1;
    WEFT_CHECK(padded >= kernel, op, ": the padded input size (", padded, ") along spatial dim ", d,
               " is smaller than the dilated kernel size (", kernel, "); input ", x.shape(), ", weight ", w.shape());
  }
}

struct ConvBackward final : autograd::Node {
  autograd::SavedTensor x, weight;
  ConvGeometry geometry;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const Tensor& dy = grads[0];
    Tensor w = weight.unpack(this), dx, dw, db;
    if (needs_input_grad(0)) dx = kernels::conv2d_backward_data(dy, w, x.unpack(this).shape(), geometry);
    if (needs_input_grad(1)) {
      auto g = kernels::conv2d_backward_weights(dy, x.unpack(this), w.shape(), needs_input_grad(2), geometry);
      dw = std::move(g.dw);
      db = std::move(g.dbias);
    } else if (needs_input_grad(2)) {
      db = sum(dy, {0, 2, 3});
    }
    return {dx, dw, db};
  }
  std::string name() const override { return "ConvolutionBackward"; }
};

// bfloat16 and float16 (all tensors of that one dtype; a mix is refused by the dtype checks): the
// convolution in float32 on the widened tensors, rounded back once, as oneDNN's bf16 convolution
// accumulates in float32 too.
bool reduced_float_conv(const Tensor& x, const Tensor& w, const Tensor& bias) {
  return x.defined() && is_reduced_float(x.dtype()) && w.defined() && w.dtype() == x.dtype() &&
         (!bias.defined() || bias.dtype() == x.dtype());
}

// conv2d on a batched 4-D input; `op` names the public op in errors.
Tensor conv2d_batched(const Tensor& x, const Tensor& w, const Tensor& bias, Size2d stride, const ConvPadding& padding,
                      Size2d dilation, int64_t groups, const char* op) {
  check_conv_tensors(x, w, bias, op);
  check_bias(bias, w.size(0), op);
  check_positive(stride, "stride", op);
  check_positive(dilation, "dilation", op);
  check_grouping(x, groups, w.size(0), op);
  WEFT_CHECK(w.size(1) * groups == x.size(1), op, ": the weight ", w.shape(), " with groups=", groups, " expects ",
             w.size(1) * groups, " input channels, but the input ", x.shape(), " has ", x.size(1));
  ConvGeometry g{{stride.h, stride.w}, {0, 0}, {0, 0}, {dilation.h, dilation.w}, groups};
  set_padding(g, padding, w, op);
  check_fits(x, w, g, op);
  Tensor y = kernels::conv2d_forward(x, w, bias, g);
  return autograd::record<ConvBackward>(std::move(y), [&](ConvBackward& n) {
    n.save(n.x, x);
    n.save(n.weight, w);
    n.geometry = g;
  }, x, w, bias);
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2d stride, ConvPadding padding,
              Size2d dilation, int64_t groups) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kConv2d, conv2d, input, weight, bias, stride, padding, dilation, groups);
  if (reduced_float_conv(input, weight, bias))
    return conv2d(detail::widened(input), detail::widened(weight), detail::widened(bias), stride, padding, dilation,
                  groups)
        .to(input.dtype());
  return detail::with_batch(input, 4, "conv2d", [&](const Tensor& x) {
    return conv2d_batched(x, weight, bias, stride, padding, dilation, groups, "conv2d");
  });
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t stride, ConvPadding padding,
              int64_t dilation, int64_t groups) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kConv1d, conv1d, input, weight, bias, stride, padding, dilation, groups);
  if (reduced_float_conv(input, weight, bias))
    return conv1d(detail::widened(input), detail::widened(weight), detail::widened(bias), stride, padding, dilation,
                  groups)
        .to(input.dtype());
  const char* op = "conv1d";
  detail::check_plain(weight, op);
  WEFT_CHECK(weight.dim() == 3, op, ": expected a 3-D weight [OC, C / groups, K] but got shape ", weight.shape());
  WEFT_CHECK(padding.mode.size() || padding.values.size() == 1, op, ": expected one padding value but got ",
             padding.values.size());
  ConvPadding padding2d = padding.mode.empty() ? ConvPadding(0, padding.values[0]) : padding;
  return detail::with_batch(input, 3, op, [&](const Tensor& x) {
    WEFT_CHECK(x.dim() == 3, op, ": expected a 3-D input [N, C, L] (2-D unbatched) but got shape ", x.shape());
    Tensor y = conv2d_batched(unsqueeze(x, 2), unsqueeze(weight, 2), bias, Size2d(1, stride), padding2d,
                              Size2d(1, dilation), groups, op);
    return squeeze(y, 2);
  });
}

namespace {

// conv_transpose2d is conv2d's backward-data: its own backward is conv2d forward (for the input) and
// conv2d's backward-weights with the roles of input and output swapped (for the weight).
struct ConvTransposeBackward final : autograd::Node {
  autograd::SavedTensor x, weight;
  ConvGeometry geometry;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const Tensor& dy = grads[0];
    Tensor w = weight.unpack(this), dx, dw;
    if (needs_input_grad(0)) dx = kernels::conv2d_forward(dy, w, Tensor(), geometry);
    if (needs_input_grad(1)) dw = kernels::conv2d_backward_weights(x.unpack(this), dy, w.shape(), false, geometry).dw;
    return {dx, dw};
  }
  std::string name() const override { return "ConvolutionTransposeBackward"; }
};

Tensor conv_transpose2d_batched(const Tensor& x, const Tensor& w, const Tensor& bias, Size2d stride, Size2d padding,
                                Size2d output_padding, int64_t groups, Size2d dilation) {
  const char* op = "conv_transpose2d";
  check_conv_tensors(x, w, bias, op);
  check_positive(stride, "stride", op);
  check_positive(dilation, "dilation", op);
  check_grouping(x, groups, w.size(1) * groups, op);
  check_bias(bias, w.size(1) * groups, op);
  WEFT_CHECK(w.size(0) == x.size(1), op, ": the weight ", w.shape(), " expects ", w.size(0),
             " input channels, but the input ", x.shape(), " has ", x.size(1));
  const int64_t pad[2] = {padding.h, padding.w}, out_pad[2] = {output_padding.h, output_padding.w};
  const int64_t strides[2] = {stride.h, stride.w}, dilations[2] = {dilation.h, dilation.w};
  Shape y_shape{x.size(0), w.size(1) * groups, 0, 0};
  ConvGeometry g{{stride.h, stride.w}, {pad[0], pad[1]}, {pad[0], pad[1]}, {dilation.h, dilation.w}, groups};
  for (int d = 0; d < 2; ++d) {
    WEFT_CHECK(pad[d] >= 0 && out_pad[d] >= 0, op, ": expected non-negative padding and output_padding but got ",
               pad[d], " and ", out_pad[d]);
    WEFT_CHECK(out_pad[d] < strides[d] || out_pad[d] < dilations[d], op, ": output_padding (", out_pad[d],
               ") must be smaller than the stride (", strides[d], ") or the dilation (", dilations[d], ")");
    y_shape[2 + d] = (x.size(2 + d) - 1) * strides[d] - 2 * pad[d] + g.dilation[d] * (w.size(2 + d) - 1) +
                     out_pad[d] + 1;
    WEFT_CHECK(y_shape[2 + d] > 0, op, ": the output size along spatial dim ", d, " would be ", y_shape[2 + d],
               " for input ", x.shape(), " and weight ", w.shape());
    // The forward conv this is the gradient of maps y back to x's size: below the stride the floor
    // of its output size absorbs output_padding; at or above it (allowed below the dilation) the
    // extra rows are padding taken off the far end.
    if (out_pad[d] >= strides[d]) g.pad_after[d] = pad[d] - out_pad[d];
  }
  Tensor y = kernels::conv2d_backward_data(x, w, y_shape, g);
  y = autograd::record<ConvTransposeBackward>(std::move(y), [&](ConvTransposeBackward& n) {
    n.save(n.x, x);
    n.save(n.weight, w);
    n.geometry = g;
  }, x, w);
  return bias.defined() ? add(y, reshape(bias, {1, bias.size(0), 1, 1})) : y;
}

}  // namespace

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2d stride, Size2d padding,
                        Size2d output_padding, int64_t groups, Size2d dilation) {
  if (autocast_enabled()) [[unlikely]]
    return autocast::call(autocast::Op::kConvTranspose2d, conv_transpose2d, input, weight, bias, stride, padding,
                          output_padding, groups, dilation);
  if (reduced_float_conv(input, weight, bias))
    return conv_transpose2d(detail::widened(input), detail::widened(weight), detail::widened(bias), stride, padding,
                            output_padding, groups, dilation)
        .to(input.dtype());
  return detail::with_batch(input, 4, "conv_transpose2d", [&](const Tensor& x) {
    return conv_transpose2d_batched(x, weight, bias, stride, padding, output_padding, groups, dilation);
  });
}

}  // namespace weft
