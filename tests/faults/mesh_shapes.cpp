// Rank 1 builds a [1, k] mesh where the others build a [k] mesh.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  std::vector<int64_t> shape = world_rank() == 1 ? std::vector<int64_t>{1, world_size()} : std::vector<int64_t>{world_size()};
  DeviceMesh mesh(shape);
  check_value(funcol::all_reduce(ones({4}), ReduceOp::Sum, mesh, -1), 4.0 * world_size());
}
