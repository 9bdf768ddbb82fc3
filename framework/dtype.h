// DType: the element types weft stores, their sizes, names and PyTorch's promotion rules, and the
// one visitor that turns a runtime dtype into a C++ type for kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <type_traits>

#include "framework/error.h"
#include "framework/float16.h"

namespace weft {

// Every dtype once: (enumerator, C++ type, name). The enum codes are stable (checkpoints and
// collectives send them), so new dtypes are appended.
#define WEFT_FORALL_DTYPES(_)       \
  _(Bool, bool, "bool")             \
  _(Int64, int64_t, "int64")        \
  _(Float32, float, "float32")      \
  _(Float64, double, "float64")     \
  _(UInt8, uint8_t, "uint8")        \
  _(Int8, int8_t, "int8")           \
  _(Int32, int32_t, "int32")        \
  _(BFloat16, BFloat16, "bfloat16") \
  _(Float16, Half, "float16")

#define WEFT_DTYPE_ENUMERATOR(NAME, T, STR) NAME,
enum class DType : uint8_t { WEFT_FORALL_DTYPES(WEFT_DTYPE_ENUMERATOR) };
#undef WEFT_DTYPE_ENUMERATOR
inline constexpr int kNumDTypes = 9;

inline constexpr DType kBool = DType::Bool;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kInt8 = DType::Int8;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat16 = DType::Float16;

// Inline: every data access and allocation asks. Bool is stored as one byte.
inline size_t element_size(DType dtype) {
#define WEFT_DTYPE_SIZE(NAME, T, STR) sizeof(T),
  constexpr size_t kSizes[] = {WEFT_FORALL_DTYPES(WEFT_DTYPE_SIZE)};
#undef WEFT_DTYPE_SIZE
  return kSizes[static_cast<uint8_t>(dtype)];
}
std::string_view dtype_name(DType dtype);
std::ostream& operator<<(std::ostream& out, DType dtype);

inline bool is_reduced_float(DType dtype) { return dtype == DType::BFloat16 || dtype == DType::Float16; }
inline bool is_floating(DType dtype) {
  return dtype == DType::Float32 || dtype == DType::Float64 || is_reduced_float(dtype);
}
inline bool is_integral(DType dtype, bool include_bool) {
  return dtype == DType::Int64 || dtype == DType::Int32 || dtype == DType::Int8 || dtype == DType::UInt8 ||
         (include_bool && dtype == DType::Bool);
}

// torch.promote_types for two tensors of equal standing: bool < integral < floating, and within a
// category the wider type. Mixed pairs that neither holds go up: bfloat16 with float16 gives
// float32 (as in PyTorch); uint8 with int8 gives int32, where PyTorch gives int16, which weft lacks.
DType promote_types(DType a, DType b);

// The dtype a Python-style scalar takes when it meets a tensor of `tensor_dtype`: a floating
// scalar lifts integral tensors to the default float (float32); otherwise the tensor's dtype wins.
inline DType promote_with_scalar(DType tensor_dtype, bool scalar_is_floating) {
  if (scalar_is_floating && !is_floating(tensor_dtype)) return DType::Float32;
  if (!scalar_is_floating && tensor_dtype == DType::Bool) return DType::Int64;
  return tensor_dtype;
}

template <class T>
struct dtype_of;
#define WEFT_DTYPE_OF(NAME, T, STR) \
  template <>                       \
  struct dtype_of<T> { static constexpr DType value = DType::NAME; };
WEFT_FORALL_DTYPES(WEFT_DTYPE_OF)
#undef WEFT_DTYPE_OF
template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

// Sets of dtypes a kernel takes, as bit masks over the enum codes.
using DTypeSet = uint32_t;
constexpr DTypeSet dtype_bit(DType d) { return DTypeSet{1} << static_cast<uint8_t>(d); }
inline constexpr DTypeSet kAllDTypes = (DTypeSet{1} << kNumDTypes) - 1;
inline constexpr DTypeSet kFloatingStd = dtype_bit(DType::Float32) | dtype_bit(DType::Float64);
// The four dtypes weft began with, which kernels not yet taught the others take.
inline constexpr DTypeSet kBasicDTypes = dtype_bit(DType::Bool) | dtype_bit(DType::Int64) | kFloatingStd;
// Every dtype with a built-in C++ type: the sets arithmetic kernels are instantiated for.
// bfloat16 and float16 compute in float32 instead (kernels convert around the call).
inline constexpr DTypeSet kStdArith =
    kAllDTypes & ~(dtype_bit(DType::BFloat16) | dtype_bit(DType::Float16));
inline constexpr DTypeSet kStdNumeric = kStdArith & ~dtype_bit(DType::Bool);

// "float32 or float64": the dtypes of `set`, for error messages.
std::string dtype_set_names(DTypeSet set);

[[noreturn]] void fail_dtype(DType dtype, DTypeSet accepted, const char* op);

// Calls f(T{}) with T the C++ type of `dtype` when `dtype` is in `kSet`; otherwise throws, naming
// `op`, the dtype given and the ones the kernel takes. The one dispatch every kernel goes through;
// only the types of kSet are instantiated.
template <DTypeSet kSet, class F>
decltype(auto) visit(DType dtype, const char* op, F&& f) {
  switch (dtype) {
#define WEFT_VISIT_CASE(NAME, T, STR)                                        \
  case DType::NAME:                                                          \
    if constexpr ((kSet & dtype_bit(DType::NAME)) != 0) return f(T{});      \
    else break;
    WEFT_FORALL_DTYPES(WEFT_VISIT_CASE)
#undef WEFT_VISIT_CASE
  }
  fail_dtype(dtype, kSet, op);
}

// Kernels written for the first four dtypes (bool, int64, float32, float64); names `op` in the error.
template <class F>
decltype(auto) visit_dtype(DType dtype, const char* op, F&& f) {
  return visit<kBasicDTypes>(dtype, op, std::forward<F>(f));
}

// Kernels defined on float32 and float64 only; names `op` in the error.
template <class F>
decltype(auto) visit_floating(DType dtype, const char* op, F&& f) {
  return visit<kFloatingStd>(dtype, op, std::forward<F>(f));
}

// Numeric kernels of the first four dtypes (int64, float32, float64).
template <class F>
decltype(auto) visit_numeric(DType dtype, const char* op, F&& f) {
  return visit<kBasicDTypes & ~dtype_bit(DType::Bool)>(dtype, op, std::forward<F>(f));
}

}  // namespace weft
