// local_map's checks, its one autograd Function, and the exact global shapes of Shard outputs.
#include "distributed/local_map.h"

#include "autograd/function.h"
#include "distributed/control_plane.h"
#include "distributed/redistribute.h"
#include "distributed/runtime.h"
#include "distributed/spmd.h"
#include "framework/small_vector.h"
#include "kernels/toolkit.h"

namespace weft::dist::detail {
namespace {

std::string entry_str(const std::optional<Placements>& entry) { return entry ? to_string(*entry) : "None"; }

void check_length(const std::optional<PlacementsList>& list, size_t leaves, const char* what) {
  if (list)
    WEFT_CHECK(list->size() == leaves, "local_map: ", what, " length ", list->size(),
               " does not match the number of input args ", leaves);
}

std::string list_str(const PlacementsList& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + entry_str(list[i]);
  return out + "]";
}

// Debug mode: the ranks agree on in_placements and out_placements before any communication.
void check_placements_agree(const std::vector<Leaf>& leaves, const LocalMapOptions& options) {
  std::optional<DeviceMesh> mesh = options.device_mesh;
  for (size_t i = 0; i < leaves.size() && !mesh; ++i)
    if (leaves[i].is_tensor && leaves[i].tensor.is_dtensor()) mesh = DTensor(leaves[i].tensor).device_mesh();
  if (!mesh) return;
  check_agreement(*mesh, "local_map",
                  "in_placements " + (options.in_placements ? list_str(*options.in_placements) : "None") +
                      ", out_placements " + list_str(options.out_placements));
}

}  // namespace

PreparedInputs prepare_inputs(const std::vector<Leaf>& leaves, const LocalMapOptions& options) {
  check_length(options.in_placements, leaves.size(), "in_placements");
  check_length(options.in_grad_placements, leaves.size(), "in_grad_placements");
  PreparedInputs prepared;
  if (options.device_mesh) prepared.mesh = *options.device_mesh;
  if (debug_collectives()) [[unlikely]]
    check_placements_agree(leaves, options);
  prepared.inputs.resize(leaves.size());
  for (size_t i = 0; i < leaves.size(); ++i) {
    const Leaf& leaf = leaves[i];
    if (leaf.is_tensor && leaf.tensor.is_dtensor()) {
      DTensor arg(leaf.tensor);
      if (!prepared.any_dtensor && !options.device_mesh) prepared.mesh = arg.device_mesh();
      prepared.any_dtensor = true;
      if (options.in_placements) {
        const auto& spec = (*options.in_placements)[i];
        WEFT_CHECK(spec.has_value(), "local_map: DTensor input ", i, " expects placements but received None!");
        // Most entries are already normalised: compare them as they are rather than copy them.
        std::optional<Placements> wrapped;
        if (!is_normalized(*spec, arg.dim())) wrapped = normalize(*spec, arg.dim());
        const Placements& wanted = wrapped ? *wrapped : *spec;
        if (wanted != arg.placements()) {
          WEFT_CHECK(options.redistribute_inputs, "local_map: arg ", i,
                     " has a mismatched placements: arg placements is ", to_string(arg.placements()),
                     " but the input placements is ", to_string(wanted),
                     "! If redistribute_inputs is wanted, set redistribute_inputs=true in local_map.");
          arg = arg.redistribute(wanted);
        }
      }
      if (options.in_grad_placements)
        WEFT_CHECK((*options.in_grad_placements)[i].has_value(), "local_map: DTensor input ", i,
                   " expects grad placements but received None!");
      prepared.inputs[i] = arg;
    } else if (leaf.is_tensor) {
      prepared.inputs[i] = leaf.tensor;  // plain tensors pass through; their entry is not examined
    } else if (options.in_placements) {
      const auto& spec = (*options.in_placements)[i];
      WEFT_CHECK(!spec.has_value(), "local_map: Non-Tensor input ", i, " expects no placements but received ",
                 entry_str(spec), "!");
    }
  }
  return prepared;
}

namespace {

// Placements kept in the node: inline up to 4 mesh dims, so that forward copies them without
// allocating. (Placements itself is a std::vector; a DTensor's own list is made only when needed.)
using PlacementBuf = SmallVector<Placement, 4>;

PlacementBuf normalized_buf(const Placements& placements, int64_t tensor_rank) {
  if (is_normalized(placements, tensor_rank)) return PlacementBuf(placements.begin(), placements.end());
  Placements wrapped = normalize(placements, tensor_rank);
  return PlacementBuf(wrapped.begin(), wrapped.end());
}

// The default gradient placements, as from_local's and to_local's: every Partial becomes Replicate.
PlacementBuf& replicate_partials(PlacementBuf& placements) {
  for (Placement& p : placements)
    if (p.is_partial()) p = Replicate();
  return placements;
}

// What one call hands to forward; it lives on run_local_map's stack and is gone by backward.
struct LocalMapCall {
  const LocalMapOptions& options;
  const Body& body;
  const DeviceMesh& mesh;
  // Per leaf; the defined ones are the Function's inputs, in order. Forward replaces each DTensor
  // by its local tensor.
  std::vector<Tensor>& locals;
  bool record = false;  // grad mode was on: the body's own graph is recorded
};

// What forward leaves for backward, held in the node itself (Note [Function state]).
struct LocalMapState {
  struct Input {              // per Function input
    Tensor inner;             // the body graph's leaf standing for it; undefined if none is needed
    bool is_dtensor = false;
    DeviceMesh mesh;          // a DTensor input's, when it is not `LocalMapState::mesh`
    PlacementBuf grad_placements;
    Shape global_shape;
  };
  struct Output {             // per output leaf
    Tensor inner;             // the body's result, when differentiable
    PlacementBuf placements;
  };
  std::vector<Input> inputs;
  std::vector<Output> outputs;
  DeviceMesh mesh;            // the outputs', and usually the DTensor inputs' (one handle per node)
  // A DTensor input's gradient is a DTensor on the input's mesh.
  const DeviceMesh& mesh_of(const Input& in) const { return in.mesh.defined() ? in.mesh : mesh; }
};

// Note [local_map global shapes]
// A Shard output's global size along a tensor dim is the sum of the local sizes over the ranks that
// differ from this one only in the mesh dims sharding that tensor dim, whatever the nesting or
// unevenness. All outputs' sharded sizes travel in one control-plane all_gather over the whole mesh
// (uncounted, Note [Control plane]); with even_shards the caller vouches for local * shards and
// nothing is exchanged.

// Whether some output's global shape needs the exchange: a Shard output whose shards the caller
// did not vouch for, on a mesh of more than one rank.
bool needs_shape_exchange(const std::vector<LocalMapState::Output>& outs, const DeviceMesh& mesh, bool even_shards) {
  if (even_shards || mesh.size() == 1) return false;
  for (const LocalMapState::Output& out : outs)
    for (const Placement& p : out.placements)
      if (p.is_shard()) return true;
  return false;
}

// The global shape of a local output without an exchange: each Shard dim times its mesh dims' sizes
// (placements normalised: non-negative shard dims).
Shape even_global_shape(const Tensor& local, const PlacementBuf& placements, const DeviceMesh& mesh) {
  Shape global = local.shape();
  for (size_t m = 0; m < placements.size(); ++m)
    if (placements[m].is_shard()) global[placements[m].shard_dim] *= mesh.size(static_cast<int64_t>(m));  // normalised
  return global;
}

// One global shape per output leaf (empty for non-tensor outputs), the sharded sizes exchanged.
std::vector<Shape> global_shapes(const std::vector<OutputLeaf>& flat, const std::vector<LocalMapState::Output>& outs,
                                 const DeviceMesh& mesh) {
  std::vector<Shape> globals;
  globals.reserve(flat.size());
  struct Pending { size_t out; int64_t dim; std::vector<int64_t> mesh_dims; };
  std::vector<Pending> pending;
  for (size_t o = 0; o < flat.size(); ++o) {
    const Tensor& local = flat[o].tensor;
    globals.push_back(local.defined() ? local.shape() : Shape{});
    if (!local.defined()) continue;
    const PlacementBuf& placements = outs[o].placements;
    for (int64_t d = 0; d < local.dim(); ++d) {
      std::vector<int64_t> mesh_dims;
      for (size_t m = 0; m < placements.size(); ++m)
        if (placements[m].is_shard(d)) mesh_dims.push_back(static_cast<int64_t>(m));
      if (!mesh_dims.empty()) pending.push_back({o, d, std::move(mesh_dims)});
    }
  }
  if (pending.empty() || mesh.size() == 1) return globals;
  std::vector<int64_t> mine;
  for (const Pending& p : pending) mine.push_back(flat[p.out].tensor.shape()[p.dim]);
  std::vector<int64_t> all = mesh_all_gather(mine, mesh, "local_map output shapes");
  std::vector<int64_t> me = *mesh.get_coordinate();
  for (size_t k = 0; k < pending.size(); ++k) {
    const Pending& p = pending[k];
    int64_t total = 0;
    for (int64_t r = 0; r < mesh.size(); ++r) {
      std::vector<int64_t> coord = kernels::unravel(r, mesh.shape());
      bool same_slice = true;
      for (int64_t m = 0; m < mesh.ndim(); ++m) {
        bool sharding = std::find(p.mesh_dims.begin(), p.mesh_dims.end(), m) != p.mesh_dims.end();
        if (!sharding && coord[m] != me[m]) same_slice = false;
      }
      if (same_slice) total += all[r * mine.size() + k];
    }
    globals[p.out][p.dim] = total;
  }
  return globals;
}

// Note [local_map SPMD types]
// With check_types, each DTensor input's local tensor is typed from its placements and declared
// grad placements (autograd/spmd_types.h) before the body runs, the body runs with the checker
// installed (every op applies its rule, eagerly), each output is checked against its out
// placements, and, when in_grad_placements is omitted, the inputs' grad placements are derived
// from what the body did with them. Inputs on another mesh than the call's stay untyped.
void settle_grad_placements(const spmd::Checker& checker, const LocalMapCall& call, LocalMapState& state) {
  if (call.options.derived_in_grad_placements)
    call.options.derived_in_grad_placements->assign(call.locals.size(), std::nullopt);
  for (size_t leaf = 0, i = 0; leaf < call.locals.size(); ++leaf) {
    if (!call.locals[leaf].defined()) continue;
    LocalMapState::Input& spec = state.inputs[i++];
    if (!spec.is_dtensor || spec.mesh.defined()) continue;  // another mesh: untyped, the default stays
    derive_grad_placements(checker, leaf, spec.grad_placements.data(), spec.grad_placements.size());
    if (call.options.derived_in_grad_placements)
      (*call.options.derived_in_grad_placements)[leaf] = Placements(spec.grad_placements.begin(), spec.grad_placements.end());
  }
}

struct LocalMapFunction : autograd::Function<LocalMapFunction> {
  // DTensors, not typed local tensors: no SPMD rule applies (Note [Local SPMD types]).
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;
  using State = LocalMapState;
  static autograd::variable_list forward(autograd::AutogradContext* ctx, const TensorList& inputs,
                                         LocalMapCall& call);
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list grads);
};

autograd::variable_list LocalMapFunction::forward(autograd::AutogradContext* ctx, const TensorList& inputs,
                                                  LocalMapCall& call) {
  LocalMapState& state = ctx->state<LocalMapState>();
  const LocalMapOptions& options = call.options;
  state.mesh = call.mesh;
  state.inputs.resize(inputs.size());
  std::optional<spmd::Checker> checker;
  if (options.check_types && spmd_types_enabled())
    checker.emplace(axis_names(call.mesh), call.mesh.hash(), call.locals.size());
  for (size_t leaf = 0, i = 0; leaf < call.locals.size(); ++leaf) {
    if (!call.locals[leaf].defined()) continue;  // not an input (see run_local_map)
    const Tensor& in = inputs[i];
    LocalMapState::Input& spec = state.inputs[i++];
    Tensor local = in;
    const DTensorSpec* d = in.is_dtensor() ? &DTensor(in).spec() : nullptr;  // `in` keeps it alive
    if (d) {
      spec.is_dtensor = true;
      if (d->mesh != call.mesh) spec.mesh = d->mesh;
      spec.global_shape = d->global_shape;
      if (options.in_grad_placements) {
        spec.grad_placements = normalized_buf(*(*options.in_grad_placements)[leaf], in.dim());
      } else {
        spec.grad_placements.assign(d->placements.begin(), d->placements.end());
        replicate_partials(spec.grad_placements);
      }
      local = d->local;
    }
    if (call.record && in.requires_grad()) {
      local = local.detach();
      local.requires_grad_(true);
      spec.inner = local;
    }
    // The body's tensor is typed from the input's placements (inputs on another mesh stay untyped);
    // only whether a grad entry is Replicate matters, so its Shard dims need no normalising.
    if (checker && d && !spec.mesh.defined()) {
      const Placements* grad = options.in_grad_placements ? &*(*options.in_grad_placements)[leaf] : nullptr;
      type_local_map_input(*checker, local, leaf, d->placements, grad);
    }
    call.locals[leaf] = std::move(local);
  }
  std::vector<OutputLeaf> flat;
  {
    std::optional<EnableGradGuard> enable;
    if (call.record) enable.emplace();
    spmd::Scope scope(checker ? &*checker : nullptr);
    flat = call.body(call.locals);
  }
  WEFT_CHECK(flat.size() == options.out_placements.size(), "local_map requires one placement entry for each "
             "output: received ", options.out_placements.size(), " but ", flat.size(), " are expected");
  state.outputs.resize(flat.size());
  for (size_t o = 0; o < flat.size(); ++o) {
    const auto& entry = options.out_placements[o];
    if (!flat[o].is_tensor) {
      WEFT_CHECK(!entry.has_value(), "local_map: non-Tensor output ", o, " expects no placements but received ",
                 entry_str(entry), "!");
      continue;
    }
    const Tensor& t = flat[o].tensor;
    WEFT_CHECK(!t.is_dtensor(), "local_map: the function returned a DTensor as output ", o,
               "; it must return local tensors, which local_map wraps with out_placements");
    state.outputs[o].placements = entry ? normalized_buf(*entry, t.dim())
                                        : PlacementBuf(static_cast<size_t>(call.mesh.ndim()), Replicate());
    if (checker) {
      const PlacementBuf& p = state.outputs[o].placements;
      check_local_map_output(*checker, t, o, p.data(), p.size());
    }
  }
  if (checker && !options.in_grad_placements) settle_grad_placements(*checker, call, state);
  // The common case (even shards vouched for, no Shard output, one rank) exchanges and lists nothing.
  std::vector<Shape> globals;
  if (needs_shape_exchange(state.outputs, call.mesh, options.even_shards))
    globals = global_shapes(flat, state.outputs, call.mesh);
  autograd::variable_list outputs(flat.size());
  autograd::variable_list non_differentiable;
  for (size_t o = 0; o < flat.size(); ++o) {
    const Tensor& local = flat[o].tensor;
    if (!local.defined()) continue;
    const PlacementBuf& placements = state.outputs[o].placements;
    outputs[o] = make_dtensor(local.detach(), call.mesh, Placements(placements.begin(), placements.end()),
                              globals.empty() ? even_global_shape(local, placements, call.mesh) : std::move(globals[o]));
    if (local.requires_grad()) state.outputs[o].inner = local;
    else non_differentiable.push_back(outputs[o]);
  }
  if (!non_differentiable.empty()) ctx->mark_non_differentiable(non_differentiable);
  ctx->set_materialize_grads(false);
  return outputs;
}

autograd::variable_list LocalMapFunction::backward(autograd::AutogradContext* ctx, autograd::variable_list grads) {
  LocalMapState& state = ctx->state<LocalMapState>();
  autograd::variable_list roots, root_grads;
  roots.reserve(state.outputs.size());
  root_grads.reserve(state.outputs.size());
  for (size_t o = 0; o < grads.size() && o < state.outputs.size(); ++o) {
    const LocalMapState::Output& out = state.outputs[o];
    if (!grads[o].defined() || !out.inner.defined()) continue;
    // As from_local's backward: every output's collective is started here, and the body's backward
    // waits for each where it reads it (Note [Gradients in flight]). A plain gradient has the
    // output's global shape: the engine checked it against the output.
    DTensor g = as_dtensor_gradient(grads[o], state.mesh, grads[o].shape(), "local_map");
    PlacementBuf target = out.placements;
    roots.push_back(out.inner);
    root_grads.push_back(gradient_to(std::move(g), replicate_partials(target), /*async=*/true).spec().local);
  }
  autograd::variable_list result(state.inputs.size());
  autograd::variable_list wrt;
  wrt.reserve(state.inputs.size());
  auto wanted = [&](size_t i) { return state.inputs[i].inner.defined() && ctx->needs_input_grad(i); };
  for (size_t i = 0; i < state.inputs.size(); ++i)
    if (wanted(i)) wrt.push_back(state.inputs[i].inner);
  if (roots.empty() || wrt.empty()) return result;
  autograd::variable_list local_grads =
      autograd::grad(roots, wrt, root_grads, /*retain_graph=*/false, /*allow_unused=*/true);
  for (size_t i = 0, k = 0; i < state.inputs.size(); ++i) {
    if (!wanted(i)) continue;
    const Tensor& g = local_grads[k++];
    if (!g.defined()) continue;
    const LocalMapState::Input& spec = state.inputs[i];
    if (!spec.is_dtensor) {
      result[i] = g;
      continue;
    }
    // As to_local's backward: the local gradient wrapped with the grad placements, no communication.
    Placements placements(spec.grad_placements.begin(), spec.grad_placements.end());
    result[i] = make_dtensor(g, state.mesh_of(spec), std::move(placements), spec.global_shape);
  }
  return result;
}

}  // namespace

std::vector<Tensor> run_local_map(PreparedInputs& prepared, const LocalMapOptions& options, const Body& body) {
  LocalMapCall call{options, body, prepared.mesh, prepared.inputs, GradMode::is_enabled()};
  TensorList inputs;
  inputs.reserve(prepared.inputs.size());
  for (const Tensor& t : prepared.inputs)
    if (t.defined()) inputs.push_back(t);
  return LocalMapFunction::apply(inputs, call);
}

}  // namespace weft::dist::detail
