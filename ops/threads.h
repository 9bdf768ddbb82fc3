// One thread setting for oneDNN and weft's own loops (both run on OpenMP).
#pragma once

namespace weft {

// Default: OMP_NUM_THREADS if set, else the core count.
void set_num_threads(int n);
int get_num_threads();

}  // namespace weft
