// batch_norm.cpp: per-channel loops over [N, C, inner] (inner: the product of the spatial dims).
// Each channel is one task: its statistics, its output and its gradients touch only its own
// elements. Sums run in double, so float32 statistics match float64 ones to float32 rounding.
#include "kernels/batch_norm.h"

#include <cmath>

#include "kernels/toolkit.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

constexpr int64_t kParallelWork = 1 << 15;

struct Layout {
  int64_t n, c, inner;
  int64_t count() const { return n * inner; }  // elements per channel
};

Layout layout_of(const Shape& s) {
  int64_t inner = 1;
  for (size_t d = 2; d < s.size(); ++d) inner *= s[d];
  return {s[0], s[1], inner};
}

// Calls f(offset of a run, run length) for each contiguous run of channel c's elements.
template <class F>
void for_each_run(const Layout& l, int64_t c, F&& f) {
  for (int64_t n = 0; n < l.n; ++n) f((n * l.c + c) * l.inner, l.inner);
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <class T>
void forward_loop(const Tensor& x, const Tensor& weight, const Tensor& bias, BatchNormResult& r,
                  const Tensor& stats_mean, const Tensor& stats_var, bool training, double eps) {
  const Layout l = layout_of(x.shape());
  const T *px = x.data_ptr<T>(), *pw = data_or_null<T>(weight), *pb = data_or_null<T>(bias);
  const T *sm = data_or_null<T>(stats_mean), *sv = data_or_null<T>(stats_var);
  T *py = r.y.data_ptr<T>(), *mean = r.mean.data_ptr<T>(), *invstd = r.invstd.data_ptr<T>(), *var = r.var.data_ptr<T>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelWork) num_threads(get_num_threads())
  for (int64_t c = 0; c < l.c; ++c) {
    double m = 0, v = 0;
    if (training && l.count() > 0) {
      for_each_run(l, c, [&](int64_t o, int64_t len) {
        for (int64_t i = 0; i < len; ++i) m += px[o + i];
      });
      m /= static_cast<double>(l.count());
      for_each_run(l, c, [&](int64_t o, int64_t len) {
        for (int64_t i = 0; i < len; ++i) v += (px[o + i] - m) * (px[o + i] - m);
      });
      v /= static_cast<double>(l.count());
    } else if (!training) {
      m = sm[c];
      v = sv[c];
    }
    const double is = 1.0 / std::sqrt(v + eps);
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(v);
    invstd[c] = static_cast<T>(is);
    const double scale = is * (pw ? pw[c] : 1.0), shift = (pb ? pb[c] : 0.0) - m * scale;
    for_each_run(l, c, [&](int64_t o, int64_t len) {
      for (int64_t i = 0; i < len; ++i) py[o + i] = static_cast<T>(px[o + i] * scale + shift);
    });
  }
}

template <class T>
void backward_loop(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean_t,
                   const Tensor& invstd_t, bool training, BatchNormGrads& g) {
  const Layout l = layout_of(x.shape());
  const T *pg = dy.data_ptr<T>(), *px = x.data_ptr<T>(), *pw = data_or_null<T>(weight);
  const T *mean = mean_t.data_ptr<T>(), *invstd = invstd_t.data_ptr<T>();
  T* dx = g.dx.defined() ? g.dx.data_ptr<T>() : nullptr;
  T* dw = g.dweight.defined() ? g.dweight.data_ptr<T>() : nullptr;
  T* db = g.dbias.defined() ? g.dbias.data_ptr<T>() : nullptr;
#pragma omp parallel for schedule(static) if (x.numel() > kParallelWork) num_threads(get_num_threads())
  for (int64_t c = 0; c < l.c; ++c) {
    const double m = mean[c], is = invstd[c];
    double sum_g = 0, sum_gx = 0;  // sum of dy and of dy * xhat
    for_each_run(l, c, [&](int64_t o, int64_t len) {
      for (int64_t i = 0; i < len; ++i) {
        sum_g += pg[o + i];
        sum_gx += pg[o + i] * (px[o + i] - m) * is;
      }
    });
    if (dw) dw[c] = static_cast<T>(sum_gx);
    if (db) db[c] = static_cast<T>(sum_g);
    if (!dx) continue;
    const double scale = is * (pw ? pw[c] : 1.0);
    // Training: dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)); with fixed statistics the
    // two means drop out.
    const double count = static_cast<double>(l.count());
    const double mean_g = training ? sum_g / count : 0, mean_gx = training ? sum_gx / count : 0;
    for_each_run(l, c, [&](int64_t o, int64_t len) {
      for (int64_t i = 0; i < len; ++i)
        dx[o + i] = static_cast<T>(scale * (pg[o + i] - mean_g - (px[o + i] - m) * is * mean_gx));
    });
  }
}

}  // namespace

BatchNormResult batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats_mean,
                                   const Tensor& stats_var, bool training, double eps) {
  Tensor xd = dense(x);
  const int64_t c = x.size(1);
  BatchNormResult r{make_empty(x.shape(), x.dtype()), make_empty({c}, x.dtype()), make_empty({c}, x.dtype()),
                    make_empty({c}, x.dtype())};
  auto as_dense = [&](const Tensor& t) { return t.defined() ? dense(t, x.dtype()) : Tensor(); };
  visit_floating(x.dtype(), "batch_norm", [&](auto tag) {
    forward_loop<decltype(tag)>(xd, as_dense(weight), as_dense(bias), r, as_dense(stats_mean), as_dense(stats_var),
                                training, eps);
  });
  return r;
}

void batch_norm_update_running(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                               const Tensor& var, double momentum, int64_t count) {
  const double unbias = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
  Tensor m = dense(mean, running_mean.dtype()), v = dense(var, running_var.dtype());
  Tensor rm = dense(running_mean), rv = dense(running_var);
  visit_floating(running_mean.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    T *pm = rm.data_ptr<T>(), *pv = rv.data_ptr<T>();
    const T *bm = m.data_ptr<T>(), *bv = v.data_ptr<T>();
    for (int64_t c = 0; c < rm.numel(); ++c) {
      pm[c] = static_cast<T>((1 - momentum) * pm[c] + momentum * bm[c]);
      pv[c] = static_cast<T>((1 - momentum) * pv[c] + momentum * bv[c] * unbias);
    }
  });
  // A strided buffer was updated through a copy: write it back.
  if (!rm.is_same(running_mean)) copy_into(running_mean, rm);
  if (!rv.is_same(running_var)) copy_into(running_var, rv);
  running_mean.bump_version();
  running_var.bump_version();
}

BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& invstd, bool training, bool need_dx, bool need_dweight,
                                   bool need_dbias) {
  const int64_t c = x.size(1);
  BatchNormGrads g{need_dx ? make_empty(x.shape(), x.dtype()) : Tensor(),
                   need_dweight ? make_empty({c}, x.dtype()) : Tensor(),
                   need_dbias ? make_empty({c}, x.dtype()) : Tensor()};
  visit_floating(x.dtype(), "batch_norm backward", [&](auto tag) {
    backward_loop<decltype(tag)>(dense(dy), dense(x), weight.defined() ? dense(weight) : Tensor(), mean, invstd,
                                 training, g);
  });
  return g;
}

}  // namespace weft::kernels
