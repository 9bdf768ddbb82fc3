// autocast.cpp: the cast of one argument under autocast's policy (ops/autocast.h).
#include "ops/autocast.h"

#include "ops/copy_ops.h"

namespace weft::autocast {

// The table is indexed by Op: a row out of place would give an op another's policy.
static_assert([] {
  for (size_t i = 0; i < std::size(kPolicies); ++i)
    if (static_cast<size_t>(kPolicies[i].op) != i) return false;
  return true;
}());

Tensor cast(const Tensor& t, Policy policy) {
  // As torch's: only floating tensors other than float64 are eligible. A DTensor is left to the
  // op, whose own check names it.
  if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == kFloat64 || t.is_dtensor()) return t;
  const DType target = policy == Policy::kFloat32 ? kFloat32 : autocast_dtype();
  if (t.dtype() == target) return t;
  const bool cacheable = policy == Policy::kLower && t.dtype() == kFloat32 && t.is_leaf() && t.requires_grad();
  if (!cacheable) return to_dtype(t, target);
  if (Tensor hit = weft::detail::autocast_cached_cast(t, target); hit.defined()) return hit;
  Tensor y = to_dtype(t, target);
  weft::detail::autocast_cache_cast(t, y);
  return y;
}

}  // namespace weft::autocast
