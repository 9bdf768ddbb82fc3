// The ranks but 1 run backward through a redistribute R -> S(0), whose backward all-gathers the
// gradient; rank 1 does not run backward.
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size(), 3}), mesh, {Replicate()});
  x.requires_grad_();
  Tensor local = x.redistribute({Shard(0)}).to_local();
  if (world_rank() != 1) {
    local.sum().backward();
    check_value(DTensor(x.grad()).to_local(), 6.0 * world_size());
  }
}
