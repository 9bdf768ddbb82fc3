// test_placement: placements, the chunk rule, nested shard geometry and the greedy redistribute
// planner. No MPI: everything here is pure.
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <functional>
#include <map>
#include <set>
#include <unordered_set>

#include "distributed/placement.h"
#include "distributed/redistribute_plan.h"
#include "distributed/sharding.h"
#include "framework/error.h"

using namespace weft;
using namespace weft::dist;

namespace {

std::vector<int64_t> sizes_of(int64_t n, int64_t k) {
  std::vector<int64_t> out;
  for (int64_t r = 0; r < k; ++r) out.push_back(chunk_size_and_offset(n, k, r).first);
  return out;
}

using weft::test::error_of;

}  // namespace

TEST_CASE("Placement values: printing, equality, hashing, normalisation", "[placement]") {
  CHECK(Shard(0).to_string() == "S(0)");
  CHECK(Shard(-1).to_string() == "S(-1)");
  CHECK(Replicate().to_string() == "R");
  CHECK(Partial().to_string() == "P(sum)");
  CHECK(Partial(ReduceOp::Avg).to_string() == "P(avg)");
  CHECK(Partial(ReduceOp::Max).to_string() == "P(max)");
  CHECK(Partial(ReduceOp::Min).to_string() == "P(min)");
  CHECK(to_string(Placements{}) == "()");
  CHECK(to_string(Placements{Shard(0)}) == "(S(0),)");
  CHECK(to_string(Placements{Shard(0), Replicate()}) == "(S(0), R)");
  CHECK(to_string(Placements{Partial(), Shard(1), Replicate()}) == "(P(sum), S(1), R)");

  CHECK(Shard(1) == Shard(1));
  CHECK(Shard(1) != Shard(0));
  CHECK(Replicate() == Replicate());
  CHECK(Partial() == Partial(ReduceOp::Sum));
  CHECK(Partial() != Partial(ReduceOp::Max));
  CHECK(Shard(0) != Replicate());
  CHECK(Replicate() != Partial());

  CHECK(Shard(2).is_shard());
  CHECK(Shard(2).is_shard(2));
  CHECK_FALSE(Shard(2).is_shard(1));
  CHECK_FALSE(Replicate().is_shard());
  CHECK(Replicate().is_replicate());
  CHECK(Partial().is_partial());
  CHECK(Shard(3).dim() == 3);
  CHECK(Partial(ReduceOp::Min).reduce_op() == ReduceOp::Min);
  CHECK_THROWS_AS(Replicate().dim(), weft::Error);
  CHECK_THROWS_AS(Shard(0).reduce_op(), weft::Error);
  CHECK_THAT(error_of([] { Partial(ReduceOp::Product); }), Catch::Contains("sum, avg, max or min"));

  std::unordered_set<Placement> set{Shard(0), Shard(0), Shard(1), Replicate(), Partial(), Partial(ReduceOp::Avg)};
  CHECK(set.size() == 5);
  CHECK(PlacementHash{}(Placements{Shard(0), Replicate()}) == PlacementHash{}(Placements{Shard(0), Replicate()}));
  CHECK(PlacementHash{}(Placements{Shard(0), Replicate()}) != PlacementHash{}(Placements{Replicate(), Shard(0)}));

  Placements norm = normalize({Shard(-1), Shard(-3), Replicate(), Partial()}, 3);
  CHECK(norm == Placements{Shard(2), Shard(0), Replicate(), Partial()});
  CHECK(normalize({Shard(-1)}, 2) == normalize({Shard(1)}, 2));
  CHECK_THAT(error_of([] { normalize({Shard(2)}, 2); }), Catch::Contains("out of range for a tensor of rank 2"));
  CHECK_THAT(error_of([] { normalize({Shard(-3)}, 2); }), Catch::Contains("Shard: dim -3"));
}

