// interpolate.cpp: every output element is a weighted sum of at most two inputs along each axis
// (nearest: one, weight 1). The per-axis tables are built once per call; forward gathers through
// them, backward scatters through them, one plane per task.
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
};

AxisTable axis_table(int64_t in, const ResampleAxis& axis, bool bilinear, bool align_corners) {
  const int64_t out = axis.out;
  AxisTable t{std::vector<int64_t>(static_cast<size_t>(out)), std::vector<int64_t>(static_cast<size_t>(out)),
              std::vector<double>(static_cast<size_t>(out), 0.0)};
  // PyTorch's area_pixel_compute_scale: (in - 1) / (out - 1) aligned, else 1 / scale_factor when
  // one was given, else in / out.
  const double scale = align_corners && bilinear ? (out > 1 ? double(in - 1) / double(out - 1) : 0.0)
                       : axis.scale_factor       ? 1.0 / *axis.scale_factor
                                                 : double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    const auto i = static_cast<size_t>(o);
    if (!bilinear) {  // in float, as PyTorch's nearest_idx, so that a product on an integer floors alike
      const auto index = static_cast<int64_t>(std::floor(static_cast<float>(o) * static_cast<float>(scale)));
      t.lo[i] = t.hi[i] = std::min(index, in - 1);
      continue;
    }
    const double src = align_corners ? double(o) * scale : std::max((double(o) + 0.5) * scale - 0.5, 0.0);
    t.lo[i] = std::min(static_cast<int64_t>(src), in - 1);
    t.hi[i] = std::min(t.lo[i] + 1, in - 1);
    t.frac[i] = src - double(t.lo[i]);
  }
  return t;
}

// Calls f(output offset, input offset, weight) for the terms of every output element of one plane:
// nearest's one; bilinear's four, those of weight 0 too, as PyTorch computes them (a NaN or an
// infinity beside the sampled point makes a NaN, 0 * inf).
template <class F>
void for_each_term(const AxisTable& h, const AxisTable& w, int64_t in_w, bool bilinear, F&& f) {
  const auto out_w = static_cast<int64_t>(w.lo.size());
  for (size_t oh = 0; oh < h.lo.size(); ++oh)
    for (size_t ow = 0; ow < w.lo.size(); ++ow) {
      const int64_t o = static_cast<int64_t>(oh) * out_w + static_cast<int64_t>(ow);
      const double fh = h.frac[oh], fw = w.frac[ow];
      f(o, h.lo[oh] * in_w + w.lo[ow], (1 - fh) * (1 - fw));
      if (!bilinear) continue;
      f(o, h.lo[oh] * in_w + w.hi[ow], (1 - fh) * fw);
      f(o, h.hi[oh] * in_w + w.lo[ow], fh * (1 - fw));
      f(o, h.hi[oh] * in_w + w.hi[ow], fh * fw);
    }
}

}  // namespace

Tensor resample_forward(const Tensor& x, ResampleAxis h, ResampleAxis w, bool bilinear, bool align_corners) {
  const AxisTable th = axis_table(x.size(2), h, bilinear, align_corners);
  const AxisTable tw = axis_table(x.size(3), w, bilinear, align_corners);
  const int64_t planes = x.size(0) * x.size(1), in_plane = x.size(2) * x.size(3), out_plane = h.out * w.out;
  Tensor xd = dense(x), y = make_empty({x.size(0), x.size(1), h.out, w.out}, x.dtype());
  visit_floating(x.dtype(), "interpolate", [&](auto tag) {
    using T = decltype(tag);
    const T* in = xd.data_ptr<T>();
    T* out = y.data_ptr<T>();
    std::fill_n(out, y.numel(), T(0));
#pragma omp parallel for schedule(static) if (y.numel() > (1 << 15)) num_threads(get_num_threads())
    for (int64_t p = 0; p < planes; ++p)
      for_each_term(th, tw, x.size(3), bilinear, [&](int64_t o, int64_t i, double weight) {
        out[p * out_plane + o] += static_cast<T>(weight * in[p * in_plane + i]);
      });
  });
  return y;
}

Tensor resample_backward(const Tensor& dy, const Shape& x_shape, ResampleAxis h, ResampleAxis w, bool bilinear,
                         bool align_corners) {
  const AxisTable th = axis_table(x_shape[2], h, bilinear, align_corners);
  const AxisTable tw = axis_table(x_shape[3], w, bilinear, align_corners);
  const int64_t planes = x_shape[0] * x_shape[1], in_plane = x_shape[2] * x_shape[3], out_plane = h.out * w.out;
  Tensor dyd = dense(dy), dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "interpolate backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = dyd.data_ptr<T>();
    T* out = dx.data_ptr<T>();
    std::fill_n(out, dx.numel(), T(0));
#pragma omp parallel for schedule(static) if (dy.numel() > (1 << 15)) num_threads(get_num_threads())
    for (int64_t p = 0; p < planes; ++p)
      for_each_term(th, tw, x_shape[3], bilinear, [&](int64_t o, int64_t i, double weight) {
        out[p * in_plane + i] += static_cast<T>(weight * g[p * out_plane + o]);
      });
  });
  return dx;
}

}  // namespace weft::kernels
