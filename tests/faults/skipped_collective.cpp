// Rank 1 skips an all_reduce that the others make, then joins the next all_gather.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() != 1) check_value(funcol::all_reduce(ones({4, 3}), ReduceOp::Sum, mesh), 12.0 * world_size());
  check_value(funcol::all_gather(ones({4, 3}), 0, mesh), 12.0 * world_size());
}
