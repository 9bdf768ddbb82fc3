// nn_kernels.cpp: fused loops for softmax, layer/RMS norm, cross entropy, nll, embedding and dropout
// masks. Every kernel reads a contiguous copy and walks it as (outer, n, inner) rows; sums are
// accumulated in double so float32 results match float64 ones to float32 rounding.
#include "kernels/nn_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "framework/copy.h"
#include "framework/factories.h"
#include "kernels/cross_entropy_rows.h"
#include "kernels/elementwise.h"
#include "kernels/layer_norm_rows.h"
#include "kernels/onednn.h"
#include "kernels/softmax_rows.h"
#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

// Parallel loops only pay off past kParallelGrain elements of work (kernels/elementwise.h).

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// The stats dtype of a norm: float64 inputs keep float64, everything else float32.
DType stats_dtype(DType x) { return x == kFloat64 ? kFloat64 : kFloat32; }

}  // namespace



RowGeometry row_geometry(const Shape& shape, int64_t dim) {
  RowGeometry g;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) g.outer *= shape[d];
    else if (d == dim) g.n = shape[d];
    else g.inner *= shape[d];
  }
  return g;
}

// --- softmax -------------------------------------------------------------------------------------

namespace {

// One contiguous row of length n: the fast path for the last dim.
template <class T>
void softmax_row(const T* x, T* y, int64_t n, bool log) {
  T max = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < n; ++j) max = std::max(max, x[j]);
  double sum = 0.0;
  if (log) {
    for (int64_t j = 0; j < n; ++j) sum += std::exp(x[j] - max);
    // (x - max) - log(sum) rather than x - (max + log(sum)): the shift is exact, so the result
    // keeps full relative precision even for logits in the thousands.
    T log_sum = static_cast<T>(std::log(sum));
    for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - max) - log_sum;
  } else {
    for (int64_t j = 0; j < n; ++j) {
      y[j] = std::exp(x[j] - max);
      sum += y[j];
    }
    T inv = static_cast<T>(1.0 / sum);
    for (int64_t j = 0; j < n; ++j) y[j] *= inv;
  }
}

// `width` columns of one outer slice (n, inner) reduced along n, vectorised across the columns.
template <class T>
void softmax_columns(const T* x, T* y, int64_t n, int64_t inner, int64_t width, bool log) {
  std::vector<T> max(static_cast<size_t>(width), -std::numeric_limits<T>::infinity());
  std::vector<double> sum(static_cast<size_t>(width), 0.0);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < width; ++i) max[i] = std::max(max[i], x[k * inner + i]);
  // y holds exp(x - max) after this pass, so softmax needs no second exp.
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < width; ++i) {
      T e = std::exp(x[k * inner + i] - max[i]);
      sum[i] += e;
      if (!log) y[k * inner + i] = e;
    }
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < width; ++i)
      y[k * inner + i] = log ? (x[k * inner + i] - max[i]) - static_cast<T>(std::log(sum[i]))
                             : static_cast<T>(y[k * inner + i] / sum[i]);
}

}  // namespace

Tensor softmax(const Tensor& x_in, int64_t dim, bool log) {
  Tensor x = dense(x_in);
  Tensor y = make_empty(x.shape(), x.dtype());
  if (x.numel() == 0) return y;
  RowGeometry g = row_geometry(x.shape(), dim);
  // float32 rows along the last dim: the vectorised kernel (softmax_rows.cpp), at every size.
  if (x.dtype() == kFloat32 && g.inner == 1) {
    softmax_rows(ptr<float>(x), ptr<float>(y), g.outer, g.n, log);
    return y;
  }
  visit_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* in = ptr<T>(x);
    T* out = ptr<T>(y);
    int64_t slice = g.n * g.inner;
    if (g.inner == 1) {
#pragma omp parallel for if (g.outer * g.n > kParallelGrain) num_threads(get_num_threads())
      for (int64_t o = 0; o < g.outer; ++o) softmax_row(in + o * g.n, out + o * g.n, g.n, log);
    } else {
      // Tasks are blocks of columns, so that a single outer slice (dim 0) still runs in parallel.
      constexpr int64_t kBlock = 256;
      int64_t blocks = (g.inner + kBlock - 1) / kBlock;
#pragma omp parallel for if (g.outer * slice > kParallelGrain) num_threads(get_num_threads())
      for (int64_t task = 0; task < g.outer * blocks; ++task) {
        int64_t o = task / blocks, c0 = task % blocks * kBlock;
        int64_t at = o * slice + c0;
        softmax_columns(in + at, out + at, g.n, g.inner, std::min(kBlock, g.inner - c0), log);
      }
    }
  });
  return y;
}

