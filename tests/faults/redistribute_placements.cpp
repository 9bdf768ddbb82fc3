// Rank 1 redistributes S(0) -> S(1) (an all_to_all) where the others go S(0) -> R (an all_gather).
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size(), 2 * world_size()}), mesh, {Shard(0)});
  DTensor y = x.redistribute({world_rank() == 1 ? Shard(1) : Replicate()});
  check_value(y.full_tensor(), 4.0 * world_size() * world_size());
}
