// Autocast's state (torch.autocast("cpu")): a thread-local switch, its lower-precision dtype, the
// guards' nesting depth and the scope's cache of weight casts. ops/autocast.h applies the policy.
#pragma once

#include "framework/tensor.h"

namespace weft {

class AutocastMode {
 public:
  // Read at the top of every op on autocast's lists: a %fs-relative load, as GradMode's.
  static bool is_enabled() { return enabled_; }
  static DType dtype() { return dtype_; }
  // Guards alive on this thread (torch's autocast nesting); the cache lives while it is above 0.
  static int depth() { return depth_; }

 private:
  friend class AutocastGuard;
  friend class AutocastSuspend;
  [[gnu::tls_model("initial-exec")]] static constinit thread_local bool enabled_;
  [[gnu::tls_model("initial-exec")]] static constinit thread_local DType dtype_;
  static constinit thread_local int depth_;
};

inline bool autocast_enabled() { return AutocastMode::is_enabled(); }
// The dtype that the lower-precision ops run in while autocast is enabled.
inline DType autocast_dtype() { return AutocastMode::dtype(); }

// torch.autocast("cpu", dtype=..., enabled=...) for its scope: matmul, linear, bmm, addmm, attention
// and convolutions run in `dtype`; softmax, norms, losses and sum/mean in float32 (ops/autocast.h).
// Guards nest, each restoring what it found; `enabled = false` turns autocast off inside an enabled
// scope. Only bfloat16 is supported (as torch 1.13's CPU autocast): another dtype is an error. When
// the outermost guard ends, the scope's cached weight casts are dropped.
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype = DType::BFloat16, bool enabled = true);
  // autocast(enabled=...) keeping the current dtype: AutocastGuard off(false).
  explicit AutocastGuard(bool enabled) : AutocastGuard(AutocastMode::dtype(), enabled) {}
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool previous_enabled_;
  DType previous_dtype_;
};

// Turns autocast off for its scope without ending it (the cache stays): an op that autocast
// already cast runs its body under it, as PyTorch's autocast kernels call below the autocast key,
// and backward runs under it, so gradients take the dtypes the forward chose.
class AutocastSuspend {
 public:
  AutocastSuspend() : previous_(AutocastMode::enabled_) { AutocastMode::enabled_ = false; }
  ~AutocastSuspend() { AutocastMode::enabled_ = previous_; }
  AutocastSuspend(const AutocastSuspend&) = delete;
  AutocastSuspend& operator=(const AutocastSuspend&) = delete;

 private:
  bool previous_;
};

namespace detail {
// The scope's cast of the leaf `weight` to `dtype`, or an undefined tensor: a miss when none was
// made, when the weight was written since (its version moved), or when grad mode is on and the
// cached cast was made without history (it would cut the weight off from its gradient).
Tensor autocast_cached_cast(const Tensor& weight, DType dtype);
void autocast_cache_cast(const Tensor& weight, const Tensor& cast);
// Entries in the calling thread's cache (tests).
size_t autocast_cache_size();
}  // namespace detail

}  // namespace weft
