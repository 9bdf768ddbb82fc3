// A zip reader and writer for .npz archives, on zlib (inflate and CRC-32). zlib rather than
// libzip: libzip's static link also needs OpenSSL and bzip2, and Open MPI already links zlib.
// Layout: https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT (sections 4.3, 4.5.3).
#include "nn/io/zip.h"

#include <zlib.h>

#include <limits>

#include "nn/io/bytes.h"

namespace weft::io::detail {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEnd = 0x06054b50;
constexpr uint32_t kZip64End = 0x06064b50, kZip64Locator = 0x07064b50;
constexpr uint32_t kUnknown32 = 0xFFFFFFFF;

struct Directory {
  uint64_t entries, offset;
};

Directory find_directory(const ByteReader& in, const char* op, const std::string& path) {
  // The end record is the last 22 bytes plus a comment of up to 64 KiB: search backwards.
  WEFT_CHECK(in.size() >= 22, op, ": '", path, "' is not a zip archive (", in.size(), " bytes)");
  uint64_t end = in.size() - 22;
  const uint64_t lowest = in.size() > 22 + 65535 ? in.size() - 22 - 65535 : 0;
  while (in.le<uint32_t>(end) != kEnd) {
    WEFT_CHECK(end > lowest, op, ": '", path, "' is not a zip archive (no end of central directory)");
    --end;
  }
  Directory dir{in.le<uint16_t>(end + 10), in.le<uint32_t>(end + 16)};
  if (dir.offset == kUnknown32 || dir.entries == 0xFFFF) {
    WEFT_CHECK(end >= 20 && in.le<uint32_t>(end - 20) == kZip64Locator, op, ": '", path,
               "' lacks its zip64 end record");
    const uint64_t end64 = in.le<uint64_t>(end - 20 + 8);
    WEFT_CHECK(in.le<uint32_t>(end64) == kZip64End, op, ": '", path, "' has a corrupt zip64 end record");
    dir = {in.le<uint64_t>(end64 + 32), in.le<uint64_t>(end64 + 48)};
  }
  return dir;
}

// The data of one member: its sizes and local header offset from the central directory (with
// zip64's extra field where they overflow 32 bits), inflated if it was deflated, CRC checked.
std::string member_data(const ByteReader& in, uint64_t entry, const std::string& name, const char* op,
                        const std::string& path) {
  const uint16_t flags = in.le<uint16_t>(entry + 8), method = in.le<uint16_t>(entry + 10);
  const uint32_t crc = in.le<uint32_t>(entry + 16);
  uint64_t packed = in.le<uint32_t>(entry + 20), size = in.le<uint32_t>(entry + 24);
  uint64_t local = in.le<uint32_t>(entry + 42);
  const uint16_t name_len = in.le<uint16_t>(entry + 28), extra_len = in.le<uint16_t>(entry + 30);
  for (uint64_t x = entry + 46 + name_len; x + 4 <= entry + 46 + name_len + extra_len;) {
    const uint16_t id = in.le<uint16_t>(x), len = in.le<uint16_t>(x + 2);
    if (id == 0x0001) {  // zip64: the fields that overflowed, in this order
      uint64_t at = x + 4;
      for (uint64_t* field : {&size, &packed, &local})
        if (*field == kUnknown32) *field = in.le<uint64_t>(std::exchange(at, at + 8));
    }
    x += 4 + len;
  }
  WEFT_CHECK((flags & 1) == 0, op, ": '", path, "' member '", name, "' is encrypted");
  WEFT_CHECK(in.le<uint32_t>(local) == kLocalHeader, op, ": '", path, "' member '", name, "' has no local header");
  const uint64_t start = local + 30 + in.le<uint16_t>(local + 26) + in.le<uint16_t>(local + 28);
  std::string_view raw = in.slice(start, packed);
  std::string out;
  if (method == 0) {
    WEFT_CHECK(packed == size, op, ": '", path, "' member '", name, "' is stored with two different sizes");
    out.assign(raw);
  } else {
    WEFT_CHECK(method == 8, op, ": '", path, "' member '", name, "' uses compression method ", method,
               "; supported are stored (0) and deflated (8)");
    WEFT_CHECK(size < (uint64_t{1} << 40), op, ": '", path, "' member '", name, "' declares ", size, " bytes");
    out.resize(size);
    z_stream z{};
    WEFT_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, op, ": zlib's inflateInit2 failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    int status = Z_OK;
    // zlib counts in 32-bit uInt: feed and drain in chunks.
    while (status == Z_OK) {
      const uint64_t in_left = raw.size() - z.total_in, out_left = out.size() - z.total_out;
      z.avail_in = static_cast<uInt>(std::min<uint64_t>(in_left, std::numeric_limits<uInt>::max()));
      z.avail_out = static_cast<uInt>(std::min<uint64_t>(out_left, std::numeric_limits<uInt>::max()));
      status = inflate(&z, Z_NO_FLUSH);
      if (status == Z_BUF_ERROR && (in_left == 0 || out_left == 0)) break;
    }
    const uint64_t produced = z.total_out;
    inflateEnd(&z);
    WEFT_CHECK(status == Z_STREAM_END && produced == size, op, ": '", path, "' member '", name,
               "' is corrupt (inflating gave ", produced, " of ", size, " bytes)");
  }
  uLong actual = 0;
  for (size_t i = 0; i < out.size(); i += 1 << 30)
    actual = crc32(actual, reinterpret_cast<const Bytef*>(out.data() + i),
                   static_cast<uInt>(std::min<size_t>(out.size() - i, 1 << 30)));
  WEFT_CHECK(actual == crc, op, ": '", path, "' member '", name, "' fails its CRC-32 check");
  return out;
}

}  // namespace

