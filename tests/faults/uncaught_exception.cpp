// Rank 1 lets an exception escape main while the others wait in all_reduce.
#include <stdexcept>
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() == 1) throw std::runtime_error("a mistake on rank 1");
  check_value(funcol::all_reduce(ones({4}), ReduceOp::Sum, mesh), 4.0 * world_size());
}
