// sharding.h: the uneven sharding rule (torch.chunk) and the local shape/offset of a shard on a
// mesh. Pure arithmetic, no MPI.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "distributed/placement.h"
#include "framework/shape.h"

namespace weft::dist {

// Rank r's piece of n elements over k ranks: (size, offset). c = ceil(n/k);
// size = max(0, min(n, c*r + c) - c*r); offset = min(n, c*r). Only the last non-empty piece is short.
std::pair<int64_t, int64_t> chunk_size_and_offset(int64_t n, int64_t k, int64_t r);
// Every rank's size: chunk sizes of n over k.
std::vector<int64_t> chunk_sizes(int64_t n, int64_t k);

// Local shape and global offset of the shard at mesh coordinate `coord`. Mesh dims sharding the same
// tensor dim nest: the first mesh dim splits first, the next splits each piece. Placements may hold
// negative shard dims; Partial and Replicate leave the shape alone.
std::pair<Shape, Shape> local_shape_and_offset(const Shape& global, const std::vector<int64_t>& mesh_shape,
                                               const std::vector<int64_t>& coord, const Placements& placements);

// The global shape a local shape stands for when every shard is as large as the first one (the even
// sharding from_local assumes without an explicit shape).
Shape even_global_shape(const Shape& local, const std::vector<int64_t>& mesh_shape, const Placements& placements);

}  // namespace weft::dist
