// Decoding and encoding the elements weft's file formats store. See Note [Stored integer types].
#include "nn/io/elements.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "autograd/grad_mode.h"
#include "framework/factories.h"

namespace weft::io::detail {
namespace {

// n elements of `size` bytes from src to dst, each byte-reversed (a big-endian file).
void copy_swapped(const char* src, char* dst, int64_t n, int size) {
  for (int64_t i = 0; i < n; ++i) std::reverse_copy(src + i * size, src + (i + 1) * size, dst + i * size);
}

}  // namespace

StoredType stored_type_of(DType dtype) {
  const int size = static_cast<int>(element_size(dtype));
  switch (dtype) {
    case DType::Bool: return {Kind::Bool, 1};
    case DType::BFloat16: return {Kind::BFloat, 2};
    case DType::UInt8: return {Kind::UInt, 1};
    default: return {is_floating(dtype) ? Kind::Float : Kind::Int, size};
  }
}

Tensor decode_elements(std::string_view data, StoredType type, const Shape& shape) {
  Tensor out = empty(shape, dtype(type.dtype()));
  const int64_t n = out.numel();
  const char* src = data.data();
  const bool swap = type.big_endian && type.size > 1;
  if (type.kind == Kind::Bool) {
    bool* dst = out.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0;  // any nonzero byte is true, as in NumPy
  } else if (swap) {
    copy_swapped(src, static_cast<char*>(out.raw_data()), n, type.size);
  } else if (n > 0) {
    std::memcpy(out.raw_data(), src, static_cast<size_t>(n) * type.size);
  }
  return out;
}

std::string encode_elements(const Tensor& tensor, const char* op) {
  WEFT_CHECK(tensor.defined(), op, ": expected a defined tensor");
  WEFT_CHECK(!tensor.is_dtensor(), op, ": expected a plain tensor but got a DTensor of shape ", tensor.shape(),
             "; save its full_tensor() or its local shard");
  NoGradGuard no_grad;
  Tensor dense = tensor.contiguous();
  const size_t bytes = static_cast<size_t>(dense.numel()) * element_size(dense.dtype());
  std::string out(bytes, '\0');
  if (bytes > 0) std::memcpy(out.data(), dense.raw_data(), bytes);
  return out;
}

int64_t checked_numel(const Shape& shape, int element_size, const char* op, const std::string& path) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    WEFT_CHECK(d >= 0, op, ": '", path, "' declares a negative dimension in shape ", shape);
    WEFT_CHECK(d == 0 || numel <= std::numeric_limits<int64_t>::max() / element_size / d, op, ": '", path,
               "' declares shape ", shape, ", too large to address");
    numel *= d;
  }
  return numel;
}

}  // namespace weft::io::detail
