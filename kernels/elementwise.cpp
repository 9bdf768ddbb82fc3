// Elementwise kernels: one templated loop per arity, instantiated per op and dtype. The fast path
// (contiguous operands of one shape, or one operand a single element) is a plain indexed loop the
// compiler vectorises; everything else walks StridedLoop rows with broadcast strides.
#include "kernels/elementwise.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "framework/copy.h"
#include "framework/factories.h"
#include "framework/strided_loop.h"
#include "kernels/threads.h"
#include "kernels/toolkit.h"
#include "kernels/vector_math.h"

namespace weft::kernels {
namespace {

using detail::StridedLoop;

// Splits [0, n) across OpenMP threads when `work` elements justify a fork; else runs inline.
template <class F>
void parallel_range(int64_t n, int64_t work, F&& f) {
  if (work < kParallelGrain || n < 2 || get_num_threads() == 1 || omp_in_parallel()) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t chunk = ((n + threads - 1) / threads + 15) / 16 * 16;  // 64-byte aligned starts
    int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    if (begin < end) f(begin, end);
  }
}

// f(offsets, n, inner_strides) for every innermost row; rows split across threads when big.
template <size_t K, class F>
void for_rows(const StridedLoop<K>& loop, F&& f) {
  int64_t rows = loop.row_count(), n = loop.row_length();
  if (rows * n < kParallelGrain || rows < 2) {
    loop.for_each_row(f);
    return;
  }
  auto inner = loop.inner_strides();
  parallel_range(rows, rows * n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) f(loop.row_offsets(r), n, inner);
  });
}

// Inline geometry checks: the fast path of a 16-element op must cost a few nanoseconds, so these
// read the impl directly instead of calling Tensor's out-of-line accessors.
inline bool same_dims(const Shape& x, const Shape& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] != y[i]) return false;
  return true;
}

inline bool dense(const TensorImpl& t) {
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] == 1) continue;
    if (t.shape[i] == 0) return true;
    if (t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

inline int64_t count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Same shape and strides as a dense out: element i of both is at offset i.
inline bool dense_like(const TensorImpl& t, const TensorImpl& out) {
  return same_dims(t.shape, out.shape) && same_dims(t.strides, out.strides);
}

// True when n elements at `out` either are the n elements at `in` or do not overlap them, so a
// vectorised loop gives what the element-by-element one gives.
template <class O, class T>
inline bool simd_safe(const O* out, const T* in, int64_t n) {
  auto o = reinterpret_cast<uintptr_t>(out), i = reinterpret_cast<uintptr_t>(in);
  return o == i || o + n * sizeof(O) <= i || i + n * sizeof(T) <= o;
}

int64_t int_pow(int64_t base, int64_t e) {
  if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
  uint64_t r = 1, b = static_cast<uint64_t>(base);  // unsigned: overflow wraps instead of UB
  while (e) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return static_cast<int64_t>(r);
}

// The inverse of erf: Giles' single-precision approximation ("Approximating the erfinv function",
// GPU Computing Gems, 2011) refined by two Newton steps on erf, which double the correct digits each.
double erfinv(double y) {
  if (!(y > -1.0 && y < 1.0)) {
    if (y == 1.0) return std::numeric_limits<double>::infinity();
    if (y == -1.0) return -std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();  // |y| > 1 or NaN
  }
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    double p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = c + p * w;
    x = p * y;
  } else {
    w = std::sqrt(w) - 3.0;
    double p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = c + p * w;
    x = p * y;
  }
  constexpr double two_over_sqrt_pi = 1.12837916709551257390;
  for (int i = 0; i < 2; ++i) x -= (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
  return x;
}

// Remainder (the sign of b) or fmod (the sign of a). Integer division by zero is refused by the op
// before the kernel runs; b == -1 is answered directly because INT64_MIN % -1 overflows.
template <bool kFloorSign, class T>
[[gnu::always_inline]] inline T modulo(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a;  // unreachable: refused for bool by the op
  } else if constexpr (std::is_integral_v<T>) {
    if (b == T(-1) || b == T(0)) return T(0);
    T r = a % b;
    if (kFloorSign && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    T r = std::fmod(a, b);
    if (kFloorSign && r != T(0) && ((r < T(0)) != (b < T(0)))) r += b;
    return r;
  }
}

using vmath::kInvSqrt2Pi;
using vmath::kSqrt1_2;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluC = 0.044715;

// float32 tanh, exp and friends go through vector_math.h (no libm call, so even the strided loops
// vectorise); float64 keeps std::.
template <class T>
[[gnu::always_inline]] inline T tanh_of(T x) {
  if constexpr (std::is_same_v<T, float>) return vmath::tanh(x);
  else return std::tanh(x);
}

// -x in two's complement: the lowest int32/int64 is its own negation, as in PyTorch (-x on it is
// undefined behaviour in C++; negating the unsigned counterpart is not). uint8 and int8 wrap too.
template <class T>
[[gnu::always_inline]] inline T wrapping_neg(T x) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return static_cast<T>(-static_cast<std::make_unsigned_t<T>>(x));
  else return static_cast<T>(-x);
}

