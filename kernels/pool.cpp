// pool.cpp: 2-D pooling loops. Each [H, W] plane is independent, so planes are split across threads
// and no two threads ever write one element. Average and adaptive average pooling share one loop
// that takes the window of an output element.
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/toolkit.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

constexpr int64_t kParallelWork = 1 << 15;

struct Planes {
  int64_t count, h, w, oh, ow;  // count: N * C
};

Planes planes_of(const Shape& x, int64_t oh, int64_t ow) { return {x[0] * x[1], x[2], x[3], oh, ow}; }

// An average window: rows [h0, h1), columns [w0, w1) of the input and the divisor of its sum.
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

// An average as PyTorch's CPU kernel divides: int64 sums by integer division, which truncates
// toward zero (avg_pool2d on int64; -7 / 2 is -3).
template <class T>
T divided(T sum, int64_t divisor) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(sum / divisor);
  else return static_cast<T>(sum / static_cast<double>(divisor));
}

template <class T, class WindowOf>
void avg_forward(const T* x, T* y, const Planes& p, WindowOf&& window_of) {
#pragma omp parallel for schedule(static) if (p.count * p.h * p.w > kParallelWork) num_threads(get_num_threads())
  for (int64_t plane = 0; plane < p.count; ++plane) {
    const T* xp = x + plane * p.h * p.w;
    T* yp = y + plane * p.oh * p.ow;
    for (int64_t oh = 0; oh < p.oh; ++oh)
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        const Window win = window_of(oh, ow);
        T sum = T(0);
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) sum += xp[h * p.w + w];
        yp[oh * p.ow + ow] = divided(sum, win.divisor);
      }
  }
}

template <class T, class WindowOf>
void avg_backward(const T* dy, T* dx, const Planes& p, WindowOf&& window_of) {
  std::fill_n(dx, p.count * p.h * p.w, T(0));
#pragma omp parallel for schedule(static) if (p.count * p.h * p.w > kParallelWork) num_threads(get_num_threads())
  for (int64_t plane = 0; plane < p.count; ++plane) {
    T* xp = dx + plane * p.h * p.w;
    const T* yp = dy + plane * p.oh * p.ow;
    for (int64_t oh = 0; oh < p.oh; ++oh)
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        const Window win = window_of(oh, ow);
        const T share = divided(yp[oh * p.ow + ow], win.divisor);
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) xp[h * p.w + w] += share;
      }
  }
}

// avg_pool2d's window, as PyTorch's AvgPool2d computes it: the divisor counts the padded window
// clipped to the padded input, or only what lies inside the input.
auto avg_window(const Planes& p, const PoolGeometry& g, bool count_include_pad, int64_t divisor_override) {
  return [=, &g](int64_t oh, int64_t ow) {
    int64_t h0 = oh * g.stride[0] - g.pad[0], w0 = ow * g.stride[1] - g.pad[1];
    int64_t h1 = std::min(h0 + g.kernel[0], p.h + g.pad[0]), w1 = std::min(w0 + g.kernel[1], p.w + g.pad[1]);
    const int64_t padded_size = (h1 - h0) * (w1 - w0);
    h0 = std::max<int64_t>(h0, 0);
    w0 = std::max<int64_t>(w0, 0);
    h1 = std::min(h1, p.h);
    w1 = std::min(w1, p.w);
    int64_t divisor = divisor_override ? divisor_override : count_include_pad ? padded_size : (h1 - h0) * (w1 - w0);
    // An empty window (PyTorch leaves its output 0) sums to 0: any divisor but 0 keeps it so. A
    // negative divisor_override divides as given.
    return Window{h0, h1, w0, w1, divisor == 0 ? 1 : divisor};
  };
}

auto adaptive_window(const Planes& p) {
  return [=](int64_t oh, int64_t ow) {
    const int64_t h0 = oh * p.h / p.oh, h1 = ((oh + 1) * p.h + p.oh - 1) / p.oh;
    const int64_t w0 = ow * p.w / p.ow, w1 = ((ow + 1) * p.w + p.ow - 1) / p.ow;
    return Window{h0, h1, w0, w1, (h1 - h0) * (w1 - w0)};
  };
}

