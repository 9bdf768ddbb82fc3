// Elementwise kernels: strided reference loops for every dtype, plus contiguous fast paths that the
// compiler vectorises and OpenMP splits above a grain size. No autograd here.
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace weft::kernels {

// Below this many elements a loop runs on the calling thread: small ops pay no OpenMP fork.
inline constexpr int64_t kParallelGrain = 32768;

enum class UnaryOp : uint8_t {
  Neg, Abs, Exp, Log, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Relu, Gelu, GeluTanh, Silu, Sign, Reciprocal,
  Pow,    // x ^ p.a
  Clamp,  // min(max(x, p.a), p.b) as torch computes it (so p.b wins when p.a > p.b); a missing bound is
          // +-infinity (or the integer limit)
  Erf, Erfinv, Log1p, Expm1, Log2, Log10, Sinh, Cosh, Asin, Acos, Atan, Asinh, Acosh, Atanh, Frac,
  Floor, Ceil, Round, Trunc,  // integral inputs pass through; Round is half to even
  BitNot,                     // bool and integral only: logical not of bool, ~ of integers
};

struct UnaryParams {
  double a = 0, b = 0;
  bool has_a = true, has_b = true;
};

// out[i] = op(x[i]). x is broadcast to out's shape; both have the same dtype; out may be strided
// (in-place ops pass the tensor itself).
void unary_out(UnaryOp op, const Tensor& out, const Tensor& x, const UnaryParams& p = {});
// A new contiguous tensor of x's shape and dtype.
Tensor unary(UnaryOp op, const Tensor& x, const UnaryParams& p = {});

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Max, Min,  // Add/Sub scale b by alpha
  Eq, Ne, Lt, Le, Gt, Ge,             // write bool
  BitAnd, BitOr, BitXor,              // bool and integral only
  Remainder,                          // a - b * floor(a / b): the sign of b, Python's %
  Fmod,                               // a - b * trunc(a / b): the sign of a, C's fmod
  Atan2, Hypot,                       // floating only
  // Fused backward formulas: a is the incoming gradient, b the saved input x or output y.
  ReluGrad,      // a * (y > 0)
  SigmoidGrad,   // a * y * (1 - y)
  TanhGrad,      // a * (1 - y^2)
  GeluGrad,      // a * d/dx gelu(x) (erf form)
  GeluTanhGrad,  // a * d/dx gelu(x) (tanh form)
  SiluGrad,      // a * d/dx silu(x)
  ScaledSub,     // alpha * (a - b): mse_loss's gradient in one pass
};

inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq && op <= BinaryOp::Ge; }

// out[i] = op(a[i], b[i]) with a and b broadcast to out's shape. a and b share one dtype T; out
// has dtype T, or bool for comparisons. out may be strided and may be a itself.
void binary_out(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha = 1.0);
// The same with b (or a, when scalar_first) a number converted to a's dtype.
void binary_scalar_out(BinaryOp op, const Tensor& out, const Tensor& a, Scalar s, bool scalar_first = false,
                       double alpha = 1.0);
// New contiguous results of the broadcast shape.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor binary_scalar(BinaryOp op, const Tensor& a, Scalar s, bool scalar_first = false, double alpha = 1.0);

// Float32 contiguous span kernels (fast_spans.cpp, over kernels/vector_math.h): vectorised, no libm
// calls, the avx512 or avx2+fma copy when the CPU has it. out[i] = op(x[i]), or op(a[i], b[i])
// (alpha scales b for Add and Sub); out may be x, a or b but must not partly overlap them. nullptr for ops without
// one (Exp, Tanh, Sigmoid, Silu, Gelu; Add, Sub, Mul, Div, SiluGrad, GeluGrad have one).
using UnarySpan = void (*)(float* out, const float* x, int64_t n);
using BinarySpan = void (*)(float* out, const float* a, const float* b, float alpha, int64_t n);
UnarySpan float32_span(UnaryOp op);
BinarySpan float32_span(BinaryOp op);
// The sum of x[0..n), in float lanes block by block and double across blocks (Note [Float32 sums]).
double float32_sum(const float* x, int64_t n);

// out = cond ? a : b; a, b and out share a dtype, cond is bool; all broadcast to out's shape.
void where_out(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
// out = cond ? s : x (masked_fill), same rules.
void masked_fill_out(const Tensor& out, const Tensor& x, const Tensor& mask, Scalar s);
// Writes `value` into every element of (possibly strided) out.
void fill_out(const Tensor& out, Scalar value);

// x itself when it already has `dtype`, else a contiguous converted copy.
Tensor cast(const Tensor& x, DType dtype);
// True when any element is NaN (false for integral dtypes).
bool has_nan(const Tensor& x);

}  // namespace weft::kernels
