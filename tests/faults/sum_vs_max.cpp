// Rank 1 all-reduces with max where the others sum.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  funcol::all_reduce(ones({4}), world_rank() == 1 ? ReduceOp::Max : ReduceOp::Sum, mesh);
}
