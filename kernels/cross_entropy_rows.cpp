// cross_entropy_rows.cpp: the fused float32 cross-entropy forward of cross_entropy_rows.h, compiled
// for baseline x86-64, avx2+fma and avx512 and picked at run time (as kernels/fast_spans.cpp). The
// path it replaces wrote the whole log-softmax (oneDNN's primitive) and read each target back:
// 1.13x oneDNN's log-softmax alone on [512, 1000] (bench_ops BM_cross_entropy).
#include "kernels/cross_entropy_rows.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu_isa.h"
#include "kernels/threads.h"
#include "kernels/vector_math.h"

namespace weft::kernels {
namespace {

template <bool kFma>
[[gnu::always_inline]] inline void rows_impl(const float* x, const int64_t* target, float* loss, int64_t begin,
                                             int64_t end, int64_t n, int64_t ignore_index, double eps) {
  for (int64_t r = begin; r < end; ++r) {
    if (target[r] == ignore_index) {
      loss[r] = 0.0f;
      continue;
    }
    const float* row = x + r * n;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < n; ++c) m = row[c] > m ? row[c] : m;
    float s = 0.0f, total = 0.0f;
#pragma omp simd reduction(+ : s, total)
    for (int64_t c = 0; c < n; ++c) {
      s += vmath::exp<kFma>(row[c] - m);
      total += row[c];
    }
    const double lse = static_cast<double>(m) + std::log(static_cast<double>(s));
    const double nll = lse - static_cast<double>(row[target[r]]);
    const double smooth = lse - static_cast<double>(total) / static_cast<double>(n);
    loss[r] = static_cast<float>((1.0 - eps) * nll + eps * smooth);
  }
}

using RowsFn = void (*)(const float*, const int64_t*, float*, int64_t, int64_t, int64_t, int64_t, double);

void rows_base(const float* x, const int64_t* t, float* l, int64_t b, int64_t e, int64_t n, int64_t ig, double eps) {
  rows_impl<false>(x, t, l, b, e, n, ig, eps);
}
[[WEFT_AVX2]] void rows_avx2(const float* x, const int64_t* t, float* l, int64_t b, int64_t e, int64_t n, int64_t ig,
                             double eps) {
  rows_impl<true>(x, t, l, b, e, n, ig, eps);
}
[[WEFT_AVX512]] void rows_avx512(const float* x, const int64_t* t, float* l, int64_t b, int64_t e, int64_t n,
                                 int64_t ig, double eps) {
  rows_impl<true>(x, t, l, b, e, n, ig, eps);
}

RowsFn widest_rows() { return widest<RowsFn>(rows_base, rows_avx2, rows_avx512); }

}  // namespace

void cross_entropy_rows(const float* x, const int64_t* target, float* loss, int64_t rows, int64_t n,
                        int64_t ignore_index, double eps) {
  static const RowsFn fn = widest_rows();
  constexpr int64_t kRowsPerTask = 16;
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for if (rows * n > (1 << 15)) num_threads(get_num_threads())
  for (int64_t k = 0; k < tasks; ++k)
    fn(x, target, loss, k * kRowsPerTask, std::min(rows, (k + 1) * kRowsPerTask), n, ignore_index, eps);
}

}  // namespace weft::kernels
