// local_map's checks, its one autograd Function, and the exact global shapes of Shard outputs.
#include "distributed/local_map.h"

#include <mpi.h>

#include <map>

#include "autograd/function.h"
#include "distributed/comm_debug.h"
#include "distributed/redistribute.h"
#include "distributed/runtime.h"

namespace weft::dist::detail {
namespace {

std::string entry_str(const std::optional<Placements>& entry) { return entry ? to_string(*entry) : "None"; }

void check_length(const std::optional<PlacementsList>& list, size_t leaves, const char* what) {
  if (list)
    WEFT_CHECK(list->size() == leaves, "local_map: ", what, " length ", list->size(),
               " does not match the number of input args ", leaves);
}

}  // namespace

PreparedInputs prepare_inputs(const std::vector<Leaf>& leaves, const LocalMapOptions& options) {
  check_length(options.in_placements, leaves.size(), "in_placements");
  check_length(options.in_grad_placements, leaves.size(), "in_grad_placements");
  PreparedInputs prepared;
  if (options.device_mesh) prepared.mesh = *options.device_mesh;
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
        Placements wanted = normalize(*spec, arg.dim());
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

// Note [local_map global shapes]
// A Shard output's global size along a tensor dim is the sum of the local sizes over the ranks that
// differ from this one only in the mesh dims sharding that tensor dim, whatever the nesting or
// unevenness. All outputs' sharded sizes travel in one all_gather over the whole mesh; with
// even_shards the caller vouches for local * shards and nothing is exchanged.

MPI_Comm whole_mesh_comm(const DeviceMesh& mesh) {
  static std::map<std::vector<int>, MPI_Comm> cache;  // freed by MPI_Finalize; meshes live as long
  auto it = cache.find(mesh.ranks());
  if (it != cache.end()) return it->second;
  MPI_Group world_group, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  MPI_Group_incl(world_group, static_cast<int>(mesh.ranks().size()), mesh.ranks().data(), &group);
  MPI_Comm comm;
  check_mpi(MPI_Comm_create_group(MPI_COMM_WORLD, group, 7371, &comm), "local_map size exchange", MPI_COMM_WORLD);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  return cache[mesh.ranks()] = comm;
}

std::vector<int64_t> unravel(int64_t index, const std::vector<int64_t>& shape) {
  std::vector<int64_t> coord(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    coord[d] = index % shape[d];
    index /= shape[d];
  }
  return coord;
}

std::vector<Shape> global_shapes(const std::vector<Tensor>& locals, const std::vector<Placements>& placements,
                                 const DeviceMesh& mesh, bool even_shards) {
  std::vector<Shape> globals;
  struct Pending { size_t out; int64_t dim; std::vector<int64_t> mesh_dims; };
  std::vector<Pending> pending;
  for (size_t o = 0; o < locals.size(); ++o) {
    globals.push_back(locals[o].defined() ? locals[o].shape() : Shape{});
    if (!locals[o].defined()) continue;
    for (int64_t d = 0; d < locals[o].dim(); ++d) {
      std::vector<int64_t> mesh_dims;
      for (size_t m = 0; m < placements[o].size(); ++m)
        if (placements[o][m].is_shard(d)) mesh_dims.push_back(static_cast<int64_t>(m));
      if (mesh_dims.empty()) continue;
      if (even_shards) {
        for (int64_t m : mesh_dims) globals[o][d] *= mesh.size(m);
      } else {
        pending.push_back({o, d, mesh_dims});
      }
    }
  }
  if (pending.empty() || mesh.size() == 1) return globals;
  std::vector<int64_t> mine;
  for (const Pending& p : pending) mine.push_back(locals[p.out].shape()[p.dim]);
  std::vector<int64_t> all(mine.size() * mesh.size());
  record_collective(CollectiveKind::AllGather);
  MPI_Comm comm = whole_mesh_comm(mesh);
  check_mpi(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(),
                          static_cast<int>(mine.size()), MPI_INT64_T, comm),
            "local_map output size exchange (all_gather)", comm);
  std::vector<int64_t> me = *mesh.get_coordinate();
  for (size_t k = 0; k < pending.size(); ++k) {
    const Pending& p = pending[k];
    int64_t total = 0;
    for (int64_t r = 0; r < mesh.size(); ++r) {
      std::vector<int64_t> coord = unravel(r, mesh.shape());
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

// What forward leaves for backward: the body's own graph and the placements of both sides.
struct LocalMapState {
  const LocalMapOptions* options = nullptr;
  const Body* body = nullptr;
  DeviceMesh mesh;
  std::vector<size_t> input_leaf;           // leaf index of each Function input
  std::vector<Tensor> leaf_inputs;          // cleared after forward
  size_t leaf_count = 0;
  bool record = false;
  std::vector<Tensor> inner_inputs;         // per Function input: a local leaf of the body's graph
  std::vector<Tensor> inner_outputs;        // per output leaf: the body's result, if differentiable
  std::vector<Placements> out_placements;   // per output leaf
  struct InputSpec { bool is_dtensor; DeviceMesh mesh; Placements grad_placements; Shape global_shape; };
  std::vector<InputSpec> input_specs;
};

struct LocalMapFunction : autograd::Function<LocalMapFunction> {
  static autograd::variable_list forward(autograd::AutogradContext* ctx, const TensorList& inputs,
                                         std::shared_ptr<LocalMapState> state);
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list grads);
};

autograd::variable_list LocalMapFunction::forward(autograd::AutogradContext* ctx, const TensorList& inputs,
                                                  std::shared_ptr<LocalMapState> state) {
  const LocalMapOptions& options = *state->options;
  std::vector<Tensor> locals(state->leaf_count);
  state->inner_inputs.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    size_t leaf = state->input_leaf[i];
    LocalMapState::InputSpec spec{in.is_dtensor(), {}, {}, in.shape()};
    Tensor local = in;
    if (spec.is_dtensor) {
      DTensor d(in);
      spec.mesh = d.device_mesh();
      spec.grad_placements = options.in_grad_placements ? normalize(*(*options.in_grad_placements)[leaf], in.dim())
                                                        : partial_to_replicate(d.placements());
      local = d.spec().local;
    }
    if (state->record && in.requires_grad()) {
      local = local.detach();
      local.requires_grad_(true);
      state->inner_inputs[i] = local;
    }
    locals[leaf] = local;
    state->input_specs.push_back(std::move(spec));
  }
  std::vector<OutputLeaf> flat;
  {
    std::optional<EnableGradGuard> enable;
    if (state->record) enable.emplace();
    flat = (*state->body)(locals);
  }
  WEFT_CHECK(flat.size() == options.out_placements.size(), "local_map requires one placement entry for each "
             "output: received ", options.out_placements.size(), " but ", flat.size(), " are expected");
  std::vector<Tensor> out_locals(flat.size());
  state->out_placements.resize(flat.size());
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
    out_locals[o] = t;
    state->out_placements[o] = entry ? normalize(*entry, t.dim())
                                     : Placements(static_cast<size_t>(state->mesh.ndim()), Replicate());
  }
  std::vector<Shape> globals = global_shapes(out_locals, state->out_placements, state->mesh, options.even_shards);
  autograd::variable_list outputs(flat.size());
  autograd::variable_list non_differentiable;
  state->inner_outputs.resize(flat.size());
  for (size_t o = 0; o < flat.size(); ++o) {
    if (!out_locals[o].defined()) continue;
    outputs[o] = make_dtensor(out_locals[o].detach(), state->mesh, state->out_placements[o], globals[o]);
    if (out_locals[o].requires_grad()) state->inner_outputs[o] = out_locals[o];
    else non_differentiable.push_back(outputs[o]);
  }
  ctx->mark_non_differentiable(non_differentiable);
  ctx->set_materialize_grads(false);
  state->leaf_inputs.clear();
  ctx->saved_data["state"] = state;
  return outputs;
}

autograd::variable_list LocalMapFunction::backward(autograd::AutogradContext* ctx, autograd::variable_list grads) {
  auto state = std::any_cast<std::shared_ptr<LocalMapState>>(ctx->saved_data.at("state"));
  autograd::variable_list roots, root_grads;
  for (size_t o = 0; o < grads.size() && o < state->inner_outputs.size(); ++o) {
    if (!grads[o].defined() || !state->inner_outputs[o].defined()) continue;
    Tensor g = grads[o];
    if (g.is_dtensor()) {
      DTensor dg(g);
      Placements target = partial_to_replicate(state->out_placements[o]);
      if (dg.placements() != target) dg = redistribute_internal(dg, target);
      g = dg.spec().local;
    }
    roots.push_back(state->inner_outputs[o]);
    root_grads.push_back(g);
  }
  autograd::variable_list result(state->inner_inputs.size());
  autograd::variable_list wrt;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < state->inner_inputs.size(); ++i)
    if (state->inner_inputs[i].defined() && ctx->needs_input_grad(i)) {
      wrt.push_back(state->inner_inputs[i]);
      wrt_index.push_back(i);
    }
  if (roots.empty() || wrt.empty()) return result;
  autograd::variable_list local_grads =
      autograd::grad(roots, wrt, root_grads, /*retain_graph=*/false, /*allow_unused=*/true);
  for (size_t k = 0; k < wrt.size(); ++k) {
    size_t i = wrt_index[k];
    const Tensor& g = local_grads[k];
    if (!g.defined()) continue;
    const auto& spec = state->input_specs[i];
    result[i] = spec.is_dtensor ? Tensor(make_dtensor(g, spec.mesh, spec.grad_placements, spec.global_shape)) : g;
  }
  return result;
}

}  // namespace

std::vector<Tensor> run_local_map(const PreparedInputs& prepared, const LocalMapOptions& options, const Body& body) {
  auto state = std::make_shared<LocalMapState>();
  state->options = &options;
  state->body = &body;
  state->mesh = prepared.mesh;
  state->leaf_count = prepared.inputs.size();
  state->record = GradMode::is_enabled();
  TensorList inputs;
  for (size_t leaf = 0; leaf < prepared.inputs.size(); ++leaf) {
    if (!prepared.inputs[leaf].defined()) continue;
    inputs.push_back(prepared.inputs[leaf]);
    state->input_leaf.push_back(leaf);
  }
  autograd::variable_list outputs = LocalMapFunction::apply(inputs, state);
  state->options = nullptr;  // the options and body belong to this call only
  state->body = nullptr;
  return outputs;
}

}  // namespace weft::dist::detail
