// Whole-file reads and writes and little-endian field access for weft's file formats (npy, zip,
// safetensors). Internal: not installed.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "framework/error.h"

namespace weft::io::detail {

// The file's bytes; throws weft::Error naming `op` and the path when it cannot be read.
std::string read_file(const std::string& path, const char* op);
// Replaces the file with `bytes`; throws weft::Error naming `op` and the path on failure.
void write_file(const std::string& path, std::string_view bytes, const char* op);

// A bounds-checked reader over a file's bytes: every read past the end is an error naming the
// file as truncated, never a read out of bounds.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, const char* op, const std::string& path)
      : bytes_(bytes), op_(op), path_(path) {}

  std::string_view slice(uint64_t offset, uint64_t size) const {
    WEFT_CHECK(offset <= bytes_.size() && size <= bytes_.size() - offset, op_, ": '", path_,
               "' is truncated or corrupt: needs bytes [", offset, ", ", offset + size, ") but has ",
               bytes_.size());
    return bytes_.substr(offset, size);
  }
  // The host is little-endian (x86-64), as every format here is.
  template <class T>
  T le(uint64_t offset) const {
    T value;
    std::memcpy(&value, slice(offset, sizeof(T)).data(), sizeof(T));
    return value;
  }
  uint64_t size() const { return bytes_.size(); }

 private:
  std::string_view bytes_;
  const char* op_;
  const std::string& path_;
};

template <class T>
void append_le(std::string& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out.append(raw, sizeof(T));
}

}  // namespace weft::io::detail
