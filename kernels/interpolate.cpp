// interpolate.cpp: every output element is a weighted sum of inputs, separable: a few terms along
// each axis (nearest: one of weight 1; linear: two; cubic: four; area: the cells of its window). The
// per-axis tables are built once per call; forward gathers through them, backward scatters through
// them, one plane per task. A 1-D or 2-D input is a 3-D one whose leading spatial dims have size 1
// and take one term, so every rank and mode shares one loop.
#include "kernels/interpolate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/toolkit.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

// Output o's terms are index[k], weight[k] for k in [first[o], first[o + 1]).
struct AxisTable {
  std::vector<int64_t> first{0};
  std::vector<int64_t> index;
  std::vector<double> weight;
  void add(int64_t i, double w) {
    index.push_back(i);
    weight.push_back(w);
  }
  void next_output() { first.push_back(static_cast<int64_t>(index.size())); }
  int64_t outputs() const { return static_cast<int64_t>(first.size()) - 1; }
};

// PyTorch's area_pixel_compute_scale: (in - 1) / (out - 1) aligned, else 1 / scale_factor when
// one was given, else in / out.
double pixel_scale(int64_t in, const ResampleAxis& axis, bool align_corners) {
  if (align_corners) return axis.out > 1 ? double(in - 1) / double(axis.out - 1) : 0.0;
  return axis.scale_factor ? 1.0 / *axis.scale_factor : double(in) / double(axis.out);
}

// The nearest modes' scale as PyTorch's compute_scales_value<float> rounds it: the index is
// computed in float, so that a product landing on an integer floors alike.
float nearest_scale(int64_t in, const ResampleAxis& axis) {
  return axis.scale_factor ? static_cast<float>(1.0 / *axis.scale_factor)
                           : static_cast<float>(in) / static_cast<float>(axis.out);
}

// `shortcuts`: nearest copies when out == in and takes o / 2 when out == 2 in, whatever scale_factor
// was given (in 4 scaled by 1.1 reads 0 1 2 3, not 0 0 1 2). PyTorch 1.13 does so on 4-D and 5-D
// inputs of one channel, which its channels-last kernel takes; see Note [Nearest shortcuts].
void nearest_terms(AxisTable& t, int64_t in, const ResampleAxis& axis, bool shortcuts) {
  const float scale = nearest_scale(in, axis);
  for (int64_t o = 0; o < axis.out; ++o, t.next_output()) {
    const float src = static_cast<float>(o) * scale;
    const auto index = shortcuts && axis.out == in       ? o
                       : shortcuts && axis.out == 2 * in ? o / 2
                                                         : static_cast<int64_t>(std::floor(src));
    t.add(std::min(index, in - 1), 1.0);
  }
}

// PyTorch's nearest_neighbor_exact_compute_source_index: (o + 0.5) * scale in double, rounded to
// float before the floor (floorf). It takes no shortcuts, on any layout.
void nearest_exact_terms(AxisTable& t, int64_t in, const ResampleAxis& axis) {
  const float scale = nearest_scale(in, axis);
  for (int64_t o = 0; o < axis.out; ++o, t.next_output()) {
    const float src = static_cast<float>((double(o) + 0.5) * double(scale));
    t.add(std::min(static_cast<int64_t>(std::floor(src)), in - 1), 1.0);
  }
}

// Two taps. With out == in the axis is the identity whatever the scale, each output reading its own
// input with weights 1 and 0 (so an infinity there still makes a NaN, as in PyTorch).
void linear_terms(AxisTable& t, int64_t in, const ResampleAxis& axis, bool align_corners) {
  const double scale = pixel_scale(in, axis, align_corners);
  for (int64_t o = 0; o < axis.out; ++o, t.next_output()) {
    if (axis.out == in) {
      t.add(o, 1.0);
      t.add(o, 0.0);
      continue;
    }
    const double src = align_corners ? double(o) * scale : std::max((double(o) + 0.5) * scale - 0.5, 0.0);
    const int64_t lo = std::min(static_cast<int64_t>(src), in - 1);
    const double frac = src - double(lo);
    t.add(lo, 1 - frac);
    t.add(std::min(lo + 1, in - 1), frac);
  }
}