// --- layer norm / RMS norm -----------------------------------------------------------------------

namespace {

// One thread below 64K elements (Note [Serial primitives]); measured here, 2 vs 1 thread: [64, 64]
// 3.2x the time, [128, 128] 1.5x, [32, 1024] 1.48x, [48, 1024] 1.12-1.34x, [64, 1024] 1.03-1.12x,
// [512, 128] 0.82x, [1024, 64] 0.76x.
constexpr int64_t kSerialLayerNormElements = 65536;

// float32 layer norm of `rows` rows of n on oneDNN's JIT kernel (vectorised for the machine),
// which writes y, the mean and the variance; rstd is computed from the variance here. The
// primitive is cached per geometry and per which of weight and bias are given.
void onednn_layer_norm(const Tensor& x, NormResult& r, const Tensor& weight, const Tensor& bias, int64_t rows,
                       int64_t n, double eps) {
  auto flags = dnnl::normalization_flags::none;
  if (weight.defined()) flags |= dnnl::normalization_flags::use_scale;
  if (bias.defined()) flags |= dnnl::normalization_flags::use_shift;
  float epsf = static_cast<float>(eps);
  int32_t eps_bits;
  std::memcpy(&eps_bits, &epsf, sizeof eps_bits);
  onednn::PrimitiveKey key(onednn::kLayerNorm, onednn::threads_for(rows * n, kSerialLayerNormElements));
  key.add({rows, n, static_cast<int64_t>(flags), eps_bits});
  onednn::BoundPrimitive& prim = onednn::get_primitive(key, [&] {
    using dt = dnnl::memory::data_type;
    dnnl::memory::desc md({rows, n}, dt::f32, {n, 1});
    dnnl::memory::desc stat_md({rows}, dt::f32, {1});
    dnnl::memory::desc w_md({n}, dt::f32, {1});
    dnnl::layer_normalization_forward::desc desc(dnnl::prop_kind::forward_training, md, stat_md, epsf, flags);
    onednn::PrimitiveSpec spec;
    spec.primitive = dnnl::layer_normalization_forward(
        dnnl::layer_normalization_forward::primitive_desc(desc, onednn::engine()));
    // Unused arguments get a null buffer below; the primitive never reads them.
    spec.args = {{DNNL_ARG_SRC, md},       {DNNL_ARG_DST, md},   {DNNL_ARG_MEAN, stat_md},
                 {DNNL_ARG_VARIANCE, stat_md}, {DNNL_ARG_SCALE, w_md}, {DNNL_ARG_SHIFT, w_md}};
    return spec;
  });
  Tensor var = make_empty({rows}, kFloat32);
  prim.run({x.raw_data(), r.y.raw_data(), r.mean.raw_data(), var.raw_data(),
            weight.defined() ? weight.raw_data() : nullptr, bias.defined() ? bias.raw_data() : nullptr});
  const float* v = ptr<float>(var);
  float* rstd = ptr<float>(r.rstd);
  for (int64_t row = 0; row < rows; ++row) rstd[row] = static_cast<float>(1.0 / std::sqrt(double(v[row]) + eps));
}

}  // namespace

