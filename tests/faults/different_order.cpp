// Rank 1 makes the same two collectives as the others, in the other order.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  std::vector<int64_t> sizes(world_size(), 2);
  if (world_rank() == 1) {
    funcol::all_gather(ones({2, 3}), 0, mesh, 0, sizes);
    funcol::all_reduce(ones({5}), ReduceOp::Sum, mesh);
  } else {
    funcol::all_reduce(ones({5}), ReduceOp::Sum, mesh);
    funcol::all_gather(ones({2, 3}), 0, mesh, 0, sizes);
  }
}