TEST_CASE("Chunk rule follows torch.chunk", "[sharding]") {
  CHECK(sizes_of(13, 4) == std::vector<int64_t>{4, 4, 4, 1});
  CHECK(sizes_of(6, 4) == std::vector<int64_t>{2, 2, 2, 0});
  CHECK(sizes_of(1, 4) == std::vector<int64_t>{1, 0, 0, 0});
  CHECK(sizes_of(12, 4) == std::vector<int64_t>{3, 3, 3, 3});
  CHECK(sizes_of(0, 3) == std::vector<int64_t>{0, 0, 0});
  CHECK(sizes_of(5, 1) == std::vector<int64_t>{5});
  CHECK(chunk_sizes(13, 4) == std::vector<int64_t>{4, 4, 4, 1});
  CHECK(chunk_size_and_offset(13, 4, 3) == std::pair<int64_t, int64_t>{1, 12});
  CHECK(chunk_size_and_offset(6, 4, 3) == std::pair<int64_t, int64_t>{0, 6});
  CHECK(chunk_size_and_offset(1, 4, 2) == std::pair<int64_t, int64_t>{0, 1});
  // Against a direct reference: pieces of ceil(n/k) laid end to end and clipped at n.
  for (int64_t n = 0; n <= 20; ++n)
    for (int64_t k = 1; k <= 6; ++k) {
      int64_t c = (n + k - 1) / k, covered = 0;
      for (int64_t r = 0; r < k; ++r) {
        auto [size, offset] = chunk_size_and_offset(n, k, r);
        int64_t begin = std::min(n, r * c), end = std::min(n, r * c + c);
        CHECK(size == end - begin);
        CHECK(offset == begin);
        CHECK(offset == covered);  // contiguous tiling in rank order
        covered += size;
      }
      CHECK(covered == n);
    }
  CHECK_THROWS_AS(chunk_size_and_offset(4, 2, 2), weft::Error);
}

TEST_CASE("Nested shard geometry", "[sharding]") {
  SECTION("two mesh dims sharding one tensor dim: the first splits first") {
    // 13 over 2 is [7, 6]; 7 over 2 is [4, 3] and 6 over 2 is [3, 3].
    std::vector<std::pair<int64_t, int64_t>> expected{{4, 0}, {3, 4}, {3, 7}, {3, 10}};
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 2; ++b) {
        auto [shape, offset] = local_shape_and_offset({13, 5}, {2, 2}, {a, b}, {Shard(0), Shard(0)});
        CHECK(shape == Shape{expected[a * 2 + b].first, 5});
        CHECK(offset == Shape{expected[a * 2 + b].second, 0});
      }
  }
  SECTION("different tensor dims, negative dims, Partial and Replicate") {
    auto [shape, offset] = local_shape_and_offset({5, 7}, {2, 3}, {1, 2}, {Shard(0), Shard(-1)});
    CHECK(shape == Shape{2, 1});   // 5 over 2 -> [3, 2]; 7 over 3 -> [3, 3, 1]
    CHECK(offset == Shape{3, 6});
    auto [s2, o2] = local_shape_and_offset({5, 7}, {2, 3}, {1, 2}, {Partial(), Replicate()});
    CHECK(s2 == Shape{5, 7});
    CHECK(o2 == Shape{0, 0});
  }
  SECTION("shards tile the tensor exactly, for every placement pair on a 2x3 mesh") {
    Placements choices{Replicate(), Shard(0), Shard(1)};
    for (const Placement& p0 : choices)
      for (const Placement& p1 : choices)
        for (Shape global : {Shape{7, 4}, Shape{1, 2}, Shape{13, 0}}) {
          // How many shards hold each element, counted once per distinct shard.
          std::map<std::pair<std::vector<int64_t>, std::vector<int64_t>>, int> shards;
          for (int64_t a = 0; a < 2; ++a)
            for (int64_t b = 0; b < 3; ++b) {
              auto [shape, offset] = local_shape_and_offset(global, {2, 3}, {a, b}, {p0, p1});
              shards[{to_vector(shape), to_vector(offset)}]++;
            }
          std::vector<int> cover(static_cast<size_t>(global[0] * global[1]), 0);
          for (auto& [so, count] : shards)
            for (int64_t i = 0; i < so.first[0]; ++i)
              for (int64_t j = 0; j < so.first[1]; ++j) cover[(so.second[0] + i) * global[1] + so.second[1] + j]++;
          for (int c : cover) CHECK(c == 1);
        }
  }
  CHECK(even_global_shape({3, 4}, {2, 2}, {Shard(0), Shard(0)}) == Shape{12, 4});
  CHECK(even_global_shape({3, 4}, {2, 3}, {Shard(1), Partial()}) == Shape{3, 8});
}

