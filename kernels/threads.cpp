// The thread setting: OpenMP drives both oneDNN (built on OpenMP in Debian) and weft's loops.
#include "kernels/threads.h"

#include <omp.h>

#include <cstdlib>

#include "framework/error.h"

namespace weft {
namespace {

// Note [Default thread count]: libgomp waits for work by spinning about 3 ms unless
// OMP_WAIT_POLICY says otherwise, and it reads that variable once, before weft's code runs. Then a
// team of threads on a host where anything else wants a core spends its time spinning against the
// one thread that lost its core: a training step measured 3-15x slower with two threads than with
// one (README, Threads). So weft starts with one thread unless the user chose: OMP_NUM_THREADS
// as given; with OMP_WAIT_POLICY set, OpenMP's default (the core count); under mpirun, one
// thread per rank whatever the policy, since the ranks share the cores.
// The default is applied lazily, on a thread's first get_num_threads (unless set_num_threads came
// first), not by a static initializer: nothing runs at load time (docs/architecture.md), and
// OpenMP's setting belongs to the calling thread anyway, so each thread that runs weft's kernels
// starts from the default. Every parallel region weft opens (its loops, oneDNN's primitives) asks
// get_num_threads first.
int default_num_threads() {
  auto given = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0';
  };
  if (given("OMP_NUM_THREADS")) return omp_get_max_threads();
  for (const char* local_ranks : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})  // Open MPI, MPICH
    if (given(local_ranks)) return 1;
  return given("OMP_WAIT_POLICY") ? omp_get_max_threads() : 1;
}

[[gnu::tls_model("initial-exec")]] thread_local bool default_applied = false;

}  // namespace

void set_num_threads(int n) {
  WEFT_CHECK(n >= 1, "set_num_threads: expected a positive number of threads but got ", n);
  default_applied = true;
  omp_set_num_threads(n);
}

int get_num_threads() {
  if (!default_applied) [[unlikely]] {
    default_applied = true;
    omp_set_num_threads(default_num_threads());
  }
  return omp_get_max_threads();
}

}  // namespace weft
