// nn_reference.h: what the nn-functional suites share: float64 tensor makers, a tolerance check,
// and naive softmax / cross-entropy loops to test against.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "weft.h"

namespace weft::nn_test {

using Vec = std::vector<double>;

inline void require_close(const Tensor& t, const Vec& expected, double tol = 1e-10) {
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  Vec got = t.to_vector<double>();
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
    if (std::isnan(expected[i])) CHECK(std::isnan(got[i]));
    else CHECK(std::fabs(got[i] - expected[i]) <= tol * (1.0 + std::fabs(expected[i])));
  }
}

inline Tensor f64(const Vec& v, const Shape& shape, bool grad = false) {
  return tensor(v, shape, TensorOptions(kFloat64).requires_grad(grad));
}
inline Tensor i64(const std::vector<int64_t>& v, const Shape& shape) { return from_vector<int64_t>(v, shape); }
inline Tensor randn64(const Shape& shape, uint64_t seed, bool grad = true) {
  Generator g(seed);
  return randn(shape, TensorOptions(kFloat64).requires_grad(grad), &g);
}

// Naive softmax along `dim` of a contiguous (outer, n, inner) array.
inline Vec ref_softmax(const Vec& x, const Shape& shape, int64_t dim, bool log) {
  int64_t outer = 1, n = shape[dim], inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(shape.size()); ++d) inner *= shape[d];
  Vec y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return static_cast<size_t>((o * n + k) * inner + i); };
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, x[at(k)]);
      for (int64_t k = 0; k < n; ++k) s += std::exp(x[at(k)] - m);
      for (int64_t k = 0; k < n; ++k) y[at(k)] = log ? x[at(k)] - m - std::log(s) : std::exp(x[at(k)] - m) / s;
    }
  return y;
}

// PyTorch's cross_entropy on (N, C) rows, written out: per-row losses and the mean's divisor.
inline Vec ref_cross_entropy_rows(const Vec& z, int64_t N, int64_t C, const std::vector<int64_t>& t, int64_t ignore,
                           double eps, int64_t& count) {
  Vec loss(static_cast<size_t>(N), 0.0);
  count = 0;
  for (int64_t r = 0; r < N; ++r) {
    if (t[r] == ignore) continue;
    ++count;
    Vec row(z.begin() + r * C, z.begin() + (r + 1) * C);
    Vec lp = ref_softmax(row, {C}, 0, true);
    double smooth = 0;
    for (double v : lp) smooth -= v;
    loss[r] = (1 - eps) * -lp[t[r]] + eps / C * smooth;
  }
  return loss;
}

}  // namespace weft::nn_test
