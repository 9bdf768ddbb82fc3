// Decoding and encoding the elements weft's file formats store. See Note [Stored integer types].
#include "nn/io/elements.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "autograd/grad_mode.h"
#include "framework/factories.h"

namespace weft::io::detail {
namespace {

template <class S, class D>
void widen(const char* src, D* dst, int64_t n, bool swap) {
  for (int64_t i = 0; i < n; ++i) {
    char raw[sizeof(S)];
    std::memcpy(raw, src + i * sizeof(S), sizeof(S));
    if (swap) std::reverse(raw, raw + sizeof(S));
    S value;
    std::memcpy(&value, raw, sizeof(S));
    dst[i] = static_cast<D>(value);
  }
}

}  // namespace

StoredType stored_type_of(DType dtype) {
  switch (dtype) {
    case DType::Bool: return {Kind::Bool, 1};
    case DType::Int64: return {Kind::Int, 8};
    case DType::Float32: return {Kind::Float, 4};
    case DType::Float64: return {Kind::Float, 8};
  }
  WEFT_ERROR("stored_type_of: unknown dtype ", static_cast<int>(dtype));
}

Tensor decode_elements(std::string_view data, StoredType type, const Shape& shape) {
  Tensor out = empty(shape, dtype(type.dtype()));
  const int64_t n = out.numel();
  const char* src = data.data();
  const bool swap = type.big_endian && type.size > 1;
  if (type.kind == Kind::Bool) {
    bool* dst = out.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0;  // any nonzero byte is true, as in NumPy
  } else if (type.kind == Kind::Float && type.size == 4) {
    widen<float>(src, out.data_ptr<float>(), n, swap);
  } else if (type.kind == Kind::Float) {
    widen<double>(src, out.data_ptr<double>(), n, swap);
  } else if (type.kind == Kind::UInt) {
    widen<uint8_t>(src, out.data_ptr<int64_t>(), n, false);
  } else if (type.size == 4) {
    widen<int32_t>(src, out.data_ptr<int64_t>(), n, swap);
  } else {
    widen<int64_t>(src, out.data_ptr<int64_t>(), n, swap);
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