// Keys' cubic convolution kernel, at distance 0 <= x <= 1 and 1 <= x <= 2 from a tap. Plain bicubic
// takes A = -0.75 (PyTorch's and OpenCV's), the antialiased one A = -0.5 (Pillow's).
constexpr double kCubicA = -0.75, kAntialiasCubicA = -0.5;
double cubic_near(double x, double A = kCubicA) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
double cubic_far(double x, double A = kCubicA) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

// Four taps around the source coordinate, which (unlike linear's) is not clamped at 0 before the
// floor: -0.3 reads taps -2..1 with the weights of t = 0.7. Taps beyond the border read the border
// (PyTorch's upsample_get_value_bounded), so one input may take several terms. No out == in
// shortcut: PyTorch's cubic interpolates there too when a scale_factor is given.
void cubic_terms(AxisTable& t, int64_t in, const ResampleAxis& axis, bool align_corners) {
  const double scale = pixel_scale(in, axis, align_corners);
  for (int64_t o = 0; o < axis.out; ++o, t.next_output()) {
    const double src = align_corners ? double(o) * scale : (double(o) + 0.5) * scale - 0.5;
    const double floor = std::floor(src), f = src - floor;
    const double w[4] = {cubic_far(f + 1), cubic_near(f), cubic_near(1 - f), cubic_far(2 - f)};
    for (int64_t j = 0; j < 4; ++j)
      t.add(std::clamp(static_cast<int64_t>(floor) - 1 + j, int64_t{0}, in - 1), w[j]);
  }
}

// PyTorch's antialiased resampling (Pillow's): downsampling by s >= 1 stretches the filter (the
// triangle of linear, or the cubic with A = -0.5) s times, so that every input is weighed; an
// output takes the inputs within the filter's support around its centre scale * (o + 0.5), the
// weights normalized to sum 1. Upsampling keeps the filter as is, normalized at the borders (where
// it differs from plain linear and cubic). align_corners changes the scale only.
void antialias_terms(AxisTable& t, int64_t in, const ResampleAxis& axis, bool align_corners, bool cubic) {
  const double scale = pixel_scale(in, axis, align_corners);
  const double half_taps = cubic ? 2.0 : 1.0;
  const double support = scale >= 1 ? half_taps * scale : half_taps, stretch = scale >= 1 ? 1 / scale : 1.0;
  const auto filter = [&](double x) {
    x = std::fabs(x);
    if (!cubic) return std::max(0.0, 1 - x);
    return x < 1 ? cubic_near(x, kAntialiasCubicA) : x < 2 ? cubic_far(x, kAntialiasCubicA) : 0.0;
  };
  for (int64_t o = 0; o < axis.out; ++o, t.next_output()) {
    const double centre = scale * (double(o) + 0.5);
    // Truncated toward zero, as PyTorch's casts.
    const int64_t begin = std::max(static_cast<int64_t>(centre - support + 0.5), int64_t{0});
    const int64_t end = std::min(static_cast<int64_t>(centre + support + 0.5), in);
    const size_t first = t.weight.size();
    double total = 0;
    for (int64_t i = begin; i < end; ++i) {
      t.add(i, filter((double(i) - centre + 0.5) * stretch));
      total += t.weight.back();
    }
    if (total != 0)
      for (size_t k = first; k < t.weight.size(); ++k) t.weight[k] /= total;
  }
}

// The window of adaptive average pooling (PyTorch's start_index and end_index), each cell weighted
// by one over the window's length.
void area_terms(AxisTable& t, int64_t in, const ResampleAxis& axis) {
  for (int64_t o = 0; o < axis.out; ++o, t.next_output()) {
    const int64_t begin = o * in / axis.out, end = ((o + 1) * in + axis.out - 1) / axis.out;
    for (int64_t i = begin; i < end; ++i) t.add(i, 1.0 / double(end - begin));
  }
}

