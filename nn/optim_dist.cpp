// nn/optim_dist.cpp: DTensor parameters in optimizers: local shards, gradient placement sync with
// coalesced all-reduces, and the global gradient norm. See Note [DTensor parameters in optimizers].
#include "nn/optim_dist.h"

#include <optional>
#include <type_traits>

#include "autograd/grad_mode.h"
#include "distributed/collectives.h"
#include "distributed/dtensor.h"
#include "distributed/redistribute.h"
#include "framework/factories.h"
#include "kernels/optim_kernels.h"
#include "kernels/toolkit.h"
#include "ops/ops.h"

namespace weft::optim {

namespace {

using dist::DTensor;


// Gradients may still be in flight (backward leaves its last collective pending): wait before
// taking views or raw data of them.
const Tensor& ready(const Tensor& t) { return dist::funcol::wait_tensor(t); }

double local_sum_sq(const Tensor& t) {
  Tensor c = ready(t).is_contiguous() ? t : kernels::contiguous_copy(t);
  double total = 0.0;
  visit_floating(c.dtype(), "clip_grad_norm_", [&](auto tag) {
    using T = decltype(tag);
    const T* d = c.template data_ptr<T>();
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) total = kernels::sum_of_squares(d, c.numel());
    else for (int64_t i = 0, n = c.numel(); i < n; ++i) total += double(d[i]) * double(d[i]);
  });
  return total;
}

// Mesh dims on which the gradient only has to be all-reduced (Partial -> Replicate, one op for all),
// or nullopt when the move needs anything else (reduce_scatter, all_gather, ...).
struct AllReduceOnly {
  dist::ReduceOp op = dist::ReduceOp::Sum;
  std::vector<int64_t> dims;
};
std::optional<AllReduceOnly> all_reduce_only(const dist::Placements& from, const dist::Placements& to) {
  AllReduceOnly plan;
  bool have_op = false;
  for (size_t m = 0; m < from.size(); ++m) {
    if (from[m] == to[m]) continue;
    if (!from[m].is_partial() || !to[m].is_replicate()) return std::nullopt;
    dist::ReduceOp op = from[m].reduce_op();
    if (op != dist::ReduceOp::Sum && op != dist::ReduceOp::Avg) return std::nullopt;
    if (have_op && op != plan.op) return std::nullopt;
    plan.op = op;
    have_op = true;
    plan.dims.push_back(static_cast<int64_t>(m));
  }
  return plan;
}

}  // namespace

Tensor local_param(const Tensor& param, const std::string& who) {
  Tensor data = param.is_dtensor() ? DTensor(param).spec().local : param;
  WEFT_CHECK(data.is_contiguous(), who, ": expected contiguous parameters (or local shards) but one has shape ",
             data.shape(), " and strides ", data.strides());
  return data;
}

Tensor local_grad(const Tensor& param, const std::string& who) {
  const Tensor& g = param.grad();
  if (!g.defined()) return g;
  WEFT_CHECK(g.is_dtensor() == param.is_dtensor(), who, ": a ", param.is_dtensor() ? "DTensor" : "plain",
             " parameter of shape ", param.shape(), " has a ", g.is_dtensor() ? "DTensor" : "plain", " gradient");
  if (!g.is_dtensor()) return g;
  DTensor grad(g), p(param);
  WEFT_CHECK(grad.device_mesh() == p.device_mesh(), who, ": the gradient lives on ", grad.device_mesh().to_string(),
             " but the parameter on ", p.device_mesh().to_string());
  grad = dist::gradient_to(std::move(grad), p.placements(), /*async=*/false);  // Note [One gradient path]
  return ready(grad.spec().local);
}

