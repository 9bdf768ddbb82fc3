// Lane kernels: each moves `dim` last (an alias), reads every lane into contiguous memory, works on
// it as a plain array, and writes the results back through the same aliasing. The copies cost one
// pass over the data, next to the O(n log n) sorts and the sequential scans that follow.
#include "kernels/lanes.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

// t's geometry with `dim` moved last (an alias, no copy).
Tensor dim_last(const Tensor& t, int64_t dim) {
  Shape shape = t.shape(), strides = t.strides();
  std::rotate(shape.begin() + dim, shape.begin() + dim + 1, shape.end());
  std::rotate(strides.begin() + dim, strides.begin() + dim + 1, strides.end());
  return make_alias(t, shape, strides, t.storage_offset());
}

// The lanes of x along dim as a contiguous [lanes, n] buffer in `dtype`.
Tensor read_lanes(const Tensor& x, int64_t dim, DType dtype) {
  return contiguous_copy(dim_last(x, dim), dtype);
}

// A new tensor of `shape` whose lanes along dim are the rows of `lanes` (contiguous, [.., n]).
Tensor write_lanes(const Tensor& lanes, const Shape& shape, int64_t dim) {
  Tensor out = make_empty(shape, lanes.dtype());
  Tensor target = dim_last(out, dim);
  copy_into(target, reshaped(lanes, target.shape()));
  return out;
}

// NaN above every number; a strict weak order for std::stable_sort.
template <class T>
bool ascending(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

template <class F>
void for_each_lane(int64_t lanes, F&& f) {
  for (int64_t l = 0; l < lanes; ++l) f(l);
}

}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  WEFT_INTERNAL_ASSERT(x.dim() > 0, "sort kernel: a 0-dim input");
  Tensor v = read_lanes(x, dim, x.dtype());
  int64_t n = x.dim() == 0 ? 1 : x.shape()[dim];
  int64_t lanes = n == 0 ? 0 : v.numel() / n;
  Tensor idx = make_empty(v.shape(), kInt64);
  std::vector<int64_t> order(n);
  visit_dtype(x.dtype(), "sort", [&](auto tag) {
    using T = decltype(tag);
    T* pv = static_cast<T*>(v.raw_data());
    int64_t* pi = static_cast<int64_t*>(idx.raw_data());
    std::vector<T> lane(n);
    for_each_lane(lanes, [&](int64_t l) {
      T* row = pv + l * n;
      std::iota(order.begin(), order.end(), int64_t{0});
      // Descending keeps ties in their original order too: compare reversed, not reverse the result.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return descending ? ascending(row[b], row[a]) : ascending(row[a], row[b]);
      });
      std::copy(row, row + n, lane.begin());
      for (int64_t j = 0; j < n; ++j) row[j] = lane[order[j]], pi[l * n + j] = order[j];
    });
  });
  return {write_lanes(v, x.shape(), dim), write_lanes(idx, x.shape(), dim)};
}

std::pair<Tensor, Tensor> kth_smallest(const Tensor& x, int64_t dim, int64_t k, bool nan_wins) {
  Tensor v = read_lanes(x, dim, x.dtype());
  int64_t n = x.shape()[dim];
  int64_t lanes = n == 0 ? 0 : v.numel() / n;
  Shape kept = x.shape();
  kept[dim] = 1;
  Tensor values = make_empty({lanes, 1}, x.dtype()), indices = make_empty({lanes, 1}, kInt64);
  std::vector<int64_t> order(n);
  visit_dtype(x.dtype(), "kthvalue or median", [&](auto tag) {
    using T = decltype(tag);
    const T* pv = static_cast<const T*>(v.raw_data());
    T* out = static_cast<T*>(values.raw_data());
    int64_t* pos = static_cast<int64_t*>(indices.raw_data());
    for_each_lane(lanes, [&](int64_t l) {
      const T* row = pv + l * n;
      if constexpr (std::is_floating_point_v<T>) {
        if (nan_wins) {
          const T* first_nan = std::find_if(row, row + n, [](T t) { return std::isnan(t); });
          if (first_nan != row + n) {
            out[l] = *first_nan, pos[l] = first_nan - row;
            return;
          }
        }
      }
      std::iota(order.begin(), order.end(), int64_t{0});
      std::nth_element(order.begin(), order.begin() + (k - 1), order.end(),
                       [&](int64_t a, int64_t b) { return ascending(row[a], row[b]); });
      out[l] = row[order[k - 1]], pos[l] = order[k - 1];
    });
  });
  return {write_lanes(values, kept, dim), write_lanes(indices, kept, dim)};
}

