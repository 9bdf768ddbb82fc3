// nn/distributed_checkpoint_read.h (internal): the parsed metadata of Note [Distributed checkpoint
// format] (nn/distributed_checkpoint.h) and the reads that fill a rank's region from the pieces
// overlapping it, block by verified block.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "distributed/placement.h"
#include "framework/tensor.h"

namespace weft::nn::detail {

inline constexpr int64_t kDcpVersion = 1;
inline constexpr char kDcpMetadataName[] = "metadata.weft";

// One rank's piece of a saved tensor: in which file, where its (contiguous) data starts, and which
// box of the global tensor it is.
struct SavedPiece {
  int64_t file = 0;
  uint64_t data_offset = 0;
  Shape offset, size;
};

struct SavedTensor {
  std::string name;
  DType dtype = kFloat32;
  Shape global;
  std::vector<int64_t> mesh_shape;  // as saved; loading does not need them
  dist::Placements placements;
  std::vector<SavedPiece> pieces;
};

struct DcpFile {
  uint64_t size = 0, checksum = 0, id_offset = 0;
  std::vector<uint64_t> blocks;  // FNV-1a 64 of each block_bytes of the file
};

struct DcpMetadata {
  std::string dir, path;  // the checkpoint directory and its metadata file
  uint64_t id = 0, block_bytes = 0;
  std::vector<DcpFile> files;
  std::map<std::string, SavedTensor> tensors;
  std::vector<std::string> order;  // tensor names as saved
};

std::string dcp_shard_file_name(uint64_t id, int64_t file);

// Reads and validates `dir`'s metadata (the file's integrity, then every table's consistency).
DcpMetadata read_dcp_metadata(const std::string& dir);

// Checks that `meta` has tensor `name` with `target`'s dtype and global shape; `what` names the target.
void check_target(const DcpMetadata& meta, const std::string& name, const Tensor& target, const std::string& what);

// A new contiguous tensor per target: this rank's region of it (a DTensor's local shard for its mesh
// and placements, a plain tensor whole), read from the overlapping pieces only.
std::vector<Tensor> read_targets(const DcpMetadata& meta, const std::vector<std::pair<std::string, Tensor>>& targets);

}  // namespace weft::nn::detail