template <UnaryOp OP, class T>
[[gnu::always_inline]] inline T unary_fn(T x, T pa, T pb) {
  using U = UnaryOp;
  if constexpr (OP == U::Neg) return wrapping_neg(x);
  else if constexpr (OP == U::Abs) {
    if constexpr (std::is_same_v<T, bool> || std::is_unsigned_v<T>) return x;
    else return x < 0 ? wrapping_neg(x) : x;  // abs of the lowest integer is itself, as in PyTorch
  }
  else if constexpr (OP == U::Relu) {
    if constexpr (std::is_same_v<T, bool> || std::is_unsigned_v<T>) return x;
    else return x < T(0) ? T(0) : x;  // NaN passes through
  }
  else if constexpr (OP == U::Sign) {
    if constexpr (std::is_same_v<T, bool>) return x;
    else return static_cast<T>((T(0) < x) - (x < T(0)));
  } else if constexpr (OP == U::Clamp) {
    T lo = x < pa ? pa : x;  // NaN passes through both
    return lo > pb ? pb : lo;
  } else if constexpr (OP == U::BitNot) {
    if constexpr (std::is_same_v<T, bool>) return !x;
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(~x);
    else return x;  // unreachable: refused for floating dtypes by the op
  }
  else if constexpr (OP == U::Pow) {
    // torch's pow(x, number) computes 2, 0.5 and -0.5 as x*x, sqrt and rsqrt, which differ from
    // std::pow at -0.0 and -inf (sqrt(-inf) is NaN, rsqrt(-0.0) is -inf): the same here.
    if constexpr (std::is_floating_point_v<T>) {
      if (pa == T(2)) return x * x;
      if (pa == T(0.5)) return std::sqrt(x);
      if (pa == T(-0.5)) return T(1) / std::sqrt(x);
      return std::pow(x, pa);
    }
    else return static_cast<T>(int_pow(x, pa));
  } else if constexpr (std::is_floating_point_v<T>) {
    constexpr bool f32 = std::is_same_v<T, float>;
    if constexpr (OP == U::Exp) { if constexpr (f32) return vmath::exp(x); else return std::exp(x); }
    else if constexpr (OP == U::Log) return std::log(x);
    else if constexpr (OP == U::Sqrt) return std::sqrt(x);
    else if constexpr (OP == U::Rsqrt) return T(1) / std::sqrt(x);
    else if constexpr (OP == U::Sin) return std::sin(x);
    else if constexpr (OP == U::Cos) return std::cos(x);
    else if constexpr (OP == U::Tanh) return tanh_of(x);
    else if constexpr (OP == U::Sigmoid) {
      if constexpr (f32) return vmath::sigmoid(x);
      else return T(1) / (T(1) + std::exp(-x));
    }
    else if constexpr (OP == U::Gelu) {
      if constexpr (f32) return vmath::gelu(x);
      else return T(0.5) * x * (T(1) + std::erf(x * T(kSqrt1_2)));
    }
    else if constexpr (OP == U::GeluTanh)
      return T(0.5) * x * (T(1) + tanh_of(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x)));
    else if constexpr (OP == U::Silu) {
      if constexpr (f32) return vmath::silu(x);
      else return x / (T(1) + std::exp(-x));
    }
    else if constexpr (OP == U::Reciprocal) return T(1) / x;
    else if constexpr (OP == U::Erf) return std::erf(x);
    else if constexpr (OP == U::Erfinv) return static_cast<T>(erfinv(static_cast<double>(x)));
    else if constexpr (OP == U::Log1p) return std::log1p(x);
    else if constexpr (OP == U::Expm1) return std::expm1(x);
    else if constexpr (OP == U::Log2) return std::log2(x);
    else if constexpr (OP == U::Log10) return std::log10(x);
    else if constexpr (OP == U::Sinh) return std::sinh(x);
    else if constexpr (OP == U::Cosh) return std::cosh(x);
    else if constexpr (OP == U::Asin) return std::asin(x);
    else if constexpr (OP == U::Acos) return std::acos(x);
    else if constexpr (OP == U::Atan) return std::atan(x);
    else if constexpr (OP == U::Asinh) return std::asinh(x);
    else if constexpr (OP == U::Acosh) return std::acosh(x);
    else if constexpr (OP == U::Atanh) return std::atanh(x);
    else if constexpr (OP == U::Frac) return x - std::trunc(x);
    else if constexpr (OP == U::Floor) return std::floor(x);
    else if constexpr (OP == U::Ceil) return std::ceil(x);
    else if constexpr (OP == U::Round) return std::nearbyint(x);  // the default rounding mode: half to even
    else if constexpr (OP == U::Trunc) return std::trunc(x);
  }
  // Integral inputs: Floor, Ceil, Round and Trunc are the identity; float-only ops never get here
  // (the dispatcher refuses them for integral dtypes).
  return x;
}

