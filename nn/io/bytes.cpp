// Whole-file reads and writes for weft's file formats.
#include "nn/io/bytes.h"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace weft::io::detail {

std::string read_file(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  WEFT_CHECK(in.good(), op, ": cannot open '", path, "' for reading: ", std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  WEFT_CHECK(!in.bad(), op, ": error while reading '", path, "'");
  return std::move(bytes).str();
}

void write_file(const std::string& path, std::string_view bytes, const char* op) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  WEFT_CHECK(out.good(), op, ": cannot open '", path, "' for writing: ", std::strerror(errno));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  WEFT_CHECK(out.good(), op, ": error while writing '", path, "'");
}

}  // namespace weft::io::detail
