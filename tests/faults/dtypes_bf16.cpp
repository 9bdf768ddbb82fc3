// Rank 1 all-reduces bfloat16 where the others all-reduce float32. Both travel as float32 (Note
// [16-bit floats in collectives]), so the data moves; the collective's history still carries each
// rank's own dtype, and the exit path (or debug mode, before the data moves) names the mismatch.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  Tensor x = ones({4}, world_rank() == 1 ? kBFloat16 : kFloat32);
  check_value(funcol::all_reduce(x, ReduceOp::Sum, mesh), 4.0 * world_size());
}
