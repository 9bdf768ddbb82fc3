// pooling.cpp: max_pool2d, avg_pool2d and adaptive_avg_pool2d, forward and backward on kernels/pool.h.
#include "ops/pooling.h"

#include "autograd/node.h"
#include "kernels/pool.h"
#include "ops/reduced_float.h"
#include "ops/unbatched.h"

namespace weft {
namespace {

using kernels::PoolGeometry;

// int64 is avg_pool2d's only (PyTorch 1.13's CPU kernel averages it with integer division; its
// max pooling and adaptive average refuse every integer dtype).
void check_pool_input(const Tensor& x, const char* op, bool int64_ok = false) {
  WEFT_CHECK(x.is_floating_point() || (int64_ok && x.dtype() == kInt64), op, ": expected a floating point input ",
             int64_ok ? "(float32, float64) or int64" : "(float32 or float64)", " but got ", x.dtype());
  WEFT_CHECK(x.dim() == 4, op, ": expected a 4-D input [N, C, H, W] (3-D unbatched) but got shape ", x.shape());
}

// Checks a window's geometry and that every output has a window: PyTorch's rules.
PoolGeometry pool_geometry(const Tensor& x, Size2d kernel, std::optional<Size2d> stride, Size2d padding,
                           Size2d dilation, bool ceil_mode, const char* op, bool int64_ok = false) {
  check_pool_input(x, op, int64_ok);
  Size2d s = stride.value_or(kernel);
  PoolGeometry g{{kernel.h, kernel.w}, {s.h, s.w}, {padding.h, padding.w}, {dilation.h, dilation.w}, ceil_mode};
  for (int d = 0; d < 2; ++d) {
    WEFT_CHECK(g.kernel[d] > 0 && g.stride[d] > 0 && g.dilation[d] > 0, op,
               ": expected positive kernel_size, stride and dilation but got kernel_size (", kernel.h, ", ",
               kernel.w, "), stride (", s.h, ", ", s.w, "), dilation (", dilation.h, ", ", dilation.w, ")");
    const int64_t extent = g.dilation[d] * (g.kernel[d] - 1) + 1;
    WEFT_CHECK(g.pad[d] >= 0 && 2 * g.pad[d] <= extent, op, ": padding (", g.pad[d],
               ") must be non-negative and at most half the kernel size (", extent, ")");
    const int64_t out = kernels::pool_output_size(x.size(2 + d), g.kernel[d], g.stride[d], g.pad[d],
                                                  g.dilation[d], ceil_mode);
    WEFT_CHECK(out > 0, op, ": the input ", x.shape(), " is too small for kernel size ", extent,
               " with padding ", g.pad[d], " along spatial dim ", d, " (output size ", out, ")");
  }
  return g;
}

struct MaxPoolBackward final : autograd::Node {
  Tensor indices;
  Shape x_shape;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::max_pool2d_backward(grads[0], indices, x_shape)};
  }
  std::string name() const override { return "MaxPool2DBackward"; }
};

struct AvgPoolBackward final : autograd::Node {
  Shape x_shape;
  PoolGeometry geometry;
  bool count_include_pad = true;
  int64_t divisor_override = 0;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::avg_pool2d_backward(grads[0], x_shape, geometry, count_include_pad, divisor_override)};
  }
  std::string name() const override { return "AvgPool2DBackward"; }
};

struct AdaptiveAvgPoolBackward final : autograd::Node {
  Shape x_shape;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::adaptive_avg_pool2d_backward(grads[0], x_shape)};
  }
  std::string name() const override { return "AdaptiveAvgPool2DBackward"; }
};

}  // namespace

namespace {

// The pooling ops on bfloat16 and float16: in float32 on the widened input, the values rounded back
// (PyTorch's CPU kernels compute these in float as well).
template <class F>
Tensor widening(const Tensor& input, F&& f) {
  return f(detail::widened(input)).to(input.dtype());
}

// max_pool2d_with_indices, its errors naming `op`.
std::pair<Tensor, Tensor> max_pool(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride,
                                   Size2d padding, Size2d dilation, bool ceil_mode, const char* op) {
  if (input.defined() && is_reduced_float(input.dtype())) {
    auto [y, indices] = max_pool(detail::widened(input), kernel_size, stride, padding, dilation, ceil_mode, op);
    return {y.to(input.dtype()), indices};
  }
  Tensor indices;
  Tensor y = detail::with_batch(input, 4, op, [&](const Tensor& x) {
    PoolGeometry g = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, op);
    auto r = kernels::max_pool2d_forward(x, g);
    indices = r.indices;
    return autograd::record<MaxPoolBackward>(std::move(r.y), [&](MaxPoolBackward& n) {
      n.indices = r.indices;
      n.x_shape = x.shape();
    }, x);
  });
  if (input.dim() == 3) indices = squeeze(indices, 0);
  return {y, indices};
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride,
                                                  Size2d padding, Size2d dilation, bool ceil_mode) {
  return max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d_with_indices");
}

Tensor max_pool2d(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride, Size2d padding,
                  Size2d dilation, bool ceil_mode) {
  return max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d").first;
}

Tensor avg_pool2d(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride, Size2d padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  if (input.defined() && is_reduced_float(input.dtype()))
    return widening(input, [&](const Tensor& x) {
      return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
    });
  const char* op = "avg_pool2d";
  WEFT_CHECK(!divisor_override || *divisor_override != 0, op, ": divisor_override must be non-zero");
  return detail::with_batch(input, 4, op, [&](const Tensor& x) {
    PoolGeometry g = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, op, /*int64_ok=*/true);
    const int64_t divisor = divisor_override.value_or(0);
    return autograd::record<AvgPoolBackward>(kernels::avg_pool2d_forward(x, g, count_include_pad, divisor),
                                             [&](AvgPoolBackward& n) {
                                               n.x_shape = x.shape();
                                               n.geometry = g;
                                               n.count_include_pad = count_include_pad;
                                               n.divisor_override = divisor;
                                             },
                                             x);
  });
}

Tensor adaptive_avg_pool2d(const Tensor& input, Size2d output_size) {
  if (input.defined() && is_reduced_float(input.dtype()))
    return widening(input, [&](const Tensor& x) { return adaptive_avg_pool2d(x, output_size); });
  const char* op = "adaptive_avg_pool2d";
  return detail::with_batch(input, 4, op, [&](const Tensor& x) {
    check_pool_input(x, op);
    WEFT_CHECK(output_size.h >= 0 && output_size.w >= 0, op, ": expected a non-negative output_size but got (",
               output_size.h, ", ", output_size.w, ")");
    WEFT_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": expected non-empty spatial dims but got input ", x.shape());
    Tensor y = kernels::adaptive_avg_pool2d_forward(x, output_size.h, output_size.w);
    return autograd::record<AdaptiveAvgPoolBackward>(std::move(y), [&](AdaptiveAvgPoolBackward& n) {
      n.x_shape = x.shape();
    }, x);
  });
}

}  // namespace weft
