// nn/checkpoint_file.cpp: the checkpoint bytes (Note [Checkpoint format]): FNV-1a 64, the atomic
// writer (temporary, fsync, rename) and the reader that validates before anything is used.
#include "nn/checkpoint_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <set>

#include "autograd/grad_mode.h"
#include "distributed/dtensor.h"
#include "kernels/toolkit.h"
#include "nn/checkpoint.h"

namespace weft::nn::detail {

// Integers and tensor data are written in host order, which must therefore be little-endian.
static_assert(std::endian::native == std::endian::little, "checkpoints assume a little-endian host");

namespace {

constexpr char kMagic[8] = {'W', 'E', 'F', 'T', 'C', 'K', 'P', 'T'};
constexpr uint64_t kHeaderBytes = 8 + 4 + 4 + 8 + 8;
constexpr size_t kBufferBytes = 1 << 20;

uint64_t entry_bytes(const CheckpointEntry& e) {
  return 4 + e.name.size() + 1 + 4 + 8 * e.shape.size() + 4 + 8 * e.mesh_shape.size() + 10 * e.placements.size() +
         8 + e.nbytes();
}

[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  WEFT_ERROR("checkpoint '", path, "': ", what, ": ", std::strerror(errno));
}

// The file `path` names once symlinks are followed (it may not exist yet), so that saving through
// a link replaces the link's target and keeps the link.
std::string resolve_links(std::string path) {
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    std::vector<char> target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1);
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) io_error(path, "cannot read the symbolic link");
    std::string next(target.data(), static_cast<size_t>(n));
    const size_t slash = path.rfind('/');
    path = next.front() == '/' || slash == std::string::npos ? next : path.substr(0, slash + 1) + next;
  }
  WEFT_ERROR("checkpoint '", path, "': too many levels of symbolic links");
}

// Removes `<path>.tmp.<pid>` files left by saves of `path` whose process is gone (killed midway),
// and our own. A live process's temporary is left alone: it may be saving right now.
void remove_stale_temporaries(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;  // creating the temporary will report the directory's problem
  while (const dirent* ent = ::readdir(d)) {
    const std::string name = ent->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH))
      ::unlink((dir + name).c_str());
  }
  ::closedir(d);
}

}  // namespace

// FNV-1a 64: a few lines, no library, and any single flipped byte changes it.
uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// --- CheckpointWriter ---

CheckpointWriter::CheckpointWriter(std::string path, const std::vector<CheckpointEntry>& entries,
                                   uint64_t block_bytes)
    : path_(std::move(path)), target_(resolve_links(path_)), hash_(kFnvOffset), block_bytes_(block_bytes) {
  remove_stale_temporaries(target_);
  tmp_ = target_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) io_error(path_, "cannot create the temporary file '" + tmp_ + "'");
  uint64_t total = kHeaderBytes + 8;
  for (const CheckpointEntry& e : entries) total += entry_bytes(e);
  put_bytes(kMagic, 8);
  put(kCheckpointVersion);
  put(uint32_t{0});  // flags
  put(total);
  put(static_cast<uint64_t>(entries.size()));
}

CheckpointWriter::~CheckpointWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

uint64_t CheckpointWriter::write_entry(const CheckpointEntry& e, const Tensor& value) {
  WEFT_INTERNAL_ASSERT(value.is_contiguous() && value.shape() == e.shape && value.dtype() == e.dtype);
  put(static_cast<uint32_t>(e.name.size()));
  put_bytes(e.name.data(), e.name.size());
  put(static_cast<uint8_t>(e.dtype));
  put(static_cast<uint32_t>(e.shape.size()));
  for (int64_t v : e.shape) put(v);
  put(static_cast<uint32_t>(e.mesh_shape.size()));
  for (int64_t v : e.mesh_shape) put(v);
  for (const dist::Placement& p : e.placements) {
    put(static_cast<uint8_t>(p.kind));
    put(p.shard_dim);
    put(static_cast<uint8_t>(p.op));
  }
  put(e.nbytes());
  const uint64_t data_offset = written_;
  put_bytes(value.raw_data(), e.nbytes());
  return data_offset;
}