int64_t sync_grads(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  struct Group {
    dist::DeviceMesh mesh;
    DType dtype;
    AllReduceOnly plan;
    std::vector<size_t> members;
  };
  std::vector<Group> groups;
  int64_t moved = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& g = params[i].grad();
    if (!g.defined() || !g.is_dtensor()) continue;
    DTensor grad(g), p(params[i]);
    if (grad.placements() == p.placements()) continue;
    ++moved;
    auto plan = grad.device_mesh() == p.device_mesh() ? all_reduce_only(grad.placements(), p.placements())
                                                      : std::nullopt;
    if (!plan) {  // anything but a plain all-reduce goes through the redistribute planner, one by one
      Tensor local = local_grad(params[i], "sync_grads");
      params[i].set_grad(dist::make_dtensor(local, p.device_mesh(), p.placements(), p.shape()));
      continue;
    }
    auto same = [&](const Group& q) {
      return q.mesh == p.device_mesh() && q.dtype == grad.dtype() && q.plan.op == plan->op && q.plan.dims == plan->dims;
    };
    auto it = std::find_if(groups.begin(), groups.end(), same);
    if (it == groups.end()) it = groups.insert(groups.end(), Group{p.device_mesh(), grad.dtype(), *plan, {}});
    it->members.push_back(i);
  }
  // One flat buffer per group: all_reduce it on each mesh dim, then hand out contiguous views of it.
  for (const Group& group : groups) {
    TensorList flat;
    std::vector<int64_t> sizes;
    for (size_t i : group.members) {
      const Tensor& local = ready(DTensor(params[i].grad()).spec().local);
      flat.push_back(local.reshape({-1}));
      sizes.push_back(local.numel());
    }
    Tensor buffer = flat.size() == 1 ? kernels::contiguous_copy(flat[0]) : cat(flat, 0);
    for (int64_t d : group.plan.dims) buffer = dist::detail::all_reduce(buffer, group.plan.op, group.mesh, d);
    TensorList pieces = split(buffer, sizes, 0);
    for (size_t k = 0; k < group.members.size(); ++k) {
      DTensor p(params[group.members[k]]);
      Tensor local = pieces[k].reshape(p.spec().local.shape());
      params[group.members[k]].set_grad(dist::make_dtensor(local, p.device_mesh(), p.placements(), p.shape()));
    }
  }
  return moved;
}

double global_grad_norm_sq(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  std::optional<dist::DeviceMesh> mesh;
  std::vector<bool> sharded;  // per mesh dim: some gradient is Shard there
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined() || !g.is_dtensor()) continue;
    DTensor grad(g);
    if (!mesh) {
      mesh = grad.device_mesh();
      sharded.assign(static_cast<size_t>(mesh->ndim()), false);
    }
    WEFT_CHECK(grad.device_mesh() == *mesh, "clip_grad_norm_: DTensor gradients on different meshes (",
               mesh->to_string(), " and ", grad.device_mesh().to_string(), ") have no common norm");
    for (size_t m = 0; m < sharded.size(); ++m) {
      WEFT_CHECK(!grad.placements()[m].is_partial(), "clip_grad_norm_: gradient placements ",
                 dist::to_string(grad.placements()), " still hold a Partial; call sync_grads first");
      sharded[m] = sharded[m] || grad.placements()[m].is_shard();
    }
  }
  // Every copy of an element is summed by the all_reduce over the sharded dims, so a copy that is
  // replicated on such a dim counts 1/size of it: Replicate copies add up to exactly one.
  double total = 0.0;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    double weight = 1.0;
    if (g.is_dtensor()) {
      DTensor grad(g);
      for (size_t m = 0; m < sharded.size(); ++m)
        if (sharded[m] && grad.placements()[m].is_replicate()) weight /= static_cast<double>(mesh->size(int64_t(m)));
      total += weight * local_sum_sq(grad.spec().local);
    } else {
      for (size_t m = 0; m < sharded.size(); ++m)
        if (sharded[m]) weight /= static_cast<double>(mesh->size(int64_t(m)));
      total += weight * local_sum_sq(g);
    }
  }
  for (size_t m = 0; m < sharded.size(); ++m) {
    if (!sharded[m]) continue;
    Tensor t = scalar_tensor(total, dtype(kFloat64)).reshape({1});
    total = dist::detail::all_reduce(t, dist::ReduceOp::Sum, *mesh, int64_t(m)).item<double>();
  }
  return total;
}

}  // namespace weft::optim
