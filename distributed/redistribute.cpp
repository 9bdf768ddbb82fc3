// redistribute.cpp: executes redistribute plans on local tensors with the collectives' internal
// primitives, one step per mesh dim (see the table in docs/semantics.md, Redistribution), and brings
// gradients to their placements on top of it (gradient_to).
#include "distributed/redistribute.h"

#include <algorithm>

#include "distributed/collectives.h"
#include "distributed/redistribute_plan.h"
#include "distributed/sharding.h"
#include "kernels/toolkit.h"

namespace weft::dist {
namespace {

// A new tensor holding t / k (Partial avg, and R -> P(sum) which splits a value into k parts).
// A 16-bit t is divided in float32 and rounded once (Note [16-bit floats in collectives]).
Tensor divided(const Tensor& t, int64_t k) {
  if (t.dtype() == kBFloat16 || t.dtype() == kFloat16)
    return kernels::contiguous_copy(divided(kernels::contiguous_copy(t, kFloat32), k), t.dtype());
  Tensor out = kernels::contiguous_copy(t);
  visit_numeric(out.dtype(), "redistribute", [&](auto tag) {
    using T = decltype(tag);
    T* p = out.data_ptr<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(k));
  });
  return out;
}

// Rank r's piece along `dim` of t, as a contiguous tensor (R -> S: no communication).
Tensor local_chunk(const Tensor& t, int64_t dim, int64_t k, int64_t r) {
  auto [size, offset] = chunk_size_and_offset(t.size(dim), k, r);
  Shape shape = t.shape();
  shape[static_cast<size_t>(dim)] = size;
  int64_t start = t.storage_offset() + (size > 0 ? offset * t.stride(dim) : 0);
  return kernels::contiguous_copy(kernels::make_alias(t, shape, t.strides(), start));
}

// The size along tensor dim `d` of every rank of mesh dim `i`, under `placements`.
std::vector<int64_t> sizes_along(const Shape& global, const DeviceMesh& mesh, std::vector<int64_t> coord,
                                 const Placements& placements, int64_t i, int64_t d) {
  std::vector<int64_t> sizes;
  for (int64_t j = 0; j < mesh.size(i); ++j) {
    coord[static_cast<size_t>(i)] = j;
    sizes.push_back(local_shape_and_offset(global, mesh.shape(), coord, placements).first[static_cast<size_t>(d)]);
  }
  return sizes;
}

// Max and min reduce as they are; avg is a sum followed by a division by k.
ReduceOp wire_op(ReduceOp op) { return op == ReduceOp::Avg ? ReduceOp::Sum : op; }

Tensor run_step(const Tensor& x, const RedistributeStep& step, const DeviceMesh& mesh,
                const std::vector<int64_t>& coord, const Placements& current, const Shape& global, bool async) {
  const int64_t i = step.mesh_dim;
  const int64_t k = mesh.size(i);
  const Placement& from = step.from;
  const Placement& to = step.to;
  if (from.is_shard() && to.is_replicate()) {
    int64_t d = from.dim();
    return detail::all_gather(x, d, sizes_along(global, mesh, coord, current, i, d), mesh, i, async);
  }
  if (from.is_shard() && to.is_shard()) {
    int64_t a = from.dim(), b = to.dim();
    return detail::all_to_all(x, b, chunk_sizes(x.size(b), k), a, sizes_along(global, mesh, coord, current, i, a),
                              mesh, i, async);
  }
  // Avg's division needs the reduced values at once, so only the other ops may stay in flight.
  const bool avg = from.is_partial() && from.reduce_op() == ReduceOp::Avg;
  if (from.is_partial() && to.is_replicate()) {
    Tensor y = detail::all_reduce(x, wire_op(from.reduce_op()), mesh, i, async && !avg);
    return avg ? divided(y, k) : y;
  }
  if (from.is_partial() && to.is_shard()) {
    int64_t d = to.dim();
    Tensor y = detail::reduce_scatter(x, wire_op(from.reduce_op()), d, chunk_sizes(x.size(d), k), mesh, i,
                                      async && !avg);
    return avg ? divided(y, k) : y;
  }
  if (from.is_replicate() && to.is_shard()) return local_chunk(x, to.dim(), k, coord[static_cast<size_t>(i)]);
  if (from.is_replicate() && to.is_partial()) return to.reduce_op() == ReduceOp::Sum ? divided(x, k) : x;
  check_transition(from, to);  // throws for S -> P and P(a) -> P(b)
  WEFT_INTERNAL_ASSERT(false, "redistribute: unexpected step ", step.to_string());
  return x;
}

}  // namespace

