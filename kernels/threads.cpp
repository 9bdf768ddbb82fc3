// The thread setting: OpenMP drives both oneDNN (built on OpenMP in Debian) and weft's loops.
#include "kernels/threads.h"

#include <omp.h>

#include "framework/error.h"

namespace weft {

void set_num_threads(int n) {
  WEFT_CHECK(n >= 1, "set_num_threads: expected a positive number of threads but got ", n);
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace weft
