// Rank 1 is killed (SIGKILL) while the others wait in all_reduce.
#include <signal.h>
#include <unistd.h>
#include "tests/faults/fault.h"
using namespace fault;
int main(int argc, char** argv) {
  Runtime runtime(argc, argv);
  DeviceMesh mesh = world_mesh();
  if (world_rank() == 1) {
    usleep(200000);
    kill(getpid(), SIGKILL);
  }
  check_value(funcol::all_reduce(ones({4}), ReduceOp::Sum, mesh), 4.0 * world_size());
}