NormResult norm_forward(const Tensor& x_in, int64_t n, const Tensor& weight_in, const Tensor& bias_in, double eps,
                        bool subtract_mean) {
  Tensor x = dense(x_in);
  int64_t rows = n == 0 ? 0 : x.numel() / n;
  NormResult r;
  r.y = make_empty(x.shape(), x.dtype());
  r.mean = make_empty({rows}, stats_dtype(x.dtype()));
  r.rstd = make_empty({rows}, stats_dtype(x.dtype()));
  Tensor weight = weight_in.defined() ? dense(weight_in) : Tensor();
  Tensor bias = bias_in.defined() ? dense(bias_in) : Tensor();
  // Large float32 layer norms run on oneDNN; small ones stay on the loops (a primitive call costs
  // more than a few thousand elements of work).
  if (subtract_mean && x.dtype() == kFloat32 && x.numel() >= 4096 && n > 1) {
    onednn_layer_norm(x, r, weight, bias, rows, n, eps);
    return r;
  }
  visit_floating(x.dtype(), subtract_mean ? "layer_norm" : "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* in = ptr<T>(x);
    T* out = ptr<T>(r.y);
    const T* w = weight.defined() ? ptr<T>(weight) : nullptr;
    const T* b = bias.defined() ? ptr<T>(bias) : nullptr;
    S* mean_out = ptr<S>(r.mean);
    S* rstd_out = ptr<S>(r.rstd);
#pragma omp parallel for if (rows * n > kParallelGrain) num_threads(get_num_threads())
    for (int64_t row = 0; row < rows; ++row) {
      const T* xr = in + row * n;
      T* yr = out + row * n;
      double mean = 0.0, var = 0.0;
      if (subtract_mean) {
        for (int64_t j = 0; j < n; ++j) mean += xr[j];
        mean /= static_cast<double>(n);
      }
      // Two passes (mean first) keep the variance exact for rows with a large common offset.
      for (int64_t j = 0; j < n; ++j) {
        double d = xr[j] - mean;
        var += d * d;
      }
      double rstd = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
      mean_out[row] = static_cast<S>(mean);
      rstd_out[row] = static_cast<S>(rstd);
      T m = static_cast<T>(mean), rs = static_cast<T>(rstd);
      for (int64_t j = 0; j < n; ++j) {
        T v = (xr[j] - m) * rs;
        if (w) v *= w[j];
        if (b) v += b[j];
        yr[j] = v;
      }
    }
  });
  return r;
}

namespace {

// Sums over a row run in the input's precision within blocks of kBlock elements (so the compiler
// vectorises them) and in double across blocks, which keeps float32 rows of thousands accurate.
constexpr int64_t kBlock = 256;

// dx of one row: rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w; RMS drops mean(gw).
template <class T, bool HasWeight>
void norm_dx_row(const T* xr, const T* gr, const T* w, T* dr, int64_t n, T mean, T rstd, bool subtract_mean) {
  double a = 0.0, b = 0.0;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    int64_t j1 = std::min(n, j0 + kBlock);
    T fa = 0, fb = 0;
#pragma omp simd reduction(+ : fa, fb)
    for (int64_t j = j0; j < j1; ++j) {
      T gw = HasWeight ? gr[j] * w[j] : gr[j];
      fa += gw;
      fb += gw * ((xr[j] - mean) * rstd);
    }
    a += fa;
    b += fb;
  }
  T am = subtract_mean ? static_cast<T>(a / static_cast<double>(n)) : T(0);
  T bm = static_cast<T>(b / static_cast<double>(n));
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    T gw = HasWeight ? gr[j] * w[j] : gr[j];
    T xhat = (xr[j] - mean) * rstd;
    dr[j] = rstd * (gw - am - xhat * bm);
  }
}

// dweight and dbias: column sums over rows, in T within blocks of rows and double across blocks.
template <class T>
void norm_param_grads(const T* xs, const T* gs, const T* means, const T* rstds, int64_t rows, int64_t n,
                      std::vector<double>& dw, std::vector<double>& db) {
  bool need_dw = !dw.empty(), need_db = !db.empty();
  std::vector<T> bw(need_dw ? n : 0), bb(need_db ? n : 0);
  for (int64_t r0 = 0; r0 < rows; r0 += 64) {
    int64_t r1 = std::min(rows, r0 + 64);
    std::fill(bw.begin(), bw.end(), T(0));
    std::fill(bb.begin(), bb.end(), T(0));
    T* pw = bw.data();
    T* pb = bb.data();
    for (int64_t row = r0; row < r1; ++row) {
      const T* xr = xs + row * n;
      const T* gr = gs + row * n;
      T mean = means[row], rstd = rstds[row];
      if (need_dw) {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) pw[j] += gr[j] * ((xr[j] - mean) * rstd);
      }
      if (need_db) {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) pb[j] += gr[j];
      }
    }
    for (int64_t j = 0; need_dw && j < n; ++j) dw[j] += pw[j];
    for (int64_t j = 0; need_db && j < n; ++j) db[j] += pb[j];
  }
}

}  // namespace

