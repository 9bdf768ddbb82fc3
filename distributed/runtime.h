// runtime.h: the MPI runtime (init/finalize, world rank/size, MPI error checking, failure
// handling) and the process-wide collective settings (timeout, mismatch debug mode).
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the MPI C API only: Open MPI's deprecated C++ bindings warn under -Wextra
#endif
#include <mpi.h>

#include <functional>
#include <string>

namespace weft::dist {

// RAII over MPI_Init_thread(MPI_THREAD_FUNNELED) ... MPI_Finalize. A process not started under
// mpirun is a world of one. Sets MPI_ERRORS_RETURN on MPI_COMM_WORLD (errors become weft::Error),
// installs a terminate handler that prints "weft: rank R: <what()>" once and aborts the whole job,
// and reads WEFT_COLLECTIVE_TIMEOUT (seconds) and WEFT_DEBUG_COLLECTIVES=1.
class Runtime {
 public:
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  // Collective over the world: true iff `ok` is true on every rank (used by the test main).
  bool all_ranks_ok(bool ok);
};

int world_rank();   // 0 when MPI is not initialized
int world_size();   // 1 when MPI is not initialized
bool is_initialized();  // MPI is initialized and not yet finalized

// Throws weft::Error naming the MPI call, the communicator and MPI's error string.
void check_mpi(int rc, const char* what, MPI_Comm comm);
// The communicator's name as set by weft ("DeviceMesh([0, 1]) dim 0"), or "MPI_COMM_WORLD".
std::string comm_name(MPI_Comm comm);

// A collective that waits longer than this many seconds prints what it was waiting for and aborts
// the job. 0 (the default unless WEFT_COLLECTIVE_TIMEOUT is set) means wait forever.
void set_collective_timeout(double seconds);
double collective_timeout();

// Debug mode: before each collective the ranks compare a fingerprint (kind, dtype, rank count,
// shape) and raise weft::Error naming the mismatch instead of deadlocking. Default from
// WEFT_DEBUG_COLLECTIVES=1. Must be set to the same value on every rank.
void set_debug_collectives(bool enabled);
bool debug_collectives();

namespace detail {
// A communicator weft created: sets MPI_ERRORS_RETURN and its name. Runtime's destructor frees
// it before MPI_Finalize. `label` is how messages name it briefly (a mesh dim's name).
void register_comm(MPI_Comm comm, const std::string& name, const std::string& label);
// Returns once every rank of comm has called it (a barrier under the collective timeout): what a
// blocking call that every rank of comm must join (MPI_Comm_split) waits for first.
void arrival_barrier(MPI_Comm comm, const char* what);
// Waits for `request` (MPI_Wait, or MPI_Test polling against the collective timeout when one is
// set). `describe` says what the collective is (kind, mesh dim, shapes) for the timeout message;
// it is called only when the timeout fires.
void wait_request(MPI_Request& request, const char* what, MPI_Comm comm,
                  const std::function<std::string()>& describe);
// Prints "weft: rank R: <message>" to stderr and aborts the job (MPI_Abort, or std::abort).
[[noreturn]] void abort_job(const std::string& message);
}  // namespace detail

}  // namespace weft::dist
