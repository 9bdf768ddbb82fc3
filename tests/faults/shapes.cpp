// Rank 1 all-reduces 5 elements where the others all-reduce 4.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  int64_t n = world_rank() == 1 ? 5 : 4;
  check_value(funcol::all_reduce(ones({n}), ReduceOp::Sum, mesh), static_cast<double>(n * world_size()));
}