namespace {

// Replays a plan on placements and checks each step is well formed: a step that changes how mesh
// dim i shards tensor dims a (from) or b (to) needs no later mesh dim splitting a or b.
void check_plan_valid(const Placements& source, const Placements& target, const RedistributePlan& plan,
                      const std::vector<int64_t>& mesh_shape, int64_t rank) {
  Placements current = normalize(source, rank);
  for (const RedistributeStep& step : plan) {
    INFO(step.to_string());
    REQUIRE(current[static_cast<size_t>(step.mesh_dim)] == step.from);
    CHECK(step.from != step.to);
    CHECK(mesh_shape[static_cast<size_t>(step.mesh_dim)] > 1);
    for (size_t j = static_cast<size_t>(step.mesh_dim) + 1; j < current.size(); ++j) {
      if (mesh_shape[j] == 1) continue;  // a split into one piece nests nothing
      if (step.from.is_shard()) CHECK_FALSE(current[j].is_shard(step.from.dim()));
      if (step.to.is_shard()) CHECK_FALSE(current[j].is_shard(step.to.dim()));
    }
    current[static_cast<size_t>(step.mesh_dim)] = step.to;
  }
  // Dims of size 1 are dropped from the plan; everything else must have arrived.
  Placements goal = normalize(target, rank);
  for (size_t i = 0; i < goal.size(); ++i)
    if (mesh_shape[i] > 1) CHECK(current[i] == goal[i]);
}

}  // namespace

TEST_CASE("Greedy planner: SEMANTICS examples", "[planner]") {
  auto plan = plan_redistribute({Shard(0), Shard(1)}, {Shard(1), Shard(0)}, {8, 8}, {2, 2});
  REQUIRE(plan.size() == 3);
  CHECK(plan[0] == RedistributeStep{1, Shard(1), Replicate()});
  CHECK(plan[1] == RedistributeStep{0, Shard(0), Shard(1)});
  CHECK(plan[2] == RedistributeStep{1, Replicate(), Shard(0)});
  CHECK(count_collectives(plan) == 2);
  CHECK(plan[0].to_string() == "mesh dim 1: S(1) -> R");

  // Negative dims normalise before comparing: S(-1) is S(1) on a matrix.
  CHECK(plan_redistribute({Shard(-1)}, {Shard(1)}, {4, 4}, {4}).empty());
  // k == 1: nothing happens.
  CHECK(plan_redistribute({Shard(0)}, {Replicate()}, {4, 4}, {1}).empty());
  CHECK(plan_redistribute({Partial()}, {Replicate()}, {4}, {1}).empty());
}

TEST_CASE("Greedy planner: every 1-D pair follows the table", "[planner]") {
  Placements all{Replicate(), Shard(0), Shard(1), Partial(), Partial(ReduceOp::Avg), Partial(ReduceOp::Max)};
  for (const Placement& from : all)
    for (const Placement& to : all) {
      INFO(from.to_string() << " -> " << to.to_string());
      bool refused = from != to && to.is_partial() && !from.is_replicate();
      if (refused) {
        CHECK_THROWS_AS(plan_redistribute({from}, {to}, {5, 3}, {4}), weft::Error);
        continue;
      }
      auto plan = plan_redistribute({from}, {to}, {5, 3}, {4});
      if (from == to) {
        CHECK(plan.empty());
        continue;
      }
      REQUIRE(plan.size() == 1);
      CHECK(plan[0] == RedistributeStep{0, from, to});
      std::optional<CollectiveKind> kind = step_collective(plan[0]);
      if (from.is_shard() && to.is_replicate()) CHECK(kind == CollectiveKind::AllGather);
      if (from.is_shard() && to.is_shard()) CHECK(kind == CollectiveKind::AllToAll);
      if (from.is_partial() && to.is_replicate()) CHECK(kind == CollectiveKind::AllReduce);
      if (from.is_partial() && to.is_shard()) CHECK(kind == CollectiveKind::ReduceScatter);
      if (from.is_replicate()) CHECK_FALSE(kind.has_value());
    }
}

TEST_CASE("Greedy planner: refused transitions name both placements", "[planner]") {
  CHECK_THAT(error_of([] { plan_redistribute({Shard(0)}, {Partial()}, {4}, {2}); }),
             Catch::Contains("from S(0) to P(sum) is not supported"));
  CHECK_THAT(error_of([] { plan_redistribute({Partial()}, {Partial(ReduceOp::Max)}, {4}, {2}); }),
             Catch::Contains("from P(sum) to P(max) is not supported"));
  CHECK_THAT(error_of([] { plan_redistribute({Shard(0)}, {Replicate(), Replicate()}, {4}, {2}); }),
             Catch::Contains("one placement per mesh dim (1)"));
  // Refused even on a mesh dim of size 1: the answer must not depend on the world size.
  CHECK_THROWS_AS(plan_redistribute({Shard(0)}, {Partial()}, {4}, {1}), weft::Error);
}