NormGrads norm_backward(const Tensor& grad_in, const Tensor& x_in, const Tensor& mean_t, const Tensor& rstd_t,
                        const Tensor& weight_in, int64_t n, bool subtract_mean, bool need_dx, bool need_dweight,
                        bool need_dbias) {
  Tensor x = dense(x_in);
  Tensor grad = dense(grad_in, x.dtype());
  Tensor weight = weight_in.defined() ? dense(weight_in) : Tensor();
  int64_t rows = n == 0 ? 0 : x.numel() / n;
  NormGrads out;
  if (need_dx) out.dx = make_empty(x.shape(), x.dtype());
  std::vector<double> dw(need_dweight ? n : 0, 0.0), db(need_dbias ? n : 0, 0.0);
  visit_floating(x.dtype(), subtract_mean ? "layer_norm" : "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "stats share the input's dtype");
    const T* xs = ptr<T>(x);
    const T* gs = ptr<T>(grad);
    const T* w = weight.defined() ? ptr<T>(weight) : nullptr;
    const T* means = ptr<T>(mean_t);
    const T* rstds = ptr<T>(rstd_t);
    if constexpr (std::is_same_v<T, float>) {  // one pass per block of rows, compiled per ISA
      norm_backward_rows(xs, gs, w, means, rstds, rows, n, subtract_mean, need_dx ? ptr<float>(out.dx) : nullptr,
                         need_dweight ? dw.data() : nullptr, need_dbias ? db.data() : nullptr);
      return;
    }
    if (need_dx) {
      T* dx = ptr<T>(out.dx);
#pragma omp parallel for if (rows * n > kParallelGrain) num_threads(get_num_threads())
      for (int64_t row = 0; row < rows; ++row) {
        if (w) norm_dx_row<T, true>(xs + row * n, gs + row * n, w, dx + row * n, n, means[row], rstds[row], subtract_mean);
        else norm_dx_row<T, false>(xs + row * n, gs + row * n, w, dx + row * n, n, means[row], rstds[row], subtract_mean);
      }
    }
    if (need_dweight || need_dbias) norm_param_grads<T>(xs, gs, means, rstds, rows, n, dw, db);
  });
  Shape wshape{n};
  auto to_tensor = [&](const std::vector<double>& v) {
    Tensor t = make_empty(wshape, x.dtype());
    visit_floating(x.dtype(), "layer_norm", [&](auto tag) {
      using T = decltype(tag);
      std::transform(v.begin(), v.end(), ptr<T>(t), [](double d) { return static_cast<T>(d); });
    });
    return t;
  };
  if (need_dweight) out.dweight = to_tensor(dw);
  if (need_dbias) out.dbias = to_tensor(db);
  return out;
}

// --- cross entropy and nll -----------------------------------------------------------------------

