// nn checkpoints: the file format (see Note [Checkpoint format]), atomic writes, validated reads,
// and the model/optimizer glue that gathers DTensors on save and reshards them on load.
#include "nn/checkpoint.h"

#include <fcntl.h>
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>

#include "autograd/grad_mode.h"
#include "distributed/dtensor.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "framework/copy.h"

namespace weft::nn {

// Integers and tensor data are written in host order, which must therefore be little-endian.
static_assert(std::endian::native == std::endian::little, "checkpoints assume a little-endian host");

namespace {

constexpr char kMagic[8] = {'W', 'E', 'F', 'T', 'C', 'K', 'P', 'T'};
constexpr uint64_t kHeaderBytes = 8 + 4 + 4 + 8 + 8;

// FNV-1a 64: a few lines, no library, and any single flipped byte changes it.
struct Fnv1a {
  uint64_t h = 14695981039346656037ull;
  void update(const void* data, size_t n) {
    auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
};

// What the file says about one entry; `offset` is where its data starts in the file.
struct EntryMeta {
  std::string name;
  DType dtype = kFloat32;
  Shape shape;
  std::vector<int64_t> mesh_shape;
  dist::Placements placements;
  uint64_t nbytes = 0;
  uint64_t offset = 0;
};

uint64_t entry_bytes(const EntryMeta& m) {
  return 4 + m.name.size() + 1 + 4 + 8 * m.shape.size() + 4 + 8 * m.mesh_shape.size() +
         10 * m.placements.size() + 8 + static_cast<uint64_t>(numel_of(m.shape)) * element_size(m.dtype);
}

[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  WEFT_ERROR("checkpoint '", path, "': ", what, ": ", std::strerror(errno));
}

// Writes `<path>.tmp.<pid>`, hashing every byte; commit() fsyncs and renames it over `path`.
// Destroyed uncommitted (an exception midway), it removes the temporary and `path` is untouched.
class FileWriter {
 public:
  explicit FileWriter(std::string path) : path_(std::move(path)) {
    tmp_ = path_ + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) io_error(path_, "cannot create the temporary file '" + tmp_ + "'");
  }
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  template <class T>
  void put(T value) { put_bytes(&value, sizeof(T)); }
  void put_bytes(const void* data, size_t n) {
    hash_.update(data, n);
    auto* p = static_cast<const char*>(data);
    if (buffer_.size() + n > (1u << 20)) flush();
    if (n > (1u << 20)) return write_all(p, n);  // large tensor data skips the buffer
    buffer_.insert(buffer_.end(), p, p + n);
  }
  uint64_t hash() const { return hash_.h; }
  void commit() {
    flush();
    if (::fsync(fd_) != 0) io_error(path_, "fsync of '" + tmp_ + "' failed");
    if (::close(fd_) != 0) { fd_ = -1; io_error(path_, "close of '" + tmp_ + "' failed"); }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) io_error(path_, "rename of '" + tmp_ + "' failed");
    committed_ = true;
    // Make the rename itself durable; a failure here does not undo a complete file.
    std::string dir = path_.find('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/') + 1);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { ::fsync(dfd); ::close(dfd); }
  }

 private:
  void flush() {
    write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  void write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t k = ::write(fd_, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) io_error(path_, "write to '" + tmp_ + "' failed");
      p += k;
      n -= static_cast<size_t>(k);
    }
  }
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  Fnv1a hash_;
  std::vector<char> buffer_;
};

