// The .npy format (versions 1.0, 2.0, 3.0) on bytes in memory, shared by .npy files and the
// members of .npz archives. Internal.
#pragma once

#include <string>
#include <string_view>

#include "framework/tensor.h"
#include "nn/io/elements.h"

namespace weft::io::detail {

// What a .npy header says and where the elements start.
struct NpyLayout {
  StoredType type{Kind::Float, 4};
  bool fortran_order = false;
  Shape shape;
  uint64_t data_offset = 0;
};

// The layout of the .npy file at `path`, read from its header; the file's size is checked
// against it.
NpyLayout read_npy_layout(const std::string& path, const char* op);

// The array in `bytes`; `op` and `path` name the file in errors.
Tensor decode_npy(std::string_view bytes, const char* op, const std::string& path);
// `tensor` as a version 1.0 .npy (2.0 when the header needs it), C order.
std::string encode_npy(const Tensor& tensor, const char* op);

}  // namespace weft::io::detail
