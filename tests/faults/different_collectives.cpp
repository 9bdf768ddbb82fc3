// Rank 1 calls all_gather where the others call all_reduce, on tensors of the same shape.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() == 1) funcol::all_gather(ones({4, 3}), 0, mesh, 0, std::vector<int64_t>(world_size(), 4));
  else funcol::all_reduce(ones({4, 3}), ReduceOp::Sum, mesh);
}