// log(e^a + e^b), shifted by the larger so neither exponent overflows; -inf and +inf stay themselves.
template <class T>
T log_add_exp(T a, T b) {
  T hi = a < b ? b : a, lo = a < b ? a : b;
  if (std::isnan(a) || std::isnan(b)) return a + b;
  if (hi == -INFINITY) return hi;
  if (lo == hi) return hi + static_cast<T>(M_LN2);  // e^a + e^a, and inf + inf
  return hi + std::log1p(std::exp(lo - hi));
}

Tensor scan(Scan op, const Tensor& x, int64_t dim, bool reverse) {
  WEFT_INTERNAL_ASSERT(x.dim() > 0, "scan kernel: a 0-dim input");
  Tensor v = read_lanes(x, dim, x.dtype());
  int64_t n = x.shape()[dim];
  int64_t lanes = n == 0 ? 0 : v.numel() / n;
  visit_dtype(x.dtype(), "scan (cumsum, cumprod, logcumsumexp)", [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      T* pv = static_cast<T*>(v.raw_data());
      for_each_lane(lanes, [&](int64_t l) {
        T* row = pv + l * n;
        // Element j takes in its neighbour toward the lane's start (or end, reversed).
        for (int64_t step = 1; step < n; ++step) {
          int64_t j = reverse ? n - 1 - step : step, prev = reverse ? j + 1 : j - 1;
          if (op == Scan::Sum) row[j] += row[prev];
          else if (op == Scan::Prod) row[j] *= row[prev];
          else if constexpr (std::is_floating_point_v<T>) row[j] = log_add_exp(row[prev], row[j]);
        }
      });
    }
  });
  return write_lanes(v, x.shape(), dim);
}

Tensor cumprod_backward(const Tensor& g, const Tensor& x, const Tensor& y, int64_t dim) {
  WEFT_INTERNAL_ASSERT(x.dim() > 0, "cumprod backward kernel: a 0-dim input");
  Tensor pg = read_lanes(g, dim, x.dtype()), px = read_lanes(x, dim, x.dtype()), py = read_lanes(y, dim, x.dtype());
  int64_t n = x.shape()[dim];
  int64_t lanes = n == 0 ? 0 : px.numel() / n;
  Tensor out = make_empty(px.shape(), x.dtype());
  visit_floating(x.dtype(), "cumprod backward", [&](auto tag) {
    using T = decltype(tag);
    const T *G = static_cast<const T*>(pg.raw_data()), *X = static_cast<const T*>(px.raw_data()),
            *Y = static_cast<const T*>(py.raw_data());
    T* O = static_cast<T*>(out.raw_data());
    for_each_lane(lanes, [&](int64_t l) {
      const T *gl = G + l * n, *xl = X + l * n, *yl = Y + l * n;
      T* ol = O + l * n;
      int64_t z = std::find(xl, xl + n, T(0)) - xl;
      T tail = 0;  // sum_{k >= i} g_k y_k, built from the back (y_k = 0 from the first zero on)
      for (int64_t i = n; i-- > 0;) {
        tail += gl[i] * yl[i];
        ol[i] = i < z ? tail / xl[i] : T(0);
      }
      if (z < n) {
        // At the first zero: d y_k / d x_z = prod_{j <= k, j != z} x_j, for k >= z.
        T sum = 0, running = z > 0 ? yl[z - 1] : T(1);
        for (int64_t k = z; k < n; ++k) {
          if (k > z) running *= xl[k];
          sum += gl[k] * running;
        }
        ol[z] = sum;
      }
    });
  });
  return write_lanes(out, x.shape(), dim);
}

}  // namespace weft::kernels
