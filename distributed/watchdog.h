// watchdog.h: every blocking wait weft performs (collectives, async work, control exchanges,
// barriers, the exit path) and what it says when a wait fails: the timeout, a rank that left main,
// an MPI error. Also the per-communicator sequence numbers and the debug mode's fingerprints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distributed/collective_kind.h"
#include "distributed/runtime.h"
#include "framework/shape.h"

namespace weft::dist::detail {

// What one operation on a communicator is: printed when a wait fails, and, in debug mode, compared
// across the group before the data moves (Note [Collective fingerprints]). Plain data, so that
// the hot path builds it without allocating.
struct OpSignature {
  static constexpr int32_t kControl = 100;  // kind of a control-plane exchange (`name` says which)
  static constexpr int kMaxDims = 8;
  int32_t kind = 0;         // a CollectiveKind, or kControl
  int32_t reduce_op = -1;   // a ReduceOp, or -1
  int32_t root = -1;        // broadcast/scatter/reduce root, all_to_all split dim, or -1
  int32_t dtype = -1;       // a DType, or -1 when no tensor is involved
  int32_t ndim = -1;        // -1: no shape
  int32_t free_dim = -1;    // a dim whose size may differ across ranks (gather/concat dim), or -1
  int64_t shape[kMaxDims] = {};
  uint64_t seq = 0;         // this communicator's operation number, from 1 (begin_op sets it)
  uint64_t name_hash = 0;   // control exchanges: which one
  const char* name = "";    // control exchanges: what for (not compared)
};

OpSignature collective_signature(CollectiveKind kind, const Shape& shape, int dtype, int reduce_op = -1,
                                 int root = -1, int free_dim = -1);
OpSignature control_signature(const char* name);
// "all_reduce(sum, f32[4,3])", "control exchange (local_map output shapes)".
std::string to_string(const OpSignature& op);

// Numbers the operation on comm (op.seq) and, in debug mode, compares op across comm's ranks
// first, raising weft::Error on every rank when any rank disagrees.
void begin_op(MPI_Comm comm, OpSignature& op);
// Waits for `request` under the watchdog (Note [Watchdog]). An MPI error becomes weft::Error
// naming the operation; a timeout or a peer that left main aborts the job with one line.
// `completes` false: a step before op (its fingerprint check), not recorded as the last completed.
void wait_op(MPI_Request& request, MPI_Comm comm, const OpSignature& op, bool completes = true);

// How a wait that did not complete at once spends its time (Note [Watchdog]): it spins (polls back
// to back) for `spin` seconds, then gives the core away (sched_yield, or with `nap` a 1 us
// nanosleep): by default once per 64 polls up to 4096 polls and then at every poll, with `every_poll`
// at every poll at once; after 10 ms it sleeps 100 us between polls. The fault checks (deadline,
// departed peers) run at every pause after the spin, whichever the policy. Set on every rank alike.
struct WaitPolicy {
  double spin = 50e-6;
  bool nap = false;
  bool every_poll = false;
};
void set_wait_policy(WaitPolicy policy);
WaitPolicy wait_policy();
// Seconds this process has spent in wait_op since it started (from each wait's first failed test to
// its completion): the time a step is blocked on its peers, for benchmarks' accounting.
double waited_seconds();

// Note [Wait trace]
// For finding where a distributed step waits: with tracing on, every operation numbered by
// begin_op is recorded with the steady-clock times it began (begin_op), its wait started (wait_op)
// and it completed (0 until then, e.g. an async result not yet waited for). Ranks on one host share
// the clock, so their traces line up: a late rank's begin is the others' wait. Off by default (one
// branch per operation); benchmarks read it (bench_mpi's Note [Where the TP step waits]).
struct TraceEvent {
  OpSignature op;
  MPI_Comm comm = MPI_COMM_NULL;
  double begun = 0, waiting = 0, done = 0;  // seconds on the steady clock; 0: not reached
  double cpu_begun = 0, cpu_done = 0;       // the calling thread's CPU seconds at begun and done
};
void set_wait_trace(bool on);
// The events recorded since tracing was turned on, and clears them.
std::vector<TraceEvent> take_wait_trace();
// Seconds on the steady clock that TraceEvent uses, and the calling thread's CPU seconds.
double trace_clock();
double trace_cpu_clock();

// comm's private duplicate for control exchanges (Note [Control communicators]).
MPI_Comm control_comm(MPI_Comm comm);
// The world rank of comm's rank `rank`.
int world_rank_in(MPI_Comm comm, int rank);

// Runtime's hooks: start (after MPI_Init), announce this rank's departure and wait for every other
// rank's (before MPI_Finalize). See Note [Leaving main].
enum class Departure : int { Returned = 1, Exited = 2 };
void start_watchdog();
void depart(Departure how);

}  // namespace weft::dist::detail