AxisTable axis_table(int64_t in, const ResampleAxis& axis, ResampleMode mode, bool align_corners, bool shortcuts) {
  AxisTable t;
  switch (mode) {
    case ResampleMode::nearest: nearest_terms(t, in, axis, shortcuts); break;
    case ResampleMode::nearest_exact: nearest_exact_terms(t, in, axis); break;
    case ResampleMode::linear: linear_terms(t, in, axis, align_corners); break;
    case ResampleMode::cubic: cubic_terms(t, in, axis, align_corners); break;
    case ResampleMode::area: area_terms(t, in, axis); break;
    case ResampleMode::linear_antialias: antialias_terms(t, in, axis, align_corners, false); break;
    case ResampleMode::cubic_antialias: antialias_terms(t, in, axis, align_corners, true); break;
  }
  return t;
}

// Calls f(output offset, input offset, weight) for the terms of every output element of one
// [D, H, W] plane, those of weight 0 too, as PyTorch computes them (a NaN or an infinity beside the
// sampled point makes a NaN, 0 * inf). The outer axes' offsets and weight products are formed once
// per term, through raw pointers the compiler can keep in registers.
template <class F>
void for_each_term(const AxisTable (&t)[3], int64_t in_h, int64_t in_w, F&& f) {
  struct View {
    const int64_t *first, *index;
    const double* weight;
    int64_t outputs;
  };
  View v[3];
  for (int a = 0; a < 3; ++a) v[a] = {t[a].first.data(), t[a].index.data(), t[a].weight.data(), t[a].outputs()};
  int64_t o = 0;  // the output offset, row-major
  for (int64_t od = 0; od < v[0].outputs; ++od)
    for (int64_t oh = 0; oh < v[1].outputs; ++oh)
      for (int64_t ow = 0; ow < v[2].outputs; ++ow, ++o)
        for (int64_t kd = v[0].first[od], ed = v[0].first[od + 1]; kd < ed; ++kd) {
          const int64_t at_d = v[0].index[kd] * in_h;
          const double wd = v[0].weight[kd];
          for (int64_t kh = v[1].first[oh], eh = v[1].first[oh + 1]; kh < eh; ++kh) {
            const int64_t at_h = (at_d + v[1].index[kh]) * in_w;
            const double wh = wd * v[1].weight[kh];
            for (int64_t kw = v[2].first[ow], ew = v[2].first[ow + 1]; kw < ew; ++kw)
              f(o, at_h + v[2].index[kw], wh * v[2].weight[kw]);
          }
        }
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

Geometry geometry(const Shape& x_shape, const std::vector<ResampleAxis>& axes, ResampleMode mode, bool align_corners) {
  Geometry g;
  g.planes = x_shape[0] * x_shape[1];
  const size_t first = 3 - axes.size();  // where the given axes start among the three
  for (size_t a = 0; a < 3; ++a) {
    const bool given = a >= first;
    if (given) {
      g.in[a] = x_shape[2 + a - first];
      g.out[a] = axes[a - first].out;
    }
    g.tables[a] = given ? axis_table(g.in[a], axes[a - first], mode, align_corners,
                                     mode == ResampleMode::nearest && nearest_shortcuts(x_shape))
                        : axis_table(1, ResampleAxis{}, ResampleMode::nearest, false, false);
  }
  return g;
}

Shape output_shape(const Shape& x_shape, const std::vector<ResampleAxis>& axes) {
  Shape s{x_shape[0], x_shape[1]};
  for (const ResampleAxis& a : axes) s.push_back(a.out);
  return s;
}

}  // namespace

Tensor resample_forward(const Tensor& x, const std::vector<ResampleAxis>& axes, ResampleMode mode,
                        bool align_corners) {
  const Geometry g = geometry(x.shape(), axes, mode, align_corners);
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

Tensor resample_backward(const Tensor& dy, const Shape& x_shape, const std::vector<ResampleAxis>& axes,
                         ResampleMode mode, bool align_corners) {
  const Geometry g = geometry(x_shape, axes, mode, align_corners);
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
