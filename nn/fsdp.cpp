// nn/fsdp.cpp: fully_shard: sharding the parameters, the gather node whose backward reduce-scatters,
// and the forward wrapper that gathers, prefetches and reshards. See Note [Fully sharded data
// parallel] in nn/fsdp.h.
#include "nn/fsdp.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <utility>

#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "distributed/collectives.h"
#include "distributed/control_plane.h"
#include "distributed/dtensor.h"
#include "distributed/progress.h"
#include "distributed/redistribute.h"
#include "distributed/sharding.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/toolkit.h"
#include "nn/slot_swap.h"
#include "ops/copy_ops.h"

namespace weft::nn::parallel {

namespace {

using dist::DTensor;
using dist::Placements;

constexpr const char* kWrapperTag = "fully_shard";

// How one parameter is sharded and gathered; fixed by fully_shard.
struct ParamLayout {
  std::string name;
  int64_t shard_dim = -1;      // the tensor dim split over dp; -1: Replicate on dp (nothing to gather)
  std::vector<int64_t> sizes;  // every dp rank's size along shard_dim
  Placements placements;       // the parameter's
  Placements gathered_grad;    // the gathered tensor's gradient: Partial(sum) on dp
  Shape global_shape;
};

struct Layout {
  dist::DeviceMesh mesh;
  int64_t dp = 0;
  std::vector<ParamLayout> params;
  // Whether the gathered tensor of parameter i is memory of its own (freed by resharding), not
  // the shard itself.
  bool owns_memory(size_t i) const { return params[i].shard_dim >= 0 && mesh.size(dp) > 1; }
};

// One forward call of a unit: its gathered parameters, shared by its gather nodes, the saved
// tensors' placeholders and its pre-backward hook (none of which it holds: no cycle).
struct Gathered {
  std::shared_ptr<const Layout> layout;
  bool async_reduce = true;
  bool advance_in_flight = true;
  MixedPrecisionPolicy mp;     // Note [FSDP mixed precision]
  std::vector<Tensor> shards;  // the local shards gathered from
  std::vector<Tensor> full;    // the gathered tensors (maybe in flight); empty when resharded
  bool reshard = false;
  size_t grads_pending = 0;            // gather nodes whose backward has not run yet
  std::vector<Tensor> reductions;      // this unit's reduce-scatters in flight
  std::shared_ptr<Gathered> previous;  // the unit that ran forward before this one
  std::weak_ptr<Gathered> next;        // and the one after

  bool gathered() const { return !full.empty(); }

  void gather(bool async) {
    full.clear();
    const Layout& l = *layout;
    for (size_t i = 0; i < shards.size(); ++i) {
      const ParamLayout& p = l.params[i];
      // Cast before gathering: the gather moves param_dtype words (Note [FSDP mixed precision]).
      Tensor shard = mp.param_dtype && *mp.param_dtype != shards[i].dtype()
                         ? kernels::cast(shards[i], *mp.param_dtype)
                         : shards[i];
      full.push_back(p.shard_dim < 0 ? shard
                                     : dist::detail::all_gather(shard, p.shard_dim, p.sizes, l.mesh, l.dp, async));
    }
  }
  void wait() {
    for (const Tensor& t : full) dist::funcol::wait_tensor(t);
  }
  void ensure_gathered() {
    if (!gathered()) gather(/*async=*/false);
    wait();
  }

  // The pre-backward hook: gather again (if resharded) and start the gather of the unit that ran
  // before, whose backward comes next.
  void before_backward(bool prefetch) {
    if (!gathered()) gather(/*async=*/true);
    if (prefetch && previous && previous->reshard && !previous->gathered() && previous->grads_pending > 0)
      previous->gather(/*async=*/true);
    wait();
  }