constexpr bool float_only(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Relu: case UnaryOp::Sign: case UnaryOp::Clamp:
    case UnaryOp::Pow: case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round: case UnaryOp::Trunc:
    case UnaryOp::BitNot:
      return false;
    default:
      return true;
  }
}

template <class O, class T, class F>
void run_unary(const Tensor& out, const Tensor& x, F f) {
  TensorImpl &io = *out.impl(), &ix = *x.impl();
  int64_t n = count(io.shape);
  if (n == 0) return;
  O* o = static_cast<O*>(io.data());
  const T* in = static_cast<const T*>(ix.data());
  if (dense(io) && dense_like(ix, io)) {
    if (!simd_safe(o, in, n)) {  // overlapping shifted views: keep the element order
      for (int64_t i = 0; i < n; ++i) o[i] = f(in[i]);
      return;
    }
    if (n < kParallelGrain) {  // the small-op path: one plain loop
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(in[i]);
      return;
    }
    parallel_range(n, n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) o[i] = f(in[i]);
    });
    return;
  }
  Shape xs = detail::broadcast_strides(x, out.shape());
  StridedLoop<2> loop(out.shape(), {&out.strides(), &xs});
  for_rows(loop, [&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
    O* po = o + off[0];
    const T* pi = in + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t j = 0; j < n; ++j) po[j] = f(pi[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) po[j * st[0]] = f(pi[j * st[1]]);
    }
  });
}

