// softmax_rows.h: softmax and log-softmax over contiguous float32 rows, on weft's own vectorised exp.
#pragma once

#include <cstdint>

namespace weft::kernels {

// y[r, :] = softmax(x[r, :]) (or its log) for `rows` rows of n contiguous floats; y may not overlap x
// except by being x itself.
void softmax_rows(const float* x, float* y, int64_t rows, int64_t n, bool log);

}  // namespace weft::kernels
