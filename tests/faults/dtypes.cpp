// Rank 1 all-reduces float64 where the others all-reduce float32.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  Tensor x = ones({4}, world_rank() == 1 ? kFloat64 : kFloat32);
  check_value(funcol::all_reduce(x, ReduceOp::Sum, mesh), 4.0 * world_size());
}