template <class F>
void dispatch_unary(UnaryOp op, F&& f) {
#define WEFT_CASE(NAME) \
  case UnaryOp::NAME: return f(std::integral_constant<UnaryOp, UnaryOp::NAME>{});
  switch (op) {
    WEFT_CASE(Neg) WEFT_CASE(Abs) WEFT_CASE(Exp) WEFT_CASE(Log) WEFT_CASE(Sqrt) WEFT_CASE(Rsqrt)
    WEFT_CASE(Sin) WEFT_CASE(Cos) WEFT_CASE(Tanh) WEFT_CASE(Sigmoid) WEFT_CASE(Relu) WEFT_CASE(Gelu)
    WEFT_CASE(GeluTanh) WEFT_CASE(Silu) WEFT_CASE(Sign) WEFT_CASE(Reciprocal) WEFT_CASE(Pow) WEFT_CASE(Clamp)
    WEFT_CASE(Erf) WEFT_CASE(Erfinv) WEFT_CASE(Log1p) WEFT_CASE(Expm1) WEFT_CASE(Log2) WEFT_CASE(Log10)
    WEFT_CASE(Sinh) WEFT_CASE(Cosh) WEFT_CASE(Asin) WEFT_CASE(Acos) WEFT_CASE(Atan) WEFT_CASE(Asinh)
    WEFT_CASE(Acosh) WEFT_CASE(Atanh) WEFT_CASE(Frac) WEFT_CASE(Floor) WEFT_CASE(Ceil) WEFT_CASE(Round)
    WEFT_CASE(Trunc) WEFT_CASE(BitNot)
  }
#undef WEFT_CASE
}

template <class T>
T bound(double v, bool has, bool upper) {
  if (has) return static_cast<T>(v);
  if constexpr (std::is_floating_point_v<T>)
    return upper ? std::numeric_limits<T>::infinity() : -std::numeric_limits<T>::infinity();
  else return upper ? std::numeric_limits<T>::max() : std::numeric_limits<T>::lowest();
}

// Integer add, sub and mul wrap around as PyTorch's do. Signed overflow is undefined in C++, so
// signed integers compute in their unsigned counterpart, where wrapping is defined.
template <class T, class F>
[[gnu::always_inline]] inline T wrapping(T a, T b, F f) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(f(static_cast<U>(a), static_cast<U>(b))));
  } else {
    return static_cast<T>(f(a, b));
  }
}

