// Rank 1 distributes with S(1) where the others use S(0), then every rank asks for the full tensor.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  int64_t n = 2 * world_size() + 1;
  DTensor x = distribute_tensor(ones({n, n + 1}), mesh, {world_rank() == 1 ? Shard(1) : Shard(0)});
  check_value(x.full_tensor(), static_cast<double>(n * (n + 1)));
}
