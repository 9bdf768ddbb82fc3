// nn/distributed_checkpoint_read.cpp: the load side of Note [Distributed checkpoint format]: the
// metadata checked table by table, then each rank's region assembled from the overlapping pieces,
// reading and verifying only the blocks that hold the overlap.
#include "nn/distributed_checkpoint_read.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "distributed/dtensor.h"
#include "distributed/sharding.h"
#include "kernels/toolkit.h"
#include "nn/checkpoint_file.h"
#include "nn/distributed_checkpoint.h"

namespace weft::nn::detail {

namespace {

std::atomic<uint64_t> shard_bytes_read{0};  // constant-initialized: no load-time code

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A contiguous stretch of elements: where it starts in a saved piece, where in the target, how long.
struct Run {
  uint64_t src, dst, n;
};

// Appends a run, merging it into the previous one when both sides continue.
void add_run(std::vector<Run>& runs, Run r) {
  if (!runs.empty() && runs.back().src + runs.back().n == r.src && runs.back().dst + runs.back().n == r.dst)
    runs.back().n += r.n;
  else
    runs.push_back(r);
}

// Opens the checkpoint's shard files on first use and hands out verified bytes only.
class ShardReader {
 public:
  explicit ShardReader(const DcpMetadata& meta) : meta_(meta), fds_(meta.files.size(), -1) {}
  ~ShardReader() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  // Copies `runs` (elements of piece `p` of `s`, ascending) into `out`.
  void copy_runs(const SavedTensor& s, const SavedPiece& p, const std::vector<Run>& runs, Tensor& out);

 private:
  std::string path(int64_t k) const { return meta_.dir + "/" + dcp_shard_file_name(meta_.id, k); }
  template <class... What>
  [[noreturn]] void fail(int64_t k, const std::string& tensor, const What&... what) const {
    WEFT_ERROR("load_distributed '", meta_.dir, "': shard file '", path(k), "' (needed for tensor '", tensor, "'): ",
               what...);
  }
  void open(int64_t k, const std::string& tensor);
  std::vector<char> read_blocks(int64_t k, uint64_t first, uint64_t last, const std::string& tensor);
  void read_at(int64_t k, uint64_t offset, char* out, uint64_t n, const std::string& tensor);
  std::string other_saves_hint(int64_t k) const;