template <BinaryOp OP, class T>
[[gnu::always_inline]] inline auto binary_fn(T a, T b, T alpha)
    -> std::conditional_t<(OP >= BinaryOp::Eq && OP <= BinaryOp::Ge), bool, T> {
  using B = BinaryOp;
  if constexpr (OP == B::Eq) return a == b;
  else if constexpr (OP == B::Ne) return a != b;
  else if constexpr (OP == B::Lt) return a < b;
  else if constexpr (OP == B::Le) return a <= b;
  else if constexpr (OP == B::Gt) return a > b;
  else if constexpr (OP == B::Ge) return a >= b;
  else if constexpr (OP == B::BitAnd || OP == B::BitOr || OP == B::BitXor) {
    if constexpr (std::is_same_v<T, bool>) return OP == B::BitAnd ? (a && b) : OP == B::BitOr ? (a || b) : (a != b);
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(OP == B::BitAnd ? (a & b) : OP == B::BitOr ? (a | b) : (a ^ b));
    else return T(0);  // unreachable: refused for floating dtypes by the op
  } else if constexpr (OP == B::Remainder || OP == B::Fmod) {
    return modulo<OP == B::Remainder>(a, b);
  } else if constexpr (std::is_same_v<T, bool>) {
    if constexpr (OP == B::Mul || OP == B::Min) return bool(a && b);
    else return bool(a || b);  // Add, Max (Sub and the rest are refused for bool)
  } else if constexpr (std::is_integral_v<T> && (OP == B::Add || OP == B::Sub || OP == B::Mul)) {
    const T scaled = OP == B::Mul ? b : wrapping(alpha, b, [](auto x, auto y) { return x * y; });
    if constexpr (OP == B::Add) return wrapping(a, scaled, [](auto x, auto y) { return x + y; });
    else if constexpr (OP == B::Sub) return wrapping(a, scaled, [](auto x, auto y) { return x - y; });
    else return wrapping(a, b, [](auto x, auto y) { return x * y; });
  } else if constexpr (OP == B::Add) return static_cast<T>(a + alpha * b);
  else if constexpr (OP == B::Sub) return static_cast<T>(a - alpha * b);
  else if constexpr (OP == B::Mul) return static_cast<T>(a * b);
  else if constexpr (OP == B::Max) {
    if constexpr (std::is_floating_point_v<T>) return (a != a || a > b) ? a : b;  // NaN propagates
    else return a > b ? a : b;
  } else if constexpr (OP == B::Min) {
    if constexpr (std::is_floating_point_v<T>) return (a != a || a < b) ? a : b;
    else return a < b ? a : b;
  } else if constexpr (OP == B::Pow) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<T>(std::pow(a, b));
    else return static_cast<T>(int_pow(a, b));
  } else if constexpr (std::is_floating_point_v<T>) {
    if constexpr (OP == B::Div) return a / b;
    else if constexpr (OP == B::Atan2) return std::atan2(a, b);
    else if constexpr (OP == B::Hypot) return std::hypot(a, b);
    else if constexpr (OP == B::ReluGrad) return b > T(0) ? a : T(0);
    else if constexpr (OP == B::SigmoidGrad) return a * b * (T(1) - b);
    else if constexpr (OP == B::TanhGrad) return a * (T(1) - b * b);
    else if constexpr (OP == B::GeluGrad) {
      if constexpr (std::is_same_v<T, float>) return vmath::gelu_grad(a, b);
      T cdf = T(0.5) * (T(1) + std::erf(b * T(kSqrt1_2)));
      return a * (cdf + b * T(kInvSqrt2Pi) * std::exp(T(-0.5) * b * b));
    } else if constexpr (OP == B::GeluTanhGrad) {
      T t = tanh_of(T(kSqrt2OverPi) * (b + T(kGeluC) * b * b * b));
      T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * b * b);
      return a * (T(0.5) * (T(1) + t) + T(0.5) * b * (T(1) - t * t) * du);
    } else if constexpr (OP == B::ScaledSub) {
      return alpha * (a - b);
    } else if constexpr (OP == B::SiluGrad) {
      if constexpr (std::is_same_v<T, float>) return vmath::silu_grad(a, b);
      T s = T(1) / (T(1) + std::exp(-b));
      return a * s * (T(1) + b * (T(1) - s));
    }
  }
  return T(0);  // unreachable: refused by the dispatcher
}

template <class O, class T, class F>
void run_binary(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  TensorImpl &io = *out.impl(), &ia = *a.impl(), &ib = *b.impl();
  const Shape& shape = io.shape;
  int64_t n = count(shape);
  if (n == 0) return;
  O* o = static_cast<O*>(io.data());
  const T* pa = static_cast<const T*>(ia.data());
  const T* pb = static_cast<const T*>(ib.data());
  if (dense(io)) {
    bool a_dense = dense_like(ia, io), b_dense = dense_like(ib, io);
    // simd (no alias versioning) when out is an input itself or apart from both: in-place
    // updates (optimizer steps) vectorise too.
    bool simd = a_dense && b_dense && simd_safe(o, pa, n) && simd_safe(o, pb, n);
    if (simd && n < kParallelGrain) {  // the small-op path: one plain loop
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
      return;
    }
    if (simd) {
      parallel_range(n, n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) o[i] = f(pa[i], pb[i]);
      });
      return;
    }
    if (a_dense && b_dense) {
      parallel_range(n, n, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) o[i] = f(pa[i], pb[i]);
      });
      return;
    }
    if (a_dense && count(ib.shape) == 1) {
      T s = *pb;
      parallel_range(n, n, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) o[i] = f(pa[i], s);
      });
      return;
    }
    if (b_dense && count(ia.shape) == 1) {
      T s = *pa;
      parallel_range(n, n, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) o[i] = f(s, pb[i]);
      });
      return;
    }
  }
  Shape as = detail::broadcast_strides(a, shape), bs = detail::broadcast_strides(b, shape);
  StridedLoop<3> loop(shape, {&out.strides(), &as, &bs});
  for_rows(loop, [&](std::array<int64_t, 3> off, int64_t len, std::array<int64_t, 3> st) {
    O* po = o + off[0];
    const T* qa = pa + off[1];
    const T* qb = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t j = 0; j < len; ++j) po[j] = f(qa[j], qb[j]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      T s = *qb;
      for (int64_t j = 0; j < len; ++j) po[j] = f(qa[j], s);
    } else {
      for (int64_t j = 0; j < len; ++j) po[j * st[0]] = f(qa[j * st[1]], qb[j * st[2]]);
    }
  });
}

