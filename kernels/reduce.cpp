// Reduction kernels. The dims of x are split into kept (outer loop, one output each) and reduced
// (inner loop). When x is contiguous and the reduced dims are a suffix the rows are dense
// ("inner"); when they are a prefix each output is a column ("outer", the bias-gradient case).
#include "kernels/reduce.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "framework/factories.h"
#include "framework/strided_loop.h"
#include "kernels/cpu_isa.h"
#include "kernels/elementwise.h"
#include "kernels/threads.h"
#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

using detail::StridedLoop;

template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T, ReduceOp OP>
struct Reducer {
  using Acc = std::conditional_t<OP == ReduceOp::Sum || OP == ReduceOp::Prod, acc_t<T>, T>;
  static Acc init() {
    if constexpr (OP == ReduceOp::Sum) return Acc(0);
    else if constexpr (OP == ReduceOp::Prod) return Acc(1);
    else if constexpr (OP == ReduceOp::All) return Acc(true);
    else if constexpr (OP == ReduceOp::Any) return Acc(false);
    else if constexpr (std::is_floating_point_v<T>)
      return OP == ReduceOp::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    else return OP == ReduceOp::Max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
  static Acc combine(Acc a, Acc v) {
    if constexpr (OP == ReduceOp::Sum) return a + v;
    else if constexpr (OP == ReduceOp::Prod) return a * v;
    else if constexpr (OP == ReduceOp::All) return a && v;
    else if constexpr (OP == ReduceOp::Any) return a || v;
    else if constexpr (std::is_floating_point_v<T>) {
      if (a != a) return a;  // NaN sticks
      return (v != v || (OP == ReduceOp::Max ? v > a : v < a)) ? v : a;
    } else return (OP == ReduceOp::Max ? v > a : v < a) ? v : a;
  }
};

// Reduces n elements p[0], p[stride], ... into acc.
template <class T, ReduceOp OP>
typename Reducer<T, OP>::Acc reduce_row(const T* p, int64_t n, int64_t stride, typename Reducer<T, OP>::Acc acc) {
  using R = Reducer<T, OP>;
  if constexpr (OP == ReduceOp::Sum && std::is_same_v<T, float>) {
    if (stride == 1) return acc + float32_sum(p, n);  // Note [Float32 sums]
  } else if constexpr (OP == ReduceOp::Sum && std::is_floating_point_v<T>) {
    if (stride == 1) {
      typename R::Acc s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < n; ++j) s += p[j];
      return acc + s;
    }
  }
  for (int64_t j = 0; j < n; ++j) acc = R::combine(acc, static_cast<typename R::Acc>(p[j * stride]));
  return acc;
}

bool parallel_ok(int64_t work) { return work >= kParallelGrain && get_num_threads() > 1 && !omp_in_parallel(); }

// Dense rows: out[k] = reduce(x[k*R .. (k+1)*R)).
template <class T, ReduceOp OP>
void reduce_inner(const T* x, T* out, int64_t K, int64_t R) {
  using Rd = Reducer<T, OP>;
  if (!parallel_ok(K * R)) {
    for (int64_t k = 0; k < K; ++k) out[k] = static_cast<T>(reduce_row<T, OP>(x + k * R, R, 1, Rd::init()));
    return;
  }
  if (K >= 2 * get_num_threads()) {
#pragma omp parallel for
    for (int64_t k = 0; k < K; ++k) out[k] = static_cast<T>(reduce_row<T, OP>(x + k * R, R, 1, Rd::init()));
    return;
  }
  // Few long rows: every thread reduces a slice of each row, then the partials are combined.
  for (int64_t k = 0; k < K; ++k) {
    // Plain arrays: std::vector<bool> packs bits, which threads cannot write independently.
    int64_t slots = get_num_threads();
    std::unique_ptr<typename Rd::Acc[]> partial(new typename Rd::Acc[slots]);
    for (int64_t t = 0; t < slots; ++t) partial[t] = Rd::init();
#pragma omp parallel
    {
      int64_t nt = omp_get_num_threads(), t = omp_get_thread_num(), chunk = (R + nt - 1) / nt;
      int64_t lo = std::min(R, t * chunk), hi = std::min(R, lo + chunk);
      partial[t] = reduce_row<T, OP>(x + k * R + lo, hi - lo, 1, Rd::init());
    }
    typename Rd::Acc acc = Rd::init();
    for (int64_t t = 0; t < slots; ++t) acc = Rd::combine(acc, partial[t]);
    out[k] = static_cast<T>(acc);
  }
}

