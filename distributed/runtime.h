// runtime.h: the MPI runtime (init/finalize, world rank/size, MPI error checking, failure
// handling) and the process-wide collective settings (timeout, mismatch debug mode).
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the MPI C API only: Open MPI's deprecated C++ bindings warn under -Wextra
#endif
#include <mpi.h>

#include <string>

namespace weft::dist {

// RAII over MPI_Init_thread(MPI_THREAD_FUNNELED) ... MPI_Finalize. A process not started under
// mpirun is a world of one. Sets MPI_ERRORS_RETURN on MPI_COMM_WORLD (errors become weft::Error),
// installs a terminate handler that prints "weft: rank R: <what()>" once and aborts the whole job,
// starts the watchdog (WEFT_COLLECTIVE_TIMEOUT, WEFT_DEBUG_COLLECTIVES=1; watchdog.h). Its
// destructor, or exit() while it lives, tells the other ranks this rank left main and waits for
// them, bounded by the timeout (Note [Leaving main]), before MPI_Finalize.
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

// Every wait weft performs (collectives, async work, control exchanges, the exit path) that lasts
// longer than this many seconds prints what it was waiting for and aborts the job. Default 300 s,
// or WEFT_COLLECTIVE_TIMEOUT (seconds; 0 or "inf" waits forever). 0 or infinity here: forever.
void set_collective_timeout(double seconds);
double collective_timeout();  // 0: forever

// Debug mode: before each collective the ranks compare a fingerprint (kind, reduce op, dtype,
// shape, root, sequence number) and raise weft::Error naming both sides of a mismatch instead of
// deadlocking (Note [Collective fingerprints]). Default from WEFT_DEBUG_COLLECTIVES=1. Must be set
// to the same value on every rank.
void set_debug_collectives(bool enabled);
bool debug_collectives();

namespace detail {
// A communicator weft created: sets MPI_ERRORS_RETURN and its name; `label` is how messages name
// it briefly (the mesh dims' names). Freed by free_comms, before MPI_Finalize.
void register_comm(MPI_Comm comm, const std::string& name, const std::string& label);
void free_comms();
// Prints "weft: rank R: <message>" to stderr and aborts the job (MPI_Abort, or std::abort).
[[noreturn]] void abort_job(const std::string& message);
}  // namespace detail

}  // namespace weft::dist