  // The gradient of gathered tensor i, this rank's part of a sum over dp, brought to the
  // parameter's placements with its reduce-scatter left in flight (Note [Gradients in flight]).
  // Each one also lets MPI advance what is in flight on dp (the earlier reduce-scatters, the
  // backward prefetch's all-gathers), which Open MPI does only inside MPI calls (Note [Progress
  // of in-flight reductions]).
  Tensor reduce(size_t i, const Tensor& grad) {
    const ParamLayout& p = layout->params[i];
    WEFT_CHECK(!grad.is_dtensor(), "fully_shard backward: parameter '", p.name,
               "' got a DTensor gradient for its gathered (plain) tensor");
    const DType shard_dtype = shards[i].dtype();
    const DType reduce_dtype = mp.reduce_dtype.value_or(mp.param_dtype.value_or(shard_dtype));
    Tensor local = grad.dtype() == reduce_dtype ? grad : kernels::cast(grad, reduce_dtype);
    DTensor g = dist::make_dtensor(local, layout->mesh, p.gathered_grad, p.global_shape);
    DTensor out = dist::gradient_to(std::move(g), p.placements, async_reduce);
    if (reduce_dtype != shard_dtype)  // .grad in the master weights' dtype; waits for the reduction
      out = dist::make_dtensor(kernels::cast(out.spec().local, shard_dtype), layout->mesh, p.placements,
                               p.global_shape);
    reductions.push_back(out.spec().local);
    if (async_reduce && advance_in_flight) dist::detail::advance_collectives(layout->mesh, layout->dp);
    return out;
  }

  // After a gather node's backward. The unit's last one frees its gathered tensors and waits for
  // the reductions of the unit whose backward ran before (FSDP2 does the same), which bounds the
  // full-size gradients in flight.
  void gradient_done() {
    if (grads_pending == 0 || --grads_pending > 0) return;
    if (reshard) full.clear();
    if (auto after = next.lock()) {
      for (const Tensor& t : after->reductions) dist::funcol::wait_tensor(t);
      after->reductions.clear();
    }
  }
};

// A saved tensor that shares a gathered parameter's memory, kept as the way to rebuild it.
struct PackedParam final : autograd::PackedTensor {
  std::shared_ptr<Gathered> owner;
  size_t index = 0;
  Shape shape, strides;
  int64_t offset = 0;  // from the gathered tensor's own offset

  Tensor unpack() override {
    WEFT_CHECK(!GradMode::is_enabled(),
               "fully_shard: double backward (create_graph) through a unit resharded "
               "after forward is not supported; pass reshard_after_forward = false");
    owner->ensure_gathered();  // the pre-backward hook normally did it
    const Tensor& full = owner->full[index];
    return kernels::make_alias(full, shape, strides, full.storage_offset() + offset);
  }
};

// The saved tensor hooks of a resharding unit's forward; see Note [Saved tensor hooks]. A tensor
// that is not this unit's goes to the hooks of an enclosing unit, if any.
class Packer final : public autograd::SavedTensorHooks {
 public:
  explicit Packer(std::shared_ptr<Gathered> g)
      : g_(std::move(g)), outer_(autograd::SavedTensorHooksGuard::current()) {}

  std::shared_ptr<autograd::PackedTensor> pack(const Tensor& t) override {
    const Storage* storage = t.impl()->storage.get();
    for (size_t i = 0; storage != nullptr && i < g_->full.size(); ++i) {
      const Tensor& full = g_->full[i];
      if (!g_->layout->owns_memory(i) || full.impl()->storage.get() != storage) continue;
      auto packed = std::make_shared<PackedParam>();
      packed->owner = g_;
      packed->index = i;
      packed->shape = t.shape();
      packed->strides = t.strides();
      packed->offset = t.storage_offset() - full.storage_offset();
      return packed;
    }
    return outer_ ? outer_->pack(t) : nullptr;
  }

 private:
  std::shared_ptr<Gathered> g_;
  autograd::SavedTensorHooks* outer_;
};

// Gathered tensor `index` of `owner` as a differentiable function of the DTensor parameter; its
// backward is the gradient's reduce-scatter.
struct FsdpGather : autograd::Function<FsdpGather> {
  struct State {
    std::shared_ptr<Gathered> owner;
    size_t index = 0;
  };
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& /*param*/,
                        const std::shared_ptr<Gathered>& owner, size_t index) {
    ctx->state<State>() = {owner, index};
    ctx->set_materialize_grads(false);
    return owner->full[index].detach();  // an alias: the history goes on it, not on owner's copy
  }
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list grads) {
    State& s = ctx->state<State>();
    Tensor out;
    if (grads[0].defined()) out = s.owner->reduce(s.index, grads[0]);
    s.owner->gradient_done();
    return {out};
  }
};


}  // namespace

