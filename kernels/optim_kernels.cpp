// optim_kernels.cpp: the fused optimizer loops of optim_kernels.h. The float32 Adam and SGD loops are compiled
// three times (baseline x86-64, avx2+fma, avx512, as kernels/fast_spans.cpp) and picked at run time;
// float64 runs the same loop at the baseline width. The per-element scalar loop it replaces did not
// vectorise (p, g, m, v could alias) and ran one parallel region per parameter.
#include "kernels/optim_kernels.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "kernels/cpu_isa.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

// One span's scalars, in the span's type.
template <class T>
struct AdamConsts {
  T decay, wd, b1c, b2, b2c, eps, step_size, bc2;
};

template <class T>
AdamConsts<T> consts(const AdamSpan<T>& sp, const AdamScalars& s) {
  return {T(1.0 - s.lr * s.weight_decay), T(s.weight_decay), T(1.0 - s.beta1), T(s.beta2), T(1.0 - s.beta2),
          T(s.eps), T(sp.step_size), T(sp.bias_correction2_sqrt)};
}

// Elements [begin, end) of one parameter; the same arithmetic, in the same order, as PyTorch's
// single-tensor AdamW (exp_avg.lerp_(grad, 1-beta1) written as m + (1-b1)(g-m)).
template <class T, bool kDecoupled>
[[gnu::always_inline]] inline void adam_piece(T* __restrict p, const T* __restrict g, T* __restrict m,
                                              T* __restrict v, int64_t n, const AdamConsts<T>& c) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T pi = p[i], gi = g[i];
    if constexpr (kDecoupled) pi *= c.decay;
    else gi += c.wd * pi;
    const T mi = m[i] + c.b1c * (gi - m[i]);
    const T vi = c.b2 * v[i] + c.b2c * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - c.step_size * mi / (std::sqrt(vi) / c.bc2 + c.eps);
  }
}

template <class T>
using PieceFn = void (*)(T*, const T*, T*, T*, int64_t, const AdamConsts<T>&, bool);

// Note [Adam's square root]
// Under GCC's default errno-setting math, std::sqrt in adam_piece is a sqrtss, a compare and a call
// to sqrtf for a negative argument (to set errno): control flow, so the loop stays scalar whatever
// `omp simd` asks, and neither an optimize attribute nor the pragma lifts it (only the command-line
// -fno-math-errno does). Scalar, AdamW took 4 ns an element, 2.3% of train_gpt's step. So the float32
// copies for AVX2 and AVX-512 run WEFT_ADAM_LANES: the same operations in the same order on whole
// vectors (sqrt and div are correctly rounded either way), the remainder on adam_piece.
#define WEFT_ADAM_LANES(PS, V, WIDTH, SQRT)                                                        \
  const V decay = PS##_set1_ps(c.decay), wd = PS##_set1_ps(c.wd), b1c = PS##_set1_ps(c.b1c),       \
          b2 = PS##_set1_ps(c.b2), b2c = PS##_set1_ps(c.b2c), eps = PS##_set1_ps(c.eps),           \
          step_size = PS##_set1_ps(c.step_size), bc2 = PS##_set1_ps(c.bc2);                        \
  int64_t i = 0;                                                                                   \
  for (; i + (WIDTH) <= n; i += (WIDTH)) {                                                         \
    V pi = PS##_loadu_ps(p + i), gi = PS##_loadu_ps(g + i);                                        \
    V mi = PS##_loadu_ps(m + i), vi = PS##_loadu_ps(v + i);                                        \
    if (decoupled) pi = PS##_mul_ps(pi, decay);                                                    \
    else gi = PS##_add_ps(gi, PS##_mul_ps(wd, pi));                                                \
    mi = PS##_add_ps(mi, PS##_mul_ps(b1c, PS##_sub_ps(gi, mi)));                                   \
    vi = PS##_add_ps(PS##_mul_ps(b2, vi), PS##_mul_ps(PS##_mul_ps(b2c, gi), gi));                  \
    PS##_storeu_ps(m + i, mi);                                                                     \
    PS##_storeu_ps(v + i, vi);                                                                     \
    const V denom = PS##_add_ps(PS##_div_ps(SQRT(vi), bc2), eps);                                  \
    PS##_storeu_ps(p + i, PS##_sub_ps(pi, PS##_div_ps(PS##_mul_ps(step_size, mi), denom)));        \
  }                                                                                                \
  if (decoupled) adam_piece<float, true>(p + i, g + i, m + i, v + i, n - i, c);                    \
  else adam_piece<float, false>(p + i, g + i, m + i, v + i, n - i, c)
