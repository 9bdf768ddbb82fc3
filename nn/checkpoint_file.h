// nn/checkpoint_file.h (internal): the bytes of Note [Checkpoint format] (nn/checkpoint.h): an
// atomic, checksummed writer and a reader that validates the whole file before handing out entries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distributed/placement.h"
#include "framework/tensor.h"
#include "nn/module.h"

namespace weft::nn::detail {

// FNV-1a 64 (the checkpoint checksum): hash `n` bytes onto `h`, starting from kFnvOffset.
inline constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t fnv1a(uint64_t h, const void* data, size_t n);

// One entry's metadata. `offset` (where its data starts) is set by the reader only.
struct CheckpointEntry {
  std::string name;
  DType dtype = kFloat32;
  Shape shape;
  std::vector<int64_t> mesh_shape;  // empty for a plain tensor
  dist::Placements placements;      // one per mesh dim
  uint64_t offset = 0;
  uint64_t nbytes() const { return static_cast<uint64_t>(numel_of(shape)) * element_size(dtype); }
};

// Writes `<target>.tmp.<pid>` entry by entry (the header, with the total size, is known from the
// metadata up front); commit() appends the checksum, fsyncs and renames over the target: `path`,
// or the file it links to (the link stays). Destroyed without commit (an exception midway), it
// removes the temporary and the target is untouched. Temporaries of earlier saves of the same
// target whose process is gone (a killed save) are removed first.
// With `block_bytes` > 0 it also hashes every `block_bytes` of the file on its own (the last block
// may be short), so that a reader of a few byte ranges can verify just the blocks it reads
// (distributed checkpoints, nn/distributed_checkpoint.h).
class CheckpointWriter {
 public:
  CheckpointWriter(std::string path, const std::vector<CheckpointEntry>& entries, uint64_t block_bytes = 0);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  // `value` is the contiguous full tensor described by `entry`. Returns where its data starts in the file.
  uint64_t write_entry(const CheckpointEntry& entry, const Tensor& value);
  void commit();
  // After commit(): the file's size, its checksum (the trailer) and the per-block hashes.
  uint64_t size() const { return written_; }
  uint64_t checksum() const { return checksum_; }
  const std::vector<uint64_t>& block_hashes() const { return block_hashes_; }

 private:
  template <class T>
  void put(T value) { put_bytes(&value, sizeof(T)); }
  void put_bytes(const void* data, size_t n);
  void flush();
  void write_all(const char* p, size_t n);

  std::string path_, target_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t hash_;
  std::vector<char> buffer_;
  uint64_t written_ = 0, checksum_ = 0;
  uint64_t block_bytes_ = 0, block_hash_ = kFnvOffset;
  std::vector<uint64_t> block_hashes_;
};

// Opens `path` and checks magic, version, declared size (truncation), checksum (corruption) and every
// entry's fields; errors name the file and the problem. Entries are then read one at a time.
class CheckpointReader {
 public:
  explicit CheckpointReader(std::string path);
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;
  const std::string& path() const { return path_; }
  const std::vector<CheckpointEntry>& entries() const { return entries_; }
  // A new contiguous tensor holding the entry's data.
  Tensor read(const CheckpointEntry& entry) const;

 private:
  void read_at(uint64_t offset, void* out, uint64_t n) const;
  template <class T>
  T get(uint64_t& cursor, uint64_t limit, const std::string& where) const;
  void need(uint64_t cursor, uint64_t n, uint64_t limit, const std::string& where) const;
  std::vector<CheckpointEntry> parse_entries(uint64_t count, uint64_t limit, bool exact) const;

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::vector<CheckpointEntry> entries_;
};

// Copies each loaded value into its target (a DTensor's local shard), in order, after every check
// has passed: nothing here can fail halfway. Shared by load_state and load_distributed.
void assign_loaded(const StateDict& targets, const std::vector<Tensor>& values);

}  // namespace weft::nn::detail
