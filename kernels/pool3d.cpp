// pool3d.cpp: 3-D pooling loops, the 2-D ones (pool.cpp) with a depth. Each [D, H, W] volume is
// independent, so volumes are split across threads and no two threads write one element.
#include "kernels/pool3d.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/threads.h"
#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

constexpr int64_t kParallelWork = 1 << 15;

// count: N * C volumes of in[3] elements, pooled to out[3].
struct Volumes {
  int64_t count, in[3], out[3];
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
};

Volumes volumes_of(const Shape& x, const Pool3dGeometry& g) {
  Volumes v{x[0] * x[1], {x[2], x[3], x[4]}, {}};
  for (int d = 0; d < 3; ++d)
    v.out[d] = pool_output_size(x[2 + d], g.kernel[d], g.stride[d], g.pad[d], g.dilation[d], g.ceil_mode);
  return v;
}

// An average window: [lo, hi) per dim inside the input, and the divisor of its sum (PyTorch's
// AvgPool3d: the padded window clipped to the padded input, or only what lies inside the input).
struct Window {
  int64_t lo[3], hi[3];
  int64_t divisor;
};

Window avg_window(const Volumes& v, const Pool3dGeometry& g, const int64_t (&o)[3], bool count_include_pad,
                  int64_t divisor_override) {
  Window w{};
  int64_t padded = 1, inside = 1;
  for (int d = 0; d < 3; ++d) {
    const int64_t start = o[d] * g.stride[d] - g.pad[d];
    const int64_t end = std::min(start + g.kernel[d], v.in[d] + g.pad[d]);
    padded *= end - start;
    w.lo[d] = std::max<int64_t>(start, 0);
    w.hi[d] = std::min(end, v.in[d]);
    inside *= std::max<int64_t>(w.hi[d] - w.lo[d], 0);
  }
  const int64_t divisor = divisor_override ? divisor_override : count_include_pad ? padded : inside;
  w.divisor = divisor == 0 ? 1 : divisor;  // an empty window sums to 0 and stays 0, as in PyTorch
  return w;
}

// int64 sums divide as integers (truncating toward zero), as PyTorch's CPU kernel does.
template <class T>
T divided(T sum, int64_t divisor) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(sum / divisor);
  else
    return static_cast<T>(sum / static_cast<double>(divisor));
}

// Calls f(volume, output offset within it, {od, oh, ow}) for every output element, volumes in
// parallel.
template <class F>
void for_each_output(const Volumes& v, F&& f) {
#pragma omp parallel for schedule(static) if (v.count * v.in_size() > kParallelWork) \
    num_threads(get_num_threads())
  for (int64_t vol = 0; vol < v.count; ++vol) {
    int64_t o = 0;
    for (int64_t od = 0; od < v.out[0]; ++od)
      for (int64_t oh = 0; oh < v.out[1]; ++oh)
        for (int64_t ow = 0; ow < v.out[2]; ++ow, ++o) f(vol, o, {od, oh, ow});
  }
}

}  // namespace