struct FullyShardedModule::Unit : std::enable_shared_from_this<Unit> {
  std::shared_ptr<const Layout> layout;
  std::vector<std::vector<Tensor*>> slots;  // per parameter, the registry slots holding it (tied: several)
  FullyShardOptions options;
  std::shared_ptr<Gathered> prefetched;  // started by the unit before this one in the current forward

  std::shared_ptr<Gathered> start_gather() {
    auto g = std::make_shared<Gathered>();
    g->layout = layout;
    g->async_reduce = options.async_reduce;
    g->advance_in_flight = options.advance_in_flight;
    g->mp = options.mp_policy;
    for (size_t i = 0; i < slots.size(); ++i) {
      const Tensor& p = *slots[i][0];
      WEFT_CHECK(p.is_dtensor(), "fully_shard: parameter '", layout->params[i].name,
                 "' is no longer the sharded DTensor fully_shard made (it was replaced by a plain tensor)");
      g->shards.push_back(DTensor(p).spec().local);
    }
    g->gather(/*async=*/true);
    return g;
  }

  Tensor run(const Tensor& x, const std::function<Tensor(const Tensor&)>& next);
};

namespace {

// The root's forward: which unit is the root, the order of the last forward (to prefetch by) and
// of this one. Set by FullyShardedModule::forward for the calls it makes.
struct ForwardContext {
  const FullyShardedModule::Unit* root = nullptr;
  const std::vector<std::weak_ptr<FullyShardedModule::Unit>>* plan = nullptr;
  std::vector<std::weak_ptr<FullyShardedModule::Unit>> order;
  std::vector<std::shared_ptr<FullyShardedModule::Unit>> prefetched_for;
  std::shared_ptr<Gathered> last;
};
constinit thread_local ForwardContext* active_forward = nullptr;

}  // namespace

Tensor FullyShardedModule::Unit::run(const Tensor& x, const std::function<Tensor(const Tensor&)>& next) {
  ForwardContext* ctx = active_forward;
  const bool grad = GradMode::is_enabled();
  bool owns_memory = false;
  for (size_t i = 0; i < slots.size(); ++i) owns_memory = owns_memory || layout->owns_memory(i);
  const bool reshard = grad && options.reshard_after_forward && owns_memory && !(ctx && ctx->root == this);
  std::shared_ptr<Gathered> g = std::exchange(prefetched, nullptr);
  if (!g) g = start_gather();
  if (ctx) {
    const size_t at = ctx->order.size();
    ctx->order.push_back(weak_from_this());
    const auto& plan = *ctx->plan;
    if (options.prefetch && at + 1 < plan.size() && plan[at].lock().get() == this) {
      auto after = plan[at + 1].lock();
      if (after && after.get() != this && !after->prefetched) {
        after->prefetched = after->start_gather();  // overlaps this unit's compute
        ctx->prefetched_for.push_back(after);
      }
    }
    if (ctx->last) {
      g->previous = ctx->last;
      ctx->last->next = g;
    }
    ctx->last = g;
  }
  g->wait();
  g->reshard = reshard;
  std::vector<Tensor> values(slots.size());
  size_t tracked = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Tensor& param = *slots[i][0];
    if (grad && param.requires_grad()) {
      values[i] = FsdpGather::apply(param, g, i);
      ++tracked;
    } else {
      values[i] = g->full[i].detach();
    }
  }
  g->grads_pending = tracked;
  const MixedPrecisionPolicy& mp = options.mp_policy;
  Tensor input = x;
  if (mp.cast_forward_inputs && mp.param_dtype && x.defined() && is_floating(x.dtype()) &&
      x.dtype() != *mp.param_dtype)
    input = to_dtype(x, *mp.param_dtype);
  Tensor y;
  {
    detail::SlotSwap swap(slots, values);
    Packer packer(g);
    std::optional<autograd::SavedTensorHooksGuard> hooks;
    if (reshard) hooks.emplace(&packer);
    y = next(input);
  }
  // The graph holds what it saved (placeholders instead, when resharding): the unit lets go.
  g->full.clear();
  if (reshard && y.requires_grad())
    y.register_hook([g, prefetch = options.prefetch](const Tensor&) {
      g->before_backward(prefetch);
      return Tensor();
    });
  if (mp.output_dtype && y.defined() && is_floating(y.dtype()) && y.dtype() != *mp.output_dtype)
    y = to_dtype(y, *mp.output_dtype);
  return y;
}

