// pooling.cpp: max_pool2d, avg_pool2d and adaptive_avg_pool2d, forward and backward on kernels/pool.h;
// the 1-D pools through the 2-D ones (as PyTorch computes them), the 3-D ones on kernels/pool3d.h.
#include "ops/pooling.h"

#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/pool.h"
#include "kernels/pool3d.h"
#include "ops/reduced_float.h"
#include "ops/unbatched.h"

namespace weft {
namespace {

using kernels::PoolGeometry;

// "3x1x4": sizes as PyTorch's shape checks print them.
std::string by_x(const std::vector<int64_t>& sizes) {
  std::string s;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(sizes[i]);
  }
  return s;
}

// Every output size positive, refused in PyTorch's words (pool2d_shape_check, pool3d_shape_check): the
// planes and the spatial sizes in and out, with the height of one the 1-D pools run over.
void check_output_sizes(int64_t planes, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                        const char* op) {
  bool positive = true;
  for (int64_t o : out) positive = positive && o > 0;
  std::vector<int64_t> given{planes}, computed{planes};
  given.insert(given.end(), in.begin(), in.end());
  computed.insert(computed.end(), out.begin(), out.end());
  WEFT_CHECK(positive, op, ": Given input size: (", by_x(given), "). Calculated output size: (", by_x(computed),
             "). Output size is too small");
}

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
  std::vector<int64_t> in, out;
  for (int d = 0; d < 2; ++d) {
    WEFT_CHECK(g.kernel[d] > 0 && g.stride[d] > 0 && g.dilation[d] > 0, op,
               ": expected positive kernel_size, stride and dilation but got kernel_size (", kernel.h, ", ",
               kernel.w, "), stride (", s.h, ", ", s.w, "), dilation (", dilation.h, ", ", dilation.w, ")");
    // Half the kernel size, not of the dilated window, as PyTorch checks it.
    WEFT_CHECK(g.pad[d] >= 0 && 2 * g.pad[d] <= g.kernel[d], op, ": padding (", g.pad[d],
               ") must be non-negative and at most half the kernel size (", g.kernel[d], ")");
    in.push_back(x.size(2 + d));
    out.push_back(kernels::pool_output_size(x.size(2 + d), g.kernel[d], g.stride[d], g.pad[d], g.dilation[d],
                                            ceil_mode));
  }
  check_output_sizes(x.size(1), in, out, op);
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

namespace {

// avg_pool2d, its errors naming `op`.
Tensor avg_pool(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride, Size2d padding, bool ceil_mode,
                bool count_include_pad, std::optional<int64_t> divisor_override, const char* op) {
  if (input.defined() && is_reduced_float(input.dtype()))
    return widening(input, [&](const Tensor& x) {
      return avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, op);
    });
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

}  // namespace

Tensor avg_pool2d(const Tensor& input, Size2d kernel_size, std::optional<Size2d> stride, Size2d padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, "avg_pool2d");
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

namespace {

void check_rank(const Tensor& x, int64_t batched, const char* layout, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.dim() == batched || x.dim() == batched - 1, op, ": expected a ", batched, "-D input ", layout, " (",
             batched - 1, "-D unbatched) but got shape ", x.shape());
}

// A 1-D or 3-D window's arguments checked as pool_geometry checks a 2-D one's.
void check_window_args(int dims, const int64_t* kernel, const int64_t* stride, const int64_t* pad,
                       const int64_t* dilation, const char* op) {
  for (int d = 0; d < dims; ++d) {
    WEFT_CHECK(kernel[d] > 0 && stride[d] > 0 && dilation[d] > 0, op, ": expected positive kernel_size, stride and "
               "dilation but got kernel_size ", kernel[d], ", stride ", stride[d], " and dilation ", dilation[d],
               " along spatial dim ", d);
    WEFT_CHECK(pad[d] >= 0 && 2 * pad[d] <= kernel[d], op, ": padding (", pad[d],
               ") must be non-negative and at most half the kernel size (", kernel[d], ")");
  }
}

// A 1-D or 3-D window checked as pool_geometry checks a 2-D one. The spatial dims are x's last `dims`.
void check_window(const Tensor& x, int dims, const int64_t* kernel, const int64_t* stride, const int64_t* pad,
                  const int64_t* dilation, bool ceil_mode, const char* op) {
  check_window_args(dims, kernel, stride, pad, dilation, op);
  std::vector<int64_t> in, out;
  if (dims == 1) in = out = {1};  // PyTorch runs the 1-D pools as 2-D ones over a height of one
  for (int d = 0; d < dims; ++d) {
    in.push_back(x.size(x.dim() - dims + d));
    out.push_back(kernels::pool_output_size(in.back(), kernel[d], stride[d], pad[d], dilation[d], ceil_mode));
  }
  check_output_sizes(x.size(x.dim() - dims - 1), in, out, op);
}

// y without the height of one the 1-D pools run the 2-D ones over.
Tensor without_height(const Tensor& y) { return squeeze(y, y.dim() - 2); }

std::pair<Tensor, Tensor> max_pool1d_named(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride,
                                           int64_t padding, int64_t dilation, bool ceil_mode, const char* op) {
  check_rank(input, 3, "[N, C, L]", op);
  const int64_t s = stride.value_or(kernel_size);
  check_window(input, 1, &kernel_size, &s, &padding, &dilation, ceil_mode, op);
  auto [y, indices] = max_pool(unsqueeze(input, input.dim() - 1), {1, kernel_size}, Size2d(1, s), {0, padding},
                               {1, dilation}, ceil_mode, op);
  return {without_height(y), without_height(indices)};  // h * W + w is w: positions along L
}

struct MaxPool3dBackward final : autograd::Node {
  Tensor indices;
  Shape x_shape;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::max_pool3d_backward(grads[0], indices, x_shape)};
  }
  std::string name() const override { return "MaxPool3DBackward"; }
};

