// Elementwise binary ops with broadcasting and type promotion; comparisons return bool.
#pragma once

#include <memory>

#include "framework/tensor.h"

namespace weft {

// torch.result_type: the dtype two operands compute in. Tensors of equal standing promote
// (bool < int64 < float32 < float64); a 0-dim tensor next to a dimensioned one counts only when its
// category (bool < integral < floating) is higher, so float32[3] + float64 0-dim is float32 while
// int64[3] + float64 0-dim is float64. A number counts as less than any tensor: its category only.
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, Scalar b);

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor add(const Tensor& a, Scalar b);
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor sub(const Tensor& a, Scalar b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, Scalar b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, Scalar b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& x, Scalar exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// With a number: as with a 0-d tensor holding it (a float number makes an integral tensor float32).
Tensor maximum(const Tensor& a, Scalar b);
Tensor minimum(const Tensor& a, Scalar b);

Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, Scalar b);
Tensor ne(const Tensor& a, Scalar b);
Tensor lt(const Tensor& a, Scalar b);
Tensor le(const Tensor& a, Scalar b);
Tensor gt(const Tensor& a, Scalar b);
Tensor ge(const Tensor& a, Scalar b);

// Elementwise math with torch's promotion. atan2 and hypot take floating inputs (atan2 also integral
// ones, as float32); remainder has the sign of b (Python's %), fmod the sign of a; both refuse an
// integral division by zero; lerp is start + weight * (end - start) on floating tensors.
Tensor atan2(const Tensor& a, const Tensor& b);
Tensor hypot(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, Scalar b);
Tensor remainder(Scalar a, const Tensor& b);
Tensor fmod(const Tensor& a, const Tensor& b);
Tensor fmod(const Tensor& a, Scalar b);
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);
Tensor lerp(const Tensor& start, const Tensor& end, Scalar weight);
// cond ? a : b, broadcasting all three; cond must be bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with `value` wherever mask (bool) is true; x and mask broadcast together, as in torch.
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);

namespace autograd { class Node; }
namespace detail {
// `value` as it is written into a tensor of `dtype` (masked_fill, fill_, clamp's bounds), checked as
// torch's checked conversion: a value the dtype cannot hold (300 or NaN for int8, 1e6 for float16)
// raises a weft::Error naming `op` instead of an undefined conversion; infinities fit the floating
// dtypes, every number fits bool, and uint8 also takes the integers -255..-1, which wrap (-1 is 255).
Scalar checked_scalar(Scalar value, DType dtype, const char* op);

// mul's backward record for a * b (null when neither needs a gradient): b is saved for a's gradient,
// a for b's. In place (a *= b) a is about to be overwritten, so a copy of it is saved instead, and b,
// when it shares a's storage, as an output alias. Shared by mul and Tensor::mul_.
std::shared_ptr<autograd::Node> mul_node(const Tensor& a, const Tensor& b, bool in_place);
}  // namespace detail

}  // namespace weft
