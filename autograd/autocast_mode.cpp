// Autocast's thread-local state, its guard and the scope's cache of weight casts.
#include "autograd/autocast_mode.h"

#include <unordered_map>

#include "autograd/grad_mode.h"

namespace weft {

[[gnu::tls_model("initial-exec")]] constinit thread_local bool AutocastMode::enabled_ = false;
[[gnu::tls_model("initial-exec")]] constinit thread_local DType AutocastMode::dtype_ = DType::BFloat16;
constinit thread_local int AutocastMode::depth_ = 0;

namespace {

// Note [Autocast cache]
// A weight used by several ops in one forward (a tied embedding, a layer applied twice) is cast once
// per scope, as torch.autocast's cache does: the entry holds the weight itself (so its address is
// never reused by another tensor while cached), its version when cast, and the cast, whose history
// leads back to the weight. Only float32 leaves that require grad are cached (ops/autocast.cpp),
// and the cache is dropped when the outermost guard ends, so memory lasts one scope.
struct CachedCast {
  Tensor weight;
  uint64_t version;
  Tensor cast;
};

// Function-local, so that nothing is constructed at load time (docs/architecture.md).
std::unordered_map<const TensorImpl*, CachedCast>& cache() {
  thread_local std::unordered_map<const TensorImpl*, CachedCast> casts;
  return casts;
}

}  // namespace

AutocastGuard::AutocastGuard(DType dtype, bool enabled)
    : previous_enabled_(AutocastMode::enabled_), previous_dtype_(AutocastMode::dtype_) {
  WEFT_CHECK(!enabled || dtype == DType::BFloat16, "autocast: expected dtype bfloat16 (the lower-precision dtype "
             "CPU autocast supports, as torch 1.13's) but got ", dtype_name(dtype));
  AutocastMode::enabled_ = enabled;
  if (enabled) AutocastMode::dtype_ = dtype;
  ++AutocastMode::depth_;
}

AutocastGuard::~AutocastGuard() {
  AutocastMode::enabled_ = previous_enabled_;
  AutocastMode::dtype_ = previous_dtype_;
  if (--AutocastMode::depth_ == 0) cache().clear();
}

namespace detail {

Tensor autocast_cached_cast(const Tensor& weight, DType dtype) {
  auto& casts = cache();
  auto it = casts.find(weight.impl_ptr().get());
  if (it == casts.end()) return Tensor();
  const CachedCast& entry = it->second;
  if (entry.version != weight.version() || entry.cast.dtype() != dtype) return Tensor();
  if (GradMode::is_enabled() && !entry.cast.requires_grad()) return Tensor();
  return entry.cast;
}

void autocast_cache_cast(const Tensor& weight, const Tensor& cast) {
  // Outside any guard (an op called under AutocastSuspend alone) nothing would clear the entry.
  if (AutocastMode::depth() == 0) return;
  cache().insert_or_assign(weight.impl_ptr().get(), CachedCast{weight, weight.version(), cast});
}

size_t autocast_cache_size() { return cache().size(); }

}  // namespace detail
}  // namespace weft
