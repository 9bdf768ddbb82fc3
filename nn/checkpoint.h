// nn checkpoints: saving and loading state dicts, models and optimizers to one checksummed file.
#pragma once

#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace weft::nn {

// Note [Checkpoint format]
// All integers little-endian. Header: the 8 bytes "WEFTCKPT", u32 format version, u32 flags (0),
// u64 total file size, u64 entry count. Then per entry: u32 name length, name bytes, u8 dtype
// (DType's value), u32 ndim, i64 sizes[ndim], u32 mesh ndim, i64 mesh sizes, one placement per mesh
// dim (u8 kind, i64 shard dim, u8 reduce op; mesh ndim 0 for a plain tensor), u64 byte length, raw
// contiguous data. Last, u64 FNV-1a 64 of every byte before it. The total size in the header tells a
// truncated file from a corrupted one; the checksum catches any flipped byte.
// Writes go to `<path>.tmp.<pid>`, are fsync'ed and renamed over `path`, so `path` always holds
// either the old file or the complete new one.

inline constexpr uint32_t kCheckpointVersion = 1;

// Writes `state` to `path` atomically. DTensor entries are gathered to full tensors (collective on
// their mesh: every rank of it must call this) and written by the mesh's first rank with their
// placements recorded; plain entries are written as they are.
void save_state(const std::string& path, const StateDict& state);
// Reads every entry of `path` as a plain full tensor, after checking magic, version, size and
// checksum; errors name the file and the problem.
StateDict load_state(const std::string& path);

// Saves the model's state dict as "model.<name>" and, when given, the optimizer's as
// "optim.<key>" (its per-parameter buffers gathered like DTensor parameters when they are shards).
void save_checkpoint(const std::string& path, const Module& model, const optim::Optimizer* optimizer = nullptr);
// Loads what save_checkpoint wrote. Everything is validated (file integrity, keys, dtypes, shapes)
// and the new state built before anything is assigned, so a failed load leaves the model and the
// optimizer untouched. DTensor parameters take their shard of the saved full tensor for their
// current mesh and placements, so a checkpoint reloads on any number of ranks.
void load_checkpoint(const std::string& path, Module& model, optim::Optimizer* optimizer = nullptr);

}  // namespace weft::nn
