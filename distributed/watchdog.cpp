// watchdog.cpp: the bounded wait, departures, sequence numbers and the collective settings.
#include "distributed/watchdog.h"

#include <sched.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "distributed/control_plane.h"
#include "distributed/placement.h"
#include "framework/dtype.h"
#include "framework/error.h"

namespace weft::dist {
namespace detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kDefaultTimeout = 300;  // seconds: CPU jobs stall for minutes, not hours
constexpr double kDepartureGrace = 2;    // seconds a wait may still complete after a peer left
constexpr int kDepartureTag = 1;

// Note [Control communicators]
// Each communicator weft registers gets a private duplicate for the control plane (control_plane.h)
// and the debug mode's fingerprints. A rank that skips a collective and goes on to a control
// exchange then waits on another communicator instead of matching the others' data with its
// metadata (MPI would truncate one side and hand the other side partial garbage): the job ends
// with the watchdog's message, not with wrong values.
struct CommState {
  MPI_Comm comm;
  MPI_Comm control;
  std::string name;   // "DeviceMesh([0, 1], mesh_dim_names=(tp)) dims (tp)"
  std::string label;  // "tp"
  uint64_t seq = 0;
  uint64_t history = 1469598103934665603ull;  // Note [Collective history]
};

struct Completed {
  OpSignature op;
  MPI_Comm comm = MPI_COMM_NULL;
  bool any = false;
};

struct State {
  double timeout = kDefaultTimeout;  // 0: forever
  bool debug = false;
  std::vector<CommState> comms;      // weft's communicators, in creation order (the same everywhere)
  Completed last;
  // Note [Leaving main]
  MPI_Comm exit_comm = MPI_COMM_NULL;  // a private duplicate of the world for departure notices
  MPI_Request notice = MPI_REQUEST_NULL;
  int notice_buf = 0;
  std::vector<int> departed;           // per world rank: 0, or how it left (a Departure)
  int departures = 0;
  std::vector<MPI_Request> sent;
  WaitPolicy policy;
  double waited = 0;                   // waited_seconds()
  bool tracing = false;                // Note [Wait trace]
  std::vector<TraceEvent> trace;
};
State& state() {
  static State s;
  return s;
}

CommState* find_comm(MPI_Comm comm) {
  for (CommState& c : state().comms)
    if (c.comm == comm) return &c;
  return nullptr;
}

std::string op_at(const OpSignature& op, MPI_Comm comm) {
  return weft::detail::str_cat(to_string(op), " #", op.seq, " on ", comm_label(comm));
}

std::string last_completed() {
  const Completed& l = state().last;
  return l.any ? op_at(l.op, l.comm) : std::string("none");
}

const char* departure_name(int how) {
  return how == static_cast<int>(Departure::Exited) ? "called exit()" : "returned from main";
}

// Takes in every departure notice that has arrived; re-arms the receive while some rank is still here.
void take_notices() {
  State& s = state();
  while (s.notice != MPI_REQUEST_NULL) {
    int done = 0;
    MPI_Status status;
    MPI_Test(&s.notice, &done, &status);
    if (!done) return;
    if (s.departed[static_cast<size_t>(status.MPI_SOURCE)] == 0) ++s.departures;
    s.departed[static_cast<size_t>(status.MPI_SOURCE)] = s.notice_buf;
    if (s.departures < static_cast<int>(s.departed.size()) - 1)
      MPI_Irecv(&s.notice_buf, 1, MPI_INT, MPI_ANY_SOURCE, kDepartureTag, s.exit_comm, &s.notice);
  }
}

// The first world rank of comm that has left main, or -1.
int departed_member(MPI_Comm comm) {
  State& s = state();
  if (s.departures == 0) return -1;
  MPI_Group world, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  MPI_Comm_group(comm, &group);
  int n = 0;
  MPI_Group_size(group, &n);
  std::vector<int> local(static_cast<size_t>(n)), global(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) local[static_cast<size_t>(i)] = i;
  MPI_Group_translate_ranks(group, n, local.data(), world, global.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  for (int r : global)
    if (r >= 0 && s.departed[static_cast<size_t>(r)] != 0) return r;
  return -1;
}

// Note [Watchdog]
// Every wait polls MPI_Test, so that it can notice a deadline and a departed peer. It spins for
// the first WaitPolicy::spin seconds (50 us: a small collective completes in a few), then yields the
// core to other ranks (an oversubscribed machine must not starve the rank we wait for): once per 64
// polls until 4096 polls, then on each poll; after 10 ms it sleeps 100 us between polls (a rank
// stuck for long costs next to nothing). Yielding at every poll from the start, or napping instead
// of yielding, measured no better on the TP GPT step (benchmarks/README.md, BM_gpt_step_wait_policy).
class Poll {
 public:
  Poll() : start_(Clock::now()), policy_(state().policy) {}
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  // Pauses between polls; returns the time waited so far.
  double pause() {
    if (spinning_ && (++polls_ & 63) != 0 && polls_ < 4096) return 0;  // spinning: read the clock now and then
    double t = elapsed();
    if (t > 10e-3) std::this_thread::sleep_for(std::chrono::microseconds(100));
    else if (t >= policy_.spin) {
      if (policy_.every_poll) spinning_ = false;
      if (policy_.nap) std::this_thread::sleep_for(std::chrono::microseconds(1));
      else sched_yield();
    }
    return t;
  }

 private:
  Clock::time_point start_;
  WaitPolicy policy_;
  uint64_t polls_ = 0;
  bool spinning_ = !(policy_.every_poll && policy_.spin == 0);
};

[[noreturn]] void timed_out(const std::string& what, double waited) {
  abort_job(weft::detail::str_cat("watchdog: ", what, " did not complete within ", waited,
                                  " s (WEFT_COLLECTIVE_TIMEOUT=", state().timeout, "); last completed: ",
                                  last_completed(), "; aborting the job"));
}

}  // namespace

int world_rank_in(MPI_Comm comm, int rank) {
  MPI_Group world, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  MPI_Comm_group(comm, &group);
  int out = rank;
  MPI_Group_translate_ranks(group, 1, &rank, world, &out);
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return out;
}

std::string comm_label(MPI_Comm comm) {
  if (comm == MPI_COMM_WORLD) return "the world";
  const CommState* c = find_comm(comm);
  return c ? "mesh dim \"" + c->label + "\" (" + c->name + ")" : comm_name(comm);
}

OpSignature collective_signature(CollectiveKind kind, const Shape& shape, int dtype, int reduce_op, int root,
                                 int free_dim) {
  OpSignature op;
  op.kind = static_cast<int32_t>(kind);
  op.reduce_op = reduce_op;
  op.root = root;
  op.dtype = dtype;
  op.free_dim = free_dim;
  if (dtype >= 0) {
    op.ndim = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size() && i < OpSignature::kMaxDims; ++i) op.shape[i] = shape[i];
  }
  return op;
}