template <class T>
void max_forward(const T* x, T* y, int64_t* idx, const Planes& p, const PoolGeometry& g) {
#pragma omp parallel for schedule(static) if (p.count * p.h * p.w > kParallelWork) num_threads(get_num_threads())
  for (int64_t plane = 0; plane < p.count; ++plane) {
    const T* xp = x + plane * p.h * p.w;
    for (int64_t oh = 0; oh < p.oh; ++oh)
      for (int64_t ow = 0; ow < p.ow; ++ow) {
        int64_t best = -1;
        T max = T(0);
        for (int64_t kh = 0; kh < g.kernel[0]; ++kh) {
          const int64_t h = oh * g.stride[0] - g.pad[0] + kh * g.dilation[0];
          if (h < 0 || h >= p.h) continue;
          for (int64_t kw = 0; kw < g.kernel[1]; ++kw) {
            const int64_t w = ow * g.stride[1] - g.pad[1] + kw * g.dilation[1];
            if (w < 0 || w >= p.w) continue;
            const T v = xp[h * p.w + w];
            // Nothing but a NaN beats a NaN, so a window's last NaN is its maximum, as in PyTorch.
            if (best < 0 || v > max || std::isnan(v)) {
              best = h * p.w + w;
              max = v;
            }
          }
        }
        const int64_t o = (plane * p.oh + oh) * p.ow + ow;
        y[o] = max;
        idx[o] = best;
      }
  }
}

}  // namespace

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (span < 0 ? span - stride + 1 : span) / stride + 1;  // floor division
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

MaxPoolResult max_pool2d_forward(const Tensor& x, const PoolGeometry& g) {
  const Shape& s = x.shape();
  const Planes p = planes_of(s, pool_output_size(s[2], g.kernel[0], g.stride[0], g.pad[0], g.dilation[0], g.ceil_mode),
                             pool_output_size(s[3], g.kernel[1], g.stride[1], g.pad[1], g.dilation[1], g.ceil_mode));
  Tensor xd = dense(x);
  MaxPoolResult r{make_empty({s[0], s[1], p.oh, p.ow}, x.dtype()), make_empty({s[0], s[1], p.oh, p.ow}, kInt64)};
  visit_floating(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    max_forward<T>(xd.data_ptr<T>(), r.y.data_ptr<T>(), r.indices.data_ptr<int64_t>(), p, g);
  });
  return r;
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  const Planes p = planes_of(x_shape, dy.size(2), dy.size(3));
  Tensor dyd = dense(dy), idx = dense(indices);
  Tensor dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "max_pool2d backward", [&](auto tag) {
    using T = decltype(tag);
    T* out = dx.data_ptr<T>();
    const T* g = dyd.data_ptr<T>();
    const int64_t* at = idx.data_ptr<int64_t>();
    std::fill_n(out, dx.numel(), T(0));
#pragma omp parallel for schedule(static) if (p.count * p.h * p.w > kParallelWork) num_threads(get_num_threads())
    for (int64_t plane = 0; plane < p.count; ++plane)
      for (int64_t o = plane * p.oh * p.ow; o < (plane + 1) * p.oh * p.ow; ++o)
        if (at[o] >= 0) out[plane * p.h * p.w + at[o]] += g[o];
  });
  return dx;
}

Tensor avg_pool2d_forward(const Tensor& x, const PoolGeometry& g, bool count_include_pad, int64_t divisor_override) {
  const Shape& s = x.shape();
  const Planes p = planes_of(s, pool_output_size(s[2], g.kernel[0], g.stride[0], g.pad[0], 1, g.ceil_mode),
                             pool_output_size(s[3], g.kernel[1], g.stride[1], g.pad[1], 1, g.ceil_mode));
  Tensor xd = dense(x), y = make_empty({s[0], s[1], p.oh, p.ow}, x.dtype());
  visit_numeric(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    avg_forward<T>(xd.data_ptr<T>(), y.data_ptr<T>(), p, avg_window(p, g, count_include_pad, divisor_override));
  });
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const PoolGeometry& g, bool count_include_pad,
                           int64_t divisor_override) {
  const Planes p = planes_of(x_shape, dy.size(2), dy.size(3));
  Tensor dyd = dense(dy), dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "avg_pool2d backward", [&](auto tag) {
    using T = decltype(tag);
    avg_backward<T>(dyd.data_ptr<T>(), dx.data_ptr<T>(), p, avg_window(p, g, count_include_pad, divisor_override));
  });
  return dx;
}

Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w) {
  const Planes p = planes_of(x.shape(), out_h, out_w);
  Tensor xd = dense(x), y = make_empty({x.size(0), x.size(1), out_h, out_w}, x.dtype());
  visit_floating(x.dtype(), "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    avg_forward<T>(xd.data_ptr<T>(), y.data_ptr<T>(), p, adaptive_window(p));
  });
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape) {
  const Planes p = planes_of(x_shape, dy.size(2), dy.size(3));
  Tensor dyd = dense(dy), dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "adaptive_avg_pool2d backward", [&](auto tag) {
    using T = decltype(tag);
    avg_backward<T>(dyd.data_ptr<T>(), dx.data_ptr<T>(), p, adaptive_window(p));
  });
  return dx;
}

}  // namespace weft::kernels