TEST_CASE("Greedy planner: every 2-D pair is well formed", "[planner]") {
  Placements all{Replicate(), Shard(0), Shard(1), Partial()};
  int checked = 0;
  for (std::vector<int64_t> mesh : {std::vector<int64_t>{2, 2}, {2, 3}, {1, 2}, {3, 1}})
    for (const Placement& s0 : all)
      for (const Placement& s1 : all)
        for (const Placement& t0 : all)
          for (const Placement& t1 : all) {
            Placements src{s0, s1}, dst{t0, t1};
            INFO(to_string(src) << " -> " << to_string(dst));
            bool refused = false;
            for (size_t i = 0; i < 2; ++i)
              refused = refused || (dst[i].is_partial() && dst[i] != src[i] && !src[i].is_replicate());
            if (refused) {
              CHECK_THROWS_AS(plan_redistribute(src, dst, {6, 5}, mesh), weft::Error);
              continue;
            }
            check_plan_valid(src, dst, plan_redistribute(src, dst, {6, 5}, mesh), mesh, 2);
            ++checked;
          }
  CHECK(checked > 100);
  // Collectives per plan for the 2-D cases the MPI suite runs.
  auto collectives = [](Placements s, Placements t) { return count_collectives(plan_redistribute(s, t, {9, 7}, {2, 2})); };
  CHECK(collectives({Shard(0), Shard(0)}, {Replicate(), Replicate()}) == 2);
  CHECK(collectives({Shard(0), Shard(0)}, {Shard(0), Replicate()}) == 1);
  CHECK(collectives({Shard(0), Shard(0)}, {Replicate(), Shard(0)}) == 2);
  CHECK(collectives({Shard(0), Shard(1)}, {Shard(1), Shard(0)}) == 2);
  CHECK(collectives({Shard(0), Shard(1)}, {Replicate(), Replicate()}) == 2);
  CHECK(collectives({Shard(1), Shard(0)}, {Shard(0), Shard(0)}) == 2);
  CHECK(collectives({Replicate(), Shard(0)}, {Shard(0), Shard(0)}) == 1);
  CHECK(collectives({Partial(), Shard(1)}, {Replicate(), Replicate()}) == 2);
  CHECK(collectives({Partial(), Shard(1)}, {Shard(0), Shard(1)}) == 1);
  CHECK(collectives({Replicate(), Replicate()}, {Shard(0), Shard(1)}) == 0);
}

TEST_CASE("Greedy planner: plans are cached", "[planner]") {
  size_t before = redistribute_plan_cache_size();
  const RedistributePlan& a = cached_redistribute_plan({Shard(0), Shard(1)}, {Shard(1), Shard(0)}, {11, 3}, {2, 2});
  CHECK(redistribute_plan_cache_size() == before + 1);
  const RedistributePlan& b = cached_redistribute_plan({Shard(0), Shard(1)}, {Shard(1), Shard(0)}, {11, 3}, {2, 2});
  CHECK(&a == &b);
  CHECK(redistribute_plan_cache_size() == before + 1);
  CHECK(a == plan_redistribute({Shard(0), Shard(1)}, {Shard(1), Shard(0)}, {11, 3}, {2, 2}));
  cached_redistribute_plan({Shard(0), Shard(1)}, {Shard(1), Shard(0)}, {11, 3}, {4, 1});
  CHECK(redistribute_plan_cache_size() == before + 2);
}

TEST_CASE("Greedy planner: mesh dims of size 1 never cost a collective", "[planner]") {
  // The outer dim of size 1 splits nothing, so the inner S(0) is the same piece either way.
  CHECK(plan_redistribute({Shard(0), Shard(0)}, {Replicate(), Shard(0)}, {9}, {1, 2}).empty());
  CHECK(plan_redistribute({Replicate(), Shard(0)}, {Shard(0), Shard(0)}, {9}, {1, 2}).empty());
  auto plan = plan_redistribute({Shard(0), Shard(0)}, {Replicate(), Shard(0)}, {9}, {2, 2});
  REQUIRE(plan.size() == 3);
  CHECK(plan[0] == RedistributeStep{1, Shard(0), Replicate()});
  CHECK(plan[1] == RedistributeStep{0, Shard(0), Replicate()});
  CHECK(plan[2] == RedistributeStep{1, Replicate(), Shard(0)});
}