  const DcpMetadata& meta_;
  std::vector<int> fds_;
};

void ShardReader::open(int64_t k, const std::string& tensor) {
  if (fds_[static_cast<size_t>(k)] >= 0) return;
  const int fd = ::open(path(k).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string why = std::strerror(errno);  // before the hint's directory scan changes errno
    fail(k, tensor, "cannot open: ", why, other_saves_hint(k));
  }
  fds_[static_cast<size_t>(k)] = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(k, tensor, "cannot stat: ", std::strerror(errno));
  const DcpFile& f = meta_.files[static_cast<size_t>(k)];
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < f.size)
    fail(k, tensor, "truncated: ", size, " bytes but the metadata records ", f.size);
  if (size > f.size)
    fail(k, tensor, size, " bytes but the metadata records ", f.size, " (written by another save, or corrupted)");
  // The file's id: every shard file answers to the metadata's save (read_blocks names a stranger).
  const uint64_t b = meta_.block_bytes;
  std::vector<char> head = read_blocks(k, f.id_offset / b, (f.id_offset + 7) / b, tensor);
  uint64_t id = 0;
  std::memcpy(&id, head.data() + (f.id_offset - f.id_offset / b * b), 8);
  if (id != meta_.id) fail(k, tensor, "holds id ", id, " but the metadata's is ", meta_.id);
}

void ShardReader::read_at(int64_t k, uint64_t offset, char* out, uint64_t n, const std::string& tensor) {
  const int fd = fds_[static_cast<size_t>(k)];
  shard_bytes_read += n;
  while (n > 0) {
    ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(k, tensor, "read failed: ", std::strerror(errno));
    if (got == 0) fail(k, tensor, "unexpected end of file at byte ", offset);
    out += got, offset += static_cast<uint64_t>(got), n -= static_cast<uint64_t>(got);
  }
}

// Blocks [first, last] of file k, each checked against the metadata's hash.
std::vector<char> ShardReader::read_blocks(int64_t k, uint64_t first, uint64_t last, const std::string& tensor) {
  const DcpFile& f = meta_.files[static_cast<size_t>(k)];
  const uint64_t b = meta_.block_bytes, begin = first * b, end = std::min(f.size, (last + 1) * b);
  std::vector<char> bytes(end - begin);
  read_at(k, begin, bytes.data(), bytes.size(), tensor);
  for (uint64_t i = first; i <= last; ++i) {
    const uint64_t lo = i * b, n = std::min(b, f.size - lo);
    if (fnv1a(kFnvOffset, bytes.data() + (lo - begin), n) == f.blocks[i]) continue;
    uint64_t id = 0;
    read_at(k, f.id_offset, reinterpret_cast<char*>(&id), 8, tensor);
    if (id != meta_.id)
      fail(k, tensor, "written by another save (its id is ", id, ", the metadata's ", meta_.id,
           "): the metadata and the shard files come from different checkpoints");
    fail(k, tensor, "corrupted: bytes [", lo, ", ", lo + n, ") do not match their checksum in the metadata");
  }
  return bytes;
}

// When file k is missing: the shard files of other saves in the directory, which tell a metadata
// file copied from elsewhere.
std::string ShardReader::other_saves_hint(int64_t k) const {
  std::string found;
  const std::string suffix = weft::detail::str_cat("-", k, ".weft");
  if (DIR* d = ::opendir(meta_.dir.c_str())) {
    while (const dirent* ent = ::readdir(d)) {
      const std::string name = ent->d_name;
      if (found.empty() && starts_with(name, "shard-") && name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        found = name;
    }
    ::closedir(d);
  }
  if (found.empty()) return "";
  return weft::detail::str_cat("; the directory has '", found, "' of another save: the metadata comes from another checkpoint");
}

void ShardReader::copy_runs(const SavedTensor& s, const SavedPiece& p, const std::vector<Run>& runs, Tensor& out) {
  // The blocks the runs touch, as spans of consecutive blocks: one read each.
  open(p.file, s.name);
  const uint64_t es = element_size(s.dtype), b = meta_.block_bytes;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const Run& r : runs) {
    const uint64_t first = (p.data_offset + r.src * es) / b, last = (p.data_offset + (r.src + r.n) * es - 1) / b;
    if (!spans.empty() && first <= spans.back().second + 1)
      spans.back().second = std::max(spans.back().second, last);
    else
      spans.emplace_back(first, last);
  }
  auto* dst = static_cast<char*>(out.raw_data());
  size_t span = 0;
  std::vector<char> bytes = read_blocks(p.file, spans[0].first, spans[0].second, s.name);
  for (const Run& r : runs) {
    const uint64_t at = p.data_offset + r.src * es;
    while (at >= (spans[span].second + 1) * b) {
      ++span;
      bytes = read_blocks(p.file, spans[span].first, spans[span].second, s.name);
    }
    std::memcpy(dst + r.dst * es, bytes.data() + (at - spans[span].first * b), r.n * es);
  }
}

// The runs of the region of `shape` at `offset` in a tensor of `global` shape: (flat index in the
// global tensor, offset in the region, length), contiguous along the last dim, merged where possible.
std::vector<Run> region_runs(const Shape& global, const Shape& shape, const Shape& offset) {
  const size_t nd = global.size();
  std::vector<Run> runs;
  Shape idx(offset);
  const uint64_t len = nd == 0 ? 1 : static_cast<uint64_t>(shape[nd - 1]);
  for (;;) {
    uint64_t flat = 0, local = 0;
    for (size_t d = 0; d < nd; ++d) {
      flat = flat * static_cast<uint64_t>(global[d]) + static_cast<uint64_t>(idx[d]);
      local = local * static_cast<uint64_t>(shape[d]) + static_cast<uint64_t>(idx[d] - offset[d]);
    }
    add_run(runs, {flat, local, len});
    int64_t d = static_cast<int64_t>(nd) - 2;
    for (; d >= 0; --d) {
      const auto u = static_cast<size_t>(d);
      if (++idx[u] < offset[u] + shape[u]) break;
      idx[u] = offset[u];
    }
    if (d < 0) break;
  }
  return runs;
}

// Splits the target's runs (flat indices of the saved tensor, by Note [Views on load]) among the
// saved pieces that hold them: per piece, runs from its own data to the target's.
std::vector<std::vector<Run>> runs_per_piece(const SavedTensor& s, const std::vector<Run>& target_runs) {
  const size_t nd = s.global.size();
  std::vector<std::vector<Run>> out(s.pieces.size());
  Shape idx(s.global);
  for (Run r : target_runs) {
    while (r.n > 0) {
      uint64_t rest = r.src;
      for (size_t d = nd; d-- > 0;) idx[d] = static_cast<int64_t>(rest % static_cast<uint64_t>(s.global[d])),
                                    rest /= static_cast<uint64_t>(s.global[d]);
      size_t k = 0;  // the piece holding idx (pieces tile the tensor)
      for (; k < s.pieces.size(); ++k) {
        const SavedPiece& p = s.pieces[k];
        bool inside = true;
        for (size_t d = 0; d < nd && inside; ++d) inside = idx[d] >= p.offset[d] && idx[d] < p.offset[d] + p.size[d];
        if (inside) break;
      }
      WEFT_CHECK(k < s.pieces.size(), "load_distributed: no saved piece of '", s.name, "' holds element ", r.src,
                 " (the metadata's pieces do not tile the tensor)");
      const SavedPiece& p = s.pieces[k];
      // How far the piece's data runs on from idx in the tensor's order too: to the end of the piece
      // along its innermost dim that does not span the tensor (the dims inside it are whole).
      int64_t j = static_cast<int64_t>(nd) - 1;
      uint64_t inner = 1, within = 0, src = 0;
      for (; j >= 0 && p.size[static_cast<size_t>(j)] == s.global[static_cast<size_t>(j)]; --j) {
        within += static_cast<uint64_t>(idx[static_cast<size_t>(j)]) * inner;
        inner *= static_cast<uint64_t>(s.global[static_cast<size_t>(j)]);
      }
      const uint64_t ahead = j < 0 ? inner - within
                                   : static_cast<uint64_t>(p.offset[static_cast<size_t>(j)] + p.size[static_cast<size_t>(j)] -
                                                           idx[static_cast<size_t>(j)]) * inner - within;
      const uint64_t n = std::min(r.n, ahead);
      for (size_t d = 0; d < nd; ++d) src = src * static_cast<uint64_t>(p.size[d]) + static_cast<uint64_t>(idx[d] - p.offset[d]);
      add_run(out[k], {src, r.dst, n});
      r.src += n, r.dst += n, r.n -= n;
    }
  }
  return out;
}

// The sizes' prefix products: two shapes of one row-major layout, one splitting dims of the other,
// have nested sets of them.
std::vector<int64_t> prefix_products(const Shape& shape) {
  std::vector<int64_t> out;
  int64_t p = 1;
  for (int64_t size : shape) out.push_back(p *= size);
  return out;
}

bool same_layout(const Shape& a, const Shape& b) {
  if (a == b) return true;
  if (numel_of(a) != numel_of(b) || numel_of(a) == 0) return false;
  std::vector<int64_t> pa = prefix_products(a), pb = prefix_products(b);
  auto within = [](const std::vector<int64_t>& x, const std::vector<int64_t>& y) {
    return std::all_of(x.begin(), x.end(), [&](int64_t v) { return std::find(y.begin(), y.end(), v) != y.end(); });
  };
  return within(pa, pb) || within(pb, pa);
}

}  // namespace

