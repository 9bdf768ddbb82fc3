// Autocast's cast policy: the table of ops that run in the lower-precision dtype or in float32, and
// autocast::call, the one place that casts an op's arguments by it. See Note [Autocast]. For op
// authors (not in ops.h); users take AutocastGuard from autograd/autocast_mode.h.
#pragma once

#include <cstdint>
#include <type_traits>

#include "autograd/autocast_mode.h"

namespace weft::autocast {

// kLower: float32 (and float16) arguments are cast to autocast's dtype; kFloat32: bfloat16 and
// float16 arguments are cast to float32. float64 and non-floating arguments are never cast.
enum class Policy : uint8_t { kLower, kFloat32 };

enum class Op : uint8_t {
  kMm, kBmm, kMatmul, kAddmm, kLinear, kScaledDotProductAttention, kConv1d, kConv2d, kConvTranspose2d,
  kSoftmax, kLogSoftmax, kLayerNorm, kRmsNorm, kCrossEntropy, kNllLoss, kMseLoss, kSum, kMean,
};

struct OpPolicy {
  Op op;
  const char* name;
  Policy policy;
};

// Note [Autocast]
// As torch.autocast("cpu", dtype=torch.bfloat16) (torch 1.13's op lists, with CUDA autocast's
// float32 list for the ops whose float32 accumulation matters here): the products run in bfloat16,
// the ops that sum many terms or exponentiate run in float32. An op not in this table runs in the
// dtypes it is given, with the usual promotion (a bfloat16 product added to a float32 residual is
// float32). The casts are ordinary recorded to_dtype ops, so gradients reach float32 weights in
// float32. Each listed op starts with `if (autocast_enabled()) return autocast::call(...)`: with
// autocast off that is one thread-local load and branch.
inline constexpr OpPolicy kPolicies[] = {
    {Op::kMm, "mm", Policy::kLower},
    {Op::kBmm, "bmm", Policy::kLower},
    {Op::kMatmul, "matmul", Policy::kLower},
    {Op::kAddmm, "addmm", Policy::kLower},
    {Op::kLinear, "linear", Policy::kLower},
    {Op::kScaledDotProductAttention, "scaled_dot_product_attention", Policy::kLower},
    {Op::kConv1d, "conv1d", Policy::kLower},
    {Op::kConv2d, "conv2d", Policy::kLower},
    {Op::kConvTranspose2d, "conv_transpose2d", Policy::kLower},
    {Op::kSoftmax, "softmax", Policy::kFloat32},
    {Op::kLogSoftmax, "log_softmax", Policy::kFloat32},
    {Op::kLayerNorm, "layer_norm", Policy::kFloat32},
    {Op::kRmsNorm, "rms_norm", Policy::kFloat32},
    {Op::kCrossEntropy, "cross_entropy", Policy::kFloat32},
    {Op::kNllLoss, "nll_loss", Policy::kFloat32},
    {Op::kMseLoss, "mse_loss", Policy::kFloat32},
    {Op::kSum, "sum", Policy::kFloat32},
    {Op::kMean, "mean", Policy::kFloat32},
};

constexpr Policy policy_of(Op op) { return kPolicies[static_cast<size_t>(op)].policy; }

// `t` cast as `policy` asks under the current autocast dtype (t itself when nothing changes). A
// float32 leaf that requires grad is cast once per scope (Note [Autocast cache]).
Tensor cast(const Tensor& t, Policy policy);

namespace detail {
template <class T>
decltype(auto) cast_argument(const T& argument, Policy policy) {
  if constexpr (std::is_same_v<T, Tensor>) return cast(argument, policy);
  else return (argument);  // a reference: shapes, scalars, options pass through untouched
}
}  // namespace detail

// fn(args...) with each Tensor argument cast by `op`'s policy, and autocast suspended inside, so
// that the ops fn calls (matmul's mm, cross_entropy's log_softmax) take the dtypes as they are.
template <class Fn, class... Args>
Tensor call(Op op, Fn fn, const Args&... args) {
  const Policy policy = policy_of(op);
  AutocastSuspend inside;
  return fn(detail::cast_argument(args, policy)...);
}

}  // namespace weft::autocast
