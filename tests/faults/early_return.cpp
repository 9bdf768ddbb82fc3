// Rank 1 returns from main before the all_reduce the others wait in.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() == 1) return 0;
  check_value(funcol::all_reduce(ones({4}), ReduceOp::Sum, mesh), 4.0 * world_size());
}