// Note [Column sums]
// A bias gradient is the sum over rows of a [rows, K] matrix (reduce_outer), accumulated in double as
// every float32 sum is (Note [Float32 sums]). Compiled for baseline x86-64, that loop converts and adds
// two doubles at a time: 4% of train_gpt's step. For float32 it runs on copies compiled for AVX2 and
// AVX-512, picked at run time; each column is still summed row after row in double, so the result
// keeps its bits.
// acc[k] += x[r * ld + k] for every row r < rows, k < n.
[[gnu::always_inline]] inline void column_sums(const float* x, double* __restrict acc, int64_t rows, int64_t n,
                                               int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ld;
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) acc[k] += static_cast<double>(row[k]);
  }
}
void column_sums_base(const float* x, double* acc, int64_t rows, int64_t n, int64_t ld) {
  column_sums(x, acc, rows, n, ld);
}
[[WEFT_AVX2]] void column_sums_avx2(const float* x, double* acc, int64_t rows, int64_t n, int64_t ld) {
  column_sums(x, acc, rows, n, ld);
}
[[WEFT_AVX512]] void column_sums_avx512(const float* x, double* acc, int64_t rows, int64_t n, int64_t ld) {
  column_sums(x, acc, rows, n, ld);
}
using ColumnSumsFn = void (*)(const float*, double*, int64_t, int64_t, int64_t);
ColumnSumsFn widest_column_sums() {
  return widest<ColumnSumsFn>(column_sums_base, column_sums_avx2, column_sums_avx512);
}

// Columns: out[k] = reduce over r of x[r*K + k]; rows are streamed once, columns split by thread.
template <class T, ReduceOp OP>
void reduce_outer(const T* x, T* out, int64_t R, int64_t K) {
  using Rd = Reducer<T, OP>;
  auto columns = [&](int64_t lo, int64_t hi) {
    std::unique_ptr<typename Rd::Acc[]> acc(new typename Rd::Acc[hi - lo]);
    typename Rd::Acc* a = acc.get();
    for (int64_t k = 0; k < hi - lo; ++k) a[k] = Rd::init();
    if constexpr (std::is_same_v<T, float> && OP == ReduceOp::Sum) {  // see Note [Column sums]
      static const ColumnSumsFn sums = widest_column_sums();
      sums(x + lo, a, R, hi - lo, K);
    } else {
      for (int64_t r = 0; r < R; ++r) {
        const T* row = x + r * K + lo;
        for (int64_t k = 0; k < hi - lo; ++k) a[k] = Rd::combine(a[k], static_cast<typename Rd::Acc>(row[k]));
      }
    }
    for (int64_t k = lo; k < hi; ++k) out[k] = static_cast<T>(a[k - lo]);
  };
  if (!parallel_ok(R * K) || K < 64) return columns(0, K);
#pragma omp parallel
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num(), chunk = ((K + nt - 1) / nt + 15) / 16 * 16;
    int64_t lo = std::min(K, t * chunk), hi = std::min(K, lo + chunk);
    if (lo < hi) columns(lo, hi);
  }
}

// Any geometry: one output per kept index, the reduced dims walked with their own StridedLoop.
template <class T, ReduceOp OP>
void reduce_strided(const Tensor& x, T* out, const Shape& ks, const Shape& kst, const Shape& rs, const Shape& rst) {
  using Rd = Reducer<T, OP>;
  const T* base = static_cast<const T*>(x.raw_data());
  StridedLoop<1> inner(rs, {&rst});
  Shape ost = contiguous_strides(ks);
  StridedLoop<2> outer(ks, {&ost, &kst});
  outer.for_each_row([&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
    for (int64_t j = 0; j < n; ++j) {
      const T* p = base + off[1] + j * st[1];
      typename Rd::Acc acc = Rd::init();
      inner.for_each_row([&](std::array<int64_t, 1> io, int64_t m, std::array<int64_t, 1> ist) {
        acc = reduce_row<T, OP>(p + io[0], m, ist[0], acc);
      });
      out[off[0] + j * st[0]] = static_cast<T>(acc);
    }
  });
}

