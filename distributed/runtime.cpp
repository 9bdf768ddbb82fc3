// runtime.cpp: MPI init/finalize, error checking, failure handling and the collective settings.
#include "distributed/runtime.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <vector>

#include "distributed/control_plane.h"
#include "framework/error.h"

namespace weft::dist {
namespace {

struct State {
  bool owns_mpi = false;  // we called MPI_Init_thread, so we call MPI_Finalize
  int rank = 0;
  int size = 1;
  double timeout = 0;
  bool debug = false;
  std::vector<MPI_Comm> comms;  // freed by ~Runtime, in creation order (the same on every rank)
};
State& state() {
  static State s;
  return s;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
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
  detail::abort_job(what);
}

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
  if (const char* t = std::getenv("WEFT_COLLECTIVE_TIMEOUT")) s.timeout = std::atof(t);
  s.debug = env_flag("WEFT_DEBUG_COLLECTIVES");
  // An uncaught exception on one rank would otherwise leave the others blocked in a collective.
  std::set_terminate(on_terminate);
}

Runtime::~Runtime() {
  State& s = state();
  if (!is_initialized()) return;
  // Communicators must be freed before MPI_Finalize (afterwards it is illegal). Every rank created
  // them in the same order (mesh construction is collective), so they are freed in that order.
  for (MPI_Comm& c : s.comms)
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
  s.comms.clear();
  if (s.owns_mpi) MPI_Finalize();
}

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

void set_collective_timeout(double seconds) {
  WEFT_CHECK(seconds >= 0, "set_collective_timeout: expected seconds >= 0 but got ", seconds);
  state().timeout = seconds;
}
double collective_timeout() { return state().timeout; }
void set_debug_collectives(bool enabled) { state().debug = enabled; }
bool debug_collectives() { return state().debug; }

namespace detail {

void register_comm(MPI_Comm comm, const std::string& name, const std::string& label) {
  if (comm == MPI_COMM_NULL) return;
  state().comms.push_back(comm);
  check_mpi(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", comm);
  MPI_Comm_set_name(comm, name.c_str());
  (void)label;
}

void arrival_barrier(MPI_Comm comm, const char* what) {
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(MPI_Ibarrier(comm, &request), what, comm);
  wait_request(request, what, comm, [what] { return std::string(what) + " (barrier)"; });
}

void abort_job(const std::string& message) {
  static std::atomic<bool> printed{false};
  if (!printed.exchange(true)) {
    std::fprintf(stderr, "weft: rank %d: %s\n", world_rank(), message.c_str());
    std::fflush(stderr);
  }
  if (is_initialized()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void wait_request(MPI_Request& request, const char* what, MPI_Comm comm,
                  const std::function<std::string()>& describe) {
  double timeout = state().timeout;
  if (timeout <= 0) {
    check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), what, comm);
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  int done = 0;
  while (true) {
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what, comm);
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline)
      abort_job(weft::detail::str_cat(describe(), " timed out after ", timeout, " s (WEFT_COLLECTIVE_TIMEOUT): not ",
                                      "every rank of ", comm_name(comm), " joined it"));
  }
}

}  // namespace detail
}  // namespace weft::dist