// Read-only access to a checkpoint by offset; every read is bounds-checked against `limit`.
class FileReader {
 public:
  explicit FileReader(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) io_error(path_, "cannot open");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) io_error(path_, "cannot stat");
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~FileReader() { ::close(fd_); }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  void read_at(uint64_t offset, void* out, uint64_t n) const {
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
  T get(uint64_t& cursor, uint64_t limit, const std::string& where) const {
    T value;
    need(cursor, sizeof(T), limit, where);
    read_at(cursor, &value, sizeof(T));
    cursor += sizeof(T);
    return value;
  }
  void need(uint64_t cursor, uint64_t n, uint64_t limit, const std::string& where) const {
    WEFT_CHECK(cursor <= limit && n <= limit - cursor, "checkpoint '", path_, "': ", where, " is truncated (needs ",
               n, " bytes at offset ", cursor, " but the data ends at byte ", limit, ")");
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The entries between the header and `limit`, each field checked; `exact`: nothing may follow them.
std::vector<EntryMeta> parse_entries(const FileReader& f, uint64_t count, uint64_t limit, bool exact = true) {
  std::vector<EntryMeta> out;
  std::map<std::string, bool> seen;
  uint64_t cur = kHeaderBytes;
  for (uint64_t i = 0; i < count; ++i) {
    std::string where = "entry " + std::to_string(i);
    EntryMeta m;
    auto name_len = f.get<uint32_t>(cur, limit, where);
    f.need(cur, name_len, limit, where + "'s name");
    m.name.resize(name_len);
    f.read_at(cur, m.name.data(), name_len);
    cur += name_len;
    where += " ('" + m.name + "')";
    WEFT_CHECK(!seen[m.name], "checkpoint '", f.path(), "': ", where, " appears twice");
    seen[m.name] = true;
    auto dt = f.get<uint8_t>(cur, limit, where);
    WEFT_CHECK(dt <= static_cast<uint8_t>(kFloat64), "checkpoint '", f.path(), "': ", where, " has unknown dtype code ",
               int(dt));
    m.dtype = static_cast<DType>(dt);
    auto ndim = f.get<uint32_t>(cur, limit, where);
    WEFT_CHECK(ndim <= 64, "checkpoint '", f.path(), "': ", where, " has an implausible rank ", ndim);
    for (uint32_t d = 0; d < ndim; ++d) {
      m.shape.push_back(f.get<int64_t>(cur, limit, where));
      WEFT_CHECK(m.shape.back() >= 0, "checkpoint '", f.path(), "': ", where, " has a negative size");
    }
    auto mesh_ndim = f.get<uint32_t>(cur, limit, where);
    WEFT_CHECK(mesh_ndim <= 64, "checkpoint '", f.path(), "': ", where, " has an implausible mesh rank ", mesh_ndim);
    for (uint32_t d = 0; d < mesh_ndim; ++d) m.mesh_shape.push_back(f.get<int64_t>(cur, limit, where));
    for (uint32_t d = 0; d < mesh_ndim; ++d) {
      dist::Placement p;
      auto kind = f.get<uint8_t>(cur, limit, where);
      p.shard_dim = f.get<int64_t>(cur, limit, where);
      auto op = f.get<uint8_t>(cur, limit, where);
      WEFT_CHECK(kind <= 2 && op <= 4, "checkpoint '", f.path(), "': ", where, " has an invalid placement");
      p.kind = static_cast<dist::Placement::Kind>(kind);
      p.op = static_cast<dist::ReduceOp>(op);
      m.placements.push_back(p);
    }
    m.nbytes = f.get<uint64_t>(cur, limit, where);
    uint64_t want = static_cast<uint64_t>(numel_of(m.shape)) * element_size(m.dtype);
    WEFT_CHECK(m.nbytes == want, "checkpoint '", f.path(), "': ", where, " holds ", m.nbytes, " bytes but shape ",
               m.shape, " of ", dtype_name(m.dtype), " needs ", want);
    f.need(cur, m.nbytes, limit, where + "'s data");
    m.offset = cur;
    cur += m.nbytes;
    out.push_back(std::move(m));
  }
  WEFT_CHECK(!exact || cur == limit, "checkpoint '", f.path(), "': ", limit - cur, " unexpected bytes after the last entry");
  return out;
}

// Checks magic, version, size and checksum, then parses the entries.
std::vector<EntryMeta> read_index(const FileReader& f) {
  const std::string& path = f.path();
  char magic[8] = {};
  if (f.size() >= 8) f.read_at(0, magic, 8);
  WEFT_CHECK(f.size() >= 8 && std::memcmp(magic, kMagic, 8) == 0, "checkpoint '", path,
             "': not a weft checkpoint (bad magic: the file does not start with \"WEFTCKPT\")");
  WEFT_CHECK(f.size() >= kHeaderBytes + 8, "checkpoint '", path, "': truncated: ", f.size(),
             " bytes, shorter than the header and checksum (", kHeaderBytes + 8, ")");
  uint64_t cur = 8;
  auto version = f.get<uint32_t>(cur, f.size(), "the header");
  WEFT_CHECK(version == kCheckpointVersion, "checkpoint '", path, "': unsupported format version ", version,
             " (this build reads version ", kCheckpointVersion, ")");
  auto flags = f.get<uint32_t>(cur, f.size(), "the header");
  WEFT_CHECK(flags == 0, "checkpoint '", path, "': unknown header flags ", flags);
  auto total = f.get<uint64_t>(cur, f.size(), "the header");
  auto count = f.get<uint64_t>(cur, f.size(), "the header");
  if (f.size() < total) {
    // Name the entry the cut falls in; if every entry is whole, only the checksum is missing.
    parse_entries(f, count, f.size(), /*exact=*/false);
    WEFT_ERROR("checkpoint '", path, "': truncated: ", f.size(), " bytes but the header declares ", total,
               " (the checksum is missing)");
  }
  WEFT_CHECK(f.size() == total, "checkpoint '", path, "': ", f.size() - total,
             " unexpected bytes after the declared end (", total, " bytes)");
  Fnv1a hash;
  std::vector<char> chunk(1 << 20);
  for (uint64_t off = 0; off < total - 8; off += chunk.size()) {
    uint64_t n = std::min<uint64_t>(chunk.size(), total - 8 - off);
    f.read_at(off, chunk.data(), n);
    hash.update(chunk.data(), n);
  }
  uint64_t stored = 0;
  f.read_at(total - 8, &stored, 8);
  WEFT_CHECK(stored == hash.h, "checkpoint '", path, "': checksum mismatch, the file is corrupted (stored ",
             stored, ", computed ", hash.h, ")");
  return parse_entries(f, count, total - 8);
}

Tensor read_tensor(const FileReader& f, const EntryMeta& m) {
  Tensor t = detail::make_empty(m.shape, m.dtype);
  f.read_at(m.offset, t.raw_data(), m.nbytes);
  return t;
}

// One entry to write: its metadata and how to get its full contiguous value (collective for DTensors).
struct Source {
  EntryMeta meta;
  std::function<Tensor()> produce;
  dist::DeviceMesh mesh;  // defined for gathered entries
};

Source plain_source(const std::string& name, const Tensor& t) {
  WEFT_CHECK(t.defined(), "save_checkpoint: entry '", name, "' is an undefined tensor");
  Source s{{name, t.dtype(), t.shape()}, [t] { return t.contiguous(); }, {}};
  return s;
}

// A shard `local` of a tensor of `global` shape laid out on `mesh` with `placements`.
Source gathered_source(const std::string& name, const Tensor& local, const dist::DeviceMesh& mesh,
                       const dist::Placements& placements, const Shape& global) {
  Source s{{name, local.dtype(), global, mesh.shape(), placements}, nullptr, mesh};
  s.produce = [=] {
    NoGradGuard no_grad;
    return dist::make_dtensor(local, mesh, placements, global).full_tensor().contiguous();
  };
  return s;
}

Source source_for(const std::string& name, const Tensor& t) {
  if (!t.defined() || !t.is_dtensor()) return plain_source(name, t);
  dist::DTensor d(t);
  return gathered_source(name, d.spec().local, d.device_mesh(), d.placements(), d.shape());
}

// The maximum of `value` over every rank of `mesh` (one all-reduce per mesh dim).
int mesh_max(int value, const dist::DeviceMesh& mesh) {
  for (int64_t d = 0; d < mesh.ndim(); ++d)
    dist::check_mpi(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, mesh.comm(d)), "checkpoint status",
                    mesh.comm(d));
  return value;
}

// Note [Checkpoint memory]
// Saving gathers one entry at a time: every rank of the mesh holds that entry's full tensor while
// it is written, so the peak extra memory per rank is the largest single tensor, and only the
// mesh's first rank does file I/O. Loading reads each full tensor in turn on every rank, keeps its
// shard, and holds the whole new (local) state before assigning it: the largest full tensor plus a
// second copy of the rank's local model and optimizer state. A sharded format (one file per rank)
// would avoid the full tensors but could not reload on a different number of ranks as simply.
void write_sources(const std::string& path, const std::vector<Source>& sources) {
  dist::DeviceMesh mesh;
  for (const Source& s : sources)
    if (s.mesh.defined()) {
      mesh = s.mesh;
      break;
    }
  WEFT_CHECK(!mesh.defined() || mesh.contains_this_rank(), "save_checkpoint '", path,
             "': this rank is not in the mesh of the distributed entries");
  const bool writes = !mesh.defined() || dist::world_rank() == mesh.ranks()[0];
  uint64_t total = kHeaderBytes + 8;
  for (const Source& s : sources) total += entry_bytes(s.meta);
  std::optional<FileWriter> out;
  std::string failure;
  auto attempt = [&](const std::function<void()>& f) {
    if (!writes || !failure.empty()) return;
    try {
      f();
    } catch (const std::exception& e) {
      failure = e.what();
      out.reset();  // removes the temporary; `path` is untouched
    }
  };
  attempt([&] {
    out.emplace(path);
    out->put_bytes(kMagic, 8);
    out->put(kCheckpointVersion);
    out->put(uint32_t{0});
    out->put(total);
    out->put(static_cast<uint64_t>(sources.size()));
  });
  for (const Source& s : sources) {
    Tensor value = s.produce();  // every rank of the mesh joins, even after the writer failed
    attempt([&] {
      const EntryMeta& m = s.meta;
      out->put(static_cast<uint32_t>(m.name.size()));
      out->put_bytes(m.name.data(), m.name.size());
      out->put(static_cast<uint8_t>(m.dtype));
      out->put(static_cast<uint32_t>(m.shape.size()));
      for (int64_t v : m.shape) out->put(v);
      out->put(static_cast<uint32_t>(m.mesh_shape.size()));
      for (int64_t v : m.mesh_shape) out->put(v);
      for (const dist::Placement& p : m.placements) {
        out->put(static_cast<uint8_t>(p.kind));
        out->put(p.shard_dim);
        out->put(static_cast<uint8_t>(p.op));
      }
      out->put(static_cast<uint64_t>(value.numel()) * value.element_size());
      out->put_bytes(value.raw_data(), static_cast<size_t>(value.numel()) * value.element_size());
    });
  }
  attempt([&] {
    out->put(out->hash());
    out->commit();
  });
  // The other ranks learn whether the file is there, so that all of them throw or none does.
  bool failed = !failure.empty();
  if (mesh.defined()) failed = mesh_max(failed ? 1 : 0, mesh) != 0;
  if (!failure.empty()) throw Error(failure);
  WEFT_CHECK(!failed, "save_checkpoint '", path, "': writing failed on rank ", mesh.ranks()[0]);
}

// "state.<i>.<field>" -> (i, field); nullopt for other keys.
std::optional<std::pair<size_t, std::string>> state_key(const std::string& key) {
  if (key.rfind("state.", 0) != 0) return std::nullopt;
  size_t dot = key.find('.', 6);
  if (dot == std::string::npos || dot == 6) return std::nullopt;
  size_t index = 0;
  for (size_t i = 6; i < dot; ++i) {
    if (key[i] < '0' || key[i] > '9') return std::nullopt;
    index = index * 10 + static_cast<size_t>(key[i] - '0');
  }
  return std::make_pair(index, key.substr(dot + 1));
}

// The full tensor `full` cut to this rank's shard of DTensor `like` (a compact copy).
Tensor shard_of(const Tensor& full, const dist::DTensor& like, const std::string& path, const std::string& name) {
  for (const dist::Placement& p : like.placements())
    WEFT_CHECK(!p.is_partial(), "load_checkpoint '", path, "': '", name, "' has placements ",
               dist::to_string(like.placements()), "; Partial tensors cannot be loaded");
  const dist::DeviceMesh& mesh = like.device_mesh();
  auto coord = mesh.get_coordinate();
  WEFT_CHECK(coord.has_value(), "load_checkpoint '", path, "': this rank is not in the mesh of '", name, "'");
  auto [shape, offset] = dist::local_shape_and_offset(full.shape(), mesh.shape(), *coord, like.placements());
  Tensor piece = full;
  for (int64_t d = 0; d < full.dim(); ++d) piece = piece.narrow(d, offset[d], shape[d]);
  Tensor out = detail::make_empty(shape, full.dtype());
  detail::copy_into(out, piece);
  return out;
}

}  // namespace