template <class T, ReduceOp OP>
void reduce_typed(const Tensor& x, const Tensor& out, const Shape& dims) {
  const Shape& shape = x.shape();
  Shape ks, kst, rs, rst;
  size_t next = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    bool reduced = dims.empty() || (next < dims.size() && dims[next] == static_cast<int64_t>(d));
    if (reduced && !dims.empty()) ++next;
    (reduced ? rs : ks).push_back(shape[d]);
    (reduced ? rst : kst).push_back(x.strides()[d]);
  }
  int64_t K = numel_of(ks), R = numel_of(rs);
  T* o = static_cast<T*>(out.raw_data());
  if (K == 0) return;
  if (R == 0) {
    for (int64_t k = 0; k < K; ++k) o[k] = static_cast<T>(Reducer<T, OP>::init());
    return;
  }
  if (x.is_contiguous()) {
    const T* p = static_cast<const T*>(x.raw_data());
    // With the reduced dims a suffix (kept dims first) rows are dense; with them a prefix, columns.
    bool suffix = true, prefix = true;
    for (size_t i = 0; i < dims.size(); ++i) {
      suffix = suffix && dims[i] == static_cast<int64_t>(shape.size() - dims.size() + i);
      prefix = prefix && dims[i] == static_cast<int64_t>(i);
    }
    if (dims.empty() || suffix || K == 1) return reduce_inner<T, OP>(p, o, K, R);
    if (prefix || R == 1) return reduce_outer<T, OP>(p, o, R, K);
  }
  reduce_strided<T, OP>(x, o, ks, kst, rs, rst);
}

template <class F>
void dispatch_reduce(ReduceOp op, F&& f) {
  switch (op) {
    case ReduceOp::Sum: return f(std::integral_constant<ReduceOp, ReduceOp::Sum>{});
    case ReduceOp::Prod: return f(std::integral_constant<ReduceOp, ReduceOp::Prod>{});
    case ReduceOp::Max: return f(std::integral_constant<ReduceOp, ReduceOp::Max>{});
    case ReduceOp::Min: return f(std::integral_constant<ReduceOp, ReduceOp::Min>{});
    case ReduceOp::All: return f(std::integral_constant<ReduceOp, ReduceOp::All>{});
    case ReduceOp::Any: return f(std::integral_constant<ReduceOp, ReduceOp::Any>{});
  }
}

}  // namespace

Shape reduced_shape(const Shape& shape, const Shape& dims, bool keepdim) {
  Shape out;
  size_t next = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    bool reduced = dims.empty() || (next < dims.size() && dims[next] == static_cast<int64_t>(d));
    if (reduced && !dims.empty()) ++next;
    if (!reduced) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

Tensor reduce(ReduceOp op, const Tensor& x, const Shape& dims, bool keepdim) {
  // bfloat16 and float16 accumulate in float32 (float32 sums in double lanes) and round once, as
  // PyTorch accumulates them in float.
  if (is_reduced_float(x.dtype())) return cast(reduce(op, cast(x, kFloat32), dims, keepdim), x.dtype());
  Tensor out = make_empty(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  visit<kStdArith>(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    dispatch_reduce(op, [&](auto op_tag) {
      constexpr ReduceOp OP = decltype(op_tag)::value;
      constexpr bool is_bool = std::is_same_v<T, bool>;
      constexpr bool logical = OP == ReduceOp::All || OP == ReduceOp::Any;
      constexpr bool arithmetic = OP == ReduceOp::Sum || OP == ReduceOp::Prod;
      if constexpr (is_bool ? !arithmetic : !logical)
        reduce_typed<T, OP>(x, out, dims);
      else WEFT_INTERNAL_ASSERT(false, "reduce kernel: op and dtype do not match");
    });
  });
  return out;
}

std::pair<Tensor, Tensor> reduce_arg(bool is_max, const Tensor& x, int64_t dim, bool keepdim) {
  if (is_reduced_float(x.dtype())) {  // exact: every 16-bit float is a float32
    auto [values, indices] = reduce_arg(is_max, cast(x, kFloat32), dim, keepdim);
    return {cast(values, x.dtype()), indices};
  }
  Shape dims{dim};
  Shape out_shape = reduced_shape(x.shape(), dims, keepdim);
  Tensor values = make_empty(out_shape, x.dtype()), indices = make_empty(out_shape, kInt64);
  Shape ks, kst;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) ks.push_back(x.shape()[d]), kst.push_back(x.strides()[d]);
  int64_t n = x.shape()[dim], stride = x.strides()[dim];
  Shape ost = contiguous_strides(ks);
  StridedLoop<2> outer(ks, {&ost, &kst});
  int64_t* pi = indices.data_ptr<int64_t>();
  visit<kStdArith>(x.dtype(), "max/min", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw_data());
    T* pv = static_cast<T*>(values.raw_data());
    outer.for_each_row([&](std::array<int64_t, 2> off, int64_t m, std::array<int64_t, 2> st) {
      for (int64_t j = 0; j < m; ++j) {
        const T* p = px + off[1] + j * st[1];
        T best = p[0];
        int64_t at = 0;
        for (int64_t i = 1; i < n; ++i) {
          T v = p[i * stride];
          bool nan_best = false, nan_v = false;
          if constexpr (std::is_floating_point_v<T>) nan_best = best != best, nan_v = v != v;
          if (nan_best) break;
          if (nan_v || (is_max ? v > best : v < best)) best = v, at = i;
        }
        pv[off[0] + j * st[0]] = best;
        pi[off[0] + j * st[0]] = at;
      }
    });
  });
  return {values, indices};
}

