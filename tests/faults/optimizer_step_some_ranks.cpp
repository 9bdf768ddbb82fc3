// Data parallel: the ranks but 1 take an optimizer step, which all-reduces the partial gradient of
// the replicated weight; rank 1 skips the step.
#include "nn/optim.h"
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  DTensor x = distribute_tensor(ones({2 * world_size(), 3}), mesh, {Shard(0)});
  DTensor w = distribute_tensor(ones({3, 2}), mesh, {Replicate()});
  w.requires_grad_();
  DTensor y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}},
                                  .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()}}})(x, w);
  y.to_local().sum().backward();
  optim::SGD sgd({w}, {.lr = 0.1});
  if (world_rank() != 1) sgd.step();
}
