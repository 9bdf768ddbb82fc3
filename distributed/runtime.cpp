// runtime.cpp: MPI init/finalize, error checking, failure handling and the collective settings.
#include "distributed/runtime.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "distributed/control_plane.h"
#include "distributed/watchdog.h"
#include "framework/error.h"

namespace weft::dist {
namespace {

struct State {
  bool owns_mpi = false;  // we called MPI_Init_thread, so we call MPI_Finalize
  bool live = false;      // between Runtime's construction and shutdown
  int rank = 0;
  int size = 1;
};
State& state() {
  static State s;
  return s;
}

void on_terminate() {
  std::string what = "terminate called without an active exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
      what = "unknown exception";
    }
  }
  detail::abort_job("left main with an uncaught exception: " + what);
}

// Announces the departure, waits for the other ranks (Note [Leaving main]), frees weft's
// communicators and finalizes MPI. Once, from ~Runtime or from exit().
void shutdown(detail::Departure how) {
  State& s = state();
  if (!s.live || !is_initialized()) return;
  s.live = false;
  detail::depart(how);
  detail::free_comms();
  if (s.owns_mpi) MPI_Finalize();
}

void on_exit() { shutdown(detail::Departure::Exited); }

}  // namespace

Runtime::Runtime(int& argc, char**& argv) {
  State& s = state();
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    WEFT_CHECK(rc == MPI_SUCCESS, "dist::Runtime: MPI_Init_thread failed with code ", rc);
    s.owns_mpi = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.size);
  s.live = true;
  detail::start_watchdog();
  // An uncaught exception on one rank would otherwise leave the others blocked in a collective;
  // exit() on one rank skips ~Runtime, so the departure is announced from an atexit hook.
  std::set_terminate(on_terminate);
  static bool hooked = false;
  if (!hooked) std::atexit(on_exit);
  hooked = true;
}

Runtime::~Runtime() { shutdown(detail::Departure::Returned); }

bool Runtime::all_ranks_ok(bool ok) {
  if (!is_initialized()) return ok;
  return detail::all_agree(ok, MPI_COMM_WORLD, "all_ranks_ok");
}

bool is_initialized() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

int world_rank() { return is_initialized() ? state().rank : 0; }
int world_size() { return is_initialized() ? state().size : 1; }

std::string comm_name(MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) return "MPI_COMM_NULL";
  char name[MPI_MAX_OBJECT_NAME] = {0};
  int len = 0;
  MPI_Comm_get_name(comm, name, &len);
  return len > 0 ? std::string(name, static_cast<size_t>(len)) : std::string("(unnamed communicator)");
}

void check_mpi(int rc, const char* what, MPI_Comm comm) {
  if (rc == MPI_SUCCESS) [[likely]] return;
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  WEFT_ERROR(what, " failed on communicator ", comm_name(comm), " (rank ", world_rank(), "): ",
             std::string(msg, static_cast<size_t>(len)));
}

namespace detail {

void abort_job(const std::string& message) {
  static std::atomic<bool> printed{false};
  if (!printed.exchange(true)) {
    std::fprintf(stderr, "weft: rank %d: %s\n", world_rank(), message.c_str());
    std::fflush(stderr);
  }
  if (is_initialized()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace detail
}  // namespace weft::dist