uint64_t dcp_shard_bytes_read() { return shard_bytes_read.load(); }

namespace {

// Reads the metadata's tables one by one, each checked before it is used; errors name the entry.
class MetadataParser {
 public:
  MetadataParser(DcpMetadata& m) : m_(m), reader_(m.path) {  // the reader checks size, checksum, entries
    for (const CheckpointEntry& e : reader_.entries()) index_[e.name] = &e;
  }

  void header_and_files() {
    const std::vector<int64_t> head = ints("dcp.header");
    check(head.size() == 4, "dcp.header", "has ", head.size(), " values; expected 4");
    check(head[0] == kDcpVersion, "dcp.header", "has format version ", head[0], "; this build reads ", kDcpVersion);
    check(head[2] >= 1 && head[2] <= (int64_t{1} << 24) && head[3] >= 8, "dcp.header", "declares ", head[2],
          " files and blocks of ", head[3], " bytes");
    m_.id = static_cast<uint64_t>(head[1]);
    m_.block_bytes = static_cast<uint64_t>(head[3]);
    for (int64_t k = 0; k < head[2]; ++k) {
      const std::string name = "dcp.file." + std::to_string(k);
      const std::vector<int64_t> v = ints(name);
      check(v.size() >= 3 && v[0] >= 16 && v[2] >= 0 && static_cast<uint64_t>(v[2]) + 8 <= static_cast<uint64_t>(v[0]),
            name, "is not a file record (size, checksum, id offset, block hashes)");
      DcpFile f{static_cast<uint64_t>(v[0]), static_cast<uint64_t>(v[1]), static_cast<uint64_t>(v[2]), {}};
      for (size_t i = 3; i < v.size(); ++i) f.blocks.push_back(static_cast<uint64_t>(v[i]));
      check(f.blocks.size() == (f.size + m_.block_bytes - 1) / m_.block_bytes, name, "has ", f.blocks.size(),
            " block hashes for ", f.size, " bytes in blocks of ", m_.block_bytes);
      m_.files.push_back(std::move(f));
    }
  }

