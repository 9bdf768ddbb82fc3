// The .npy format: a magic string, a version, a Python-literal header naming dtype, order and
// shape, then the raw elements (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
#include "nn/io/npy_format.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "nn/io/bytes.h"
#include "nn/io/elements.h"

namespace weft::io::detail {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

// The header is a Python dict literal written by NumPy, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// Only the three keys NumPy writes are read; their values are located by key.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const char* op, const std::string& path) : text_(text), op_(op), path_(path) {}

  NpyLayout parse() {
    NpyLayout h;
    h.type = parse_descr(value_of("descr"));
    std::string_view order = value_of("fortran_order");
    check(order.starts_with("True") || order.starts_with("False"), "fortran_order is neither True nor False");
    h.fortran_order = order.starts_with("True");
    h.shape = parse_shape(value_of("shape"));
    return h;
  }

 private:
  void check(bool ok, const char* what) const {
    WEFT_CHECK(ok, op_, ": '", path_, "' has an invalid .npy header (", what, "): ", text_);
  }
  // The text after "'key':" with leading spaces skipped.
  std::string_view value_of(std::string_view key) const {
    std::string quoted(1, '\'');
    quoted.append(key).push_back('\'');
    size_t at = text_.find(quoted);
    check(at != std::string_view::npos, "a key is missing");
    at = text_.find(':', at + quoted.size());
    check(at != std::string_view::npos, "a key has no value");
    do ++at;
    while (at < text_.size() && text_[at] == ' ');
    return text_.substr(at);
  }
  StoredType parse_descr(std::string_view v) const {
    WEFT_CHECK(v.starts_with("'"), op_, ": '", path_, "' holds a structured array (descr ", v.substr(0, v.find('}')),
               "); only plain arrays of f2 f4 f8 i1 i4 i8 u1 b1 are supported");
    std::string_view descr = v.substr(1, v.find('\'', 1) - 1);
    check(descr.size() >= 3, "descr is too short");
    const char order = descr[0];
    const std::string_view code = descr.substr(1);
    StoredType t{Kind::Float, 0, order == '>'};
    if (code == "f2" || code == "f4" || code == "f8") t = {Kind::Float, code[1] - '0', order == '>'};
    else if (code == "i8" || code == "i4" || code == "i1") t = {Kind::Int, code[1] - '0', order == '>'};
    else if (code == "u1") t = {Kind::UInt, 1};
    else if (code == "b1") t = {Kind::Bool, 1};
    WEFT_CHECK(t.size > 0 && (order == '<' || order == '>' || order == '|' || order == '='), op_, ": '", path_,
               "' holds dtype '", descr, "'; supported are float16, float32, float64, int8, int32, int64, uint8 and "
               "bool (f2 f4 f8 i1 i4 i8 u1 b1)");
    return t;
  }
  Shape parse_shape(std::string_view v) const {
    check(v.starts_with("("), "shape is not a tuple");
    size_t close = v.find(')');
    check(close != std::string_view::npos, "shape is not a tuple");
    Shape shape;
    std::string_view inner = v.substr(1, close - 1);
    size_t i = 0;
    while (i < inner.size()) {
      while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
      if (i == inner.size()) break;
      check(std::isdigit(static_cast<unsigned char>(inner[i])), "shape holds something other than integers");
      int64_t d = 0;
      while (i < inner.size() && std::isdigit(static_cast<unsigned char>(inner[i]))) {
        check(d < (int64_t{1} << 56), "a dimension is too large");
        d = d * 10 + (inner[i++] - '0');
      }
      shape.push_back(d);
    }
    return shape;
  }

  std::string_view text_;
  const char* op_;
  const std::string& path_;
};

std::string descr_of(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "|b1";
    case DType::Int64: return "<i8";
    case DType::Float32: return "<f4";
    case DType::Float64: return "<f8";
    case DType::Float16: return "<f2";
    case DType::Int32: return "<i4";
    case DType::Int8: return "|i1";
    case DType::UInt8: return "|u1";
    case DType::BFloat16: break;
  }
  WEFT_ERROR("save_npy: NumPy has no ", dtype_name(dtype), " type; convert the tensor to float32 first, or "
             "write it with save_safetensors (BF16)");
}

