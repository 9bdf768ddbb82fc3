// progress.h: advancing the non-blocking collectives in flight on a mesh dim, for code that leaves
// them running behind computation (data_parallel's and fully_shard's gradient reductions).
#pragma once

#include <mpi.h>

#include <cstdint>

#include "distributed/device_mesh.h"

namespace weft::dist::detail {

// Note [Progress of in-flight reductions]
// Open MPI has no progress thread: a non-blocking collective moves only while this rank is inside
// some MPI call. A gradient's all_reduce or reduce_scatter above 4 KB is a rendezvous exchange of
// the whole buffer, which needs several such calls on both ranks; started in backward and not
// touched again, it waits for the optimizer's read and hides almost nothing (bench_overlap: 9-22%
// of data_parallel's communication hidden). So code that starts one during backward also probes
// the communicator at each gradient it handles, which runs MPI's progress engine once and advances
// every request in flight on it (the probe's result is ignored; it receives nothing). One probe per
// parameter gradient is enough: with a poke after every autograd node instead, bench_overlap hid
// no more. Cost: well under a microsecond a call.
inline void advance_collectives(const DeviceMesh& mesh, int64_t mesh_dim) {
  MPI_Comm comm = mesh.comm(mesh_dim);
  if (comm == MPI_COMM_NULL) return;
  int flag = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, MPI_STATUS_IGNORE);
}

}  // namespace weft::dist::detail