struct AvgPool3dBackward final : autograd::Node {
  Shape x_shape;
  kernels::Pool3dGeometry geometry;
  bool count_include_pad = true;
  int64_t divisor_override = 0;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    return {kernels::avg_pool3d_backward(grads[0], x_shape, geometry, count_include_pad, divisor_override)};
  }
  std::string name() const override { return "AvgPool3DBackward"; }
};

kernels::Pool3dGeometry pool3d_geometry(const Tensor& x, Size3d kernel, std::optional<Size3d> stride, Size3d padding,
                                        Size3d dilation, bool ceil_mode, const char* op, bool int64_ok) {
  WEFT_CHECK(x.is_floating_point() || (int64_ok && x.dtype() == kInt64), op, ": expected a floating point input ",
             int64_ok ? "(float32, float64) or int64" : "(float32 or float64)", " but got ", x.dtype());
  const Size3d s = stride.value_or(kernel);
  kernels::Pool3dGeometry g{{kernel.d, kernel.h, kernel.w}, {s.d, s.h, s.w}, {padding.d, padding.h, padding.w},
                            {dilation.d, dilation.h, dilation.w}, ceil_mode};
  check_window(x, 3, g.kernel, g.stride, g.pad, g.dilation, ceil_mode, op);
  return g;
}

std::pair<Tensor, Tensor> max_pool3d_named(const Tensor& input, Size3d kernel_size, std::optional<Size3d> stride,
                                           Size3d padding, Size3d dilation, bool ceil_mode, const char* op) {
  if (input.defined() && is_reduced_float(input.dtype())) {
    auto [y, indices] = max_pool3d_named(detail::widened(input), kernel_size, stride, padding, dilation, ceil_mode, op);
    return {y.to(input.dtype()), indices};
  }
  check_rank(input, 5, "[N, C, D, H, W]", op);
  Tensor indices;
  Tensor y = detail::with_batch(input, 5, op, [&](const Tensor& x) {
    auto g = pool3d_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, op, false);
    auto r = kernels::max_pool3d_forward(x, g);
    indices = r.indices;
    return autograd::record<MaxPool3dBackward>(std::move(r.y), [&](MaxPool3dBackward& n) {
      n.indices = r.indices;
      n.x_shape = x.shape();
    }, x);
  });
  if (input.dim() == 4) indices = squeeze(indices, 0);
  return {y, indices};
}

}  // namespace