// The float32 span kernels (fast_spans.cpp): true when out, x (and g) are dense with one layout and out
// does not partly overlap them; then the span ran, split across threads like the generic loops (a small
// op runs it inline: no OpenMP region, no allocation).
bool run_span(UnarySpan span, const Tensor& out, const Tensor& x) {
  TensorImpl &io = *out.impl(), &ix = *x.impl();
  int64_t n = count(io.shape);
  float* o = static_cast<float*>(io.data());
  const float* in = static_cast<const float*>(ix.data());
  if (n == 0 || !dense(io) || !dense_like(ix, io) || !simd_safe(o, in, n)) return false;
  parallel_range(n, n, [&](int64_t lo, int64_t hi) { span(o + lo, in + lo, hi - lo); });
  return true;
}

bool run_span(BinarySpan span, const Tensor& out, const Tensor& g, const Tensor& x, float alpha) {
  TensorImpl &io = *out.impl(), &ig = *g.impl(), &ix = *x.impl();
  int64_t n = count(io.shape);
  float* o = static_cast<float*>(io.data());
  const float* pg = static_cast<const float*>(ig.data());
  const float* px = static_cast<const float*>(ix.data());
  if (n == 0 || !dense(io) || !dense_like(ig, io) || !dense_like(ix, io) || !simd_safe(o, pg, n) ||
      !simd_safe(o, px, n))
    return false;
  parallel_range(n, n, [&](int64_t lo, int64_t hi) { span(o + lo, pg + lo, px + lo, alpha, hi - lo); });
  return true;
}

template <class F>
void dispatch_binary(BinaryOp op, F&& f) {
#define WEFT_CASE(NAME) \
  case BinaryOp::NAME: return f(std::integral_constant<BinaryOp, BinaryOp::NAME>{});
  switch (op) {
    WEFT_CASE(Add) WEFT_CASE(Sub) WEFT_CASE(Mul) WEFT_CASE(Div) WEFT_CASE(Pow) WEFT_CASE(Max) WEFT_CASE(Min)
    WEFT_CASE(Eq) WEFT_CASE(Ne) WEFT_CASE(Lt) WEFT_CASE(Le) WEFT_CASE(Gt) WEFT_CASE(Ge) WEFT_CASE(ReluGrad)
    WEFT_CASE(SigmoidGrad) WEFT_CASE(TanhGrad) WEFT_CASE(GeluGrad) WEFT_CASE(GeluTanhGrad) WEFT_CASE(SiluGrad)
    WEFT_CASE(ScaledSub) WEFT_CASE(BitAnd) WEFT_CASE(BitOr) WEFT_CASE(BitXor) WEFT_CASE(Remainder)
    WEFT_CASE(Fmod) WEFT_CASE(Atan2) WEFT_CASE(Hypot)
  }
#undef WEFT_CASE
}

constexpr bool binary_float_only(BinaryOp op) {
  return op == BinaryOp::Div || op == BinaryOp::Atan2 || op == BinaryOp::Hypot || op >= BinaryOp::ReluGrad;
}

