// Rank 1 dereferences a null pointer while the others wait in all_reduce.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() == 1) {
    volatile int* p = nullptr;
    *p = 1;
  }
  check_value(funcol::all_reduce(ones({4}), ReduceOp::Sum, mesh), 4.0 * world_size());
}
