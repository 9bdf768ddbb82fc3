// Logical and bitwise ops: bool results or integral bits, never differentiable.
#pragma once

#include "framework/tensor.h"

namespace weft {

// Any dtype, read as truth (nonzero is true); the result is bool.
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);

// Bool and integral tensors only, with torch's promotion (bool & int is int); on bool they are the
// logical ops.
Tensor bitwise_and(const Tensor& a, const Tensor& b);
Tensor bitwise_or(const Tensor& a, const Tensor& b);
Tensor bitwise_xor(const Tensor& a, const Tensor& b);
Tensor bitwise_and(const Tensor& a, Scalar b);
Tensor bitwise_or(const Tensor& a, Scalar b);
Tensor bitwise_xor(const Tensor& a, Scalar b);
Tensor bitwise_not(const Tensor& x);

}  // namespace weft
