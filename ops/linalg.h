// Linear algebra on oneDNN matmul (float32) with a reference kernel for every dtype.
#pragma once

#include "framework/tensor.h"

namespace weft {

Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
// torch.matmul's rules: 1-D, 2-D, batched with broadcasting.
Tensor matmul(const Tensor& a, const Tensor& b);
// beta * input + alpha * (a @ b)
Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta = 1, Scalar alpha = 1);
// x @ weight^T + bias; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
Tensor outer(const Tensor& a, const Tensor& b);

}  // namespace weft