namespace {

// Checks every target is a class in [0, C) or ignore_index, naming the first bad one.
void check_targets(const int64_t* t, int64_t count, int64_t classes, int64_t ignore_index, const char* op) {
  for (int64_t p = 0; p < count; ++p)
    WEFT_CHECK(t[p] == ignore_index || (t[p] >= 0 && t[p] < classes), op, ": target ", t[p],
               " is out of bounds for ", classes, " classes (at position ", p, "; ignore_index is ", ignore_index,
               ")");
}

}  // namespace

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& target_in, int64_t class_dim,
                                         int64_t ignore_index, double label_smoothing, const char* op) {
  Tensor target = dense(target_in);
  RowGeometry g = row_geometry(logits.shape(), class_dim);
  int64_t positions = g.outer * g.inner, C = g.n;
  const int64_t* tg = ptr<int64_t>(target);
  check_targets(tg, positions, C, ignore_index, op);
  CrossEntropyResult r;
  r.loss = make_empty({positions}, logits.dtype());
  for (int64_t p = 0; p < positions; ++p) r.count += tg[p] != ignore_index;
  if (logits.dtype() == kFloat32 && g.inner == 1) {  // rows of classes: one fused pass per row
    Tensor x = dense(logits);
    cross_entropy_rows(ptr<float>(x), tg, ptr<float>(r.loss), positions, C, ignore_index, label_smoothing);
    return r;
  }
  // The log-probabilities come from the softmax kernel, then each position reads its target and,
  // with smoothing, the sum of its row.
  Tensor lp = softmax(logits, class_dim, /*log=*/true);
  visit_floating(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* l = ptr<T>(lp);
    T* loss = ptr<T>(r.loss);
    double eps = label_smoothing;
#pragma omp parallel for if (positions * C > kParallelGrain) num_threads(get_num_threads())
    for (int64_t p = 0; p < positions; ++p) {
      if (tg[p] == ignore_index) {
        loss[p] = 0;
        continue;
      }
      const T* row = l + (p / g.inner) * C * g.inner + p % g.inner;  // class c at row[c * inner]
      double smooth = 0.0;  // -Σ_c log p_c
      if (eps != 0.0)
        for (int64_t c = 0; c < C; ++c) smooth -= row[c * g.inner];
      double nll = -static_cast<double>(row[tg[p] * g.inner]);
      loss[p] = static_cast<T>((1.0 - eps) * nll + eps / static_cast<double>(C) * smooth);
    }
  });
  return r;
}

Tensor cross_entropy_backward(const Tensor& grad_loss_in, double scale, const Tensor& logits,
                              const Tensor& target_in, int64_t class_dim, int64_t ignore_index,
                              double label_smoothing) {
  Tensor target = dense(target_in);
  Tensor grad_loss = dense(grad_loss_in, kFloat64);
  RowGeometry g = row_geometry(logits.shape(), class_dim);
  int64_t positions = g.outer * g.inner, C = g.n;
  bool per_position = grad_loss.numel() == positions && positions != 1;
  // Recomputing the softmax costs one fast pass and saves keeping (N, C) probabilities alive.
  Tensor dz = softmax(logits, class_dim, /*log=*/false);
  const int64_t* tg = ptr<int64_t>(target);
  const double* gl = ptr<double>(grad_loss);
  double off = label_smoothing / static_cast<double>(C), on = 1.0 - label_smoothing;
  visit_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    T* d = ptr<T>(dz);
#pragma omp parallel for if (positions * C > kParallelGrain) num_threads(get_num_threads())
    for (int64_t p = 0; p < positions; ++p) {
      T* row = d + (p / g.inner) * C * g.inner + p % g.inner;
      double s = tg[p] == ignore_index ? 0.0 : (per_position ? gl[p] : gl[0]) * scale;
      for (int64_t c = 0; c < C; ++c) row[c * g.inner] = static_cast<T>(s * (row[c * g.inner] - off));
      if (tg[p] != ignore_index) row[tg[p] * g.inner] -= static_cast<T>(s * on);
    }
  });
  return dz;
}

NllResult nll_loss_forward(const Tensor& lp_in, const Tensor& target_in, int64_t class_dim, int64_t ignore_index,
                           const char* op) {
  Tensor lp = dense(lp_in);
  Tensor target = dense(target_in);
  RowGeometry g = row_geometry(lp.shape(), class_dim);
  int64_t positions = g.outer * g.inner, C = g.n;
  const int64_t* tg = ptr<int64_t>(target);
  check_targets(tg, positions, C, ignore_index, op);
  NllResult r;
  r.loss = make_empty({positions}, lp.dtype());
  visit_floating(lp.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* x = ptr<T>(lp);
    T* loss = ptr<T>(r.loss);
    for (int64_t p = 0; p < positions; ++p) {
      int64_t o = p / g.inner, i = p % g.inner;
      bool ignored = tg[p] == ignore_index;
      r.count += !ignored;
      loss[p] = ignored ? T(0) : -x[o * C * g.inner + tg[p] * g.inner + i];
    }
  });
  return r;
}

