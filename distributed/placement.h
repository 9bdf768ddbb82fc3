// placement.h: the placement values Shard(d), Replicate(), Partial(op): equality, hashing, printing
// and normalisation of negative shard dims.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "framework/small_vector.h"

namespace weft::dist {

// How a collective or a Partial placement combines values across ranks.
enum class ReduceOp : uint8_t { Sum, Avg, Max, Min, Product };
std::string to_string(ReduceOp op);  // "sum", "avg", "max", "min", "product"

// A small frozen value describing how one mesh dim holds a tensor: split along a tensor dim
// (Shard), a full copy on every rank (Replicate), or a pending reduction (Partial).
struct Placement {
  enum class Kind : uint8_t { Shard, Replicate, Partial };

  int64_t shard_dim = 0;           // meaningful for Shard only
  Kind kind = Kind::Replicate;
  ReduceOp op = ReduceOp::Sum;     // meaningful for Partial only

  // With `dim`, true only for a Shard of that (already normalised) dim.
  bool is_shard(std::optional<int64_t> dim = {}) const {
    return kind == Kind::Shard && (!dim || *dim == shard_dim);
  }
  bool is_replicate() const { return kind == Kind::Replicate; }
  bool is_partial() const { return kind == Kind::Partial; }
  int64_t dim() const;          // error unless Shard
  ReduceOp reduce_op() const;   // error unless Partial
  // Inline: placements are compared on every local_map call and redistribution.
  bool operator==(const Placement& o) const {
    if (kind != o.kind) return false;
    if (kind == Kind::Shard) return shard_dim == o.shard_dim;
    return kind != Kind::Partial || op == o.op;
  }
  bool operator!=(const Placement& o) const { return !(*this == o); }
  std::string to_string() const;  // "S(0)", "R", "P(sum)"
};

Placement Shard(int64_t dim);
Placement Replicate();
Placement Partial(ReduceOp op = ReduceOp::Sum);

// One placement per mesh dim, stored inline up to four mesh dims: a DTensor, a node that keeps its
// gradient's placements, or a redistribution plan then allocates nothing for them.
using Placements = SmallVector<Placement, 4>;

// Python tuple style, as error messages print them: "()", "(S(0),)", "(S(0), R)".
std::string to_string(const Placements& placements);
// The lower-case name a Partial prints: "sum", "avg", "max", "min".
std::string reduce_op_name(ReduceOp op);
// Shard dims wrapped against `tensor_rank` (errors name the dim and the rank).
Placements normalize(Placements placements, int64_t tensor_rank);
// Whether normalize(placements, tensor_rank) would return `placements` unchanged without error: a
// check that lets a caller skip the copy.
inline bool is_normalized(const Placements& placements, int64_t tensor_rank) {
  for (const Placement& p : placements)
    if (p.is_shard() && (p.shard_dim < 0 || p.shard_dim >= tensor_rank)) return false;
  return true;
}
// `count` Replicate placements.
Placements replicate_all(int64_t count);

struct PlacementHash {
  size_t operator()(const Placement& p) const;
  size_t operator()(const Placements& ps) const;
};

}  // namespace weft::dist

template <>
struct std::hash<weft::dist::Placement> {
  size_t operator()(const weft::dist::Placement& p) const { return weft::dist::PlacementHash{}(p); }
};
