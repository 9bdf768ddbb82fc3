// safetensors files: an 8-byte little-endian header size, a JSON header naming each tensor's dtype,
// shape and byte range, then the data (https://github.com/huggingface/safetensors, "Format").
#include <nlohmann/json.hpp>

#include <algorithm>

#include "nn/io/bytes.h"
#include "nn/io/elements.h"
#include "nn/io/io.h"

namespace weft::io {
namespace {

using detail::Kind;
using detail::StoredType;

StoredType stored_type(const std::string& name, const std::string& path, const std::string& tensor) {
  if (name == "F32") return {Kind::Float, 4};
  if (name == "F64") return {Kind::Float, 8};
  if (name == "I64") return {Kind::Int, 8};
  if (name == "I32") return {Kind::Int, 4};
  if (name == "U8") return {Kind::UInt, 1};
  if (name == "BOOL") return {Kind::Bool, 1};
  if (name == "F16") return {Kind::Float, 2};
  if (name == "BF16") return {Kind::BFloat, 2};
  if (name == "I8") return {Kind::Int, 1};
  WEFT_ERROR("load_safetensors: '", path, "' stores '", tensor, "' as ", name,
             "; supported are F16, BF16, F32, F64, I8, I32, I64, U8 and BOOL");
}

const char* dtype_name_of(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "BOOL";
    case DType::Int64: return "I64";
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Float16: return "F16";
    case DType::BFloat16: return "BF16";
    case DType::Int8: return "I8";
    case DType::Int32: return "I32";
    case DType::UInt8: return "U8";
  }
  WEFT_ERROR("save_safetensors: unknown dtype ", static_cast<int>(dtype));
}

struct Entry {
  std::string name;
  StoredType type;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const nlohmann::json& info, const std::string& path) {
  constexpr const char* op = "load_safetensors";
  WEFT_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"),
             op, ": '", path, "' describes '", name, "' without dtype, shape and data_offsets: ", info.dump());
  Entry e{name, stored_type(info["dtype"].get<std::string>(), path, name), {}, 0, 0};
  for (const auto& d : info["shape"]) e.shape.push_back(d.get<int64_t>());
  const auto& offsets = info["data_offsets"];
  WEFT_CHECK(offsets.is_array() && offsets.size() == 2, op, ": '", path, "': data_offsets of '", name,
             "' is not a pair: ", offsets.dump());
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  const auto numel = static_cast<uint64_t>(detail::checked_numel(e.shape, e.type.size, op, path));
  WEFT_CHECK(e.begin <= e.end && e.end - e.begin == numel * e.type.size, op, ": '", path, "' gives '", name,
             "' of shape ", e.shape, " and ", e.type.size, "-byte elements the byte range [", e.begin, ", ",
             e.end, "), which does not hold ", numel * e.type.size, " bytes");
  return e;
}

}  // namespace

nn::StateDict load_safetensors(const std::string& path) {
  constexpr const char* op = "load_safetensors";
  const std::string bytes = detail::read_file(path, op);
  detail::ByteReader in(bytes, op, path);
  const auto header_size = in.le<uint64_t>(0);
  WEFT_CHECK(header_size <= in.size() - 8, op, ": '", path, "' declares a ", header_size,
             "-byte header but has ", in.size(), " bytes");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(in.slice(8, header_size));
  } catch (const nlohmann::json::exception& e) {
    WEFT_ERROR(op, ": '", path, "' has a header that is not valid JSON: ", e.what());
  }
  WEFT_CHECK(header.is_object(), op, ": '", path, "' has a header that is not a JSON object");
  std::vector<Entry> entries;
  try {
    for (const auto& [name, info] : header.items())
      if (name != "__metadata__") entries.push_back(parse_entry(name, info, path));
  } catch (const nlohmann::json::exception& e) {
    WEFT_ERROR(op, ": '", path, "' has a malformed header entry: ", e.what());
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  const uint64_t data_start = 8 + header_size;
  nn::StateDict out;
  for (const Entry& e : entries)
    out.insert(e.name, detail::decode_elements(in.slice(data_start + e.begin, e.end - e.begin), e.type, e.shape));
  return out;
}

void save_safetensors(const std::string& path, const nn::StateDict& tensors) {
  constexpr const char* op = "save_safetensors";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    WEFT_CHECK(name != "__metadata__", op, ": '__metadata__' is reserved by the format, not a tensor name");
    std::string elements = detail::encode_elements(tensor, op);
    std::vector<int64_t> shape(tensor.shape().begin(), tensor.shape().end());
    header[name] = {{"dtype", dtype_name_of(tensor.dtype())},
                    {"shape", shape},
                    {"data_offsets", {data.size(), data.size() + elements.size()}}};
    data += elements;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes with spaces
  std::string out;
  detail::append_le<uint64_t>(out, text.size());
  detail::write_file(path, out + text + data, op);
}

}  // namespace weft::io
