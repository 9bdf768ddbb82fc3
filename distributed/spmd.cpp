// local_map's SPMD type boundary and the typed collectives' two halves.
#include "distributed/spmd.h"

#include <cstdlib>
#include <cstring>

#include "framework/error.h"
#include "ops/shape_ops.h"

namespace weft::dist {

using spmd::Type;
using spmd::type_bit;

bool spmd_types_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("WEFT_SPMD_TYPES");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return enabled;
}

namespace detail {

const std::vector<std::string>& axis_names(const DeviceMesh& mesh) {
  if (!mesh.dim_names().empty()) return mesh.dim_names();
  // One list per length: "0", "1", ... (a function-local static: built on first use, no registrar).
  static const std::vector<std::vector<std::string>> numbered = [] {
    std::vector<std::vector<std::string>> lists(spmd::kMaxAxes + 1);
    for (int64_t n = 0; n <= spmd::kMaxAxes; ++n)
      for (int64_t a = 0; a < n; ++a) lists[static_cast<size_t>(n)].push_back(std::to_string(a));
    return lists;
  }();
  const auto n = static_cast<size_t>(mesh.ndim());
  WEFT_CHECK(n < numbered.size(), "local_map: SPMD type checking supports meshes of up to ", spmd::kMaxAxes,
             " dims but got ", mesh.to_string(), "; pass check_types = false");
  return numbered[n];
}

int64_t spmd_axis(const spmd::Checker& checker, const DeviceMesh& mesh, int64_t mesh_dim) {
  if (!mesh.defined()) return -1;
  if (mesh.ndim() == checker.ndim() && mesh.hash() == checker.mesh_key()) return mesh_dim;
  if (mesh.ndim() != 1 || mesh.dim_names().empty()) return -1;
  for (int64_t a = 0; a < checker.ndim(); ++a)
    if (checker.axis_name(a) == mesh.dim_names()[0]) return a;
  return -1;
}

void check_collective_input(const CollectiveType& type, const Tensor& x, const DeviceMesh& mesh, int64_t mesh_dim) {
  spmd::Checker* checker = spmd::active();
  if (!checker) return;
  const int64_t axis = spmd_axis(*checker, mesh, mesh_dim);
  if (axis >= 0) checker->expect(x, axis, type.accept, spmd::OpName{type.name}, type.fix);
}

void type_collective_output(const CollectiveType& type, const Tensor& y, const Tensor& x, const DeviceMesh& mesh,
                            int64_t mesh_dim) {
  spmd::Checker* checker = spmd::active();
  if (!checker) return;
  const int64_t axis = spmd_axis(*checker, mesh, mesh_dim);
  if (axis >= 0) checker->retype(y, x, axis, type.result);
  else y.impl()->spmd_epoch = 0;  // an alias of x on another mesh: no claim about it
}

void type_local_map_input(spmd::Checker& checker, const Tensor& local, size_t leaf, const Placements& placements,
                          const Placements* grad) {
  Type types[spmd::kMaxAxes] = {};
  uint8_t undecided = 0;
  for (size_t a = 0; a < placements.size() && a < static_cast<size_t>(spmd::kMaxAxes); ++a) {
    const Placement& p = placements[a];
    if (p.is_shard()) types[a] = Type::Varying;
    else if (p.is_partial()) types[a] = Type::Partial;
    else if (!grad || a >= grad->size()) undecided = static_cast<uint8_t>(undecided | (1u << a));
    else types[a] = (*grad)[a].is_replicate() ? Type::Invariant : Type::Replicate;
  }
  checker.type_input(local, leaf, types, undecided);
}

namespace {

const char* output_fix(const Placement& declared, std::optional<Type> met) {
  if (declared.is_replicate()) {
    if (met == Type::Varying)
      return "it differs per rank: all_gather it (all_reduce it if each rank holds a term), or declare the "
             "output Shard or Partial";
    if (met == Type::Partial) return "all_reduce it first (reduce_from_parallel_region), or declare the output Partial";
    return "its gradient arrives the same on every rank and would be summed once per rank: return an Invariant "
           "value (reduce_from_parallel_region rather than funcol::all_reduce, or a Replicate grad placement for "
           "the inputs it comes from)";
  }
  if (declared.is_shard()) {
    if (met == Type::Partial) return "reduce_scatter it first, or declare the output Partial";
    return "an Invariant value would get a per-rank gradient: give the input it comes from a Partial grad "
           "placement, or pass it through copy_to_parallel_region";
  }
  return "a value the same on every rank declared Partial is summed once per rank: declare the output Replicate, "
         "or reinterpret a value of which each rank holds one term";
}

}  // namespace

void check_local_map_output(spmd::Checker& checker, const Tensor& local, size_t output, const Placement* placements,
                            size_t count) {
  if (!checker.typed(local)) return;
  struct Context {
    size_t output;
    const Placement* placements;
    size_t count;
  } context{output, placements, count};
  spmd::OpName where{nullptr, &context, [](const void* p) {
                       const auto& c = *static_cast<const Context*>(p);
                       return "output " + std::to_string(c.output) + " (declared " +
                              to_string(Placements(c.placements, c.placements + c.count)) + ")";
                     }};
  for (size_t a = 0; a < count; ++a) {
    const Placement& p = placements[a];
    const spmd::TypeSet accept = p.is_shard()     ? type_bit(Type::Varying) | type_bit(Type::Replicate)
                                 : p.is_partial() ? type_bit(Type::Partial) | type_bit(Type::Varying)
                                                  : type_bit(Type::Invariant);
    const auto axis = static_cast<int64_t>(a);
    if (checker.accepts(local, axis, accept)) continue;  // the common case: nothing to settle or report
    checker.expect(local, axis, accept, where, output_fix(p, checker.type_of(local, axis)));
  }
}

void derive_grad_placements(const spmd::Checker& checker, size_t leaf, Placement* placements, size_t count) {
  for (size_t a = 0; a < count; ++a) {
    Placement& p = placements[a];
    if (p.is_partial()) p = Replicate();
    else if (p.is_replicate() && checker.resolution(leaf, static_cast<int64_t>(a)) == Type::Replicate) p = Partial();
  }
}

}  // namespace detail

}  // namespace weft::dist
