// reinterpret and convert: the deliberate changes of a local SPMD type inside a local_map body.
#include "autograd/node.h"
#include "distributed/collectives.h"
#include "distributed/sharding.h"
#include "distributed/spmd.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "ops/copy_ops.h"
#include "ops/shape_ops.h"

namespace weft::dist {
namespace {

using autograd::variable_list;
using spmd::Type;

// Note [SPMD coercions]
// Both take the source type as well as the target, so that what they do forward and backward
// depends on the call alone, never on whether types are being checked: turning the checker off
// must not change a gradient. The checker, when on, verifies that x has the source type.
// reinterpret keeps the local tensor and changes what it means; its backward is the conjugate
// reinterpret, which is the identity except where an Invariant is involved:
//   R->V, R->P, V->P   identity backward (a V or P gradient is the R input's pending sum)
//   R->I               backward keeps the gradient on the dim's first rank only: I's gradient is the
//                      same on every rank, and R's is a pending sum, which would count it N times
//   I->R, I->V, I->P   backward all-reduces: R's gradient is a pending sum, I's must be the total
// convert keeps what the value means and changes its local tensor, without communicating:
//   R->V, I->V         each rank keeps its chunk (of `dim`, as Shard(dim) cuts it; or its row of dim 0
//                      when no dim is given); the backward pads the gradient with zeros (R) and, for
//                      I, all-reduces that (an all_gather)
//   R->P, I->P         the first rank keeps the value, the others hold zeros; the backward keeps the
//                      first rank's gradient (R) or passes it through (I)
//   V->P               stacks: a new leading dim of the dim's size, this rank's slot holding x and the
//                      others zeros; the backward takes this rank's slot
//   R->I, I->R         as reinterpret
// Nothing leaves a Partial (only all_reduce and reduce_scatter settle a pending sum) or turns a
// Varying into a Replicate or Invariant (that is all_gather).

enum class GradRule : uint8_t { Identity, FirstRankOnly, AllReduce };

struct CoercionBackward final : autograd::Node {
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;  // retyped by the caller
  DeviceMesh mesh;
  int64_t mesh_dim = 0;
  GradRule rule = GradRule::Identity;
  bool first_rank = true;
  variable_list apply(variable_list&& grads) override {
    switch (rule) {
      case GradRule::Identity: return {grads[0]};
      case GradRule::FirstRankOnly: return {first_rank ? grads[0] : zeros_like(grads[0])};
      case GradRule::AllReduce: return {detail::all_reduce(grads[0], ReduceOp::Sum, mesh, mesh_dim)};
    }
    return {grads[0]};
  }
  std::string name() const override { return "SpmdCoercionBackward"; }
};

const char* letter(Type t) {
  switch (t) {
    case Type::Replicate: return "Replicate";
    case Type::Invariant: return "Invariant";
    case Type::Varying: return "Varying";
    case Type::Partial: return "Partial";
  }
  return "?";
}

int64_t coordinate(const DeviceMesh& mesh, int64_t mesh_dim, const char* op) {
  WEFT_CHECK(mesh.defined(), op, ": the device mesh is undefined");
  WEFT_CHECK(mesh_dim >= 0 && mesh_dim < mesh.ndim(), op, ": mesh dim ", mesh_dim, " is out of range for ",
             mesh.to_string());
  std::optional<std::vector<int64_t>> coord = mesh.get_coordinate();
  WEFT_CHECK(coord.has_value(), op, ": this rank is not in ", mesh.to_string());
  return (*coord)[static_cast<size_t>(mesh_dim)];
}

// No coercion settles a pending sum or gathers per-rank values: those communicate.
void check_not_a_collective(Type from, Type to, const char* op) {
  if (from == Type::Partial && to != Type::Partial)
    WEFT_ERROR(op, ": cannot turn a Partial value into ", letter(to),
               ": a pending sum is settled only by communication (all_reduce for Replicate, "
               "reduce_from_parallel_region for Invariant, reduce_scatter for Varying)");
  if (from == Type::Varying && (to == Type::Replicate || to == Type::Invariant))
    WEFT_ERROR(op, ": cannot turn a Varying value into ", letter(to), ": that is all_gather");
}

// Checks x's type (when a checker runs) and makes y, an alias of x or a value computed from it,
// carry x's type with `to` on the mesh dim's axis.
struct Typing {
  spmd::Checker* checker = spmd::active();
  int64_t axis = -1;
  Typing(const Tensor& x, Type from, const DeviceMesh& mesh, int64_t mesh_dim, const char* op) {
    if (!checker) return;
    axis = detail::spmd_axis(*checker, mesh, mesh_dim);
    WEFT_CHECK(axis >= 0, op, ": ", mesh.to_string(), " mesh dim ", mesh_dim,
               " is not a dim of the running local_map's mesh");
    checker->expect(x, axis, spmd::type_bit(from), spmd::OpName{op},
                    "pass the type the value has as the source type (reinterpret and convert check it)");
  }
  Tensor retype(Tensor y, const Tensor& x, Type to) const {
    if (checker) checker->retype(y, x, axis, to);
    return y;
  }
};

// y (x itself, or made from it by the caller) with the coercion's node on top.
Tensor with_grad_rule(Tensor y, const Tensor& x, GradRule rule, const DeviceMesh& mesh, int64_t mesh_dim,
                      bool first_rank) {
  return autograd::record<CoercionBackward>(std::move(y), [&](CoercionBackward& n) {
    n.mesh = mesh;
    n.mesh_dim = mesh_dim;
    n.rule = rule;
    n.first_rank = first_rank;
  }, x);
}

Tensor alias_of(const Tensor& x) {
  funcol::wait_tensor(x);  // an alias would not wait for x's pending collective
  return kernels::make_alias(x, x.shape(), x.strides(), x.storage_offset());
}

}  // namespace

Tensor reinterpret(const Tensor& x, Type from, Type to, const DeviceMesh& mesh, int64_t mesh_dim) {
  kernels::check_plain(x, "reinterpret");
  const int64_t coord = coordinate(mesh, mesh_dim, "reinterpret");
  check_not_a_collective(from, to, "reinterpret");
  Typing typing(x, from, mesh, mesh_dim, "reinterpret");
  GradRule rule = GradRule::Identity;
  if (from == Type::Invariant && to != Type::Invariant) rule = GradRule::AllReduce;
  else if (to == Type::Invariant && from == Type::Replicate) rule = GradRule::FirstRankOnly;
  return typing.retype(with_grad_rule(alias_of(x), x, rule, mesh, mesh_dim, coord == 0), x, to);
}

Tensor convert(const Tensor& x, Type from, Type to, const DeviceMesh& mesh, int64_t mesh_dim,
               std::optional<int64_t> dim) {
  kernels::check_plain(x, "convert");
  const int64_t coord = coordinate(mesh, mesh_dim, "convert");
  check_not_a_collective(from, to, "convert");
  WEFT_CHECK(!dim || to == Type::Varying, "convert: a dim is taken only when converting to Varying (the dim "
             "each rank keeps its chunk of), not from ", letter(from), " to ", letter(to));
  if (from == to || to == Type::Invariant || to == Type::Replicate) return reinterpret(x, from, to, mesh, mesh_dim);
  const int64_t n = mesh.size(mesh_dim);
  if (to == Type::Varying) {  // from R or I
    // An Invariant's gradient must be the total: all-reduce the zero-padded chunk gradients.
    Tensor full = from == Type::Invariant ? reinterpret(x, from, Type::Replicate, mesh, mesh_dim) : x;
    Typing typing(full, Type::Replicate, mesh, mesh_dim, "convert");
    Tensor mine;
    if (dim) {
      const int64_t d = wrap_dim(*dim, x.dim(), "convert");
      auto [size, offset] = chunk_size_and_offset(x.shape()[d], n, coord);
      mine = narrow(full, d, offset, size);
    } else {
      WEFT_CHECK(x.dim() >= 1 && x.shape()[0] == n, "convert: without a dim, each rank keeps its row of dim 0, "
                 "which must have the mesh dim's size ", n, ", but got shape ", shape_str(x.shape()),
                 "; pass dim to keep a chunk instead");
      mine = select(full, 0, coord);
    }
    return typing.retype(mine, full, Type::Varying);
  }
  // to Partial
  Typing typing(x, from, mesh, mesh_dim, "convert");
  if (from == Type::Varying) {
    TensorList slots;
    slots.reserve(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) slots.push_back(r == coord ? x : zeros_like(x));
    Tensor stacked;
    {
      spmd::Suspend untyped;  // the stack is retyped as a whole below
      stacked = stack(slots, 0);
    }
    return typing.retype(stacked, x, Type::Partial);
  }
  // R or I: the first rank keeps the value. R's gradient, a pending sum, is kept there too; I's is
  // the same on every rank and passes through.
  Tensor y = coord == 0 ? alias_of(x) : zeros_like(x);
  const GradRule rule = from == Type::Replicate ? GradRule::FirstRankOnly : GradRule::Identity;
  return typing.retype(with_grad_rule(std::move(y), x, rule, mesh, mesh_dim, coord == 0), x, Type::Partial);
}

}  // namespace weft::dist
