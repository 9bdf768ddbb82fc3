// local_map's checks, its boundary nodes on the caller's tape, and the exact global shapes of Shard outputs.
#include "distributed/local_map.h"

#include <memory>
#include <span>

#include "autograd/node.h"
#include "distributed/dtensor_nodes.h"
#include "distributed/control_plane.h"
#include "distributed/redistribute.h"
#include "distributed/runtime.h"
#include "distributed/spmd.h"
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
void check_placements_agree(const PreparedInputs& leaves, const LocalMapOptions& options) {
  std::optional<DeviceMesh> mesh = options.device_mesh;
  for (size_t i = 0; i < leaves.inputs.size() && !mesh; ++i)
    if (leaves.inputs[i].defined() && leaves.inputs[i].is_dtensor()) mesh = DTensor(leaves.inputs[i]).device_mesh();
  if (!mesh) return;
  check_agreement(*mesh, "local_map",
                  "in_placements " + (options.in_placements ? list_str(*options.in_placements) : "None") +
                      ", out_placements " + list_str(options.out_placements));
}

}  // namespace

namespace {

// Input `i` whose placements differ from what in_placements asks (`wanted`, not yet normalised):
// redistributed when the caller allows it, else refused. Off the common path.
[[gnu::noinline]] void redistribute_input(Tensor& leaf, size_t i, const Placements& wanted,
                                          const LocalMapOptions& options) {
  DTensor arg(std::move(leaf));
  const Placements target = normalize(wanted, arg.dim());
  if (target != arg.placements()) {
    WEFT_CHECK(options.redistribute_inputs, "local_map: arg ", i,
               " has a mismatched placements: arg placements is ", to_string(arg.placements()),
               " but the input placements is ", to_string(target),
               "! If redistribute_inputs is wanted, set redistribute_inputs=true in local_map.");
    arg = arg.redistribute(target);
  }
  leaf = std::move(arg);
}

}  // namespace

void prepare_inputs(PreparedInputs& leaves, const LocalMapOptions& options) {
  const size_t count = leaves.inputs.size();
  check_length(options.in_placements, count, "in_placements");
  check_length(options.in_grad_placements, count, "in_grad_placements");
  if (options.device_mesh) leaves.mesh = *options.device_mesh;
  if (debug_collectives()) [[unlikely]]
    check_placements_agree(leaves, options);
  for (size_t i = 0; i < count; ++i) {
    Tensor& leaf = leaves.inputs[i];
    if (leaf.is_dtensor()) {
      const DTensorSpec& spec = spec_of(leaf);
      if (!leaves.any_dtensor && !options.device_mesh) leaves.mesh = spec.mesh;
      leaves.any_dtensor = true;
      if (options.in_placements) {
        const auto& wanted = (*options.in_placements)[i];
        WEFT_CHECK(wanted.has_value(), "local_map: DTensor input ", i, " expects placements but received None!");
        // Most entries are normalised and equal to the input's: compare them as they are.
        if (!is_normalized(*wanted, leaf.dim()) || *wanted != spec.placements)
          redistribute_input(leaf, i, *wanted, options);
      }
      if (options.in_grad_placements)
        WEFT_CHECK((*options.in_grad_placements)[i].has_value(), "local_map: DTensor input ", i,
                   " expects grad placements but received None!");
    } else if (!leaves.is_tensor[i] && options.in_placements) {
      // Plain tensors pass through and their entry is not examined; other values need None.
      const auto& spec = (*options.in_placements)[i];
      WEFT_CHECK(!spec.has_value(), "local_map: Non-Tensor input ", i, " expects no placements but received ",
                 entry_str(spec), "!");
    }
  }
}

