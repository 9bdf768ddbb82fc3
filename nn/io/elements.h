// The element types weft's file formats store and how they become weft tensors. Internal.
#pragma once

#include <string>
#include <string_view>

#include "framework/tensor.h"

namespace weft::io::detail {

// Note [Stored integer types]: files may hold int32 and uint8 arrays (labels, images), which
// weft has no dtype for; they load as int64 (every value is exact), as they would after PyTorch's
// `.long()`. Files are always written in weft's own dtypes: bool, int64, float32, float64.
enum class Kind { Float, Int, UInt, Bool };

struct StoredType {
  Kind kind;
  int size;                  // bytes per element in the file
  bool big_endian = false;   // only .npy can say '>'
  DType dtype() const {
    if (kind == Kind::Float) return size == 4 ? kFloat32 : kFloat64;
    return kind == Kind::Bool ? kBool : kInt64;
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
