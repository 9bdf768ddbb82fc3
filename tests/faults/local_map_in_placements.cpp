// Rank 1 asks local_map for its input replicated where the others ask for it row-sharded.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size(), 3}), mesh, {Replicate()});
  DTensor w = distribute_tensor(ones({3, 2}), mesh, {Replicate()});
  PlacementsList in{Placements{world_rank() == 1 ? Replicate() : Shard(0)}, Placements{Replicate()}};
  DTensor y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}}, .in_placements = in,
                                  .redistribute_inputs = true})(x, w);
  check_value(y.full_tensor(), 12.0 * world_size());
}