// The layout from the header at the start of `in` (which may hold only the header), and the
// number of data bytes it declares.
std::pair<NpyLayout, uint64_t> parse_layout(const ByteReader& in, std::string_view bytes, const char* op,
                                            const std::string& path) {
  WEFT_CHECK(bytes.starts_with(kMagic), op, ": '", path, "' is not a .npy array (no \\x93NUMPY magic)");
  const auto major = in.le<uint8_t>(6);
  WEFT_CHECK(major >= 1 && major <= 3, op, ": '", path, "' is .npy format version ", int(major),
             "; supported are versions 1, 2 and 3");
  const uint64_t header_len = major == 1 ? in.le<uint16_t>(8) : in.le<uint32_t>(8);
  const uint64_t header_start = major == 1 ? 10 : 12;
  NpyLayout h = HeaderParser(in.slice(header_start, header_len), op, path).parse();
  h.data_offset = header_start + header_len;
  const int64_t numel = checked_numel(h.shape, h.type.size, op, path);
  return {h, static_cast<uint64_t>(numel) * h.type.size};
}

void check_data_size(const NpyLayout& h, uint64_t data_bytes, uint64_t file_size, const char* op,
                     const std::string& path) {
  const uint64_t held = file_size - std::min(file_size, h.data_offset);
  WEFT_CHECK(held == data_bytes, op, ": '", path, "' declares shape ", h.shape, " of ", h.type.size,
             "-byte elements (", data_bytes, " bytes) but holds ", held, " bytes of data");
}

}  // namespace

NpyLayout read_npy_layout(const std::string& path, const char* op) {
  std::ifstream file(path, std::ios::binary);
  WEFT_CHECK(file.good(), op, ": cannot open '", path, "' for reading: ", std::strerror(errno));
  // The header's length is in its first 12 bytes; then read exactly the header.
  std::string head(12, '\0');
  file.read(head.data(), 12);
  head.resize(static_cast<size_t>(file.gcount()));
  if (head.size() == 12 && std::string_view(head).starts_with(kMagic)) {
    uint64_t len = head[6] == 1 ? static_cast<uint8_t>(head[8]) | static_cast<uint8_t>(head[9]) << 8
                                : ByteReader(head, op, path).le<uint32_t>(8);
    len = std::min<uint64_t>(len, uint64_t{1} << 32);
    head.resize(12 + len);
    file.read(head.data() + 12, static_cast<std::streamsize>(len));
    head.resize(12 + static_cast<size_t>(file.gcount()));
  }
  ByteReader in(head, op, path);
  auto [layout, data_bytes] = parse_layout(in, head, op, path);
  check_data_size(layout, data_bytes, std::filesystem::file_size(path), op, path);
  return layout;
}

Tensor decode_npy(std::string_view bytes, const char* op, const std::string& path) {
  ByteReader in(bytes, op, path);
  auto [h, data_bytes] = parse_layout(in, bytes, op, path);
  check_data_size(h, data_bytes, in.size(), op, path);
  const uint64_t data_start = h.data_offset;
  std::string_view data = in.slice(data_start, data_bytes);
  if (!h.fortran_order) return decode_elements(data, h.type, h.shape);
  // Fortran order is C order of the reversed shape; transposing back gives the array.
  Shape reversed, dims;
  for (int64_t d = static_cast<int64_t>(h.shape.size()) - 1; d >= 0; --d) {
    reversed.push_back(h.shape[d]);
    dims.push_back(d);
  }
  NoGradGuard no_grad;
  return decode_elements(data, h.type, reversed).permute(dims).contiguous();
}

std::string encode_npy(const Tensor& tensor, const char* op) {
  std::string data = encode_elements(tensor, op);
  std::ostringstream dict;
  dict << "{'descr': '" << descr_of(tensor.dtype()) << "', 'fortran_order': False, 'shape': (";
  for (int64_t i = 0; i < tensor.dim(); ++i) dict << (i ? ", " : "") << tensor.shape()[i];
  dict << (tensor.dim() == 1 ? ",), }" : "), }");
  std::string header = dict.str();
  // NumPy pads the header with spaces and a newline so that the data starts 64-byte aligned.
  const bool v2 = header.size() + 11 + 64 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  header.append(63 - (prefix + header.size()) % 64, ' ');
  header += '\n';
  std::string out(kMagic);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  if (v2) append_le<uint32_t>(out, static_cast<uint32_t>(header.size()));
  else append_le<uint16_t>(out, static_cast<uint16_t>(header.size()));
  return out + header + data;
}

}  // namespace weft::io::detail
