// softmax_rows.cpp: the float32 row softmax of softmax_rows.h, compiled for baseline x86-64, avx2+fma
// and avx512 and picked at run time (as kernels/fast_spans.cpp). It replaced oneDNN 2.6's softmax
// primitive, whose exp loop ran at about 2.6 cycles an element here: [512, 1024] took 0.5 ms there
// (bench_ops BM_softmax measures the two side by side). Three passes over a row that stays in L1
// (a 1024-float row is 4 KB): the max, exp(x - max) written out and summed in float lanes, and the
// scale by 1 / sum; log-softmax writes (x - max) - log(sum) instead and needs no stored exp.
#include "kernels/softmax_rows.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu_isa.h"
#include "kernels/threads.h"
#include "kernels/vector_math.h"

namespace weft::kernels {
namespace {

// A NaN in a row is skipped by the max (as std::max in the loops this replaced) and then makes the
// sum, and so the whole row, NaN; a row of -inf gives -inf - -inf = NaN, as PyTorch's.
template <bool kFma>
[[gnu::always_inline]] inline void rows_impl(const float* x, float* y, int64_t begin, int64_t end, int64_t n,
                                             bool log) {
  for (int64_t r = begin; r < end; ++r) {
    const float* in = x + r * n;
    float* out = y + r * n;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < n; ++c) m = in[c] > m ? in[c] : m;
    float s = 0.0f;
    if (log) {
#pragma omp simd reduction(+ : s)
      for (int64_t c = 0; c < n; ++c) s += vmath::exp<kFma>(in[c] - m);
      // (x - max) - log(sum): the shift is exact, so a row's largest entry gets exactly -log(sum).
      const float log_sum = static_cast<float>(std::log(static_cast<double>(s)));
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) out[c] = (in[c] - m) - log_sum;
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t c = 0; c < n; ++c) {
        const float e = vmath::exp<kFma>(in[c] - m);
        out[c] = e;
        s += e;
      }
      const float inv = static_cast<float>(1.0 / static_cast<double>(s));
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) out[c] *= inv;
    }
  }
}

using RowsFn = void (*)(const float*, float*, int64_t, int64_t, int64_t, bool);

void rows_base(const float* x, float* y, int64_t b, int64_t e, int64_t n, bool log) {
  rows_impl<false>(x, y, b, e, n, log);
}
[[WEFT_AVX2]] void rows_avx2(const float* x, float* y, int64_t b, int64_t e, int64_t n, bool log) {
  rows_impl<true>(x, y, b, e, n, log);
}
[[WEFT_AVX512]] void rows_avx512(const float* x, float* y, int64_t b, int64_t e, int64_t n, bool log) {
  rows_impl<true>(x, y, b, e, n, log);
}

RowsFn widest_rows() { return widest<RowsFn>(rows_base, rows_avx2, rows_avx512); }

}  // namespace

void softmax_rows(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  static const RowsFn fn = widest_rows();
  // Tasks of whole rows, about 16K elements each; no parallel region for a small problem.
  const int64_t per_task = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(n, 1));
  const int64_t tasks = (rows + per_task - 1) / per_task;
  if (tasks <= 1 || rows * n <= (int64_t(1) << 15)) {
    fn(x, y, 0, rows, n, log);
    return;
  }
#pragma omp parallel for num_threads(get_num_threads())
  for (int64_t k = 0; k < tasks; ++k) fn(x, y, k * per_task, std::min(rows, (k + 1) * per_task), n, log);
}

}  // namespace weft::kernels