Tensor scatter_add_dim(const Tensor& grad, const Tensor& index, int64_t dim, const Shape& shape) {
  Tensor out = zeros(shape, grad.dtype());
  Tensor g = dense(grad);
  Tensor idx = dense(index);
  int64_t outer = 1, inner = 1, n = shape[dim];
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t* pi = idx.data_ptr<int64_t>();
  visit_dtype(grad.dtype(), "scatter_add_dim (a max/min backward)", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(g.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t at = pi[o * inner + i];
        WEFT_INTERNAL_ASSERT(at >= 0 && at < n, "scatter_add_dim: index out of range");
        po[(o * n + at) * inner + i] += pg[o * inner + i];
      }
  });
  return out;
}

Tensor prod_others(const Tensor& x, int64_t dim) {
  Tensor src = dense(x);
  Tensor out = make_empty(x.shape(), x.dtype());
  int64_t outer = 1, inner = 1, n = x.shape()[dim];
  for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[d];
  visit_numeric(x.dtype(), "prod", [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(src.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t base = a * n * inner + i;
        T prefix = 1, suffix = 1;  // products before and after element j: no division, zeros exact
        for (int64_t j = 0; j < n; ++j) o[base + j * inner] = prefix, prefix *= p[base + j * inner];
        for (int64_t j = n; j-- > 0;) o[base + j * inner] *= suffix, suffix *= p[base + j * inner];
      }
  });
  return out;
}

namespace {
// Sums a contiguous floating tensor into a new one-element tensor of `shape`, accumulating in double.
Tensor sum_all_contiguous(const Tensor& x, const Shape& shape) {
  Tensor y = make_empty(shape, x.dtype());
  visit_floating(x.dtype(), "sum_to", [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data_ptr<T>();
    double total = 0;
    for (int64_t i = 0, n = x.numel(); i < n; ++i) total += p[i];
    *y.data_ptr<T>() = static_cast<T>(total);
  });
  return y;
}
}  // namespace

Tensor sum_to(const Tensor& x, const Shape& shape) {
  detail::check_plain(x, "sum_to");
  WEFT_CHECK(is_broadcastable_to(shape, x.shape()), "sum_to: the shape ", shape, " does not broadcast to the "
             "input's shape ", x.shape(), ", so the input cannot be summed down to it");
  if (x.shape() == shape) return x;
  if (numel_of(shape) == 1 && x.is_contiguous() && (x.dtype() == kFloat32 || x.dtype() == kFloat64))
    return sum_all_contiguous(x, shape);  // a scalar's gradient: one short loop
  // Unequal shapes that broadcast always leave a dim to reduce: a leading one or a size-1 target.
  size_t lead = x.shape().size() - shape.size();
  Shape dims;
  for (size_t d = 0; d < x.shape().size(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)) dims.push_back(static_cast<int64_t>(d));
  Tensor y = reduce(ReduceOp::Sum, is_floating(x.dtype()) ? x : cast(x, kInt64), dims, true);
  return make_alias(y, shape, contiguous_strides(shape), y.storage_offset());
}

}  // namespace weft::kernels
