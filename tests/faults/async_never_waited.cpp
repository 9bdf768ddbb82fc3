// The ranks but 1 start an async all_reduce and never wait for it; rank 1 never starts it.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() != 1) Tensor pending = funcol::all_reduce_async(ones({4}), ReduceOp::Sum, mesh);
}