MaxPoolResult max_pool3d_forward(const Tensor& x, const Pool3dGeometry& g) {
  const Volumes v = volumes_of(x.shape(), g);
  Tensor xd = dense(x);
  const Shape out_shape{x.size(0), x.size(1), v.out[0], v.out[1], v.out[2]};
  MaxPoolResult r{make_empty(out_shape, x.dtype()), make_empty(out_shape, kInt64)};
  visit_floating(x.dtype(), "max_pool3d", [&](auto tag) {
    using T = decltype(tag);
    const T* in = xd.data_ptr<T>();
    T* y = r.y.data_ptr<T>();
    int64_t* idx = r.indices.data_ptr<int64_t>();
    for_each_output(v, [&](int64_t vol, int64_t o, const int64_t(&at)[3]) {
      const T* xv = in + vol * v.in_size();
      int64_t best = -1;
      T max = T(0);
      for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
        const int64_t d = at[0] * g.stride[0] - g.pad[0] + kd * g.dilation[0];
        if (d < 0 || d >= v.in[0]) continue;
        for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
          const int64_t h = at[1] * g.stride[1] - g.pad[1] + kh * g.dilation[1];
          if (h < 0 || h >= v.in[1]) continue;
          for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
            const int64_t w = at[2] * g.stride[2] - g.pad[2] + kw * g.dilation[2];
            if (w < 0 || w >= v.in[2]) continue;
            const int64_t i = (d * v.in[1] + h) * v.in[2] + w;
            // Nothing but a NaN beats a NaN, so a window's last NaN is its maximum, as in PyTorch.
            if (best < 0 || xv[i] > max || std::isnan(xv[i])) {
              best = i;
              max = xv[i];
            }
          }
        }
      }
      y[vol * v.out_size() + o] = max;
      idx[vol * v.out_size() + o] = best;
    });
  });
  return r;
}

Tensor max_pool3d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  // Indices address a whole volume, so the 2-D scatter over [D * H, W] planes does the same.
  const Shape flat_x{x_shape[0], x_shape[1], x_shape[2] * x_shape[3], x_shape[4]};
  const Shape flat_y{dy.size(0), dy.size(1), dy.size(2) * dy.size(3), dy.size(4)};
  return reshaped(max_pool2d_backward(reshaped(dy, flat_y), reshaped(indices, flat_y), flat_x), x_shape);
}

Tensor avg_pool3d_forward(const Tensor& x, const Pool3dGeometry& g, bool count_include_pad,
                          int64_t divisor_override) {
  const Volumes v = volumes_of(x.shape(), g);
  Tensor xd = dense(x), y = make_empty({x.size(0), x.size(1), v.out[0], v.out[1], v.out[2]}, x.dtype());
  visit_numeric(x.dtype(), "avg_pool3d", [&](auto tag) {
    using T = decltype(tag);
    const T* in = xd.data_ptr<T>();
    T* out = y.data_ptr<T>();
    for_each_output(v, [&](int64_t vol, int64_t o, const int64_t(&at)[3]) {
      const T* xv = in + vol * v.in_size();
      const Window w = avg_window(v, g, at, count_include_pad, divisor_override);
      T sum = T(0);
      for (int64_t d = w.lo[0]; d < w.hi[0]; ++d)
        for (int64_t h = w.lo[1]; h < w.hi[1]; ++h)
          for (int64_t i = w.lo[2]; i < w.hi[2]; ++i) sum += xv[(d * v.in[1] + h) * v.in[2] + i];
      out[vol * v.out_size() + o] = divided(sum, w.divisor);
    });
  });
  return y;
}

Tensor avg_pool3d_backward(const Tensor& dy, const Shape& x_shape, const Pool3dGeometry& g,
                           bool count_include_pad, int64_t divisor_override) {
  const Volumes v = volumes_of(x_shape, g);
  Tensor dyd = dense(dy), dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "avg_pool3d backward", [&](auto tag) {
    using T = decltype(tag);
    const T* grad = dyd.data_ptr<T>();
    T* out = dx.data_ptr<T>();
    std::fill_n(out, dx.numel(), T(0));
    for_each_output(v, [&](int64_t vol, int64_t o, const int64_t(&at)[3]) {
      T* xv = out + vol * v.in_size();
      const Window w = avg_window(v, g, at, count_include_pad, divisor_override);
      const T share = divided(grad[vol * v.out_size() + o], w.divisor);
      for (int64_t d = w.lo[0]; d < w.hi[0]; ++d)
        for (int64_t h = w.lo[1]; h < w.hi[1]; ++h)
          for (int64_t i = w.lo[2]; i < w.hi[2]; ++i) xv[(d * v.in[1] + h) * v.in[2] + i] += share;
    });
  });
  return dx;
}

}  // namespace weft::kernels
