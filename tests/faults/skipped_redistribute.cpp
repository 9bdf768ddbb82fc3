// Rank 1 skips a redistribute (S(0) -> R, an all_gather) that the others make.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size() + 1, 3}), mesh, {Shard(0)});
  if (world_rank() != 1) check_value(x.redistribute({Replicate()}).to_local(), 3.0 * (2 * world_size() + 1));
}