// _mm512_sqrt_ps's undefined pass-through trips GCC 12's -Wmaybe-uninitialized; maskz of all lanes
// is the same instruction.
#define WEFT_SQRT512(x) _mm512_maskz_sqrt_ps(0xFFFF, x)

template <class T>
void piece_base(T* p, const T* g, T* m, T* v, int64_t n, const AdamConsts<T>& c, bool decoupled) {
  if (decoupled) adam_piece<T, true>(p, g, m, v, n, c);
  else adam_piece<T, false>(p, g, m, v, n, c);
}
#if defined(__x86_64__)
[[WEFT_AVX2]] void piece_avx2(float* p, const float* g, float* m, float* v, int64_t n, const AdamConsts<float>& c,
                              bool decoupled) {
  WEFT_ADAM_LANES(_mm256, __m256, 8, _mm256_sqrt_ps);
}
[[WEFT_AVX512]] void piece_avx512(float* p, const float* g, float* m, float* v, int64_t n,
                                  const AdamConsts<float>& c, bool decoupled) {
  WEFT_ADAM_LANES(_mm512, __m512, 16, WEFT_SQRT512);
}
#else  // cpu_isa() is kBaseline off x86: never picked
void piece_avx2(float* p, const float* g, float* m, float* v, int64_t n, const AdamConsts<float>& c, bool decoupled) {
  piece_base<float>(p, g, m, v, n, c, decoupled);
}
void piece_avx512(float* p, const float* g, float* m, float* v, int64_t n, const AdamConsts<float>& c,
                  bool decoupled) {
  piece_base<float>(p, g, m, v, n, c, decoupled);
}
#endif

// Pieces of 16K elements (64 KiB of float32 per stream, four streams in L2) balance the threads
// without splitting small parameters; below kParallel elements in all, one thread does it all.
constexpr int64_t kPiece = 1 << 14, kParallel = 1 << 16;

// Runs fn(span, begin, n) over pieces of every span (span k has sizes[k] elements) in one parallel
// region: many small parameters cost one team wake-up, not one each.
template <class F>
void for_each_piece(const std::vector<int64_t>& sizes, F fn) {
  struct Piece {
    size_t span;
    int64_t begin, n;
  };
  std::vector<Piece> pieces;
  int64_t total = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    for (int64_t b = 0; b < sizes[k]; b += kPiece) pieces.push_back({k, b, std::min(kPiece, sizes[k] - b)});
    total += sizes[k];
  }
  const int64_t count = static_cast<int64_t>(pieces.size());
#pragma omp parallel for schedule(dynamic) if (total > kParallel) num_threads(get_num_threads())
  for (int64_t i = 0; i < count; ++i) {
    const Piece& pc = pieces[static_cast<size_t>(i)];
    fn(pc.span, pc.begin, pc.n);
  }
}

template <class T>
void adam_step_impl(const std::vector<AdamSpan<T>>& spans, const AdamScalars& s, PieceFn<T> piece) {
  std::vector<AdamConsts<T>> cs;
  std::vector<int64_t> sizes;
  for (const AdamSpan<T>& sp : spans) {
    cs.push_back(consts(sp, s));
    sizes.push_back(sp.n);
  }
  for_each_piece(sizes, [&](size_t k, int64_t b, int64_t n) {
    const AdamSpan<T>& sp = spans[k];
    piece(sp.param + b, sp.grad + b, sp.exp_avg + b, sp.exp_avg_sq + b, n, cs[k], s.decoupled);
  });
}

// SGD's scalars in the span's type.
template <class T>
struct SgdConsts {
  T lr, wd, momentum, damp;
  bool nesterov;
};