OpSignature control_signature(const char* name) {
  OpSignature op;
  op.kind = OpSignature::kControl;
  op.name = name;
  uint64_t h = 1469598103934665603ull;
  for (const char* p = name; *p; ++p) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
  op.name_hash = h;
  return op;
}

std::string to_string(const OpSignature& op) {
  if (op.kind == OpSignature::kControl) return std::string("control exchange (") + op.name + ")";
  std::string out = dist::to_string(static_cast<CollectiveKind>(op.kind)) + "(";
  if (op.reduce_op >= 0) out += dist::to_string(static_cast<ReduceOp>(op.reduce_op)) + ", ";
  if (op.dtype >= 0) {
    static const char* short_names[kNumDTypes] = {"bool", "i64", "f32", "f64", "u8", "i8", "i32", "bf16", "f16"};
    out += op.dtype < kNumDTypes ? short_names[op.dtype] : "dtype?";
    out += "[";
    for (int i = 0; i < op.ndim && i < OpSignature::kMaxDims; ++i) out += (i ? "," : "") + std::to_string(op.shape[i]);
    out += "]";
  }
  if (op.root >= 0)
    out += weft::detail::str_cat(op.dtype >= 0 ? ", " : "",
                                 op.kind == static_cast<int32_t>(CollectiveKind::AllToAll) ? "split dim " : "root ",
                                 op.root);
  return out + ")";
}

