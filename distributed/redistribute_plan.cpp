// redistribute_plan.cpp: the greedy planner of docs/semantics.md and its cache.
#include "distributed/redistribute_plan.h"

#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "framework/error.h"

namespace weft::dist {

std::string RedistributeStep::to_string() const {
  return "mesh dim " + std::to_string(mesh_dim) + ": " + from.to_string() + " -> " + to.to_string();
}

void check_transition(const Placement& from, const Placement& to) {
  if (from == to || !to.is_partial()) return;
  WEFT_CHECK(!from.is_shard(), "redistribute: from ", from.to_string(), " to ", to.to_string(),
             " is not supported (a Shard can not become Partial)");
  WEFT_CHECK(!from.is_partial(), "redistribute: from ", from.to_string(), " to ", to.to_string(),
             " is not supported (a Partial can not change its reduce op)");
}

namespace {

// The earlier mesh dims (< mesh_dim) that shard tensor dim `d` (a dim of size 1 splits nothing).
std::set<size_t> earlier_dims_sharding(const Placements& ps, size_t mesh_dim, int64_t d,
                                       const std::vector<int64_t>& mesh_shape) {
  std::set<size_t> out;
  for (size_t j = 0; j < mesh_dim; ++j)
    if (ps[j].is_shard(d) && mesh_shape[j] > 1) out.insert(j);
  return out;
}

}  // namespace

// Note [Greedy redistribute plan]
// Shards nest in mesh-dim order, so a mesh dim can only change how it shards a tensor dim when no
// later mesh dim still splits that dim. If the source has any sharding, walk mesh dims from last
// to first: where the target is Shard(d) but the earlier mesh dims sharding d differ between the
// current state and the target, step to Replicate first (the nesting above it will change);
// otherwise step straight to the target. Then walk first to last and emit what is still different
// (these are R -> S chunks and R -> P, which need no communication). [S0,S1] -> [S1,S0] is
// dim 1 S1->R, dim 0 S0->S1, dim 1 R->S0: two collectives.
RedistributePlan plan_redistribute(const Placements& source, const Placements& target, const Shape& global_shape,
                                   const std::vector<int64_t>& mesh_shape) {
  WEFT_CHECK(source.size() == mesh_shape.size() && target.size() == mesh_shape.size(),
             "redistribute: expected one placement per mesh dim (", mesh_shape.size(), ") but got source ",
             to_string(source), " and target ", to_string(target));
  int64_t rank = static_cast<int64_t>(global_shape.size());
  Placements current = normalize(source, rank);
  const Placements goal = normalize(target, rank);
  for (size_t i = 0; i < goal.size(); ++i) check_transition(current[i], goal[i]);

  RedistributePlan plan;
  auto step = [&](size_t i, const Placement& to) {
    check_transition(current[i], to);
    if (mesh_shape[i] > 1) plan.push_back({static_cast<int64_t>(i), current[i], to});
    current[i] = to;
  };
  bool any_shard = false;
  for (const Placement& p : current) any_shard = any_shard || p.is_shard();
  if (any_shard) {
    for (size_t i = goal.size(); i-- > 0;) {
      // Checked even where current == goal: S(d) over other earlier shards of d is another piece.
      bool nesting_changes = goal[i].is_shard() && earlier_dims_sharding(current, i, goal[i].shard_dim, mesh_shape) !=
                                                       earlier_dims_sharding(goal, i, goal[i].shard_dim, mesh_shape);
      if (nesting_changes) {
        if (!current[i].is_replicate()) step(i, Replicate());
      } else if (current[i] != goal[i]) {
        step(i, goal[i]);
      }
    }
  }
  for (size_t i = 0; i < goal.size(); ++i)
    if (current[i] != goal[i]) step(i, goal[i]);
  return plan;
}

namespace {

using PlanKey = std::tuple<std::string, std::string, std::vector<int64_t>, std::vector<int64_t>>;

// Placements print uniquely (normalised first), so their strings make an exact key.
PlanKey plan_key(const Placements& source, const Placements& target, const Shape& global_shape,
                 const std::vector<int64_t>& mesh_shape) {
  return {to_string(source), to_string(target), to_vector(global_shape), mesh_shape};
}

struct PlanCache {
  std::mutex mutex;
  std::map<PlanKey, RedistributePlan> plans;
};

PlanCache& plan_cache() {
  static PlanCache cache;
  return cache;
}

}  // namespace

const RedistributePlan& cached_redistribute_plan(const Placements& source, const Placements& target,
                                                 const Shape& global_shape, const std::vector<int64_t>& mesh_shape) {
  PlanCache& cache = plan_cache();
  PlanKey key = plan_key(source, target, global_shape, mesh_shape);
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto it = cache.plans.find(key);
  if (it != cache.plans.end()) return it->second;
  // std::map never moves its nodes, so the reference stays valid after the lock is released.
  RedistributePlan plan = plan_redistribute(source, target, global_shape, mesh_shape);
  return cache.plans.emplace(std::move(key), std::move(plan)).first->second;
}

size_t redistribute_plan_cache_size() {
  std::lock_guard<std::mutex> lock(plan_cache().mutex);
  return plan_cache().plans.size();
}

std::optional<CollectiveKind> step_collective(const RedistributeStep& s) {
  if (s.from.is_shard() && s.to.is_replicate()) return CollectiveKind::AllGather;
  if (s.from.is_shard() && s.to.is_shard()) return CollectiveKind::AllToAll;
  if (s.from.is_partial() && s.to.is_replicate()) return CollectiveKind::AllReduce;
  if (s.from.is_partial() && s.to.is_shard()) return CollectiveKind::ReduceScatter;
  return std::nullopt;
}

int64_t count_collectives(const RedistributePlan& plan) {
  int64_t n = 0;
  for (const RedistributeStep& s : plan) n += step_collective(s).has_value();
  return n;
}

}  // namespace weft::dist
