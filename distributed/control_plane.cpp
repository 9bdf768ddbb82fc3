// control_plane.cpp: the int64 exchanges of Note [Control plane], non-blocking MPI completed by the
// runtime's wait.
#include "distributed/control_plane.h"

#include <algorithm>
#include <cstring>

#include "distributed/runtime.h"
#include "distributed/watchdog.h"
#include "framework/error.h"

namespace weft::dist::detail {
namespace {

MPI_Comm checked_mesh_comm(const DeviceMesh& mesh, const char* what) {
  WEFT_CHECK(mesh.contains_this_rank(), what, ": world rank ", world_rank(), " is not in ", mesh.to_string());
  return mesh.mesh_comm();
}

// One control exchange: numbered (and fingerprinted in debug mode) like any operation on comm,
// waited for under the watchdog.
template <class Start>
void run(Start&& start, MPI_Comm comm, const char* what) {
  OpSignature op = control_signature(what);
  begin_op(comm, op);
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(start(control_comm(comm), &request), what, comm);
  wait_op(request, comm, op);
}

void all_gather_on(const int64_t* mine, int64_t* all, int n, MPI_Comm comm, const char* what) {
  run([&](MPI_Comm c, MPI_Request* r) { return MPI_Iallgather(mine, n, MPI_INT64_T, all, n, MPI_INT64_T, c, r); },
      comm, what);
}

}  // namespace

std::vector<int64_t> mesh_all_gather(const std::vector<int64_t>& mine, const DeviceMesh& mesh, const char* what) {
  const size_t n = mine.size(), k = static_cast<size_t>(mesh.size());
  if (k == 1) return mine;
  MPI_Comm comm = checked_mesh_comm(mesh, what);
  std::vector<int64_t> all(n * k);
  all_gather_on(mine.data(), all.data(), static_cast<int>(n), comm, what);
  const std::vector<int64_t>& order = mesh.mesh_comm_order();
  if (order.empty()) return all;
  std::vector<int64_t> ordered(n * k);
  for (size_t r = 0; r < k; ++r)
    std::copy_n(all.begin() + static_cast<int64_t>(r * n), n, ordered.begin() + order[r] * static_cast<int64_t>(n));
  return ordered;
}

std::vector<int64_t> comm_all_gather(const std::vector<int64_t>& mine, MPI_Comm comm, const char* what) {
  int k = 1;
  MPI_Comm_size(comm, &k);
  std::vector<int64_t> all(mine.size() * static_cast<size_t>(k));
  all_gather_on(mine.data(), all.data(), static_cast<int>(mine.size()), comm, what);
  return all;
}

std::vector<int64_t> exchange_sizes(int64_t value, const DeviceMesh& mesh, int64_t mesh_dim) {
  WEFT_CHECK(mesh.contains_this_rank(), "exchange_sizes: world rank ", world_rank(), " is not in ", mesh.to_string());
  const size_t k = static_cast<size_t>(mesh.size(mesh_dim));
  std::vector<int64_t> all(k, value);
  if (k > 1) all_gather_on(&value, all.data(), 1, mesh.comm(mesh_dim), "size exchange");
  return all;
}

void mesh_max(int64_t* values, int n, const DeviceMesh& mesh, const char* what) {
  if (mesh.size() == 1) return;
  MPI_Comm comm = checked_mesh_comm(mesh, what);
  run([&](MPI_Comm c, MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, MPI_MAX, c, r); },
      comm, what);
}

void control_broadcast(int64_t* values, int n, int src, MPI_Comm comm, const char* what) {
  run([&](MPI_Comm c, MPI_Request* r) { return MPI_Ibcast(values, n, MPI_INT64_T, src, c, r); }, comm, what);
}

bool all_agree(bool ok, MPI_Comm comm, const char* what) {
  int v = ok ? 1 : 0;
  run([&](MPI_Comm c, MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, c, r); }, comm,
      what);
  return v != 0;
}