// bfloat16 and float16 compute in float32 and round once when the result is stored, as PyTorch's CPU
// kernels do: `result` (float32, or bool for comparisons) is written into out, converted.
void via_float32(const Tensor& out, const Tensor& result) { copy_into(out, result); }

Tensor scalar_like(Scalar s, DType dtype) {
  Tensor t = make_empty({}, dtype);
  detail::fill_contiguous(t, s);
  return t;
}

}  // namespace

void unary_out(UnaryOp op, const Tensor& out, const Tensor& x, const UnaryParams& p) {
  WEFT_INTERNAL_ASSERT(out.dtype() == x.dtype(), "unary kernel: dtypes differ");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T pa = p.has_a ? static_cast<T>(p.a) : T(0), pb = static_cast<T>(p.b);
    if (op == UnaryOp::Clamp) pa = bound<T>(p.a, p.has_a, false), pb = bound<T>(p.b, p.has_b, true);
    if constexpr (!std::is_floating_point_v<T>)
      if (op == UnaryOp::Pow) pa = static_cast<T>(static_cast<int64_t>(p.a));
    dispatch_unary(op, [&](auto op_tag) {
      constexpr UnaryOp OP = decltype(op_tag)::value;
      if constexpr (float_only(OP) && !std::is_floating_point_v<T>) {
        // Never reached (float-only ops dispatch on floating dtypes); not instantiating these
        // loops for the five integral types keeps this file's compile time in bounds.
        WEFT_INTERNAL_ASSERT(false, "unary kernel: a floating-only op reached an integral dtype");
      } else {
        if constexpr (std::is_same_v<T, float>) {  // float32_span says which ops have a span kernel
          static const UnarySpan span = float32_span(OP);
          if (span && run_span(span, out, x)) return;
        }
        // always_inline down to unary_fn: an out-of-line call per element stops the loop vectorising.
        auto f = [pa, pb](T v) __attribute__((always_inline)) { return unary_fn<OP, T>(v, pa, pb); };
        run_unary<T, T>(out, x, f);
      }
    });
  };
  if (is_reduced_float(x.dtype())) return via_float32(out, unary(op, cast(x, kFloat32), p));
  if (float_only(op)) visit_floating(x.dtype(), "unary kernel", run);
  else visit<kStdArith>(x.dtype(), "unary kernel", run);
}

Tensor unary(UnaryOp op, const Tensor& x, const UnaryParams& p) {
  Tensor out = make_empty(x.shape(), x.dtype());
  unary_out(op, out, x, p);
  return out;
}

void binary_out(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  WEFT_INTERNAL_ASSERT(a.dtype() == b.dtype(), "binary kernel: operand dtypes differ");
  WEFT_INTERNAL_ASSERT(out.dtype() == (is_comparison(op) ? kBool : a.dtype()), "binary kernel: bad out dtype");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T al = std::is_floating_point_v<T> ? static_cast<T>(alpha) : static_cast<T>(static_cast<int64_t>(alpha));
    dispatch_binary(op, [&](auto op_tag) {
      constexpr BinaryOp OP = decltype(op_tag)::value;
      using O = std::conditional_t<(OP >= BinaryOp::Eq && OP <= BinaryOp::Ge), bool, T>;
      if constexpr (binary_float_only(OP) && !std::is_floating_point_v<T>) {
        WEFT_INTERNAL_ASSERT(false, "binary kernel: a floating-only op reached an integral dtype");  // as in unary_out
      } else {
        if constexpr (std::is_same_v<T, float>) {  // float32_span says which ops have a span kernel
          static const BinarySpan span = float32_span(OP);
          if (span && run_span(span, out, a, b, al)) return;
        }
        auto f = [al](T x, T y) __attribute__((always_inline)) { return static_cast<O>(binary_fn<OP, T>(x, y, al)); };
        run_binary<O, T>(out, a, b, f);  // f inlined, as in unary_out
      }
    });
  };
  if (is_reduced_float(a.dtype()))
    return via_float32(out, binary(op, cast(a, kFloat32), cast(b, kFloat32), alpha));
  if (binary_float_only(op)) visit_floating(a.dtype(), "binary kernel", run);
  else visit<kStdArith>(a.dtype(), "binary kernel", run);
}