namespace {

bool is_unit(const Module& m) {
  const auto* unary = dynamic_cast<const UnaryModule*>(&m);
  return unary != nullptr && unary->has_forward_wrapper(kWrapperTag);
}

// The parameter slots of m's tree, leaving out the subtrees that are units of their own.
void collect_slots(Module& m, const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) {
  for (const auto& [name, t] : m.named_parameters(/*recurse=*/false))
    out.emplace_back(prefix + name, &m.parameter_slot(name));
  for (const auto& [name, child] : m.named_children())
    if (!is_unit(*child)) collect_slots(*child, prefix + name + ".", out);
}

int64_t resolve_dp_dim(const dist::DeviceMesh& mesh, const std::string& name) {
  const auto& names = mesh.dim_names();
  if (name.empty()) {
    if (mesh.ndim() == 1) return 0;
    auto it = std::find(names.begin(), names.end(), "dp");
    WEFT_CHECK(it != names.end(), "fully_shard: on the ", mesh.ndim(), "-D mesh ", mesh.to_string(),
               " name the dim to shard over (options.mesh_dim), or name one of its dims \"dp\"");
    return it - names.begin();
  }
  auto it = std::find(names.begin(), names.end(), name);
  WEFT_CHECK(it != names.end(), "fully_shard: options.mesh_dim is '", name, "' but ", mesh.to_string(),
             " has no dim of that name");
  return it - names.begin();
}

// The first tensor dim no other mesh dim shards (FSDP wants 0; see Note [Fully sharded data
// parallel] on tensor parallelism), or -1.
int64_t free_dim(const Placements& placements, int64_t ndim) {
  for (int64_t d = 0; d < ndim; ++d) {
    auto shards_d = [&](const dist::Placement& p) { return p.is_shard(d); };
    bool taken = std::any_of(placements.begin(), placements.end(), shards_d);
    if (!taken) return d;
  }
  return -1;
}

void check_policy(const MixedPrecisionPolicy& mp) {
  auto check = [](const std::optional<DType>& d, const char* field) {
    WEFT_CHECK(!d || is_floating(*d), "fully_shard: mp_policy.", field, " is ", *d,
               "; expected a floating dtype (bfloat16, float16, float32 or float64)");
  };
  check(mp.param_dtype, "param_dtype");
  check(mp.reduce_dtype, "reduce_dtype");
  check(mp.output_dtype, "output_dtype");
}

// Shards the parameters of `m`'s tree that no nested unit holds (collective).
std::shared_ptr<FullyShardedModule::Unit> make_unit(Module& m, const dist::DeviceMesh& mesh, int64_t dp,
                                                    const FullyShardOptions& options) {
  auto layout = std::make_shared<Layout>();
  layout->mesh = mesh;
  layout->dp = dp;
  auto unit = std::make_shared<FullyShardedModule::Unit>();
  unit->options = options;
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots(m, "", slots);
  NoGradGuard no_grad;
  std::vector<int64_t> coord = *mesh.get_coordinate();
  for (const auto& [name, slot] : slots) {
    auto same = [&](const std::vector<Tensor*>& held) { return held[0]->is_same(*slot); };
    if (auto it = std::find_if(unit->slots.begin(), unit->slots.end(), same); it != unit->slots.end()) {
      it->push_back(slot);  // a tied weight: one DTensor in both slots
      continue;
    }
    const Tensor original = *slot;
    Placements base = dist::replicate_all(mesh.ndim());
    Shape global = original.shape();
    if (original.is_dtensor()) {
      DTensor d(original);
      WEFT_CHECK(d.device_mesh() == mesh, "fully_shard: parameter '", name, "' is a DTensor on ",
                 d.device_mesh().to_string(), ", not on ", mesh.to_string());
      WEFT_CHECK(d.placements()[static_cast<size_t>(dp)].is_replicate(), "fully_shard: parameter '", name,
                 "' is already sharded over mesh dim ", dp, " (placements ", dist::to_string(d.placements()),
                 ") outside any nested unit");
      base = d.placements();
      global = d.shape();
    }
    ParamLayout p;
    p.name = name;
    p.global_shape = global;
    p.shard_dim = free_dim(base, static_cast<int64_t>(global.size()));
    p.placements = base;
    if (p.shard_dim >= 0) {
      p.placements[static_cast<size_t>(dp)] = dist::Shard(p.shard_dim);
      Shape local = dist::local_shape_and_offset(global, mesh.shape(), coord, base).first;
      int64_t n = local[static_cast<size_t>(p.shard_dim)];
      p.sizes = dist::chunk_sizes(n, mesh.size(dp));
    }
    p.gathered_grad = base;
    p.gathered_grad[static_cast<size_t>(dp)] = dist::Partial();
    DTensor sharded;
    if (original.is_dtensor()) {
      DTensor d(original);
      Tensor local = dist::redistribute_local(d.spec().local, mesh, base, p.placements, global);
      sharded = dist::make_dtensor(kernels::contiguous_copy(local), mesh, p.placements, global);
    } else {
      // From the mesh's first rank, so that every rank starts from the same values.
      sharded = dist::distribute_tensor(original.detach(), mesh, p.placements, /*src_rank=*/mesh.ranks()[0]);
    }
    sharded.requires_grad_(original.requires_grad());
    *slot = sharded;
    unit->slots.push_back({slot});
    layout->params.push_back(std::move(p));
  }
  unit->layout = std::move(layout);
  return unit;
}

}  // namespace

