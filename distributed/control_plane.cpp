// control_plane.cpp: the int64 exchanges of Note [Control plane], non-blocking MPI completed by the
// runtime's wait.
#include "distributed/control_plane.h"

#include "distributed/runtime.h"
#include "framework/error.h"

namespace weft::dist::detail {
namespace {

MPI_Comm checked_mesh_comm(const DeviceMesh& mesh, const char* what) {
  WEFT_CHECK(mesh.contains_this_rank(), what, ": world rank ", world_rank(), " is not in ", mesh.to_string());
  return mesh.mesh_comm();
}

template <class Start>
void run(Start&& start, MPI_Comm comm, const char* what) {
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(start(&request), what, comm);
  wait_request(request, what, comm, [what] { return std::string("control exchange ") + what; });
}

void all_gather_on(const int64_t* mine, int64_t* all, int n, MPI_Comm comm, const char* what) {
  run([&](MPI_Request* r) { return MPI_Iallgather(mine, n, MPI_INT64_T, all, n, MPI_INT64_T, comm, r); }, comm, what);
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
  run([&](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, MPI_MAX, comm, r); }, comm,
      what);
}

void control_broadcast(int64_t* values, int n, int src, MPI_Comm comm, const char* what) {
  run([&](MPI_Request* r) { return MPI_Ibcast(values, n, MPI_INT64_T, src, comm, r); }, comm, what);
}

bool all_agree(bool ok, MPI_Comm comm, const char* what) {
  int v = ok ? 1 : 0;
  run([&](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, comm, r); }, comm, what);
  return v != 0;
}

}  // namespace weft::dist::detail
