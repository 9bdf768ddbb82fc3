// collectives.h: functional collectives over one mesh dim (sync, async, differentiable), and the
// non-differentiable primitives under them that redistribute uses.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "distributed/device_mesh.h"
#include "distributed/placement.h"
#include "framework/tensor.h"

namespace weft::dist {

// Note [Functional collectives]
// Every collective returns a new tensor (inputs may be non-contiguous; a contiguous input is handed
// to MPI as it is) and works on one mesh dim: the ranks that differ only in that coordinate.
// Uneven sizes follow torch.chunk (see sharding.h). Avg is sum, then divide by k. A mesh dim of
// size 1 means no communication at all (and nothing is counted by CommDebugMode). bfloat16 and
// float16 reduce in float32 and round once (Note [16-bit floats in collectives]). Every rank of
// the mesh dim must call the same collective with matching shapes; set_debug_collectives(true)
// checks that and names the mismatch. The differentiable forms are differentiable on every rank
// only if every rank's input requires grad (backward runs collectives too).
namespace funcol {

// Reduces x over the ranks of mesh_dim. Backward (Sum, Avg): the same all_reduce of the gradient.
Tensor all_reduce(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim = 0);
// Concatenates along `dim` the tensors of the ranks of mesh_dim (rank order). Sizes along dim may
// differ across ranks: `sizes` gives each rank's size when known (else they are exchanged first,
// uncounted). Backward: reduce_scatter(sum) of the gradient into the same pieces.
Tensor all_gather(const Tensor& x, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim = 0,
                  std::optional<std::vector<int64_t>> sizes = std::nullopt);
// x is the full tensor on every rank; each rank gets the reduction of its torch.chunk piece along
// dim. Backward (Sum, Avg): all_gather of the gradient.
Tensor reduce_scatter(const Tensor& x, ReduceOp op, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim = 0);
// Splits split_dim by torch.chunk into k pieces, sends piece j to rank j, concatenates the received
// pieces along concat_dim in rank order. concat_sizes: each rank's size along concat_dim if known.
// Backward: the reverse all_to_all.
Tensor all_to_all(const Tensor& x, int64_t split_dim, int64_t concat_dim, const DeviceMesh& mesh,
                  int64_t mesh_dim = 0, std::optional<std::vector<int64_t>> concat_sizes = std::nullopt);
// src's x on every rank (the other ranks' x gives shape and dtype). Backward: reduce(sum) to src.
Tensor broadcast(const Tensor& x, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim = 0);
// src holds one chunk per rank of mesh_dim; every rank receives its chunk. The other ranks pass {}
// (the chunks' shapes and dtype are sent first, uncounted). Not differentiable: only src holds
// inputs, so the other ranks would have no backward node to take part in the gather.
Tensor scatter(const TensorList& chunks, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim = 0);

// Async forms: start a non-blocking MPI collective and return a tensor whose first data access
// waits (TensorImpl::pending). Same values and gradients as the sync forms. Views taken of the
// result before it is read do not wait: read (or wait_tensor) the result first.
Tensor all_reduce_async(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim = 0);
Tensor all_gather_async(const Tensor& x, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim = 0,
                        std::optional<std::vector<int64_t>> sizes = std::nullopt);
Tensor reduce_scatter_async(const Tensor& x, ReduceOp op, int64_t dim, const DeviceMesh& mesh,
                            int64_t mesh_dim = 0);
Tensor all_to_all_async(const Tensor& x, int64_t split_dim, int64_t concat_dim, const DeviceMesh& mesh,
                        int64_t mesh_dim = 0, std::optional<std::vector<int64_t>> concat_sizes = std::nullopt);
// Waits for t's pending collective, if any (torch's wait_tensor); returns t.
const Tensor& wait_tensor(const Tensor& t);

// Megatron's conjugate pair: identity forward / all_reduce(sum) backward, and all_reduce(sum)
// forward / identity backward.
Tensor copy_to_parallel_region(const Tensor& x, const DeviceMesh& mesh, int64_t mesh_dim = 0);
Tensor reduce_from_parallel_region(const Tensor& x, const DeviceMesh& mesh, int64_t mesh_dim = 0);

}  // namespace funcol

// Internal, non-differentiable primitives (no autograd recorded). `async` makes the result pending.
namespace detail {

Tensor all_reduce(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim, bool async = false);
// Whether all_reduce asks Open MPI for its ring algorithm on groups of 2 ranks (Note [Ring
// all-reduce for small groups]); on by default. Set on every rank alike (benchmarks pair the two).
void set_small_group_ring(bool on);
bool small_group_ring();
// sizes: every rank's size along dim (required; see exchange_sizes in control_plane.h).
Tensor all_gather(const Tensor& x, int64_t dim, const std::vector<int64_t>& sizes, const DeviceMesh& mesh,
                  int64_t mesh_dim, bool async = false);
// sizes: the pieces along dim, one per rank, summing to x.size(dim) (torch.chunk: chunk_sizes in sharding.h).
Tensor reduce_scatter(const Tensor& x, ReduceOp op, int64_t dim, const std::vector<int64_t>& sizes,
                      const DeviceMesh& mesh, int64_t mesh_dim, bool async = false);
// split_sizes: the pieces of x along split_dim sent to each rank; recv_sizes: the size along
// concat_dim of the piece received from each rank. When split_dim != concat_dim every rank must
// use the same split_sizes (the received pieces have split_sizes[me] along split_dim).
Tensor all_to_all(const Tensor& x, int64_t split_dim, const std::vector<int64_t>& split_sizes,
                  int64_t concat_dim, const std::vector<int64_t>& recv_sizes, const DeviceMesh& mesh,
                  int64_t mesh_dim, bool async = false);
Tensor broadcast(const Tensor& x, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim);
// The sum over the ranks of mesh_dim, on src; the other ranks get zeros of x's shape.
Tensor reduce_to(const Tensor& x, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim);
Tensor scatter(const TensorList& chunks, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim);

}  // namespace detail
}  // namespace weft::dist
