// The .npy format (versions 1.0, 2.0, 3.0) on bytes in memory, shared by .npy files and the
// members of .npz archives. Internal.
#pragma once

#include <string>
#include <string_view>

#include "framework/tensor.h"

namespace weft::io::detail {

// The array in `bytes`; `op` and `path` name the file in errors.
Tensor decode_npy(std::string_view bytes, const char* op, const std::string& path);
// `tensor` as a version 1.0 .npy (2.0 when the header needs it), C order.
std::string encode_npy(const Tensor& tensor, const char* op);

}  // namespace weft::io::detail