void check_agreement(const DeviceMesh& mesh, const char* what, const std::string& mine) {
  if (mesh.size() == 1 || !mesh.contains_this_rank()) return;
  uint64_t h = 1469598103934665603ull;
  for (char c : mine) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::vector<int64_t> hashes = mesh_all_gather({static_cast<int64_t>(h >> 1)}, mesh, what);
  auto other = std::find_if(hashes.begin(), hashes.end(), [&](int64_t v) { return v != hashes[0]; });
  if (other == hashes.end()) return;
  // Every rank saw the same table, so every rank takes part in the exchange of the texts.
  constexpr size_t kWords = 32;  // 256 characters each
  std::vector<int64_t> text(kWords, 0);
  std::memcpy(text.data(), mine.data(), std::min(mine.size(), kWords * 8 - 1));
  std::vector<int64_t> texts = mesh_all_gather(text, mesh, what);
  auto text_of = [&](size_t r) {
    const char* p = reinterpret_cast<const char*>(texts.data() + r * kWords);
    return std::string(p, strnlen(p, kWords * 8));
  };
  const size_t r = static_cast<size_t>(other - hashes.begin());
  WEFT_ERROR(what, " on ", mesh.to_string(), ": rank ", mesh.ranks()[r], " has ", text_of(r), ", rank ",
             mesh.ranks()[0], " has ", text_of(0));
}

// Note [Collective fingerprints]
// In debug mode every operation starts with an all_gather of its signature over the group: every
// rank sees every rank's, so when any two disagree every rank raises the same error (naming the
// first rank that disagrees with the group's first rank, and both calls), before any data moves,
// instead of some ranks deadlocking or reading garbage. The exchange is bounded by the watchdog
// like any wait, so a rank that never arrives still ends the job.
namespace {

// Another rank's control exchange arrives as a hash of its name: every name weft uses, to print it.
const char* control_name(uint64_t hash) {
  static const char* const names[] = {"size exchange", "scatter sizes", "local_map output shapes",
                                      "DTensor.from_local run_check", "DeviceMesh construction", "all_ranks_ok",
                                      "redistribute", "distribute_tensor", "local_map"};
  for (const char* n : names)
    if (control_signature(n).name_hash == hash) return n;
  return "unknown";
}

bool same_call(const OpSignature& a, const OpSignature& b) {
  if (a.kind != b.kind || a.seq != b.seq || a.reduce_op != b.reduce_op || a.root != b.root || a.dtype != b.dtype ||
      a.ndim != b.ndim || a.free_dim != b.free_dim || a.name_hash != b.name_hash)
    return false;
  for (int i = 0; i < a.ndim && i < OpSignature::kMaxDims; ++i)
    if (i != a.free_dim && a.shape[i] != b.shape[i]) return false;
  return true;
}

std::string call_str(const OpSignature& op, bool with_seq) {
  std::string s = op.kind == OpSignature::kControl ? std::string("control exchange (") + op.name + ")" : to_string(op);
  return with_seq ? s + " as #" + std::to_string(op.seq) : s;
}

}  // namespace

void check_fingerprints(MPI_Comm comm, const OpSignature& mine) {
  int k = 1;
  MPI_Comm_size(comm, &k);
  if (k == 1) return;
  std::vector<OpSignature> all(static_cast<size_t>(k));
  OpSignature local = mine;
  local.name = "";  // a pointer means nothing on another rank
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(MPI_Iallgather(&local, sizeof local, MPI_BYTE, all.data(), sizeof local, MPI_BYTE, control_comm(comm),
                           &request),
            "collective fingerprints", comm);
  wait_op(request, comm, mine, /*completes=*/false);  // a peer that never comes: named as `mine`
  for (int r = 1; r < k; ++r) {
    const OpSignature& first = all[0];
    const OpSignature& other = all[static_cast<size_t>(r)];
    if (same_call(first, other)) continue;
    // Names travel as hashes; this rank knows its own. Another rank's control exchange is named
    // by this rank's if the hashes match, else generically.
    auto named = [&](OpSignature o) {
      o.name = control_name(o.name_hash);
      return o;
    };
    const bool seqs = first.seq != other.seq;
    WEFT_ERROR("collective #", mine.seq, " on ", comm_label(comm), ": rank ", world_rank_in(comm, r), " called ",
               call_str(named(other), seqs), ", rank ", world_rank_in(comm, 0), " called ",
               call_str(named(first), seqs));
  }
}

}  // namespace weft::dist::detail