namespace {

// Note [local_map on the outer tape]
// local_map records no node of its own: it is to_local on the way in and from_local on the way
// out, as PyTorch composes it, with the caller's grad placements (distributed/dtensor_nodes.h).
// - Each DTensor input that requires grad enters the body as an alias of its local tensor whose
//   history is a ToLocalBackward node. It wraps the body's local gradient as a DTensor with the
//   input's grad placements (declared, derived from the SPMD types, or the default), without
//   communication, and runs as soon as that gradient is complete (Node::run_when_ready), so hooks
//   on the alias fire then (data_parallel's, Note [Overlapped gradient reduction]).
// - Each differentiable output leaves as a DTensor whose history is a FromLocalBackward node. It
//   brings the DTensor gradient to the output's placements (Partial becomes Replicate), starting
//   any collective at once (Note [Gradients in flight]), and hands the local part to the body.
// The body's own nodes sit between the two on the caller's tape, so one backward runs everything:
// no nested backward and no leaves inside the body; retain_graph and hooks on the body's tensors
// behave as anywhere else. Recording costs one pooled node per input and per output.

// One output leaf's placements (normalised), kept while the outputs are wrapped.
struct OutputSpec {
  Placements placements;
};

// Note [local_map global shapes]
// A Shard output's global size along a tensor dim is the sum of the local sizes over the ranks that
// differ from this one only in the mesh dims sharding that tensor dim, whatever the nesting or
// unevenness. All outputs' sharded sizes travel in one control-plane all_gather over the whole mesh
// (uncounted, Note [Control plane]); with even_shards the caller vouches for local * shards and
// nothing is exchanged.

// Whether some output's global shape needs the exchange: a Shard output whose shards the caller
// did not vouch for, on a mesh of more than one rank.
bool needs_shape_exchange(std::span<const OutputSpec> outs, const DeviceMesh& mesh, bool even_shards) {
  if (even_shards || mesh.size() == 1) return false;
  for (const OutputSpec& out : outs)
    for (const Placement& p : out.placements)
      if (p.is_shard()) return true;
  return false;
}

// The global shape of a local output without an exchange: each Shard dim times its mesh dims' sizes
// (placements normalised: non-negative shard dims).
Shape even_global_shape(const Tensor& local, const Placements& placements, const DeviceMesh& mesh) {
  Shape global = local.shape();
  for (size_t m = 0; m < placements.size(); ++m)
    if (placements[m].is_shard()) global[placements[m].shard_dim] *= mesh.size(static_cast<int64_t>(m));  // normalised
  return global;
}

// One global shape per output leaf (empty for non-tensor outputs), the sharded sizes exchanged.
std::vector<Shape> global_shapes(const OutputLeaves& flat, std::span<const OutputSpec> outs,
                                 const DeviceMesh& mesh) {
  std::vector<Shape> globals;
  globals.reserve(flat.size());
  struct Pending { size_t out; int64_t dim; std::vector<int64_t> mesh_dims; };
  std::vector<Pending> pending;
  for (size_t o = 0; o < flat.size(); ++o) {
    const Tensor& local = flat[o].tensor;
    globals.push_back(local.defined() ? local.shape() : Shape{});
    if (!local.defined()) continue;
    const Placements& placements = outs[o].placements;
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

// Up to kInline items on the stack, more on the heap: the per-leaf and per-output records of one
// call, which would otherwise be two allocations on every call. Only the first n are constructed.
template <class T, size_t kInline = 4>
class CallRecords {
 public:
  explicit CallRecords(size_t n) : size_(n) {
    if (n > kInline) heap_.resize(n);
    else std::uninitialized_default_construct_n(inline_items(), n);
  }
  ~CallRecords() {
    if (size_ <= kInline) std::destroy_n(inline_items(), size_);
  }
  CallRecords(const CallRecords&) = delete;
  CallRecords& operator=(const CallRecords&) = delete;
  T& operator[](size_t i) { return data()[i]; }
  std::span<const T> span() const { return {const_cast<CallRecords*>(this)->data(), size_}; }

 private:
  T* inline_items() { return reinterpret_cast<T*>(inline_); }
  T* data() { return size_ > kInline ? heap_.data() : inline_items(); }
  size_t size_;
  alignas(T) unsigned char inline_[kInline * sizeof(T)];
  std::vector<T> heap_;
};

// What the call remembers of one leaf between typing the inputs and settling their grad placements.
struct InputRecord {
  ToLocalBackward* node = nullptr;  // the alias's history; null when nothing was recorded
  bool typed = false;               // a DTensor on the call's mesh, typed for the checker
  Placements grad_placements;       // a DTensor's without a node: declared, or the default until derived
  // Where the leaf's grad placements live: the node's when one was recorded, else grad_placements.
  Placements& grad() { return node ? node->grad_placements : grad_placements; }
};

// Note [local_map SPMD types]
// With check_types, each DTensor input's local tensor is typed from its placements and declared
// grad placements (autograd/spmd_types.h) before the body runs, the body runs with the checker
// installed (every op applies its rule, eagerly), each output is checked against its out
// placements, and, when in_grad_placements is omitted, the inputs' grad placements are derived
// from what the body did with them. Inputs on another mesh than the call's stay untyped.
void settle_grad_placements(const spmd::Checker& checker, CallRecords<InputRecord>& inputs, size_t leaves,
                            const LocalMapOptions& options) {
  if (options.derived_in_grad_placements) options.derived_in_grad_placements->assign(leaves, std::nullopt);
  for (size_t leaf = 0; leaf < leaves; ++leaf) {
    InputRecord& in = inputs[leaf];
    if (!in.typed) continue;  // not a DTensor, or on another mesh: untyped, the default stays
    Placements& grad = in.grad();
    derive_grad_placements(checker, leaf, grad.data(), grad.size());
    if (options.derived_in_grad_placements) (*options.derived_in_grad_placements)[leaf] = grad;
  }
}

}  // namespace

OutputLeaves run_local_map(PreparedInputs& prepared, const LocalMapOptions& options, BodyRef body) {
  const DeviceMesh& mesh = prepared.mesh;
  std::pmr::vector<Tensor>& locals = prepared.inputs;  // each DTensor is replaced by its local tensor
  const size_t leaves = locals.size();
  const bool record = GradMode::is_enabled();
  std::optional<spmd::Checker> checker;
  if (options.check_types && spmd_types_enabled()) checker.emplace(axis_names(mesh), mesh.hash(), leaves);

  CallRecords<InputRecord> inputs(leaves);
  for (size_t leaf = 0; leaf < leaves; ++leaf) {
    if (!locals[leaf].is_dtensor()) continue;  // plain tensors go through as they are
    const Tensor arg = std::move(locals[leaf]);
    const DTensorSpec& d = spec_of(arg);
    InputRecord& in = inputs[leaf];
    const Placements* declared = options.in_grad_placements ? &*(*options.in_grad_placements)[leaf] : nullptr;
    if (declared)
      WEFT_CHECK(declared->size() == d.placements.size(), "local_map: in_grad_placements ", leaf, " ",
                 to_string(*declared), " must have one placement per mesh dim (", d.placements.size(), ")");
    // The leaf's grad placements: declared (normalised), or its own with Partial as Replicate.
    auto grad_placements = [&](Placements& out) {
      if (declared) out = normalize(*declared, arg.dim());
      else replicate_partials(out = d.placements);
    };
    Tensor local;
    if (!record || !autograd::requires_grad_fast(arg)) {
      local = d.local;
      grad_placements(in.grad_placements);
    } else {
      // The alias is what the body sees; `arg` stays out of the body's graph (Note [local_map on
      // the outer tape]). Its node holds the grad placements, which settle_grad_placements may derive.
      local = autograd::record<ToLocalBackward>(d.local.detach(), [&](ToLocalBackward& node) {
        node.mesh = d.mesh;
        grad_placements(node.grad_placements);
        node.global_shape = d.global_shape;
        node.op = "local_map";
        node.run_when_ready();  // hooks on the alias see its gradient as soon as it is complete
        in.node = &node;
      }, arg);
    }
    // Typed from the input's placements (inputs on another mesh stay untyped); only whether a grad
    // entry is Replicate matters, so its Shard dims need no normalising.
    if (checker && d.mesh == mesh) {
      in.typed = true;
      type_local_map_input(*checker, local, leaf, d.placements, declared);
    }
    locals[leaf] = std::move(local);
  }

  OutputLeaves flat(&prepared.arena);
  flat.reserve(options.out_placements.size());
  {
    spmd::Scope scope(checker ? &*checker : nullptr);
    body(locals, flat);
  }
  WEFT_CHECK(flat.size() == options.out_placements.size(), "local_map requires one placement entry for each "
             "output: received ", options.out_placements.size(), " but ", flat.size(), " are expected");
  CallRecords<OutputSpec> outs(flat.size());
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
    Placements& placements = outs[o].placements;
    if (!entry) placements = replicate_all(mesh.ndim());
    else if (is_normalized(*entry, t.dim())) placements = *entry;  // most are: no normalising copy
    else placements = normalize(*entry, t.dim());
    WEFT_CHECK(static_cast<int64_t>(placements.size()) == mesh.ndim(), "local_map: out_placements ", o, " ",
               entry_str(entry), " must have one placement per mesh dim (", mesh.ndim(), ")");
    if (checker) check_local_map_output(*checker, t, o, placements.data(), placements.size());
  }
  if (checker && !options.in_grad_placements) settle_grad_placements(*checker, inputs, leaves, options);

  // The common case (even shards vouched for, no Shard output, one rank) exchanges and lists nothing.
  std::vector<Shape> globals;
  if (needs_shape_exchange(outs.span(), mesh, options.even_shards)) globals = global_shapes(flat, outs.span(), mesh);
  for (size_t o = 0; o < flat.size(); ++o) {
    Tensor local = std::move(flat[o].tensor);
    if (!local.defined()) continue;
    const Placements& placements = outs[o].placements;
    Shape global = globals.empty() ? even_global_shape(local, placements, mesh) : std::move(globals[o]);
    // A DTensor's local tensor carries no history (Note [DTensor layout]). The body's output hands
    // its history to the node's edge; when nothing else holds it, it then becomes the local tensor
    // itself, instead of a detached alias of it.
    std::shared_ptr<FromLocalBackward> node = autograd::make_node<FromLocalBackward>(local);
    if (local.impl()->autograd && local.impl_ptr().use_count() == 1) local.impl()->autograd.reset();
    flat[o].tensor = wrap_checked(std::move(local), mesh, placements, global);
    if (node) {
      node->mesh = mesh;
      node->grad_placements = placements;
      replicate_partials(node->grad_placements);
      node->global_shape = std::move(global);
      node->op = "local_map";
      autograd::set_history(flat[o].tensor, std::move(node));
    }
  }
  return flat;
}

}  // namespace weft::dist::detail