// Note [Gradients in flight]
// Backward passes redistribute gradients with async=true: the last collective of the plan is only
// started, so the engine goes on with other nodes while it runs, and whoever reads the gradient
// (the next node, or the optimizer reading .grad) waits for it then. Every rank issues its
// collectives in the same order, because backward runs nodes in the same order on every rank.
Tensor redistribute_local(const Tensor& local, const DeviceMesh& mesh, const Placements& source,
                          const Placements& target, const Shape& global_shape, bool async) {
  if (source == target) return local;  // nothing to move: skip the plan cache's key and lock
  const RedistributePlan& plan = cached_redistribute_plan(source, target, global_shape, mesh.shape());
  if (plan.empty() || !mesh.contains_this_rank()) return local;
  std::vector<int64_t> coord = *mesh.get_coordinate();
  Placements current = normalize(source, static_cast<int64_t>(global_shape.size()));
  Tensor x = local;
  for (size_t s = 0; s < plan.size(); ++s) {
    const RedistributeStep& step = plan[s];
    x = run_step(x, step, mesh, coord, current, global_shape, async && s + 1 == plan.size());
    current[static_cast<size_t>(step.mesh_dim)] = step.to;
  }
  return x;
}

DTensor as_dtensor_gradient(const Tensor& grad, const DeviceMesh& mesh, const Shape& global_shape, const char* op) {
  if (grad.is_dtensor()) {
    DTensor d(grad);
    WEFT_CHECK(d.device_mesh() == mesh, op, " backward: the gradient lives on ", d.device_mesh().to_string(),
               " but the output on ", mesh.to_string());
    return d;
  }
  WEFT_CHECK(grad.shape() == global_shape, op, " backward: a plain gradient must have the global shape ",
             global_shape, " but has ", grad.shape());
  return make_dtensor(grad, mesh, replicate_all(mesh.ndim()), global_shape);
}

// Note [One gradient path]
// The backwards of from_local, redistribute and local_map (for its outputs), and the accumulation
// of two DTensor gradients, all bring a gradient to given placements with gradient_to, so they share
// one rule for Partial targets and, in backward, the in-flight collectives of Note [Gradients in
// flight]. Partial targets: S -> P and P(a) -> P(b) are refused as single steps, so such a mesh dim
// goes through Replicate first (R -> P(sum) divides by k), which keeps the value.
DTensor gradient_to(DTensor grad, std::span<const Placement> target, bool async) {
  const DTensorSpec& g = grad.spec();
  if (std::ranges::equal(g.placements, target)) return grad;  // the common case: nothing to move
  WEFT_INTERNAL_ASSERT(target.size() == g.placements.size(), "gradient_to: ", target.size(), " target placements for ",
                       g.placements.size(), " mesh dims");
  Placements to(target.begin(), target.end()), via = to;
  bool detour = false;
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i].is_partial() && g.placements[i] != to[i]) {
      via[i] = Replicate();
      detour = true;
    }
  }
  Tensor local = g.local;
  if (detour) local = redistribute_local(local, g.mesh, g.placements, via, g.global_shape);
  local = redistribute_local(local, g.mesh, detour ? via : g.placements, to, g.global_shape, async);
  return make_dtensor(local, g.mesh, std::move(to), g.global_shape);
}

Placements redistribute_backward_target(const Placements& forward_source, const Placements& grad_placements) {
  Placements target = forward_source;
  for (size_t i = 0; i < target.size() && i < grad_placements.size(); ++i)
    if (forward_source[i].is_partial() && !grad_placements[i].is_partial()) target[i] = Replicate();
  return target;
}

Placements partial_to_replicate(Placements placements) {
  for (Placement& p : placements)
    if (p.is_partial()) p = Replicate();
  return placements;
}

}  // namespace weft::dist
