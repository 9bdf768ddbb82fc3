// interpolate.cpp: every output element is a weighted sum of at most two inputs along each axis
// (nearest: one, weight 1). The per-axis tables are built once per call; forward gathers through
// them, backward scatters through them, one plane per task. A 1-D or 2-D input is a 3-D one whose
// leading spatial dims have size 1 and take one term, so every rank shares one loop.
#include "kernels/interpolate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/toolkit.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

// Output index o reads inputs lo[o] and hi[o] with weights 1 - frac[o] and frac[o].
struct AxisTable {
  std::vector<int64_t> lo, hi;
  std::vector<double> frac;
  int terms = 1;  // 2 along a linear axis, else 1 (lo only, weight 1)
};

// `shortcuts`: nearest copies when out == in and takes o / 2 when out == 2 in, whatever scale_factor
// was given (in 4 scaled by 1.1 reads 0 1 2 3, not 0 0 1 2). PyTorch 1.13 does so on 4-D and 5-D
// inputs of one channel, which its channels-last kernel takes; see Note [Nearest shortcuts].
// A linear axis with out == in is the identity whatever the scale, each output reading its own
// input with weights 1 and 0 (so an infinity there still makes a NaN, as in PyTorch).
AxisTable axis_table(int64_t in, const ResampleAxis& axis, bool linear, bool align_corners, bool shortcuts) {
  const int64_t out = axis.out;
  AxisTable t{std::vector<int64_t>(static_cast<size_t>(out)), std::vector<int64_t>(static_cast<size_t>(out)),
              std::vector<double>(static_cast<size_t>(out), 0.0), linear ? 2 : 1};
  // PyTorch's area_pixel_compute_scale: (in - 1) / (out - 1) aligned, else 1 / scale_factor when
  // one was given, else in / out.
  const double scale = align_corners && linear ? (out > 1 ? double(in - 1) / double(out - 1) : 0.0)
                       : axis.scale_factor     ? 1.0 / *axis.scale_factor
                                               : double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    const auto i = static_cast<size_t>(o);
    if (!linear) {  // in float, as PyTorch's nearest_idx, so that a product on an integer floors alike
      const auto index = shortcuts && out == in       ? o
                         : shortcuts && out == 2 * in ? o / 2
                                                      : static_cast<int64_t>(std::floor(static_cast<float>(o) *
                                                                                        static_cast<float>(scale)));
      t.lo[i] = t.hi[i] = std::min(index, in - 1);
      continue;
    }
    if (out == in) {
      t.lo[i] = t.hi[i] = o;
      continue;
    }
    const double src = align_corners ? double(o) * scale : std::max((double(o) + 0.5) * scale - 0.5, 0.0);
    t.lo[i] = std::min(static_cast<int64_t>(src), in - 1);
    t.hi[i] = std::min(t.lo[i] + 1, in - 1);
    t.frac[i] = src - double(t.lo[i]);
  }
  return t;
}

// Calls f(output offset, input offset, weight) for the terms of every output element of one
// [D, H, W] plane: nearest's one; linear's two per axis, those of weight 0 too, as PyTorch
// computes them (a NaN or an infinity beside the sampled point makes a NaN, 0 * inf).
template <class F>
void for_each_term(const AxisTable (&t)[3], int64_t in_h, int64_t in_w, F&& f) {
  auto size = [](const AxisTable& a) { return static_cast<int64_t>(a.lo.size()); };
  auto index = [](const AxisTable& a, int64_t o, int k) { return (k ? a.hi : a.lo)[static_cast<size_t>(o)]; };
  auto weight = [](const AxisTable& a, int64_t o, int k) {
    const double frac = a.frac[static_cast<size_t>(o)];
    return k ? frac : 1 - frac;
  };
  int64_t o = 0;  // the output offset, row-major
  for (int64_t od = 0; od < size(t[0]); ++od)
    for (int64_t oh = 0; oh < size(t[1]); ++oh)
      for (int64_t ow = 0; ow < size(t[2]); ++ow, ++o)
        for (int kd = 0; kd < t[0].terms; ++kd)
          for (int kh = 0; kh < t[1].terms; ++kh)
            for (int kw = 0; kw < t[2].terms; ++kw)
              f(o, (index(t[0], od, kd) * in_h + index(t[1], oh, kh)) * in_w + index(t[2], ow, kw),
                weight(t[0], od, kd) * weight(t[1], oh, kh) * weight(t[2], ow, kw));
}

