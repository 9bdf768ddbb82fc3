// control_plane.h: the metadata weft exchanges between ranks besides tensor data: sizes and shapes,
// mesh-wide agreement, the run_check comparison. Every exchange goes through the runtime's wait
// (so the watchdog bounds it) and none is counted by CommDebugMode (Note [Control plane]).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distributed/device_mesh.h"

namespace weft::dist::detail {

// Note [Control plane]
// Tensor collectives are what a user asks for and what CommDebugMode counts. The control plane is
// what weft needs to know to issue them: every rank's size along a gathered dim, a local_map
// output's global shape, whether every rank agrees. It is never counted, whoever calls it (DTensor,
// local_map, the collectives), so a count depends only on what the user asked for. Its exchanges
// are int64 only and run on the mesh's own communicators (mesh_comm() for mesh-wide ones).

// Every rank's `mine` (the same length on every rank) over the whole mesh, in the mesh's row-major
// rank order: entry r * mine.size() + i is rank r's mine[i]. `what` names the exchange in errors.
std::vector<int64_t> mesh_all_gather(const std::vector<int64_t>& mine, const DeviceMesh& mesh, const char* what);
// Every rank's `mine` (the same length on every rank) over comm, in comm's rank order.
std::vector<int64_t> comm_all_gather(const std::vector<int64_t>& mine, MPI_Comm comm, const char* what);
// Every rank's `value` on mesh_dim, in rank order.
std::vector<int64_t> exchange_sizes(int64_t value, const DeviceMesh& mesh, int64_t mesh_dim);
// The element-wise max of `values` over the whole mesh, in place.
void mesh_max(int64_t* values, int n, const DeviceMesh& mesh, const char* what);
// src's `values` on every rank of comm (n the same everywhere).
void control_broadcast(int64_t* values, int n, int src, MPI_Comm comm, const char* what);
// True iff `ok` on every rank of comm.
bool all_agree(bool ok, MPI_Comm comm, const char* what);

// Debug mode: raises weft::Error on every rank of the mesh when any rank's `mine` (a description
// of the call's arguments: placements, shapes) differs, naming the first such rank, rank 0 and both
// descriptions: "redistribute: rank 1 has ..., rank 0 has ...". Two exchanges when they differ,
// one when they agree.
void check_agreement(const DeviceMesh& mesh, const char* what, const std::string& mine);

struct OpSignature;
// Debug mode: compares `op` across comm's ranks and raises weft::Error on every rank when any two
// differ (Note [Collective fingerprints]). Called by begin_op.
void check_fingerprints(MPI_Comm comm, const OpSignature& op);
// How messages name comm: `mesh dim "tp" (DeviceMesh(...) dims (tp))`, or "the world".
std::string comm_label(MPI_Comm comm);

}  // namespace weft::dist::detail