Tensor nll_loss_backward(const Tensor& grad_loss_in, double scale, const Shape& input_shape, DType dtype,
                         const Tensor& target_in, int64_t class_dim, int64_t ignore_index) {
  Tensor target = dense(target_in);
  Tensor grad_loss = dense(grad_loss_in, kFloat64);
  RowGeometry g = row_geometry(input_shape, class_dim);
  int64_t positions = g.outer * g.inner, C = g.n;
  bool per_position = grad_loss.numel() == positions && positions != 1;
  Tensor dx = make_empty(input_shape, dtype);
  detail::fill_contiguous(dx, 0);
  const int64_t* tg = ptr<int64_t>(target);
  const double* gl = ptr<double>(grad_loss);
  visit_floating(dtype, "nll_loss", [&](auto tag) {
    using T = decltype(tag);
    T* d = ptr<T>(dx);
    for (int64_t p = 0; p < positions; ++p) {
      if (tg[p] == ignore_index) continue;
      int64_t o = p / g.inner, i = p % g.inner;
      d[o * C * g.inner + tg[p] * g.inner + i] = static_cast<T>(-(per_position ? gl[p] : gl[0]) * scale);
    }
  });
  return dx;
}

// --- embedding -----------------------------------------------------------------------------------

Tensor embedding(const Tensor& weight_in, const Tensor& indices_in) {
  Tensor weight = dense(weight_in);
  Tensor indices = dense(indices_in);
  int64_t V = weight.size(0), D = weight.size(1), count = indices.numel();
  const int64_t* idx = ptr<int64_t>(indices);
  for (int64_t p = 0; p < count; ++p)
    WEFT_CHECK(idx[p] >= 0 && idx[p] < V, "embedding: index ", idx[p], " is out of range for a weight with ", V,
               " rows (at position ", p, " of the indices)");
  Shape out_shape = indices.shape();
  out_shape.push_back(D);
  Tensor out = make_empty(out_shape, weight.dtype());
  visit<kAllDTypes>(weight.dtype(), "embedding", [&](auto tag) {  // rows are copied: any dtype
    using T = decltype(tag);
    const T* w = ptr<T>(weight);
    T* o = ptr<T>(out);
    for (int64_t p = 0; p < count; ++p) std::copy(w + idx[p] * D, w + (idx[p] + 1) * D, o + p * D);
  });
  return out;
}

Tensor embedding_backward(const Tensor& grad_in, const Tensor& indices_in, int64_t num_weights) {
  // bfloat16 and float16 rows are summed in float32 and rounded once (as every reduction of them).
  if (is_reduced_float(grad_in.dtype()))
    return cast(embedding_backward(cast(grad_in, kFloat32), indices_in, num_weights), grad_in.dtype());
  Tensor grad = dense(grad_in);
  Tensor indices = dense(indices_in);
  int64_t count = indices.numel();
  int64_t D = grad.dim() == 0 ? 1 : grad.size(-1);
  Tensor dw = make_empty({num_weights, D}, grad.dtype());
  detail::fill_contiguous(dw, 0);
  const int64_t* idx = ptr<int64_t>(indices);
  visit_floating(grad.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    const T* g = ptr<T>(grad);
    T* d = ptr<T>(dw);
    // Serial: repeated indices add into the same row.
    for (int64_t p = 0; p < count; ++p)
      for (int64_t j = 0; j < D; ++j) d[idx[p] * D + j] += g[p * D + j];
  });
  return dw;
}

// --- dropout -------------------------------------------------------------------------------------

Tensor dropout_mask(const Shape& shape, DType dtype, double p, Generator& gen) {
  Tensor mask = make_empty(shape, dtype);
  double keep = 1.0 - p;
  visit_floating(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    T scale = static_cast<T>(1.0 / keep);
    T* m = ptr<T>(mask);
    for (int64_t i = 0, n = mask.numel(); i < n; ++i) m[i] = gen.uniform() < keep ? scale : T(0);
  });
  return mask;
}

}  // namespace weft::kernels