// Note [Nearest shortcuts]: PyTorch 1.13's nearest forward on a 4-D or 5-D input of one channel
// (which is also channels-last contiguous) runs its channels-last kernel, whose source index copies
// at out == in and halves at out == 2 in; with more channels, and on 3-D inputs, it computes
// floor(o / scale_factor) throughout. weft takes the same rule from the shape, so its outputs
// match either way. (PyTorch's backward always takes the shortcuts, so on multi-channel inputs its
// gradient is not the forward's; weft's backward is always the gradient of its forward.)
bool nearest_shortcuts(const Shape& x_shape) { return x_shape.size() >= 4 && x_shape[1] == 1; }

// The input as [planes, D, H, W] with its tables: the spatial dims a lower rank lacks are 1 -> 1.
struct Geometry {
  int64_t planes = 1, in[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  AxisTable tables[3];
};

Geometry geometry(const Shape& x_shape, const std::vector<ResampleAxis>& axes, bool linear, bool align_corners) {
  Geometry g;
  g.planes = x_shape[0] * x_shape[1];
  const size_t first = 3 - axes.size();  // where the given axes start among the three
  for (size_t a = 0; a < 3; ++a) {
    const bool given = a >= first;
    if (given) {
      g.in[a] = x_shape[2 + a - first];
      g.out[a] = axes[a - first].out;
    }
    g.tables[a] = axis_table(g.in[a], given ? axes[a - first] : ResampleAxis{}, linear && given, align_corners,
                             nearest_shortcuts(x_shape));
  }
  return g;
}

Shape output_shape(const Shape& x_shape, const std::vector<ResampleAxis>& axes) {
  Shape s{x_shape[0], x_shape[1]};
  for (const ResampleAxis& a : axes) s.push_back(a.out);
  return s;
}

}  // namespace

Tensor resample_forward(const Tensor& x, const std::vector<ResampleAxis>& axes, bool linear, bool align_corners) {
  const Geometry g = geometry(x.shape(), axes, linear, align_corners);
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2], out_plane = g.out[0] * g.out[1] * g.out[2];
  Tensor xd = dense(x), y = make_empty(output_shape(x.shape(), axes), x.dtype());
  visit_floating(x.dtype(), "interpolate", [&](auto tag) {
    using T = decltype(tag);
    const T* in = xd.data_ptr<T>();
    T* out = y.data_ptr<T>();
    std::fill_n(out, y.numel(), T(0));
#pragma omp parallel for schedule(static) if (y.numel() > (1 << 15)) num_threads(get_num_threads())
    for (int64_t p = 0; p < g.planes; ++p)
      for_each_term(g.tables, g.in[1], g.in[2], [&](int64_t o, int64_t i, double weight) {
        out[p * out_plane + o] += static_cast<T>(weight * in[p * in_plane + i]);
      });
  });
  return y;
}

Tensor resample_backward(const Tensor& dy, const Shape& x_shape, const std::vector<ResampleAxis>& axes, bool linear,
                         bool align_corners) {
  const Geometry g = geometry(x_shape, axes, linear, align_corners);
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2], out_plane = g.out[0] * g.out[1] * g.out[2];
  Tensor dyd = dense(dy), dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "interpolate backward", [&](auto tag) {
    using T = decltype(tag);
    const T* grad = dyd.data_ptr<T>();
    T* out = dx.data_ptr<T>();
    std::fill_n(out, dx.numel(), T(0));
#pragma omp parallel for schedule(static) if (dy.numel() > (1 << 15)) num_threads(get_num_threads())
    for (int64_t p = 0; p < g.planes; ++p)
      for_each_term(g.tables, g.in[1], g.in[2], [&](int64_t o, int64_t i, double weight) {
        out[p * in_plane + i] += static_cast<T>(weight * grad[p * out_plane + o]);
      });
  });
  return dx;
}

}  // namespace weft::kernels