void binary_scalar_out(BinaryOp op, const Tensor& out, const Tensor& a, Scalar s, bool scalar_first,
                       double alpha) {
  // The number is first rounded to a's dtype, also for bfloat16 and float16 (as PyTorch does).
  Tensor st = scalar_like(s, a.dtype());
  if (scalar_first) binary_out(op, out, st, a, alpha);
  else binary_out(op, out, a, st, alpha);
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha) {
  const Shape& shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), "binary");
  Tensor out = make_empty(shape, is_comparison(op) ? kBool : a.dtype());
  binary_out(op, out, a, b, alpha);
  return out;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, Scalar s, bool scalar_first, double alpha) {
  Tensor out = make_empty(a.shape(), is_comparison(op) ? kBool : a.dtype());
  binary_scalar_out(op, out, a, s, scalar_first, alpha);
  return out;
}

void where_out(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  WEFT_INTERNAL_ASSERT(cond.dtype() == kBool && a.dtype() == out.dtype() && b.dtype() == out.dtype());
  if (out.numel() == 0) return;
  const Shape& shape = out.shape();
  Shape cs = detail::broadcast_strides(cond, shape), as = detail::broadcast_strides(a, shape),
        bs = detail::broadcast_strides(b, shape);
  StridedLoop<4> loop(shape, {&out.strides(), &cs, &as, &bs});
  const bool* pc = static_cast<const bool*>(cond.raw_data());
  visit<kAllDTypes>(out.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    T* po = static_cast<T*>(out.raw_data());
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    for_rows(loop, [&](std::array<int64_t, 4> off, int64_t n, std::array<int64_t, 4> st) {
      for (int64_t j = 0; j < n; ++j)
        po[off[0] + j * st[0]] = pc[off[1] + j * st[1]] ? pa[off[2] + j * st[2]] : pb[off[3] + j * st[3]];
    });
  });
}

void masked_fill_out(const Tensor& out, const Tensor& x, const Tensor& mask, Scalar s) {
  where_out(out, mask, scalar_like(s, out.dtype()), x);
}

void fill_out(const Tensor& out, Scalar value) {
  if (out.is_contiguous()) return detail::fill_contiguous(out, value);
  StridedLoop<1> loop(out.shape(), {&out.strides()});
  visit<kAllDTypes>(out.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(out.raw_data());
    T v = value.to<T>();
    loop.for_each_row([&](std::array<int64_t, 1> off, int64_t n, std::array<int64_t, 1> st) {
      for (int64_t j = 0; j < n; ++j) p[off[0] + j * st[0]] = v;
    });
  });
}

Tensor cast(const Tensor& x, DType dtype) {
  return x.dtype() == dtype ? x : contiguous_copy(x, dtype);
}

bool has_nan(const Tensor& x) {
  if (!is_floating(x.dtype()) || x.numel() == 0) return false;
  bool found = false;
  StridedLoop<1> loop(x.shape(), {&x.strides()});
  constexpr DTypeSet floating = kFloatingStd | dtype_bit(kBFloat16) | dtype_bit(kFloat16);
  visit<floating>(x.dtype(), "has_nan", [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(x.raw_data());
    loop.for_each_row([&](std::array<int64_t, 1> off, int64_t n, std::array<int64_t, 1> st) {
      for (int64_t j = 0; j < n; ++j) {
        if constexpr (is_reduced_float_v<T>) found |= std::isnan(static_cast<float>(p[off[0] + j * st[0]]));
        else found |= std::isnan(p[off[0] + j * st[0]]);
      }
    });
  });
  return found;
}

}  // namespace weft::kernels