void CheckpointWriter::commit() {
  checksum_ = hash_;
  put(hash_);  // `put` copies the hash of every byte before it, then hashes on (unused)
  if (block_bytes_ > 0 && written_ % block_bytes_ != 0) block_hashes_.push_back(block_hash_);
  flush();
  if (::fsync(fd_) != 0) io_error(path_, "fsync of '" + tmp_ + "' failed");
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) io_error(path_, "close of '" + tmp_ + "' failed");
  if (::rename(tmp_.c_str(), target_.c_str()) != 0) io_error(path_, "rename of '" + tmp_ + "' failed");
  committed_ = true;
  // Make the rename itself durable; a failure here does not undo a complete file.
  std::string dir = target_.find('/') == std::string::npos ? "." : target_.substr(0, target_.rfind('/') + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void CheckpointWriter::put_bytes(const void* data, size_t n) {
  hash_ = fnv1a(hash_, data, n);
  auto* p = static_cast<const char*>(data);
  for (size_t done = 0; block_bytes_ > 0 && done < n;) {
    const size_t k = std::min<uint64_t>(n - done, block_bytes_ - (written_ + done) % block_bytes_);
    block_hash_ = fnv1a(block_hash_, p + done, k);
    done += k;
    if ((written_ + done) % block_bytes_ == 0) {
      block_hashes_.push_back(block_hash_);
      block_hash_ = kFnvOffset;
    }
  }
  written_ += n;
  if (buffer_.size() + n > kBufferBytes) flush();
  if (n > kBufferBytes) return write_all(p, n);  // large tensor data skips the buffer
  buffer_.insert(buffer_.end(), p, p + n);
}

void CheckpointWriter::flush() {
  write_all(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void CheckpointWriter::write_all(const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::write(fd_, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) io_error(path_, "write to '" + tmp_ + "' failed");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

// --- CheckpointReader ---

CheckpointReader::CheckpointReader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) io_error(path_, "cannot open");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    ::close(fd_);
    io_error(path_, "cannot stat");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  try {
    char magic[8] = {};
    if (size_ >= 8) read_at(0, magic, 8);
    WEFT_CHECK(size_ >= 8 && std::memcmp(magic, kMagic, 8) == 0, "checkpoint '", path_,
               "': not a weft checkpoint (bad magic: the file does not start with \"WEFTCKPT\")");
    WEFT_CHECK(size_ >= kHeaderBytes + 8, "checkpoint '", path_, "': truncated: ", size_,
               " bytes, shorter than the header and checksum (", kHeaderBytes + 8, ")");
    uint64_t cur = 8;
    auto version = get<uint32_t>(cur, size_, "the header");
    WEFT_CHECK(version == kCheckpointVersion, "checkpoint '", path_, "': unsupported format version ", version,
               " (this build reads version ", kCheckpointVersion, ")");
    auto flags = get<uint32_t>(cur, size_, "the header");
    WEFT_CHECK(flags == 0, "checkpoint '", path_, "': unknown header flags ", flags);
    auto total = get<uint64_t>(cur, size_, "the header");
    auto count = get<uint64_t>(cur, size_, "the header");
    if (size_ < total) {
      // Name the entry the cut falls in; if every entry is whole, only the checksum is missing.
      parse_entries(count, size_, /*exact=*/false);
      WEFT_ERROR("checkpoint '", path_, "': truncated: ", size_, " bytes but the header declares ", total,
                 " (the checksum is missing)");
    }
    WEFT_CHECK(size_ == total, "checkpoint '", path_, "': ", size_ - total,
               " unexpected bytes after the declared end (", total, " bytes)");
    // The checksum before the entries: a flipped length byte reads as corruption, not truncation.
    uint64_t hash = kFnvOffset;
    std::vector<char> chunk(kBufferBytes);
    for (uint64_t off = 0; off < total - 8; off += chunk.size()) {
      uint64_t n = std::min<uint64_t>(chunk.size(), total - 8 - off);
      read_at(off, chunk.data(), n);
      hash = fnv1a(hash, chunk.data(), n);
    }
    uint64_t stored = 0;
    read_at(total - 8, &stored, 8);
    WEFT_CHECK(stored == hash, "checkpoint '", path_, "': checksum mismatch, the file is corrupted (stored ",
               stored, ", computed ", hash, ")");
    entries_ = parse_entries(count, total - 8, /*exact=*/true);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

CheckpointReader::~CheckpointReader() { ::close(fd_); }

Tensor CheckpointReader::read(const CheckpointEntry& e) const {
  Tensor t = kernels::make_empty(e.shape, e.dtype, "load_checkpoint");
  read_at(e.offset, t.raw_data(), e.nbytes());
  return t;
}

void CheckpointReader::read_at(uint64_t offset, void* out, uint64_t n) const {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    ssize_t k = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) io_error(path_, "read failed");
    WEFT_CHECK(k > 0, "checkpoint '", path_, "': unexpected end of file at byte ", offset);
    p += k, n -= static_cast<uint64_t>(k), offset += static_cast<uint64_t>(k);
  }
}

template <class T>
T CheckpointReader::get(uint64_t& cursor, uint64_t limit, const std::string& where) const {
  T value;
  need(cursor, sizeof(T), limit, where);
  read_at(cursor, &value, sizeof(T));
  cursor += sizeof(T);
  return value;
}

void CheckpointReader::need(uint64_t cursor, uint64_t n, uint64_t limit, const std::string& where) const {
  WEFT_CHECK(cursor <= limit && n <= limit - cursor, "checkpoint '", path_, "': ", where, " is truncated (needs ", n,
             " bytes at offset ", cursor, " but the data ends at byte ", limit, ")");
}

// The entries between the header and `limit`, every field checked against the format's limits and
// the bytes left before anything is allocated for it; `exact`: nothing may follow them.
std::vector<CheckpointEntry> CheckpointReader::parse_entries(uint64_t count, uint64_t limit, bool exact) const {
  constexpr uint64_t kMinEntryBytes = 4 + 1 + 4 + 4 + 8;  // empty name, rank 0, no mesh, no data
  // A truncated file (not `exact`) is parsed only to name the entry the cut falls in: the loop stops there.
  WEFT_CHECK(!exact || count <= (limit - kHeaderBytes) / kMinEntryBytes, "checkpoint '", path_, "': the header's field "
             "'count' declares ", count, " entries, more than the ", size_, "-byte file can hold");
  std::vector<CheckpointEntry> out;
  std::set<std::string> seen;
  uint64_t cur = kHeaderBytes;
  for (uint64_t i = 0; i < count; ++i) {
    std::string where = "entry " + std::to_string(i);
    auto bad = [&](bool ok, const char* field, const std::string& what) {
      WEFT_CHECK(ok, "checkpoint '", path_, "': ", where, " field '", field, "' ", what);
    };
    CheckpointEntry e;
    auto name_len = get<uint32_t>(cur, limit, where);
    need(cur, name_len, limit, where + "'s name");
    e.name.resize(name_len);
    read_at(cur, e.name.data(), name_len);
    cur += name_len;
    where += " ('" + e.name + "')";
    bad(seen.insert(e.name).second, "name", "appears twice");
    auto dt = get<uint8_t>(cur, limit, where);
    bad(dt < kNumDTypes, "dtype", "has an unknown code " + std::to_string(dt));
    e.dtype = static_cast<DType>(dt);
    auto ndim = get<uint32_t>(cur, limit, where);
    bad(ndim <= 64, "rank", "is implausible: " + std::to_string(ndim));
    need(cur, 8 * uint64_t{ndim}, limit, where + "'s shape");
    for (uint32_t d = 0; d < ndim; ++d) e.shape.push_back(get<int64_t>(cur, limit, where));
    // The data's byte count, with zero sizes counted as ones so that every product of sizes fits.
    uint64_t bytes = element_size(e.dtype), bound = bytes;
    for (int64_t size : e.shape) {
      bad(size >= 0, "shape", "has a negative size in " + shape_str(e.shape));
      bad(!__builtin_mul_overflow(bound, static_cast<uint64_t>(size == 0 ? 1 : size), &bound) && bound <= limit,
          "shape", shape_str(e.shape) + " needs more bytes than the " + std::to_string(size_) + "-byte file has");
      bytes = size == 0 ? 0 : bytes * static_cast<uint64_t>(size);
    }
    auto mesh_ndim = get<uint32_t>(cur, limit, where);
    bad(mesh_ndim <= 64, "mesh rank", "is implausible: " + std::to_string(mesh_ndim));
    need(cur, 18 * uint64_t{mesh_ndim}, limit, where + "'s mesh");
    int64_t devices = 1;
    for (uint32_t d = 0; d < mesh_ndim; ++d) {
      e.mesh_shape.push_back(get<int64_t>(cur, limit, where));
      bad(e.mesh_shape.back() >= 1 && !__builtin_mul_overflow(devices, e.mesh_shape.back(), &devices) &&
              devices <= (int64_t{1} << 31),
          "mesh_shape", "is not a valid device mesh: " + shape_str(to_shape(e.mesh_shape)));
    }
    for (uint32_t d = 0; d < mesh_ndim; ++d) {
      dist::Placement p;
      auto kind = get<uint8_t>(cur, limit, where);
      p.shard_dim = get<int64_t>(cur, limit, where);
      auto op = get<uint8_t>(cur, limit, where);
      bad(kind <= 2 && op <= 4, "placements", "has an invalid placement (kind " + std::to_string(kind) + ", op " +
                                                  std::to_string(op) + ")");
      p.kind = static_cast<dist::Placement::Kind>(kind);
      bad(!p.is_shard() || (p.shard_dim >= 0 && p.shard_dim < static_cast<int64_t>(ndim)), "placements",
          "shards dim " + std::to_string(p.shard_dim) + " of a rank-" + std::to_string(ndim) + " tensor");
      p.op = static_cast<dist::ReduceOp>(op);
      e.placements.push_back(p);
    }
    auto nbytes = get<uint64_t>(cur, limit, where);
    bad(nbytes == bytes, "nbytes", "says " + std::to_string(nbytes) + " but shape " + shape_str(e.shape) + " of " +
                                       std::string(dtype_name(e.dtype)) + " needs " + std::to_string(bytes));
    need(cur, nbytes, limit, where + "'s data");
    e.offset = cur;
    cur += nbytes;
    out.push_back(std::move(e));
  }
  WEFT_CHECK(!exact || cur == limit, "checkpoint '", path_, "': ", limit - cur,
             " unexpected bytes after the last entry");
  return out;
}

void assign_loaded(const StateDict& targets, const std::vector<Tensor>& values) {
  NoGradGuard no_grad;
  size_t i = 0;
  for (const auto& [name, t] : targets) {
    Tensor dst = t.is_dtensor() ? dist::DTensor(t).spec().local : t;
    kernels::copy_into(dst, values[i++]);
    dst.bump_version();
  }
}

}  // namespace weft::nn::detail
