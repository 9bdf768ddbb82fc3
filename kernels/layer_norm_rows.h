// layer_norm_rows.h: layer_norm's and rms_norm's float32 backward over contiguous rows, in one pass
// over each block of rows for dx and the weight and bias gradients together (norm_backward's generic
// loops read every row twice for dx and twice more for the parameter gradients).
#pragma once

#include <cstdint>

namespace weft::kernels {

// For rows of n floats x, g (the output's gradient), with the forward's per-row mean and rstd and the
// weight w (null: none): dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), gw = g w, xhat = (x - mean)
// rstd, with rms_norm (subtract_mean false) dropping mean(gw); dw[j] += sum over rows of g xhat and
// db[j] += sum over rows of g. Each output is skipped when its pointer is null. Row sums run in float
// within blocks of 256 elements and in double across them, column sums in float within blocks of 64
// rows and in double across them, as the generic loops'. Compiled for baseline x86-64, avx2+fma and
// avx512 and picked at run time; blocks of rows run in parallel past kParallelGrain elements.
void norm_backward_rows(const float* x, const float* g, const float* w, const float* mean, const float* rstd,
                        int64_t rows, int64_t n, bool subtract_mean, float* dx, double* dw, double* db);

}  // namespace weft::kernels
