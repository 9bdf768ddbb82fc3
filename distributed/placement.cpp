// placement.cpp: constructors, equality, hashing, printing and normalisation of placements.
#include "distributed/placement.h"

#include "framework/error.h"
#include "framework/shape.h"

namespace weft::dist {

int64_t Placement::dim() const {
  WEFT_CHECK(is_shard(), "Placement.dim: ", to_string(), " is not a Shard placement");
  return shard_dim;
}

ReduceOp Placement::reduce_op() const {
  WEFT_CHECK(is_partial(), "Placement.reduce_op: ", to_string(), " is not a Partial placement");
  return op;
}

std::string to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
    case ReduceOp::Product: return "product";
  }
  return "unknown";
}

std::string reduce_op_name(ReduceOp op) { return to_string(op); }

std::string Placement::to_string() const {
  switch (kind) {
    case Kind::Shard: return "S(" + std::to_string(shard_dim) + ")";
    case Kind::Replicate: return "R";
    case Kind::Partial: return "P(" + reduce_op_name(op) + ")";
  }
  return "?";
}

Placement Shard(int64_t dim) { return Placement{dim, Placement::Kind::Shard, ReduceOp::Sum}; }
Placement Replicate() { return Placement{}; }

Placement Partial(ReduceOp op) {
  // A pending product has no inverse for R -> P, and docs/semantics.md names only these four.
  WEFT_CHECK(op == ReduceOp::Sum || op == ReduceOp::Avg || op == ReduceOp::Max || op == ReduceOp::Min,
             "Partial: the reduce op must be sum, avg, max or min but got ", reduce_op_name(op));
  return Placement{0, Placement::Kind::Partial, op};
}

std::string to_string(const Placements& placements) {
  std::string out = "(";
  for (size_t i = 0; i < placements.size(); ++i) {
    if (i > 0) out += ", ";
    out += placements[i].to_string();
  }
  if (placements.size() == 1) out += ",";
  return out + ")";
}

Placements normalize(Placements placements, int64_t tensor_rank) {
  // All dims are checked before any is wrapped, so that the error prints the placements as given;
  // wrapping in place lets a caller that moves its list in pay no copy.
  for (const Placement& p : placements)
    WEFT_CHECK(!p.is_shard() || (p.shard_dim >= -tensor_rank && p.shard_dim < tensor_rank), "Shard: dim ",
               p.shard_dim, " is out of range for a tensor of rank ", tensor_rank, " (placements ",
               to_string(placements), "; expected a dim in [", -tensor_rank, ", ", tensor_rank - 1, "])");
  for (Placement& p : placements)
    if (p.is_shard() && p.shard_dim < 0) p.shard_dim += tensor_rank;
  return placements;
}

Placements replicate_all(int64_t count) { return Placements(static_cast<size_t>(count), Replicate()); }

size_t PlacementHash::operator()(const Placement& p) const {
  size_t h = static_cast<size_t>(p.kind) * 1000003u;
  if (p.is_shard()) h ^= std::hash<int64_t>{}(p.shard_dim) + 0x9e3779b97f4a7c15ull;
  if (p.is_partial()) h ^= static_cast<size_t>(p.op) * 7919u + 17;
  return h;
}

size_t PlacementHash::operator()(const Placements& ps) const {
  size_t h = ps.size();
  for (const Placement& p : ps) h = h * 1315423911u ^ ((*this)(p) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  return h;
}

}  // namespace weft::dist