Tensor avg_pool1d(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride, int64_t padding,
                  bool ceil_mode, bool count_include_pad) {
  const char* op = "avg_pool1d";
  check_rank(input, 3, "[N, C, L]", op);
  const int64_t s = stride.value_or(kernel_size), dilation = 1;
  check_window(input, 1, &kernel_size, &s, &padding, &dilation, ceil_mode, op);
  return without_height(avg_pool(unsqueeze(input, input.dim() - 1), {1, kernel_size}, Size2d(1, s), {0, padding},
                                 ceil_mode, count_include_pad, std::nullopt, op));
}

// PyTorch 1.13's max_pool1d, when no gradient is recorded, runs a kernel of its own without indices,
// which returns an empty output for a window longer than the padded input and refuses only a negative
// output size, in its own words. With a gradient (or indices) it runs the 2-D pool, which refuses both.
Tensor max_pool1d(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride, int64_t padding,
                  int64_t dilation, bool ceil_mode) {
  const char* op = "max_pool1d";
  if (input.defined() && !(input.requires_grad() && GradMode::is_enabled())) {
    check_rank(input, 3, "[N, C, L]", op);
    WEFT_CHECK(input.is_floating_point(), op, ": expected a floating point input (float32 or float64) but got ",
               input.dtype());
    WEFT_CHECK(input.size(-2) != 0 && input.size(-1) != 0, op, ": Expected 2D or 3D (batch mode) tensor with "
               "optional 0 dim batch size for input, but got:", input.shape());
    const int64_t s = stride.value_or(kernel_size);
    check_window_args(1, &kernel_size, &s, &padding, &dilation, op);
    const int64_t out = kernels::pool_output_size(input.size(-1), kernel_size, s, padding, dilation, ceil_mode);
    WEFT_CHECK(out >= 0, "max_pool1d() Invalid computed output size: ", out, " (input ", input.shape(),
               ", kernel_size ", kernel_size, ", stride ", s, ", padding ", padding, ", dilation ", dilation, ")");
    if (out == 0) {
      Shape shape = input.shape();
      shape.back() = 0;
      return empty(shape, input.dtype());
    }
  }
  return max_pool1d_named(input, kernel_size, stride, padding, dilation, ceil_mode, op).first;
}

std::pair<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, int64_t kernel_size,
                                                  std::optional<int64_t> stride, int64_t padding, int64_t dilation,
                                                  bool ceil_mode) {
  return max_pool1d_named(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool1d_with_indices");
}

Tensor max_pool3d(const Tensor& input, Size3d kernel_size, std::optional<Size3d> stride, Size3d padding,
                  Size3d dilation, bool ceil_mode) {
  return max_pool3d_named(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool3d").first;
}

std::pair<Tensor, Tensor> max_pool3d_with_indices(const Tensor& input, Size3d kernel_size, std::optional<Size3d> stride,
                                                  Size3d padding, Size3d dilation, bool ceil_mode) {
  return max_pool3d_named(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool3d_with_indices");
}

Tensor avg_pool3d(const Tensor& input, Size3d kernel_size, std::optional<Size3d> stride, Size3d padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  if (input.defined() && is_reduced_float(input.dtype()))
    return widening(input, [&](const Tensor& x) {
      return avg_pool3d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
    });
  const char* op = "avg_pool3d";
  check_rank(input, 5, "[N, C, D, H, W]", op);
  WEFT_CHECK(!divisor_override || *divisor_override != 0, op, ": divisor_override must be non-zero");
  return detail::with_batch(input, 5, op, [&](const Tensor& x) {
    auto g = pool3d_geometry(x, kernel_size, stride, padding, 1, ceil_mode, op, /*int64_ok=*/true);
    const int64_t divisor = divisor_override.value_or(0);
    return autograd::record<AvgPool3dBackward>(kernels::avg_pool3d_forward(x, g, count_include_pad, divisor),
                                               [&](AvgPool3dBackward& n) {
                                                 n.x_shape = x.shape();
                                                 n.geometry = g;
                                                 n.count_include_pad = count_include_pad;
                                                 n.divisor_override = divisor;
                                               },
                                               x);
  });
}

}  // namespace weft
