// The element types weft's file formats store and how they become weft tensors. Internal.
#pragma once

#include <string>
#include <string_view>

#include "framework/tensor.h"

namespace weft::io::detail {

// Note [Stored integer types]: every stored type loads as the weft dtype of the same name (int32 as
// int32, uint8 as uint8, as PyTorch loads them), and every weft dtype is written as itself, except
// that .npy has no bfloat16.
enum class Kind { Float, BFloat, Int, UInt, Bool };

struct StoredType {
  Kind kind;
  int size;                  // bytes per element in the file
  bool big_endian = false;   // only .npy can say '>'
  DType dtype() const {
    switch (kind) {
      case Kind::Float: return size == 2 ? kFloat16 : size == 4 ? kFloat32 : kFloat64;
      case Kind::BFloat: return kBFloat16;
      case Kind::Int: return size == 1 ? kInt8 : size == 4 ? kInt32 : kInt64;
      case Kind::UInt: return kUInt8;
      case Kind::Bool: return kBool;
    }
    return kFloat32;
  }
};

// The stored type of a weft dtype when writing.
StoredType stored_type_of(DType dtype);

// A new contiguous tensor of `shape` from `data`, which holds exactly its elements in row-major
// order. The caller has checked data.size() == numel * type.size.
Tensor decode_elements(std::string_view data, StoredType type, const Shape& shape);

// The elements of `tensor` (a plain tensor, any strides) in row-major order, as stored_type_of
// its dtype. `op` names the caller in the error for DTensors.
std::string encode_elements(const Tensor& tensor, const char* op);

// numel of `shape` with each dimension checked non-negative and the product against overflow;
// `op` and `path` name the file in the error.
int64_t checked_numel(const Shape& shape, int element_size, const char* op, const std::string& path);

}  // namespace weft::io::detail