void save_state(const std::string& path, const StateDict& state) {
  std::vector<Source> sources;
  for (const auto& [name, t] : state) sources.push_back(source_for(name, t));
  write_sources(path, sources);
}

StateDict load_state(const std::string& path) {
  FileReader f(path);
  StateDict out;
  for (const EntryMeta& m : read_index(f)) out.insert(m.name, read_tensor(f, m));
  return out;
}

void save_checkpoint(const std::string& path, const Module& model, const optim::Optimizer* optimizer) {
  std::vector<Source> sources;
  for (const auto& [name, t] : model.state_dict()) sources.push_back(source_for("model." + name, t));
  if (optimizer) {
    const auto& params = optimizer->params();
    for (const auto& [key, t] : optimizer->state_dict()) {
      auto sk = state_key(key);
      const Tensor* param = sk && sk->first < params.size() ? &params[sk->first] : nullptr;
      // A distributed optimizer keeps each buffer shaped like the parameter's local shard.
      if (param && param->is_dtensor() && sk->second != "step") {
        dist::DTensor d(*param);
        if (t.shape() == d.spec().local.shape() && t.shape() != d.shape()) {
          sources.push_back(gathered_source("optim." + key, t, d.device_mesh(), d.placements(), d.shape()));
          continue;
        }
      }
      sources.push_back(plain_source("optim." + key, t));
    }
  }
  write_sources(path, sources);
}

