// cross_entropy_rows.h: cross entropy over contiguous float32 rows in one pass per row, without
// writing the (rows, C) log-probabilities: the loss needs only each row's log-sum-exp, its target
// logit and (with label smoothing) its mean.
#pragma once

#include <cstdint>

namespace weft::kernels {

// loss[r] = (1 - eps) (lse_r - x[r, t_r]) + eps (lse_r - mean_c x[r, c]), with lse_r = log sum_c
// exp(x[r, c]); 0 where t_r == ignore_index. Targets must already be checked in [0, n).
void cross_entropy_rows(const float* x, const int64_t* target, float* loss, int64_t rows, int64_t n,
                        int64_t ignore_index, double eps);

}  // namespace weft::kernels