ZipMembers read_zip(const std::string& path, const char* op) {
  const std::string bytes = read_file(path, op);
  ByteReader in(bytes, op, path);
  const Directory dir = find_directory(in, op, path);
  ZipMembers members;
  uint64_t entry = dir.offset;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    WEFT_CHECK(in.le<uint32_t>(entry) == kCentralHeader, op, ": '", path, "' has a corrupt central directory");
    const uint16_t name_len = in.le<uint16_t>(entry + 28);
    std::string name(in.slice(entry + 46, name_len));
    members.emplace_back(name, member_data(in, entry, name, op, path));
    entry += 46 + name_len + in.le<uint16_t>(entry + 30) + in.le<uint16_t>(entry + 32);
  }
  return members;
}

void write_zip(const std::string& path, const ZipMembers& members, const char* op) {
  std::string out, directory;
  for (const auto& [name, data] : members) {
    WEFT_CHECK(data.size() < kUnknown32 && out.size() < kUnknown32, op, ": '", name,
               "' would need a zip64 archive (over 4 GiB), which weft does not write");
    const auto crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()),
                                                 static_cast<uInt>(data.size())));
    // The fields local and central headers share: version 2.0, no flags, stored, 1980-01-01.
    std::string common;
    for (uint16_t v : {uint16_t{20}, uint16_t{0}, uint16_t{0}, uint16_t{0}, uint16_t{33}}) append_le(common, v);
    for (uint32_t v : {crc, static_cast<uint32_t>(data.size()), static_cast<uint32_t>(data.size())})
      append_le(common, v);
    append_le<uint16_t>(common, static_cast<uint16_t>(name.size()));
    append_le<uint16_t>(common, 0);  // extra field length

    append_le<uint32_t>(directory, kCentralHeader);
    append_le<uint16_t>(directory, 20);  // made by
    directory += common;
    for (uint16_t v : {uint16_t{0}, uint16_t{0}, uint16_t{0}}) append_le(directory, v);  // comment, disk, attrs
    append_le<uint32_t>(directory, 0);                                                 // external attrs
    append_le<uint32_t>(directory, static_cast<uint32_t>(out.size()));
    directory += name;

    append_le<uint32_t>(out, kLocalHeader);
    out += common;
    out += name;
    out += data;
  }
  WEFT_CHECK(out.size() < kUnknown32 && members.size() < 0xFFFF, op, ": '", path,
             "' would need a zip64 archive (over 4 GiB or 65535 members), which weft does not write");
  const auto offset = static_cast<uint32_t>(out.size());
  out += directory;
  append_le<uint32_t>(out, kEnd);
  for (uint16_t v : {uint16_t{0}, uint16_t{0}, static_cast<uint16_t>(members.size()),
                     static_cast<uint16_t>(members.size())})
    append_le(out, v);
  append_le<uint32_t>(out, static_cast<uint32_t>(directory.size()));
  append_le<uint32_t>(out, offset);
  append_le<uint16_t>(out, 0);  // comment length
  write_file(path, out, op);
}

}  // namespace weft::io::detail
