// One thread setting for oneDNN and weft's own loops (both run on OpenMP).
#pragma once

namespace weft {

// Default: OMP_NUM_THREADS if set; else one per rank under mpirun; else the core count if
// OMP_WAIT_POLICY is set, one thread if not. See Note [Default thread count] in kernels/threads.cpp.
void set_num_threads(int n);
int get_num_threads();

// Sets the thread count for a scope and restores the caller's on the way out (also when the scope
// throws). See Note [Serial primitives] in kernels/onednn.h.
class ScopedNumThreads {
 public:
  explicit ScopedNumThreads(int n) : saved_(get_num_threads()) { set_num_threads(n); }
  ~ScopedNumThreads() { set_num_threads(saved_); }
  ScopedNumThreads(const ScopedNumThreads&) = delete;
  ScopedNumThreads& operator=(const ScopedNumThreads&) = delete;

 private:
  int saved_;
};

}  // namespace weft
