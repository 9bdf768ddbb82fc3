// Rank 1 calls std::exit(0) (skipping Runtime's destructor) while the others wait in all_reduce.
#include <cstdlib>
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() == 1) std::exit(0);
  check_value(funcol::all_reduce(ones({4}), ReduceOp::Sum, mesh), 4.0 * world_size());
}