  void tensors() {
    for (const CheckpointEntry& e : reader_.entries()) {
      if (starts_with(e.name, "dcp.header") || starts_with(e.name, "dcp.file.")) continue;
      if (starts_with(e.name, "shards.")) {
        check(index_.count("tensor." + e.name.substr(7)) != 0, e.name, "has no 'tensor.", e.name.substr(7), "' entry");
        continue;
      }
      check(starts_with(e.name, "tensor."), e.name, "is not part of the distributed checkpoint format");
      SavedTensor s = describe(e.name);
      pieces(s);
      m_.order.push_back(s.name);
      m_.tensors.emplace(s.name, std::move(s));
    }
  }

 private:
  template <class... What>
  void check(bool ok, const std::string& entry, const What&... what) const {
    WEFT_CHECK(ok, "load_distributed '", m_.dir, "': ", m_.path, " entry '", entry, "' ", what...);
  }

  std::vector<int64_t> ints(const std::string& name) const {
    auto it = index_.find(name);
    check(it != index_.end(), name, "is missing");
    check(it->second->dtype == kInt64 && it->second->shape.size() <= 2, name, "is not an int64 table");
    return reader_.read(*it->second).to_vector<int64_t>();
  }

  // "tensor.<name>": dtype, ndim, sizes, mesh ndim, mesh sizes, (kind, shard dim) per mesh dim.
  SavedTensor describe(const std::string& entry) const {
    const std::vector<int64_t> v = ints(entry);
    SavedTensor s;
    s.name = entry.substr(7);
    check(v.size() >= 3 && v[0] >= 0 && v[0] <= static_cast<int64_t>(kFloat64), entry, "has no valid dtype");
    s.dtype = static_cast<DType>(v[0]);
    check(v[1] >= 0 && v[1] <= 64 && v.size() >= 3 + static_cast<size_t>(v[1]), entry, "has no valid shape");
    const auto rank = static_cast<size_t>(v[1]);
    s.global = Shape(v.begin() + 2, v.begin() + static_cast<int64_t>(2 + rank));
    for (int64_t size : s.global) check(size >= 0, entry, "has a negative size");
    const int64_t mesh_rank = v[2 + rank];
    check(mesh_rank >= 0 && mesh_rank <= 64 && v.size() == 3 + rank + 3 * static_cast<size_t>(mesh_rank), entry,
          "has no valid mesh and placements");
    const auto at = v.begin() + static_cast<int64_t>(3 + rank);
    s.mesh_shape.assign(at, at + mesh_rank);
    for (int64_t d = 0; d < mesh_rank; ++d) {
      const int64_t kind = at[mesh_rank + 2 * d];
      check(kind == 0 || kind == 1, entry, "has a placement of kind ", kind, " (saved ones are Shard or Replicate)");
      dist::Placement p;
      p.kind = static_cast<dist::Placement::Kind>(kind);
      p.shard_dim = at[mesh_rank + 2 * d + 1];
      s.placements.push_back(p);
    }
    return s;
  }

