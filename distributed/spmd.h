// Local SPMD types at the distributed layer: local_map's boundary (input types from placements,
// output checks, derived grad placements), the typed collectives, and reinterpret/convert. The rules
// themselves live in autograd/spmd_types.h (Note [Local SPMD types]); docs/spmd_types.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autograd/spmd_types.h"
#include "distributed/device_mesh.h"
#include "distributed/placement.h"

namespace weft::dist {

// False when WEFT_SPMD_TYPES=0 (read once): no local_map checks types, whatever its options say.
bool spmd_types_enabled();

// The deliberate changes of x's local SPMD type on mesh_dim, from `from` (checked against x's type
// inside a checking body) to `to`; Note [SPMD coercions] in distributed/spmd_coercions.cpp has the
// table. What they do forward and backward depends on (from, to) alone, so turning the checks off
// changes no gradient. Neither communicates forward; neither can leave Partial or gather Varying.
// reinterpret keeps the local tensor and changes its meaning (a Varying local partial contraction,
// to be summed later, is Partial); its backward all-reduces where an Invariant becomes something
// else, and keeps the first rank's gradient where a Replicate becomes Invariant.
Tensor reinterpret(const Tensor& x, spmd::Type from, spmd::Type to, const DeviceMesh& mesh, int64_t mesh_dim = 0);
// convert keeps the meaning and changes the local tensor: to Varying each rank keeps its chunk of
// `dim` (as Shard(dim) cuts it; without a dim, its row of dim 0, which must have the mesh dim's
// size); to Partial the first rank keeps the value and the others hold zeros, or, from Varying, a
// new leading dim stacks every rank's slot (this rank's holds x).
Tensor convert(const Tensor& x, spmd::Type from, spmd::Type to, const DeviceMesh& mesh, int64_t mesh_dim = 0,
               std::optional<int64_t> dim = std::nullopt);

namespace detail {

// The mesh's dim names, or "0", "1", ... for an unnamed mesh: the names errors use.
const std::vector<std::string>& axis_names(const DeviceMesh& mesh);

// The axis of the running checker that (mesh, mesh_dim) is, or -1: the checker's own mesh, or a
// 1-D sub-mesh named after one of its dims.
int64_t spmd_axis(const spmd::Checker& checker, const DeviceMesh& mesh, int64_t mesh_dim);

// A typed collective: before communicating, x's type on the axis must be in `accept`; after, the
// result takes x's type with `result` on that axis. Both do nothing outside a checking body or
// on another mesh.
struct CollectiveType {
  const char* name;
  spmd::TypeSet accept;
  spmd::Type result;
  const char* fix;
};
void check_collective_input(const CollectiveType& type, const Tensor& x, const DeviceMesh& mesh, int64_t mesh_dim);
void type_collective_output(const CollectiveType& type, const Tensor& y, const Tensor& x, const DeviceMesh& mesh,
                            int64_t mesh_dim);

// local_map's boundary. `grad` is the input's declared grad placements (null: not given).
void type_local_map_input(spmd::Checker& checker, const Tensor& local, size_t leaf, const Placements& placements,
                          const Placements* grad);
void check_local_map_output(spmd::Checker& checker, const Tensor& local, size_t output, const Placement* placements,
                            size_t count);
// An input's grad placements from its types: on a Replicate mesh dim, Partial when the body
// settled it as Replicate (mixed with Varying or Replicate values), else Replicate; Partial
// becomes Replicate and Shard stays, as the default.
void derive_grad_placements(const spmd::Checker& checker, size_t leaf, Placement* placements, size_t count);

}  // namespace detail
}  // namespace weft::dist