// Elements [0, n) of one parameter, in the order of torch.optim.SGD's single-tensor update. The
// momentum branches are loop-invariant (unswitched or blended); the plain rule, the hot case, has
// its own loops.
template <class T>
[[gnu::always_inline]] inline void sgd_piece(T* __restrict p, const T* __restrict g, T* __restrict buf, int64_t n,
                                             bool first, const SgdConsts<T>& c) {
  if (buf == nullptr && c.wd == T(0)) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) p[i] -= c.lr * g[i];
    return;
  }
  if (buf == nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) p[i] -= c.lr * (g[i] + c.wd * p[i]);
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if (c.wd != T(0)) d += c.wd * p[i];
    const T b = first ? d : c.momentum * buf[i] + c.damp * d;
    buf[i] = b;
    d = c.nesterov ? d + c.momentum * b : b;
    p[i] -= c.lr * d;
  }
}

template <class T>
using SgdPieceFn = void (*)(T*, const T*, T*, int64_t, bool, const SgdConsts<T>&);

template <class T>
void sgd_base(T* p, const T* g, T* buf, int64_t n, bool first, const SgdConsts<T>& c) {
  sgd_piece(p, g, buf, n, first, c);
}
[[WEFT_AVX2]] void sgd_avx2(float* p, const float* g, float* buf, int64_t n, bool first, const SgdConsts<float>& c) {
  sgd_piece(p, g, buf, n, first, c);
}
[[WEFT_AVX512]] void sgd_avx512(float* p, const float* g, float* buf, int64_t n, bool first,
                                const SgdConsts<float>& c) {
  sgd_piece(p, g, buf, n, first, c);
}

template <class T>
void sgd_step_impl(const std::vector<SgdSpan<T>>& spans, const SgdScalars& s, SgdPieceFn<T> piece) {
  const SgdConsts<T> c{T(s.lr), T(s.weight_decay), T(s.momentum), T(1.0 - s.dampening), s.nesterov};
  std::vector<int64_t> sizes;
  for (const SgdSpan<T>& sp : spans) sizes.push_back(sp.n);
  for_each_piece(sizes, [&](size_t k, int64_t b, int64_t n) {
    const SgdSpan<T>& sp = spans[k];
    piece(sp.param + b, sp.grad + b, sp.momentum_buffer ? sp.momentum_buffer + b : nullptr, n, sp.first, c);
  });
}

// Sums of squares: 8 double lanes of partial sums.
template <class T>
[[gnu::always_inline]] inline double sum_sq(const T* x, int64_t n) {
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += double(x[i]) * double(x[i]);
  return acc;
}
double sum_sq_base(const float* x, int64_t n) { return sum_sq(x, n); }
[[WEFT_AVX2]] double sum_sq_avx2(const float* x, int64_t n) { return sum_sq(x, n); }
[[WEFT_AVX512]] double sum_sq_avx512(const float* x, int64_t n) { return sum_sq(x, n); }

}  // namespace

void adam_step(const std::vector<AdamSpan<float>>& spans, const AdamScalars& s) {
  static const PieceFn<float> piece = widest<PieceFn<float>>(piece_base<float>, piece_avx2, piece_avx512);
  adam_step_impl(spans, s, piece);
}

void adam_step(const std::vector<AdamSpan<double>>& spans, const AdamScalars& s) {
  adam_step_impl(spans, s, piece_base<double>);
}

void sgd_step(const std::vector<SgdSpan<float>>& spans, const SgdScalars& s) {
  static const SgdPieceFn<float> piece = widest<SgdPieceFn<float>>(sgd_base<float>, sgd_avx2, sgd_avx512);
  sgd_step_impl(spans, s, piece);
}

void sgd_step(const std::vector<SgdSpan<double>>& spans, const SgdScalars& s) {
  sgd_step_impl(spans, s, sgd_base<double>);
}

double sum_of_squares(const float* x, int64_t n) {
  static const auto fn = widest<double (*)(const float*, int64_t)>(sum_sq_base, sum_sq_avx2, sum_sq_avx512);
  return fn(x, n);
}

double sum_of_squares(const double* x, int64_t n) { return sum_sq(x, n); }

void scale_in_place(float* x, int64_t n, float scale) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void scale_in_place(double* x, int64_t n, double scale) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

}  // namespace weft::kernels