FullyShardedModule::FullyShardedModule(std::shared_ptr<UnaryModule> inner, std::shared_ptr<Parallelized> tp,
                                       dist::DeviceMesh device_mesh, int64_t dp, std::shared_ptr<Unit> unit)
    : UnaryModule("FullyShardedModule"),
      module(std::move(inner)),
      mesh(std::move(device_mesh)),
      dp_dim(dp),
      tp_(std::move(tp)),
      unit_(std::move(unit)) {
  register_module("module", module);
  input_placements_ = dist::replicate_all(mesh.ndim());
  input_placements_[static_cast<size_t>(dp_dim)] = dist::Shard(0);
}

Tensor FullyShardedModule::local_batch(const Tensor& global_batch) const {
  weft::detail::check_plain(global_batch, "FullyShardedModule.local_batch");
  auto [size, offset] =
      dist::chunk_size_and_offset(global_batch.size(0), mesh.size(dp_dim), mesh.get_local_rank(dp_dim));
  return global_batch.narrow(0, offset, size);
}

double FullyShardedModule::reduce_over_dp(double value) const {
  Tensor t = scalar_tensor(value, dtype(kFloat64)).reshape({1});
  return dist::detail::all_reduce(t, dist::ReduceOp::Sum, mesh, dp_dim).item<double>();
}