void load_checkpoint(const std::string& path, Module& model, optim::Optimizer* optimizer) {
  FileReader f(path);
  std::map<std::string, EntryMeta> index;
  for (EntryMeta& m : read_index(f)) index.emplace(m.name, std::move(m));
  auto entry = [&](const std::string& key, const Tensor& like, const std::string& what) -> const EntryMeta& {
    auto it = index.find(key);
    WEFT_CHECK(it != index.end(), "load_checkpoint '", path, "': missing entry '", key, "' for ", what, " (shape ",
               like.shape(), ")");
    const EntryMeta& m = it->second;
    WEFT_CHECK(m.dtype == like.dtype(), "load_checkpoint '", path, "': dtype mismatch for '", key, "': the file has ",
               dtype_name(m.dtype), " but ", what, " is ", dtype_name(like.dtype()));
    WEFT_CHECK(m.shape == like.shape(), "load_checkpoint '", path, "': shape mismatch for '", key,
               "': the file has ", m.shape, " but ", what, " has ", like.shape());
    return m;
  };
  auto value_for = [&](const EntryMeta& m, const Tensor& like) {
    Tensor full = read_tensor(f, m);
    return like.is_dtensor() ? shard_of(full, dist::DTensor(like), path, m.name) : full;
  };

  // 1. Validate the model's entries and build its new values.
  StateDict targets = model.state_dict();
  std::vector<Tensor> values;
  for (const auto& [name, t] : targets) entry("model." + name, t, "the model's '" + name + "'");
  for (const auto& [key, m] : index)
    WEFT_CHECK(key.rfind("model.", 0) != 0 || targets.contains(key.substr(6)), "load_checkpoint '", path,
               "': unexpected entry '", key, "': the model has no parameter or buffer '", key.substr(6), "'");
  for (const auto& [name, t] : targets) values.push_back(value_for(index.at("model." + name), t));

  // 2. The optimizer's dict, checked against this optimizer, then loaded (it is all or nothing).
  if (optimizer) {
    const auto& params = optimizer->params();
    StateDict current = optimizer->state_dict();
    StateDict loaded;
    for (const auto& [key, m] : index) {
      if (key.rfind("optim.", 0) != 0) continue;
      std::string k = key.substr(6);
      auto sk = state_key(k);
      if (k.rfind("param_groups.", 0) == 0)
        WEFT_CHECK(current.contains(k), "load_checkpoint '", path, "': the file has hyperparameter '", k,
                   "' that this ", optimizer->name(), " does not have (saved by another optimizer?)");
      if (sk && sk->second != "step") {
        WEFT_CHECK(sk->first < params.size(), "load_checkpoint '", path, "': '", key, "' names parameter ",
                   sk->first, " but the optimizer has ", params.size());
        const Tensor& p = params[sk->first];
        loaded.insert(k, value_for(entry(key, p, "optimizer parameter " + std::to_string(sk->first)), p));
      } else {
        loaded.insert(k, read_tensor(f, m));
      }
    }
    for (const auto& [k, t] : current)
      WEFT_CHECK(k.rfind("param_groups.", 0) != 0 || loaded.contains(k), "load_checkpoint '", path,
                 "': missing entry 'optim.", k, "' (", optimizer->name(), " hyperparameter; ",
                 (loaded.empty() ? "the file has no optimizer state)" : "saved by another optimizer?)"));
    optimizer->load_state_dict(loaded);
  }

  // 3. Assign: every check has passed, so nothing below can fail halfway.
  NoGradGuard no_grad;
  size_t i = 0;
  for (const auto& [name, t] : targets) {
    Tensor dst = t.is_dtensor() ? dist::DTensor(t).spec().local : t;
    detail::copy_into(dst, values[i++]);
    dst.bump_version();
  }
}

}  // namespace weft::nn