void register_comm(MPI_Comm comm, const std::string& name, const std::string& label) {
  if (comm == MPI_COMM_NULL) return;
  check_mpi(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", comm);
  MPI_Comm_set_name(comm, name.c_str());
  MPI_Comm control = MPI_COMM_NULL;  // every member is here (mesh construction agreed first)
  check_mpi(MPI_Comm_dup(comm, &control), "MPI_Comm_dup (control communicator)", comm);
  check_mpi(MPI_Comm_set_errhandler(control, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", control);
  MPI_Comm_set_name(control, (name + " (control)").c_str());
  state().comms.push_back(CommState{comm, control, name, label});
}

MPI_Comm control_comm(MPI_Comm comm) {
  const CommState* c = find_comm(comm);
  return c ? c->control : comm;
}

void free_comms() {
  // Every rank created them in the same order (mesh construction is collective): free in that order.
  for (CommState& c : state().comms) {
    if (c.control != MPI_COMM_NULL) MPI_Comm_free(&c.control);
    if (c.comm != MPI_COMM_NULL && c.comm != MPI_COMM_WORLD) MPI_Comm_free(&c.comm);
  }
  state().comms.clear();
}

// Note [Collective history]
// Without debug mode nothing is compared before the data moves (that costs a round trip per
// collective), and some mismatches complete silently: a sum on one rank and a max on another, two
// different collectives that happen to move the same bytes. So every communicator folds what the
// fingerprint would compare into a running hash, a few multiplications per collective, and the
// exit path compares the hashes of every communicator across its ranks: a job whose ranks
// disagreed ends non-zero, naming the communicator and a rank, instead of passing.
uint64_t mix(uint64_t h, const OpSignature& op) {
  auto add = [&](int64_t v) { h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull; };
  add(op.kind);
  add(op.reduce_op);
  add(op.root);
  add(op.dtype);
  add(op.ndim);
  add(op.free_dim);
  add(static_cast<int64_t>(op.name_hash));
  for (int i = 0; i < op.ndim && i < OpSignature::kMaxDims; ++i) add(i == op.free_dim ? -1 : op.shape[i]);
  return h;
}

void begin_op(MPI_Comm comm, OpSignature& op) {
  CommState* c = find_comm(comm);
  op.seq = c ? ++c->seq : 0;
  if (state().debug) [[unlikely]]
    check_fingerprints(comm, op);  // a call it refuses never happens, and is not history
  if (c) c->history = mix(c->history, op);
  if (state().tracing) [[unlikely]]
    state().trace.push_back(TraceEvent{.op = op, .comm = comm, .begun = trace_clock(), .cpu_begun = trace_cpu_clock()});
}

namespace {
// The trace's record of (comm, op), searched from the newest (a wait mostly follows its begin
// closely), or null when the op began before tracing was turned on.
TraceEvent* traced(MPI_Comm comm, const OpSignature& op) {
  std::vector<TraceEvent>& t = state().trace;
  for (auto it = t.rbegin(); it != t.rend(); ++it)
    if (it->comm == comm && it->op.seq == op.seq && it->op.kind == op.kind) return &*it;
  return nullptr;
}
}  // namespace

void wait_op(MPI_Request& request, MPI_Comm comm, const OpSignature& op, bool completes) {
  State& s = state();
  TraceEvent* event = s.tracing && completes ? traced(comm, op) : nullptr;
  if (event) event->waiting = trace_clock();
  int done = 0, rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  if (rc == MPI_SUCCESS && done) {
    if (completes) s.last = Completed{op, comm, true};
    if (event) {
      event->done = trace_clock();
      event->cpu_done = trace_cpu_clock();
    }
    return;
  }
  Poll poll;
  double left_at = -1;
  while (rc == MPI_SUCCESS && !done) {
    const double t = poll.pause();
    if (t > 0) {
      take_notices();
      if (left_at < 0 && departed_member(comm) >= 0) left_at = t;
      if (left_at >= 0 && t - left_at > std::min(kDepartureGrace, s.timeout > 0 ? s.timeout : kDepartureGrace)) {
        int r = departed_member(comm);
        abort_job(weft::detail::str_cat("rank ", r, " ", departure_name(s.departed[static_cast<size_t>(r)]),
                                        " while rank ", world_rank(), " waits in ", op_at(op, comm), " (waited ", t,
                                        " s); last completed: ", last_completed(), "; aborting the job"));
      }
      if (s.timeout > 0 && t > s.timeout) timed_out(op_at(op, comm), t);
    }
    rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  }
  s.waited += poll.elapsed();
  if (event) {
    event->done = trace_clock();
    event->cpu_done = trace_cpu_clock();
  }
  if (rc != MPI_SUCCESS) check_mpi(rc, op_at(op, comm).c_str(), comm);
  if (completes) s.last = Completed{op, comm, true};
}

void start_watchdog() {
  State& s = state();
  if (const char* t = std::getenv("WEFT_COLLECTIVE_TIMEOUT")) {
    char* end = nullptr;
    double v = std::strcmp(t, "inf") == 0 ? 0 : std::strtod(t, &end);
    WEFT_CHECK(std::strcmp(t, "inf") == 0 || (end != t && *end == '\0' && v >= 0 && std::isfinite(v)),
               "WEFT_COLLECTIVE_TIMEOUT: expected seconds (a number >= 0, or inf) but got '", t, "'");
    s.timeout = v;
  }
  const char* d = std::getenv("WEFT_DEBUG_COLLECTIVES");
  s.debug = d && *d && std::strcmp(d, "0") != 0;
  MPI_Comm control = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &control), "MPI_Comm_dup (control communicator)", MPI_COMM_WORLD);
  MPI_Comm_set_errhandler(control, MPI_ERRORS_RETURN);
  s.comms.push_back(CommState{MPI_COMM_WORLD, control, "MPI_COMM_WORLD", "world"});
  int size = world_size();
  s.departed.assign(static_cast<size_t>(size), 0);
  if (size == 1) return;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.exit_comm), "MPI_Comm_dup (departure notices)", MPI_COMM_WORLD);
  MPI_Comm_set_errhandler(s.exit_comm, MPI_ERRORS_RETURN);
  MPI_Irecv(&s.notice_buf, 1, MPI_INT, MPI_ANY_SOURCE, kDepartureTag, s.exit_comm, &s.notice);
}

