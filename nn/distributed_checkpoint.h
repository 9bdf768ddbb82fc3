// nn/distributed_checkpoint.h: distributed checkpoints: one shard file per rank plus a metadata file,
// loaded onto any mesh and placements (or into one process) by reading only the bytes each rank needs.
#pragma once

#include <cstdint>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace weft::nn {

// Note [Distributed checkpoint format]
// A directory holding `metadata.weft` and one `shard-<id>-<k>.weft` per writing rank, all in the
// format of Note [Checkpoint format] (so nn::load_state opens any of them for inspection).
// - A shard file holds "dcp.id" (int64 [1], the save's random id) and then this rank's piece of each
//   tensor under the tensor's name, with its local shape. A Replicate piece is written once, by the
//   rank at coordinate 0 of each non-Shard mesh dim; a plain tensor by file 0; empty pieces not at all.
// - The metadata holds "dcp.header" (int64: version, id, file count, block bytes), per file k
//   "dcp.file.<k>" (int64: size, checksum, offset of its id, then one FNV-1a 64 per block of
//   `block bytes` of the file), and per tensor "tensor.<name>" (int64: dtype, ndim, global sizes,
//   mesh ndim, mesh sizes, then per mesh dim the placement's kind and shard dim: what was saved, for
//   reading; loading needs only the pieces) and "shards.<name>" (int64 [pieces, 2 + 2 * ndim]: file,
//   data offset in it, global offsets, sizes).
// Save: every rank writes its file (tmp + fsync + rename), the ranks agree that all are committed,
// then rank 0 writes the metadata the same way and removes the files of earlier saves. Shard file
// names carry the id, so until the metadata's rename the previous checkpoint stays whole and loadable.
// Load: each rank reads the metadata, then for every piece overlapping its target region reads just
// the blocks holding the overlap (pread), verifies each block's hash, and copies the overlap.
// Bytes a load does not read are not verified: corruption there is found by the load that reads them.
// Both are collective over the largest mesh among the DTensors (every rank of it calls); with no
// DTensor the call is local (a single process).

// Note [Views on load]
// A target may have another shape than the saved tensor when both are views of one row-major
// layout, one splitting dims of the other (the sets of their sizes' prefix products nest): e.g. a
// Linear weight saved as (out, in) by a data-parallel or single-process model and loaded by a
// tensor-parallel Parallelized, which holds it as (1, out, 1, in) or qkv as (3, heads, head_dim, in).
// The loader works in flat element order: the target region's runs are flat ranges of the tensor,
// each split among the saved pieces that hold it. Any other shape is a mismatch.

struct DistributedSaveOptions {
  // The unit of integrity checking and of reading: a rank reads whole blocks around what it needs.
  int64_t block_bytes = int64_t{64} << 10;
};

// Saves `state` (DTensors and plain tensors) to directory `dir` (created if missing), atomically.
void save_distributed(const std::string& dir, const StateDict& state, const DistributedSaveOptions& options = {});
// Fills every tensor of `state` (a DTensor: its local shard, for its mesh and placements) from `dir`.
// The names and dtypes must match the checkpoint's, the global shapes too or be views of them
// (Note [Views on load]). Everything is read and checked before anything is assigned; on any
// rank's failure every rank raises that rank's message. Not `strict`: tensors of the checkpoint
// that `state` does not name are left out (the model alone from a model-and-optimizer checkpoint).
void load_distributed(const std::string& dir, StateDict& state, bool strict = true);

// The model's state dict as "model.<name>" and the optimizer's as "optim.<key>", each per-parameter
// buffer of a DTensor parameter saved as a DTensor like its parameter (so it reshards on load).
void save_distributed(const std::string& dir, const Module& model, const optim::Optimizer* optimizer = nullptr,
                      const DistributedSaveOptions& options = {});
// Loads what the overload above wrote onto the model's and the optimizer's current meshes and
// placements; all or nothing, like load_checkpoint.
void load_distributed(const std::string& dir, Module& model, optim::Optimizer* optimizer = nullptr);

namespace detail {
// Bytes this process has read from shard files (not the metadata): what tests compare with file sizes.
uint64_t dcp_shard_bytes_read();
}  // namespace detail

}  // namespace weft::nn
