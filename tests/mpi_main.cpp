// The Catch2 main of the MPI suites: one runtime for the whole run, and a failure on any rank
// fails the run on every rank (see dist::Runtime).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "distributed/runtime.h"

int main(int argc, char** argv) {
  weft::dist::Runtime runtime(argc, argv);
  int failed = Catch::Session().run(argc, argv);
  return runtime.all_ranks_ok(failed == 0) ? 0 : 1;
}
