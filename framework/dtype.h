// DType: the element types weft stores, their sizes, names and PyTorch's promotion rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>

#include "framework/error.h"

namespace weft {

// The order matters: promotion picks the larger category. Room is left for bfloat16 storage.
enum class DType : uint8_t { Bool = 0, Int64 = 1, Float32 = 2, Float64 = 3 };

inline constexpr DType kBool = DType::Bool;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;

// Inline: every data access and allocation asks. Bool is stored as one byte.
inline size_t element_size(DType dtype) {
  constexpr size_t kSizes[] = {sizeof(bool), sizeof(int64_t), sizeof(float), sizeof(double)};
  return kSizes[static_cast<uint8_t>(dtype)];
}
std::string_view dtype_name(DType dtype);
std::ostream& operator<<(std::ostream& out, DType dtype);

inline bool is_floating(DType dtype) { return dtype == DType::Float32 || dtype == DType::Float64; }
inline bool is_integral(DType dtype, bool include_bool) {
  return dtype == DType::Int64 || (include_bool && dtype == DType::Bool);
}

// PyTorch's result_type for two tensors of equal standing: bool < int64 < float32 < float64.
inline DType promote_types(DType a, DType b) { return a > b ? a : b; }

// The dtype a Python-style scalar takes when it meets a tensor of `tensor_dtype`: a floating
// scalar lifts integral tensors to the default float (float32); otherwise the tensor's dtype wins.
inline DType promote_with_scalar(DType tensor_dtype, bool scalar_is_floating) {
  if (scalar_is_floating && !is_floating(tensor_dtype)) return DType::Float32;
  if (!scalar_is_floating && tensor_dtype == DType::Bool) return DType::Int64;
  return tensor_dtype;
}

template <class T>
struct dtype_of;
template <>
struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <>
struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <>
struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <>
struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

// Calls f(T{}) with T the C++ type of `dtype`; kernels write `[&](auto tag) { using T = ... }`.
template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Bool: return f(bool{});
    case DType::Int64: return f(int64_t{});
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
  }
  WEFT_ERROR("unknown dtype ", static_cast<int>(dtype));
}

// As visit_dtype, for kernels defined on floating types only; names `op` in the error.
template <class F>
decltype(auto) visit_floating(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: break;
  }
  WEFT_ERROR(op, ": expected a floating point tensor (float32 or float64) but got ", dtype_name(dtype));
}

// As visit_dtype, for numeric kernels (everything but bool).
template <class F>
decltype(auto) visit_numeric(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Int64: return f(int64_t{});
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: break;
  }
  WEFT_ERROR(op, ": expected a numeric tensor (int64, float32 or float64) but got ", dtype_name(dtype));
}

}  // namespace weft
