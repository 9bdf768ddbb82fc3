// The ranks but 1 run backward, whose gradient all_gather stays in flight and is never read; rank 1
// never runs backward.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size() + 1, 3}), mesh, {Replicate()});
  x.requires_grad_();
  DTensor w = distribute_tensor(ones({3, 2}), mesh, {Replicate()});
  DTensor y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}},
                                  .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}},
                                  .redistribute_inputs = true})(x, w);
  if (world_rank() != 1) y.to_local().sum().backward();  // x.grad() is in flight, never read
}
