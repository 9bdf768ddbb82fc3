// Names of dtypes, promotion, and the visitor's error.
#include "framework/dtype.h"

#include <string>

namespace weft {

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
#define WEFT_DTYPE_NAME(NAME, T, STR) \
  case DType::NAME: return STR;
    WEFT_FORALL_DTYPES(WEFT_DTYPE_NAME)
#undef WEFT_DTYPE_NAME
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& out, DType dtype) { return out << dtype_name(dtype); }

namespace {
// Bits of the integral part of an integral dtype (uint8 counts as 8, int8 as 7).
int integral_rank(DType d) {
  switch (d) {
    case DType::UInt8: return 1;
    case DType::Int8: return 1;
    case DType::Int32: return 2;
    default: return 3;  // int64
  }
}
}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::Bool) return b;
  if (b == DType::Bool) return a;
  const bool fa = is_floating(a), fb = is_floating(b);
  if (fa != fb) return fa ? a : b;
  if (fa) {  // both floating, different
    if (is_reduced_float(a) && is_reduced_float(b)) return DType::Float32;
    if (a == DType::Float64 || b == DType::Float64) return DType::Float64;
    return DType::Float32;  // float32 with a 16-bit float
  }
  const int ra = integral_rank(a), rb = integral_rank(b);
  if (ra != rb) return ra > rb ? a : b;
  return DType::Int32;  // uint8 with int8: PyTorch's int16, the next dtype weft has
}

std::string dtype_set_names(DTypeSet set) {
  std::string out;
  int count = 0, total = 0;
  for (int i = 0; i < kNumDTypes; ++i) total += (set >> i) & 1;
  for (int i = 0; i < kNumDTypes; ++i) {
    if (!((set >> i) & 1)) continue;
    if (count > 0) out += count + 1 == total ? (total > 2 ? ", or " : " or ") : ", ";
    out += dtype_name(static_cast<DType>(i));
    ++count;
  }
  return out;
}

void fail_dtype(DType dtype, DTypeSet accepted, const char* op) {
  if (static_cast<int>(dtype) >= kNumDTypes) WEFT_ERROR(op ? op : "dtype dispatch", ": unknown dtype code ", static_cast<int>(dtype));
  WEFT_ERROR(op ? op : "dtype dispatch", ": expected a tensor of dtype ", dtype_set_names(accepted), " but got ",
             dtype_name(dtype));
}

}  // namespace weft
