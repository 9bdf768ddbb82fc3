// layer_norm_rows.cpp: see layer_norm_rows.h. One function template compiled three times (as
// kernels/cross_entropy_rows.cpp): the library is built for baseline x86-64, where these loops ran
// on SSE2, and at train_gpt's shapes ([1024, 64] rows, five norms a step) the backward was about 5%
// of the step.
#include "kernels/layer_norm_rows.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu_isa.h"
#include "kernels/elementwise.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

constexpr int64_t kBlock = 256;    // elements of a row summed in float
constexpr int64_t kRowBlock = 64;  // rows whose column sums are kept in float

// Rows [r0, r1): dx (when wanted) and the rows' column sums of g xhat and g into pw and pb (zeroed by
// the caller). Each row is read by the sums pass and again by the dx pass while still in L1.
template <bool kHasWeight>
[[gnu::always_inline]] inline void rows_block(const float* x, const float* g, const float* w, const float* mean,
                                              const float* rstd, int64_t r0, int64_t r1, int64_t n,
                                              bool subtract_mean, float* dx, float* pw, float* pb) {
  for (int64_t row = r0; row < r1; ++row) {
    const float* xr = x + row * n;
    const float* gr = g + row * n;
    const float m = mean[row], rs = rstd[row];
    double a = 0.0, b = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const int64_t j1 = std::min(n, j0 + kBlock);
      float fa = 0, fb = 0;
#pragma omp simd reduction(+ : fa, fb)
      for (int64_t j = j0; j < j1; ++j) {
        const float xhat = (xr[j] - m) * rs;
        const float gw = kHasWeight ? gr[j] * w[j] : gr[j];
        fa += gw;
        fb += gw * xhat;
        pw[j] += gr[j] * xhat;
        pb[j] += gr[j];
      }
      a += fa;
      b += fb;
    }
    if (!dx) continue;
    const float am = subtract_mean ? static_cast<float>(a / static_cast<double>(n)) : 0.0f;
    const float bm = static_cast<float>(b / static_cast<double>(n));
    float* dr = dx + row * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float xhat = (xr[j] - m) * rs;
      const float gw = kHasWeight ? gr[j] * w[j] : gr[j];
      dr[j] = rs * (gw - am - xhat * bm);
    }
  }
}

using BlockFn = void (*)(const float*, const float*, const float*, const float*, const float*, int64_t, int64_t,
                         int64_t, bool, float*, float*, float*);

#define WEFT_NORM_COPY(suffix, attr)                                                                              \
  attr void block_##suffix(const float* x, const float* g, const float* w, const float* mean, const float* rstd, \
                           int64_t r0, int64_t r1, int64_t n, bool sub, float* dx, float* pw, float* pb) {      \
    if (w) rows_block<true>(x, g, w, mean, rstd, r0, r1, n, sub, dx, pw, pb);                                   \
    else rows_block<false>(x, g, w, mean, rstd, r0, r1, n, sub, dx, pw, pb);                                    \
  }
WEFT_NORM_COPY(base, )
WEFT_NORM_COPY(avx2, [[WEFT_AVX2]])
WEFT_NORM_COPY(avx512, [[WEFT_AVX512]])
#undef WEFT_NORM_COPY

}  // namespace

void norm_backward_rows(const float* x, const float* g, const float* w, const float* mean, const float* rstd,
                        int64_t rows, int64_t n, bool subtract_mean, float* dx, double* dw, double* db) {
  static const BlockFn block = widest<BlockFn>(block_base, block_avx2, block_avx512);
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  // Each block's column sums (g xhat, then g), added into dw and db in block order afterwards, so the
  // result does not depend on the thread count.
  std::vector<float> partial(static_cast<size_t>(blocks * 2 * n), 0.0f);
#pragma omp parallel for if (rows * n > kParallelGrain) num_threads(get_num_threads())
  for (int64_t k = 0; k < blocks; ++k) {
    float* pw = partial.data() + k * 2 * n;
    block(x, g, w, mean, rstd, k * kRowBlock, std::min(rows, (k + 1) * kRowBlock), n, subtract_mean, dx, pw, pw + n);
  }
  for (int64_t k = 0; k < blocks; ++k) {
    const float* pw = partial.data() + k * 2 * n;
    for (int64_t j = 0; dw && j < n; ++j) dw[j] += pw[j];
    for (int64_t j = 0; db && j < n; ++j) db[j] += pw[n + j];
  }
}

}  // namespace weft::kernels