namespace {

// Every rank is in the exit path, so nothing else is in flight: one all_gather per communicator of
// (operations, history), all started at once (so their order across communicators does not matter).
void compare_histories() {
  State& s = state();
  struct Check {
    CommState* comm;
    uint64_t mine[2];
    std::vector<uint64_t> all;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<Check> checks(s.comms.size());
  for (size_t i = 0; i < s.comms.size(); ++i) {
    Check& c = checks[i];
    int k = 1;
    c.comm = &s.comms[i];
    MPI_Comm_size(c.comm->comm, &k);
    c.mine[0] = c.comm->seq;
    c.mine[1] = c.comm->history;
    c.all.resize(2 * static_cast<size_t>(k));
    MPI_Iallgather(c.mine, 2, MPI_UINT64_T, c.all.data(), 2, MPI_UINT64_T, c.comm->control, &c.request);
  }
  Poll poll;
  for (Check& c : checks) {
    int done = 0;
    while (MPI_Test(&c.request, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done)
      if (double t = poll.pause(); s.timeout > 0 && t > s.timeout) timed_out("the exit path's history check", t);
  }
  for (Check& c : checks)
    for (size_t r = 1; r < c.all.size() / 2; ++r) {
      if (c.all[2 * r] == c.all[0] && c.all[2 * r + 1] == c.all[1]) continue;
      abort_job(weft::detail::str_cat(
          "the ranks of ", comm_label(c.comm->comm), " issued different collectives: rank ",
          world_rank_in(c.comm->comm, static_cast<int>(r)), " issued ", c.all[2 * r], ", rank ",
          world_rank_in(c.comm->comm, 0), " issued ", c.all[0], (c.all[2 * r] == c.all[0] ? " with a different kind, reduce op, dtype or shape" : ""),
          "; their results may be wrong. Rerun with WEFT_DEBUG_COLLECTIVES=1 to name the first difference"));
    }
}

}  // namespace

// Note [Leaving main]
// A rank that leaves main (Runtime's destructor, or exit() through an atexit hook) tells every other
// rank on a private communicator, then waits until every other rank has left too before
// MPI_Finalize. A rank waiting in any operation tests for these notices while it polls: when a
// member of its communicator has left and the operation still does not complete within a short
// grace (the leaver's last data may still be in flight), it aborts the job naming who left. The
// departure wait is bounded by the timeout like any other wait, so finalization never hangs.
void depart(Departure how) {
  State& s = state();
  const int size = static_cast<int>(s.departed.size()), me = world_rank();
  if (s.exit_comm == MPI_COMM_NULL) return;
  static int how_buf;
  how_buf = static_cast<int>(how);
  for (int r = 0; r < size; ++r) {
    if (r == me) continue;
    s.sent.emplace_back();
    MPI_Isend(&how_buf, 1, MPI_INT, r, kDepartureTag, s.exit_comm, &s.sent.back());
  }
  Poll poll;
  int sent_done = 0;
  while (true) {
    take_notices();
    MPI_Testall(static_cast<int>(s.sent.size()), s.sent.data(), &sent_done, MPI_STATUSES_IGNORE);
    if (s.departures == size - 1 && sent_done) break;
    const double t = poll.pause();
    if (s.timeout > 0 && t > s.timeout) {
      std::string still;
      for (int r = 0; r < size; ++r)
        if (r != me && s.departed[static_cast<size_t>(r)] == 0) still += (still.empty() ? "" : ", ") + std::to_string(r);
      abort_job(weft::detail::str_cat("watchdog: rank ", me, " ", departure_name(static_cast<int>(how)), " and waited ",
                                      t, " s (WEFT_COLLECTIVE_TIMEOUT=", s.timeout, ") for ranks [", still,
                                      "] to leave main too; last completed: ", last_completed(), "; aborting the job"));
    }
  }
  s.sent.clear();
  MPI_Comm_free(&s.exit_comm);
  compare_histories();
}

void set_wait_policy(WaitPolicy policy) {
  WEFT_CHECK(policy.spin >= 0 && policy.spin <= 10e-3, "set_wait_policy: expected a spin of 0 to 0.01 s but got ",
             policy.spin);
  state().policy = policy;
}
WaitPolicy wait_policy() { return state().policy; }
double waited_seconds() { return state().waited; }
void set_wait_trace(bool on) {
  state().tracing = on;
  state().trace.clear();
}
std::vector<TraceEvent> take_wait_trace() { return std::exchange(state().trace, {}); }
double trace_clock() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }
double trace_cpu_clock() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

}  // namespace detail

void set_collective_timeout(double seconds) {
  WEFT_CHECK(seconds >= 0, "set_collective_timeout: expected seconds >= 0 (0 or infinity: wait forever) but got ",
             seconds);
  detail::state().timeout = std::isinf(seconds) ? 0 : seconds;
}
double collective_timeout() { return detail::state().timeout; }
void set_debug_collectives(bool enabled) { detail::state().debug = enabled; }
bool debug_collectives() { return detail::state().debug; }

}  // namespace weft::dist
