// matmul.h: batched matrix product kernels (oneDNN for float32, a portable loop for every numeric dtype).
#pragma once

#include "framework/tensor.h"

namespace weft::kernels {

// out[b] = a[b] @ bm[b] (+ bias) for a [B, M, K] and bm [B, K, N] of one dtype, any strides (a batch
// stride may be 0); or out = a @ bm (+ bias) for 2-D a [M, K] and bm [K, N], without the caller
// making batch views. `bias`, when defined, broadcasts to [M, N]. Returns a contiguous [B, M, N]
// (or [M, N]). float32 runs on oneDNN's matmul, other numeric dtypes on bmm_reference. No autograd.
Tensor bmm(const Tensor& a, const Tensor& bm, const Tensor& bias = Tensor());

// x @ weight^T (+ bias) for 2-D x [R, in] and weight [out, in] of one dtype: the weight is read
// transposed through its strides, with no view made for it. Returns a contiguous [R, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// The route of a single float32 product (batch 1, up to 256^3 multiply-adds): dnnl_sgemm or a cached
// primitive; see Note [Single products through sgemm]. kAuto is the measured choice for this CPU;
// tests force each route so that both run on every host.
enum class SingleProductRoute { kAuto, kSgemm, kPrimitive };
void set_single_product_route(SingleProductRoute route);

// The route of a bfloat16 product: oneDNN's bfloat16 matmul or the float32 route over widened
// operands, rounded once; see Note [bfloat16 products on oneDNN]. kAuto is oneDNN where the CPU has
// AVX512-BF16; tests force each route so that both run on every AVX-512 host.
enum class Bf16ProductRoute { kAuto, kOneDnn, kWidened };
void set_bf16_product_route(Bf16ProductRoute route);

// The portable loop (blocked i-k-j, OpenMP over rows), for every numeric dtype.
Tensor bmm_reference(const Tensor& a, const Tensor& bm, const Tensor& bias = Tensor());

}  // namespace weft::kernels
