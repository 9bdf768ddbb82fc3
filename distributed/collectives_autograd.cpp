// collectives_autograd.cpp: the differentiable funcol:: collectives (sync and async), each a
// forward primitive from collectives.cpp and a backward node that runs the conjugate collective.
#include "autograd/node.h"
#include "distributed/collectives.h"
#include "distributed/control_plane.h"
#include "distributed/sharding.h"
#include "distributed/spmd.h"
#include "kernels/toolkit.h"
#include "ops/shape_ops.h"

namespace weft::dist {
namespace {

using autograd::variable_list;
using detail::CollectiveType;
using spmd::Type;
using spmd::type_bit;

// The typed collectives (Note [Local SPMD types]): what each accepts on its mesh dim and makes.
constexpr spmd::TypeSet kTerms = type_bit(Type::Partial) | type_bit(Type::Varying);
constexpr const char* kSumsTerms =
    "it sums per-rank terms: pass it a Partial or Varying value (a value the same on every rank would be "
    "multiplied by the number of ranks)";
constexpr const char* kJoinsVarying =
    "it joins per-rank values: pass it a Varying (sharded) value (a Partial one needs all_reduce or "
    "reduce_scatter first; a Replicate one needs no gather)";
constexpr CollectiveType kAllReduceType{"all_reduce", kTerms, Type::Replicate, kSumsTerms};
constexpr CollectiveType kReduceScatterType{"reduce_scatter", kTerms, Type::Varying, kSumsTerms};
constexpr CollectiveType kAllGatherType{"all_gather", type_bit(Type::Varying), Type::Replicate, kJoinsVarying};
constexpr CollectiveType kAllToAllType{"all_to_all", type_bit(Type::Varying), Type::Varying, kJoinsVarying};
constexpr CollectiveType kBroadcastType{
    "broadcast", type_bit(Type::Replicate) | type_bit(Type::Varying), Type::Replicate,
    "only src's value survives: its gradient is summed to src, so the input must not be Invariant or Partial "
    "(all_reduce a Partial one first)"};
constexpr CollectiveType kCopyToType{
    "copy_to_parallel_region", type_bit(Type::Invariant), Type::Replicate,
    "it all-reduces the gradient of an Invariant value (an input with a Replicate grad placement, or "
    "reduce_from_parallel_region's result); a Varying or Replicate value's gradient needs no all-reduce"};
constexpr CollectiveType kReduceFromType{"reduce_from_parallel_region", kTerms, Type::Invariant, kSumsTerms};

// The typed form applies to sums (and averages, which are sums scaled); max and min are untyped.
const CollectiveType* typed_reduce(ReduceOp op, const CollectiveType& type) {
  return op == ReduceOp::Sum || op == ReduceOp::Avg ? &type : nullptr;
}

void check_differentiable_op(ReduceOp op, const char* name) {
  WEFT_CHECK(op == ReduceOp::Sum || op == ReduceOp::Avg, name, ": backward is defined for sum and avg only, not ",
             to_string(op));
}

// t * factor in place. A 16-bit t is scaled in float32 and rounded once, as the forward's avg is
// (Note [16-bit floats in collectives] in collectives.cpp).
Tensor scaled(Tensor t, double factor) {
  if (t.dtype() == kBFloat16 || t.dtype() == kFloat16) {
    kernels::copy_into(t, scaled(kernels::contiguous_copy(t, kFloat32), factor));
    return t;
  }
  visit_floating(t.dtype(), "reduce_scatter(avg) backward", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(p[i] * factor);
  });
  return t;
}

struct CollectiveNode : autograd::Node {
  // Each collective types its output itself (detail::type_collective_output).
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;
  DeviceMesh mesh;
  int64_t mesh_dim = 0;
  // The mesh dim the conjugate collective runs on (every node is made on its forward's).
  void on(const DeviceMesh& m, int64_t d) {
    mesh = m;
    mesh_dim = d;
  }
};

// y = reduce_k(x): for sum, dL/dx_r = sum_j g_j; for avg, the average of the g_j.
struct AllReduceBackward final : CollectiveNode {
  ReduceOp op = ReduceOp::Sum;
  variable_list apply(variable_list&& grads) override {
    check_differentiable_op(op, "all_reduce");
    return {detail::all_reduce(grads[0], op, mesh, mesh_dim)};
  }
  std::string name() const override { return "AllReduceBackward"; }
};

// Rank r's input is the r-th piece of every rank's output: its gradient sums those pieces.
struct AllGatherBackward final : CollectiveNode {
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  variable_list apply(variable_list&& grads) override {
    return {detail::reduce_scatter(grads[0], ReduceOp::Sum, dim, sizes, mesh, mesh_dim)};
  }
  std::string name() const override { return "AllGatherBackward"; }
};

// Every rank's input contributes to every rank's piece: the gradient is all pieces gathered.
struct ReduceScatterBackward final : CollectiveNode {
  ReduceOp op = ReduceOp::Sum;
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  variable_list apply(variable_list&& grads) override {
    check_differentiable_op(op, "reduce_scatter");
    Tensor g = detail::all_gather(grads[0], dim, sizes, mesh, mesh_dim);
    return {op == ReduceOp::Avg ? scaled(g, 1.0 / static_cast<double>(sizes.size())) : g};
  }
  std::string name() const override { return "ReduceScatterBackward"; }
};

// The reverse exchange: split where the forward concatenated, concatenate where it split.
struct AllToAllBackward final : CollectiveNode {
  int64_t split_dim = 0, concat_dim = 0;
  std::vector<int64_t> split_sizes, recv_sizes;
  variable_list apply(variable_list&& grads) override {
    return {detail::all_to_all(grads[0], concat_dim, recv_sizes, split_dim, split_sizes, mesh, mesh_dim)};
  }
  std::string name() const override { return "AllToAllBackward"; }
};

// Every rank's output is src's input: src's gradient is the sum of all gradients; the others' is 0.
struct BroadcastBackward final : CollectiveNode {
  int64_t src = 0;
  variable_list apply(variable_list&& grads) override { return {detail::reduce_to(grads[0], src, mesh, mesh_dim)}; }
  std::string name() const override { return "BroadcastBackward"; }
};

struct CopyToParallelRegionBackward final : CollectiveNode {
  variable_list apply(variable_list&& grads) override {
    return {detail::all_reduce(grads[0], ReduceOp::Sum, mesh, mesh_dim)};
  }
  std::string name() const override { return "CopyToParallelRegionBackward"; }
};

struct ReduceFromParallelRegionBackward final : CollectiveNode {
  variable_list apply(variable_list&& grads) override { return {grads[0]}; }
  std::string name() const override { return "ReduceFromParallelRegionBackward"; }
};

int64_t mesh_dim_size(const DeviceMesh& mesh, int64_t mesh_dim) {
  WEFT_CHECK(mesh.defined(), "collective: the device mesh is undefined");
  return mesh.size(mesh_dim);
}

Tensor all_reduce_impl(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim, bool async) {
  const CollectiveType* type = typed_reduce(op, kAllReduceType);
  if (type) detail::check_collective_input(*type, x, mesh, mesh_dim);
  Tensor y = detail::all_reduce(x, op, mesh, mesh_dim, async);
  y = autograd::record<AllReduceBackward>(std::move(y), [&](AllReduceBackward& n) {
    n.on(mesh, mesh_dim);
    n.op = op;
  }, x);
  if (type) detail::type_collective_output(*type, y, x, mesh, mesh_dim);
  return y;
}

Tensor all_gather_impl(const Tensor& x, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim,
                       std::optional<std::vector<int64_t>> sizes, bool async) {
  kernels::check_plain(x, "all_gather");
  // A 0-dim tensor (a scalar result, a flag) gathers as a one-element vector: one entry per rank.
  if (x.dim() == 0) return all_gather_impl(reshape(x, {1}), dim, mesh, mesh_dim, std::move(sizes), async);
  dim = wrap_dim(dim, x.dim(), "all_gather");
  std::vector<int64_t> s = sizes ? std::move(*sizes)
                           : mesh_dim_size(mesh, mesh_dim) == 1 ? std::vector<int64_t>{x.size(dim)}
                                                                : detail::exchange_sizes(x.size(dim), mesh, mesh_dim);
  detail::check_collective_input(kAllGatherType, x, mesh, mesh_dim);
  Tensor y = detail::all_gather(x, dim, s, mesh, mesh_dim, async);
  y = autograd::record<AllGatherBackward>(std::move(y), [&](AllGatherBackward& n) {
    n.on(mesh, mesh_dim);
    n.dim = dim;
    n.sizes = std::move(s);
  }, x);
  detail::type_collective_output(kAllGatherType, y, x, mesh, mesh_dim);
  return y;
}

Tensor reduce_scatter_impl(const Tensor& x, ReduceOp op, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim,
                           bool async) {
  kernels::check_plain(x, "reduce_scatter");
  dim = static_cast<int64_t>(dim_index(dim, x.dim(), "reduce_scatter"));  // a 0-dim tensor has no dim to scatter
  std::vector<int64_t> sizes = chunk_sizes(x.size(dim), mesh_dim_size(mesh, mesh_dim));
  const CollectiveType* type = typed_reduce(op, kReduceScatterType);
  if (type) detail::check_collective_input(*type, x, mesh, mesh_dim);
  Tensor y = detail::reduce_scatter(x, op, dim, sizes, mesh, mesh_dim, async);
  y = autograd::record<ReduceScatterBackward>(std::move(y), [&](ReduceScatterBackward& n) {
    n.on(mesh, mesh_dim);
    n.op = op;
    n.dim = dim;
    n.sizes = std::move(sizes);
  }, x);
  if (type) detail::type_collective_output(*type, y, x, mesh, mesh_dim);
  return y;
}

Tensor all_to_all_impl(const Tensor& x, int64_t split_dim, int64_t concat_dim, const DeviceMesh& mesh,
                       int64_t mesh_dim, std::optional<std::vector<int64_t>> concat_sizes, bool async) {
  kernels::check_plain(x, "all_to_all");
  split_dim = static_cast<int64_t>(dim_index(split_dim, x.dim(), "all_to_all"));
  concat_dim = static_cast<int64_t>(dim_index(concat_dim, x.dim(), "all_to_all"));
  const int64_t k = mesh_dim_size(mesh, mesh_dim);
  std::vector<int64_t> split_sizes = chunk_sizes(x.size(split_dim), k), recv_sizes;
  if (split_dim == concat_dim) {  // every rank's piece for me has my chunk size
    WEFT_CHECK(mesh.contains_this_rank(), "all_to_all: this rank is not in ", mesh.to_string());
    recv_sizes.assign(static_cast<size_t>(k), split_sizes[mesh.get_local_rank(mesh_dim)]);
  } else if (concat_sizes) {
    recv_sizes = std::move(*concat_sizes);
  } else {
    recv_sizes = k == 1 ? std::vector<int64_t>{x.size(concat_dim)}
                        : detail::exchange_sizes(x.size(concat_dim), mesh, mesh_dim);
  }
  detail::check_collective_input(kAllToAllType, x, mesh, mesh_dim);
  Tensor y = detail::all_to_all(x, split_dim, split_sizes, concat_dim, recv_sizes, mesh, mesh_dim, async);
  y = autograd::record<AllToAllBackward>(std::move(y), [&](AllToAllBackward& n) {
    n.on(mesh, mesh_dim);
    n.split_dim = split_dim;
    n.concat_dim = concat_dim;
    n.split_sizes = std::move(split_sizes);
    n.recv_sizes = std::move(recv_sizes);
  }, x);
  detail::type_collective_output(kAllToAllType, y, x, mesh, mesh_dim);
  return y;
}

}  // namespace