  // "shards.<name>": one row per piece, each inside the tensor and its file, together covering it.
  void pieces(SavedTensor& s) const {
    const std::string name = "shards." + s.name;
    const std::vector<int64_t> table = ints(name);
    const size_t nd = s.global.size(), width = 2 + 2 * nd;
    const CheckpointEntry& entry = *index_.at(name);
    check(entry.shape.size() == 2 && entry.shape[1] == static_cast<int64_t>(width), name, "has shape ", entry.shape,
          "; expected [pieces, ", width, "] for a rank-", nd, " tensor");
    int64_t covered = 0;
    for (size_t row = 0; row < table.size(); row += width) {
      const auto at = table.begin() + static_cast<int64_t>(row);
      SavedPiece p{at[0], static_cast<uint64_t>(at[1]), Shape(at + 2, at + 2 + static_cast<int64_t>(nd)),
                   Shape(at + 2 + static_cast<int64_t>(nd), at + static_cast<int64_t>(width))};
      bool inside = p.file >= 0 && p.file < static_cast<int64_t>(m_.files.size()) && at[1] >= 0;
      for (size_t d = 0; d < nd && inside; ++d)
        inside = p.offset[d] >= 0 && p.size[d] >= 0 && p.offset[d] + p.size[d] <= s.global[d];
      const uint64_t bytes = inside ? static_cast<uint64_t>(numel_of(p.size)) * element_size(s.dtype) : 0;
      check(inside && p.data_offset + bytes <= m_.files[static_cast<size_t>(p.file)].size, name,
            "has a piece outside the tensor ", s.global, " or its file");
      covered += numel_of(p.size);
      s.pieces.push_back(std::move(p));
    }
    check(covered == numel_of(s.global), name, "covers ", covered, " of the ", numel_of(s.global), " elements");
  }

  DcpMetadata& m_;
  CheckpointReader reader_;
  std::map<std::string, const CheckpointEntry*> index_;
};

}  // namespace

DcpMetadata read_dcp_metadata(const std::string& dir) {
  DcpMetadata m;
  m.dir = dir;
  m.path = dir + "/" + kDcpMetadataName;
  struct stat st {};
  WEFT_CHECK(::stat(m.path.c_str(), &st) == 0, "load_distributed '", dir, "': no ", kDcpMetadataName, " (",
             std::strerror(errno), "): not a distributed checkpoint, or its save never completed");
  MetadataParser parser(m);
  parser.header_and_files();
  parser.tensors();
  return m;
}

void check_target(const DcpMetadata& meta, const std::string& name, const Tensor& target, const std::string& what) {
  const std::string who = "load_distributed '" + meta.dir + "'";
  WEFT_CHECK(target.defined(), who, ": ", what, " ('", name, "') is an undefined tensor; expected one to fill");
  auto it = meta.tensors.find(name);
  WEFT_CHECK(it != meta.tensors.end(), who, ": missing tensor '", name, "' for ", what, " (shape ", target.shape(),
             "): ", meta.path, " has no such tensor");
  const SavedTensor& s = it->second;
  WEFT_CHECK(s.dtype == target.dtype(), who, ": dtype mismatch for '", name, "': ", meta.path, " has ",
             dtype_name(s.dtype), " but ", what, " is ", dtype_name(target.dtype()));
  WEFT_CHECK(same_layout(s.global, target.shape()), who, ": shape mismatch for '", name, "': ", meta.path,
             " has global shape ", s.global, " but ", what, " has ", target.shape(),
             " (a view splitting or merging its dims would do)");
  if (target.is_dtensor()) {
    dist::DTensor d(target);
    for (const dist::Placement& p : d.placements())
      WEFT_CHECK(!p.is_partial(), who, ": '", name, "' has placements ", dist::to_string(d.placements()),
                 "; a Partial tensor cannot be loaded");
    WEFT_CHECK(d.device_mesh().contains_this_rank(), who, ": this rank is not in the mesh of '", name, "'");
  }
}

std::vector<Tensor> read_targets(const DcpMetadata& meta, const std::vector<std::pair<std::string, Tensor>>& targets) {
  ShardReader files(meta);
  std::vector<Tensor> values;
  for (const auto& [name, t] : targets) {
    const SavedTensor& s = meta.tensors.at(name);
    const Shape global = t.shape();  // the saved shape or a view of it (Note [Views on load])
    Shape shape = global, offset(global);
    std::fill(offset.begin(), offset.end(), 0);
    if (t.is_dtensor()) {
      dist::DTensor d(t);
      std::tie(shape, offset) = dist::local_shape_and_offset(global, d.device_mesh().shape(),
                                                             *d.device_mesh().get_coordinate(), d.placements());
    }
    Tensor out = kernels::make_empty(shape, s.dtype, "load_distributed");
    if (out.numel() > 0) {
      const std::vector<std::vector<Run>> runs = runs_per_piece(s, region_runs(global, shape, offset));
      for (size_t k = 0; k < runs.size(); ++k)
        if (!runs[k].empty()) files.copy_runs(s, s.pieces[k], runs[k], out);
    }
    values.push_back(out);
  }
  return values;
}

}  // namespace weft::nn::detail
