// Rank 1 declares local_map's output replicated where the others declare it row-sharded.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size() + 1, 3}), mesh, {Shard(0)});
  DTensor w = distribute_tensor(ones({3, 2}), mesh, {Replicate()});
  Placements out{world_rank() == 1 ? Replicate() : Shard(0)};
  DTensor y = local_map(mm_body, {.out_placements = {out}})(x, w);
  Tensor full = y.full_tensor();
  // Rank 1 declared its local rows the whole result: what it reads is what it declared.
  if (world_rank() != 1) check_value(full, 6.0 * (2 * world_size() + 1));
}