namespace funcol {

Tensor all_reduce(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim) {
  return all_reduce_impl(x, op, mesh, mesh_dim, false);
}
Tensor all_reduce_async(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim) {
  return all_reduce_impl(x, op, mesh, mesh_dim, true);
}

Tensor all_gather(const Tensor& x, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim,
                  std::optional<std::vector<int64_t>> sizes) {
  return all_gather_impl(x, dim, mesh, mesh_dim, std::move(sizes), false);
}
Tensor all_gather_async(const Tensor& x, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim,
                        std::optional<std::vector<int64_t>> sizes) {
  return all_gather_impl(x, dim, mesh, mesh_dim, std::move(sizes), true);
}

Tensor reduce_scatter(const Tensor& x, ReduceOp op, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim) {
  return reduce_scatter_impl(x, op, dim, mesh, mesh_dim, false);
}
Tensor reduce_scatter_async(const Tensor& x, ReduceOp op, int64_t dim, const DeviceMesh& mesh, int64_t mesh_dim) {
  return reduce_scatter_impl(x, op, dim, mesh, mesh_dim, true);
}

Tensor all_to_all(const Tensor& x, int64_t split_dim, int64_t concat_dim, const DeviceMesh& mesh, int64_t mesh_dim,
                  std::optional<std::vector<int64_t>> concat_sizes) {
  return all_to_all_impl(x, split_dim, concat_dim, mesh, mesh_dim, std::move(concat_sizes), false);
}
Tensor all_to_all_async(const Tensor& x, int64_t split_dim, int64_t concat_dim, const DeviceMesh& mesh,
                        int64_t mesh_dim, std::optional<std::vector<int64_t>> concat_sizes) {
  return all_to_all_impl(x, split_dim, concat_dim, mesh, mesh_dim, std::move(concat_sizes), true);
}

Tensor broadcast(const Tensor& x, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim) {
  detail::check_collective_input(kBroadcastType, x, mesh, mesh_dim);
  Tensor y = detail::broadcast(x, src, mesh, mesh_dim);
  y = autograd::record<BroadcastBackward>(std::move(y), [&](BroadcastBackward& n) {
    n.on(mesh, mesh_dim);
    n.src = src;
  }, x);
  detail::type_collective_output(kBroadcastType, y, x, mesh, mesh_dim);
  return y;
}

Tensor scatter(const TensorList& chunks, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim) {
  return detail::scatter(chunks, src, mesh, mesh_dim);
}

const Tensor& wait_tensor(const Tensor& t) {
  if (t.defined() && t.impl()->pending) t.impl()->wait_pending();
  return t;
}

Tensor copy_to_parallel_region(const Tensor& x, const DeviceMesh& mesh, int64_t mesh_dim) {
  kernels::check_plain(x, "copy_to_parallel_region");
  mesh_dim_size(mesh, mesh_dim);
  // Identity forward: a view of x, so that the output can carry its own history. A view would not
  // wait for x's pending collective, so wait here.
  wait_tensor(x);
  detail::check_collective_input(kCopyToType, x, mesh, mesh_dim);
  Tensor y = kernels::make_alias(x, x.shape(), x.strides(), x.storage_offset());
  auto on_mesh = [&](CollectiveNode& n) { n.on(mesh, mesh_dim); };
  y = autograd::record<CopyToParallelRegionBackward>(std::move(y), on_mesh, x);
  detail::type_collective_output(kCopyToType, y, x, mesh, mesh_dim);
  return y;
}

Tensor reduce_from_parallel_region(const Tensor& x, const DeviceMesh& mesh, int64_t mesh_dim) {
  detail::check_collective_input(kReduceFromType, x, mesh, mesh_dim);
  Tensor y = detail::all_reduce(x, ReduceOp::Sum, mesh, mesh_dim);
  auto on_mesh = [&](CollectiveNode& n) { n.on(mesh, mesh_dim); };
  y = autograd::record<ReduceFromParallelRegionBackward>(std::move(y), on_mesh, x);
  detail::type_collective_output(kReduceFromType, y, x, mesh, mesh_dim);
  return y;
}

}  // namespace funcol
}  // namespace weft::dist