Tensor FullyShardedModule::forward(const Tensor& x) {
  Tensor local;
  if (x.is_dtensor()) {
    DTensor d(x);
    WEFT_CHECK(d.device_mesh() == mesh, "FullyShardedModule.forward: the batch lives on ",
               d.device_mesh().to_string(), " but the model on ", mesh.to_string());
    local = d.redistribute(input_placements_).to_local();
  } else {
    local = local_batch(x);
  }
  const int64_t rows = x.dim() > 0 ? x.size(0) : 0;
  ForwardContext ctx;
  ctx.root = unit_.get();
  ctx.plan = &last_order_;
  const bool outermost = active_forward == nullptr;
  Tensor y;
  {
    struct Scope {  // restores the context and drops prefetches no unit used, even on error
      ForwardContext& ctx;
      bool set;
      ~Scope() {
        if (set) active_forward = nullptr;
        for (const auto& u : ctx.prefetched_for) u->prefetched.reset();
      }
    } scope{ctx, outermost};
    if (outermost) active_forward = &ctx;
    y = (*module)(local);
  }
  if (outermost) last_order_ = std::move(ctx.order);
  // Rows Shard(0) on dp: the global row count is the input's when it splits evenly, else exchanged.
  Shape global = y.shape();
  const int64_t k = mesh.size(dp_dim);
  if (y.dim() > 0 && k > 1) {
    if (rows % k == 0) {
      global[0] = y.size(0) * k;
    } else {
      std::vector<int64_t> sizes = dist::detail::exchange_sizes(y.size(0), mesh, dp_dim);
      global[0] = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
    }
  }
  return DTensor::from_local(y, mesh, input_placements_,
                             {.shape = global, .stride = contiguous_strides(global)});
}

StateDict FullyShardedModule::full_state_dict() const {
  if (tp_) return tp_->full_state_dict();  // it knows the tensor-parallel views' original shapes
  NoGradGuard no_grad;
  StateDict out;
  for (const auto& [name, p] : module->named_parameters())
    out.insert(name, p.is_dtensor() ? DTensor(p).full_tensor().contiguous() : p);
  for (const auto& [name, b] : module->named_buffers())
    out.insert(name, b.is_dtensor() ? DTensor(b).full_tensor() : b);
  return out;
}

std::shared_ptr<FullyShardedModule> fully_shard(std::shared_ptr<UnaryModule> module,
                                                const dist::DeviceMesh& mesh, FullyShardOptions options) {
  WEFT_CHECK(module != nullptr && mesh.defined(), "fully_shard: expected a module and a device mesh");
  WEFT_CHECK(std::dynamic_pointer_cast<FullyShardedModule>(module) == nullptr,
             "fully_shard: the module is already a FullyShardedModule (fully_shard was called on it before)");
  auto tp = std::dynamic_pointer_cast<Parallelized>(module);
  std::shared_ptr<UnaryModule> inner = tp ? tp->module : module;
  WEFT_CHECK(!inner->has_forward_wrapper(kWrapperTag), "fully_shard: this ", inner->type_name(),
             " is already fully sharded (fully_shard was called on it before)");
  const int64_t dp = resolve_dp_dim(mesh, options.mesh_dim);
  check_policy(options.mp_policy);
  if (tp) {
    WEFT_CHECK(tp->mesh == mesh, "fully_shard: the tensor-parallel model lives on ", tp->mesh.to_string(),
               ", not on ", mesh.to_string());
    WEFT_CHECK(dp != tp->tp_dim, "fully_shard: mesh dim ", dp, " ('", options.mesh_dim, "') of ",
               mesh.to_string(), " is the model's tensor-parallel dim; shard over the data-parallel one");
    WEFT_CHECK(tp->dp_dim == dp, "fully_shard: shards over mesh dim ", dp,
               " but the tensor-parallel model's "
               "data-parallel dim is ",
               tp->dp_dim, "; make it with parallelize(model, mesh, \"dp\", \"tp\")");
  }
  WEFT_CHECK(!inner->parameters().empty(), "fully_shard: ", inner->type_name(),
             " has no parameters to shard");
  auto unit = make_unit(*inner, mesh, dp, options);
  inner->add_forward_wrapper(kWrapperTag,
                             [unit](const Tensor& x, const std::function<Tensor(const Tensor&)>& next) {
                               return unit->run(x, next);
                             });
  return std::make_shared<FullyShardedModule>(inner, tp, mesh, dp, unit);
}

}  // namespace weft::nn::parallel
