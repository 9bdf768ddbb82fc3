// redistribute_plan.h: the greedy redistribute planner. Pure (no MPI): placements, global shape and
// mesh shape in, a list of per-mesh-dim steps out; plans are cached.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "distributed/collective_kind.h"
#include "distributed/placement.h"
#include "framework/shape.h"

namespace weft::dist {

// One transition on one mesh dim; the executor (redistribute.h) turns it into a collective or a
// local operation.
struct RedistributeStep {
  int64_t mesh_dim = 0;
  Placement from;
  Placement to;
  bool operator==(const RedistributeStep& o) const {
    return mesh_dim == o.mesh_dim && from == o.from && to == o.to;
  }
  std::string to_string() const;  // "mesh dim 1: S(1) -> R"
};
using RedistributePlan = std::vector<RedistributeStep>;

// Throws weft::Error for transitions docs/semantics.md refuses everywhere (S -> P, P(a) -> P(b)).
// R -> P is allowed here: only the public DTensor::redistribute refuses Partial targets.
void check_transition(const Placement& from, const Placement& to);

// The greedy plan from `source` to `target` (one placement per mesh dim, shard dims may be
// negative). See Note [Greedy redistribute plan]. Steps on mesh dims of size 1 are dropped.
RedistributePlan plan_redistribute(const Placements& source, const Placements& target, const Shape& global_shape,
                                   const std::vector<int64_t>& mesh_shape);

// plan_redistribute through a process-wide cache keyed by all four arguments.
const RedistributePlan& cached_redistribute_plan(const Placements& source, const Placements& target,
                                                 const Shape& global_shape, const std::vector<int64_t>& mesh_shape);
size_t redistribute_plan_cache_size();

// The collective a step issues, or nullopt for local steps (R -> S chunking, R -> P division).
std::optional<CollectiveKind> step_collective(const RedistributeStep& step);
// How many collectives a plan issues.
int64_t count_collectives(const RedistributePlan& plan);

}  // namespace weft::dist
