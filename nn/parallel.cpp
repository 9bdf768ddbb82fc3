// nn/parallel.cpp: the parallel styles: distributing parameters, Megatron's Linear forwards, and the
// one local_map around the module. See Note [Parallel styles on local_map].
#include "nn/parallel.h"

#include "autograd/grad_mode.h"
#include "distributed/collectives.h"
#include "distributed/local_map.h"
#include "distributed/progress.h"
#include "distributed/sharding.h"
#include "distributed/spmd.h"
#include "framework/factories.h"
#include "nn/batch_norm.h"
#include "nn/slot_swap.h"
#include "nn/transformer.h"
#include "nn/vocab_parallel.h"
#include "ops/ops.h"

namespace weft::nn::parallel {

// The sequence's length in the current forward, which the sequence-parallel hooks read for the
// gather sizes, the dropout draw and the positions (Note [Sequence parallelism]).
struct Parallelized::SequenceShard {
  dist::DeviceMesh mesh;
  int64_t tp = 0, dim = 1, length = 0;
  std::vector<int64_t> sizes() const { return dist::chunk_sizes(length, mesh.size(tp)); }
  // This rank's chunk: (size, offset), torch.chunk's.
  std::pair<int64_t, int64_t> chunk() const {
    return dist::chunk_size_and_offset(length, mesh.size(tp), mesh.get_local_rank(tp));
  }
};

namespace {

using dist::DTensor;
using dist::Placements;

std::shared_ptr<Module> find_module(const std::shared_ptr<Module>& root, const std::string& path) {
  std::shared_ptr<Module> m = root;
  size_t start = 0;
  while (start <= path.size() && !path.empty()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const auto* child = m->named_children().find(part);
    WEFT_CHECK(child != nullptr, "parallelize: the plan names '", path, "' but ", m->type_name(), " has no submodule '",
               part, "' (it has: ", [&] {
                 std::string names;
                 for (const auto& k : m->named_children().keys()) names += (names.empty() ? "" : ", ") + k;
                 return names;
               }(), ")");
    m = *child;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return m;
}

// How one parameter is held: the shape it is viewed as, its placement on the tp mesh dim, and its
// gradient's there when that differs (a Replicate parameter used on sequence chunks: Partial).
struct Layout {
  Shape view;
  dist::Placement tp;
  std::optional<dist::Placement> tp_grad = std::nullopt;
};
using Layouts = std::vector<std::pair<const Tensor*, Layout>>;
using SequenceShard = Parallelized::SequenceShard;

// The sequence dim a style's layouts split, if any (Note [Sequence parallelism]).
std::optional<int64_t> sequence_dim_of(const Style& style, const std::string& path) {
  auto of = [&](const dist::Placement& layout, const char* what) -> std::optional<int64_t> {
    WEFT_CHECK(!layout.is_partial(), "parallelize: '", path, "' has ", what, " ", layout.to_string(),
               "; expected Replicate or Shard(sequence dim)");
    return layout.is_shard() ? std::optional(layout.dim()) : std::nullopt;
  };
  if (const auto* col = std::get_if<ColwiseParallel>(&style)) return of(col->input_layout, "input_layout");
  if (const auto* row = std::get_if<RowwiseParallel>(&style)) return of(row->output_layout, "output_layout");
  if (std::holds_alternative<VocabParallel>(style)) return std::nullopt;
  return std::get<SequenceParallel>(style).sequence_dim;
}

// Weight and bias layouts of a Linear under a Colwise or Rowwise style; installs its Megatron
// forward (with the sequence gather or scatter when its layout is a Shard).
Layouts apply_linear_style(Linear& lin, const Style& style, const dist::DeviceMesh& mesh, int64_t tp,
                           std::shared_ptr<const SequenceShard> seq) {
  int64_t out = lin.out_features, in = lin.in_features;
  Linear* self = &lin;  // the function lives in the Linear: a raw pointer makes no cycle
  auto local = [](const Tensor& t) {
    WEFT_CHECK(!t.is_dtensor(), "Linear (tensor parallel): its parameters are DTensors; call the Parallelized "
               "wrapper's forward, not the inner module's");
    return t;
  };
  if (const auto* col = std::get_if<ColwiseParallel>(&style)) {
    int64_t block = col->groups * col->unit;
    WEFT_CHECK(col->groups > 0 && col->unit > 0 && out % block == 0, "ColwiseParallel: out_features ", out,
               " is not a multiple of groups * unit = ", col->groups, " * ", col->unit);
    bool plain = col->groups == 1 && col->unit == 1;
    Layout w = plain ? Layout{{out, in}, dist::Shard(0)} : Layout{{col->groups, out / block, col->unit, in}, dist::Shard(1)};
    Layout b = plain ? Layout{{out}, dist::Shard(0)} : Layout{{col->groups, out / block, col->unit}, dist::Shard(1)};
    if (!col->input_layout.is_shard()) seq = nullptr;
    lin.parallel_forward = [self, local, mesh, tp, seq](const Tensor& x) {
      const Tensor& weight = local(self->weight);
      Tensor bias = self->bias.defined() ? local(self->bias).reshape({-1}) : Tensor();
      Tensor shared = seq ? dist::funcol::all_gather(x, seq->dim, mesh, tp, seq->sizes())  // backward: reduce-scatter
                          : dist::funcol::copy_to_parallel_region(x, mesh, tp);            // backward: all-reduce
      return linear(shared, weight.reshape({-1, weight.size(-1)}), bias);
    };
    return {{&lin.weight, w}, {&lin.bias, b}};
  }
  const auto& row = std::get<RowwiseParallel>(style);
  WEFT_CHECK(row.unit > 0 && in % row.unit == 0, "RowwiseParallel: in_features ", in, " is not a multiple of unit ",
             row.unit);
  Layout w = row.unit == 1 ? Layout{{out, in}, dist::Shard(1)} : Layout{{out, in / row.unit, row.unit}, dist::Shard(1)};
  if (!row.output_layout.is_shard()) seq = nullptr;
  // On sequence chunks each rank adds the bias to its own positions: its gradient is a partial sum.
  Layout b{{out}, dist::Replicate(), seq ? std::optional(dist::Partial()) : std::nullopt};
  lin.parallel_forward = [self, local, mesh, tp, seq](const Tensor& x) {
    const Tensor& weight = local(self->weight);
    Tensor partial = linear(x, weight.reshape({weight.size(0), -1}));
    // Forward: a reduce-scatter into sequence chunks (backward: all-gather), or an all-reduce.
    Tensor y = seq ? dist::funcol::reduce_scatter(partial, dist::ReduceOp::Sum, seq->dim, mesh, tp)
                   : dist::funcol::reduce_from_parallel_region(partial, mesh, tp);
    return self->bias.defined() ? add(y, local(self->bias)) : y;  // added once, after the sum
  };
  return {{&lin.weight, w}, {&lin.bias, b}};
}

// VocabParallel on an Embedding: the table Shard(0), its lookup and its tied head on this rank's
// rows (Note [Vocabulary parallelism] in nn/vocab_parallel.h).
// Under sequence parallelism (a GPT's "wte" only) the lookup takes every token and reduce-scatters
// into this rank's chunk of the sequence, and the head all-gathers the chunks first.
Layouts apply_vocab_parallel(Embedding& emb, const std::string& path, const dist::DeviceMesh& mesh, int64_t tp,
                             std::shared_ptr<const SequenceShard> seq) {
  WEFT_CHECK(emb.num_embeddings >= mesh.size(tp), "VocabParallel: '", path, "' has a vocabulary of ",
             emb.num_embeddings, " rows for ", mesh.size(tp), " ranks of mesh dim ", tp,
             "; expected at least one row per rank");
  WEFT_CHECK(!emb.padding_idx, "VocabParallel: '", path, "' has padding_idx ", emb.padding_idx.value_or(0),
             "; expected an Embedding without padding_idx");
  WEFT_CHECK(!emb.parallel_forward, "parallelize: '", path, "' is already vocab parallel");
  Embedding* self = &emb;  // the functions live in the Embedding: a raw pointer makes no cycle
  auto local = [](const Tensor& t) {
    WEFT_CHECK(!t.is_dtensor(), "Embedding (vocab parallel): its weight is a DTensor; call the Parallelized "
               "wrapper's forward, not the inner module's");
    return t;
  };
  emb.parallel_forward = [self, local, mesh, tp, seq](const Tensor& idx) {
    return vocab_parallel_embedding(idx, local(self->weight), self->num_embeddings, mesh, tp, seq ? seq->dim : -1);
  };
  emb.parallel_attend = [self, local, mesh, tp, seq](const Tensor& x) {
    return seq ? vocab_parallel_logits(x, local(self->weight), mesh, tp, seq->dim, seq->sizes())
               : vocab_parallel_logits(x, local(self->weight), mesh, tp);
  };
  return {{&emb.weight, Layout{{emb.num_embeddings, emb.embedding_dim}, dist::Shard(0)}}};
}

// SequenceParallel on any module: its own parameters Replicate with Partial gradients over tp; a
// Dropout draws for the whole sequence, a GPT embeds its chunk of the tokens. See Note [Sequence
// parallelism].
Layouts apply_sequence_parallel(Module& m, const std::string& path, std::shared_ptr<const SequenceShard> seq) {
  Layouts layouts;
  for (const auto& [name, t] : m.named_parameters(/*recurse=*/false))
    layouts.push_back({&m.parameter_slot(name), Layout{t.shape(), dist::Replicate(), dist::Partial()}});
  if (auto* drop = dynamic_cast<Dropout*>(&m)) {
    drop->parallel_forward = [self = drop, seq](const Tensor& x) {
      if (!self->is_training() || self->p == 0.0) return x;
      auto [size, offset] = seq->chunk();
      WEFT_CHECK(x.dim() > seq->dim && x.size(seq->dim) == size, "Dropout (sequence parallel): expected this rank's ",
                 size, " positions along dim ", seq->dim, " of a sequence of ", seq->length, " but got shape ",
                 x.shape());
      Shape whole = x.shape();
      whole[static_cast<size_t>(seq->dim)] = seq->length;
      Tensor mask = dropout(ones(whole, dtype(x.dtype())), self->p, /*training=*/true);  // the single-process draw
      // Only the chunk is kept for backward, not the whole sequence's mask.
      return mul(x, mask.narrow(seq->dim, offset, size).contiguous());
    };
  } else if (auto* gpt = dynamic_cast<GPT*>(&m)) {
    WEFT_CHECK(seq->dim == 1, "parallelize: '", path, "' (GPT) takes its tokens (B, T) split along dim 1, not ",
               seq->dim);
    gpt->parallel_embed = [self = gpt, seq](const Tensor& idx) {
      auto [size, offset] = seq->chunk();
      WEFT_CHECK(seq->length <= self->config.block_size, "GPT (sequence parallel): cannot forward a sequence of "
                 "length ", seq->length, "; block_size is ", self->config.block_size);
      // A vocab-parallel table looks up every token and reduce-scatters into this rank's chunk.
      const int64_t tokens = self->wte->parallel_forward ? seq->length : size;
      WEFT_CHECK(idx.dim() == 2 && idx.size(1) == tokens, "GPT (sequence parallel", tokens == size ? "" : ", vocab "
                 "parallel", "): expected ", tokens, " tokens (this rank's chunk is ", size, " of a sequence of ",
                 seq->length, ") but got shape ", idx.shape());
      Tensor x = add(self->wte->forward(idx), self->wpe->forward(arange(offset, offset + size)));
      // A Replicate table read at this rank's positions: the embeddings are this rank's own. (They are
      // Varying already when the tokens' own type reached them; then there is nothing to change.)
      if (spmd::Checker* checker = spmd::active()) {
        const int64_t axis = dist::detail::spmd_axis(*checker, seq->mesh, seq->tp);
        if (axis >= 0 && checker->type_of(x, axis) == spmd::Type::Varying) return x;
      }
      return dist::reinterpret(x, spmd::Type::Replicate, spmd::Type::Varying, seq->mesh, seq->tp);
    };
  }
  return layouts;
}

void collect_slots(Module& m, const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) {
  for (const auto& [name, t] : m.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + name, &m.parameter_slot(name));
  for (const auto& [name, child] : m.named_children()) collect_slots(*child, prefix + name + ".", out);
}


// The same view of the same memory: how finish() recognises the gradient start() saw.
bool same_view(const Tensor& a, const Tensor& b) {
  return a.impl()->storage == b.impl()->storage && a.storage_offset() == b.storage_offset() &&
         a.shape() == b.shape() && a.strides() == b.strides();
}

}  // namespace

// One parameter's part in Note [Overlapped gradient reduction]. The hooks hold it (shared); it
// holds neither the parameter nor the body's leaves, so there is no cycle.
struct Parallelized::GradReducer {
  dist::DeviceMesh mesh;
  int64_t dp = -1;
  Placements placements;       // the parameter's: what the reduced gradient has
  Placements grad_placements;  // local_map's in_grad_placements for it: P(sum) on dp
  Shape global_shape;
  std::weak_ptr<TensorImpl> hooked;  // the parameter carrying finish() (a slot may be reassigned)
  struct InFlight {
    Tensor source;   // this rank's local gradient, as local_map will hand it on
    Tensor reduced;  // its sum over dp, pending until first read
  };
  std::vector<InFlight> in_flight;

  // The body leaf's hook: start the all-reduce, and let MPI advance the ones in flight (Note
  // [Progress of in-flight reductions]); the gradient itself goes on unchanged.
  Tensor start(const Tensor& grad) {
    in_flight.push_back({grad, dist::detail::all_reduce(grad, dist::ReduceOp::Sum, mesh, dp, /*async=*/true)});
    dist::detail::advance_collectives(mesh, dp);
    return Tensor();
  }

  // The parameter's hook, before accumulation: the P(sum) gradient whose sum is in flight becomes
  // that sum, Replicate on dp. Anything else is left alone; unmatched records are dropped (their
  // requests complete as they go).
  Tensor finish(const Tensor& grad) {
    if (in_flight.empty()) return Tensor();
    std::vector<InFlight> records = std::move(in_flight);
    in_flight.clear();
    if (!grad.is_dtensor()) return Tensor();
    DTensor g(grad);
    if (g.placements() != grad_placements || !(g.device_mesh() == mesh)) return Tensor();
    for (const InFlight& r : records)
      if (same_view(r.source, g.spec().local)) return dist::make_dtensor(r.reduced, mesh, placements, global_shape);
    return Tensor();
  }
};

namespace {

// Under data parallelism every BatchNorm takes its training statistics over the global batch
// (PyTorch's SyncBatchNorm), so outputs, gradients and running statistics are the single-process
// ones on every rank, and the running statistics (buffers) stay equal across ranks.
void synchronize_batch_norms(Module& root, const dist::DeviceMesh& mesh, int64_t dp) {
  std::vector<Module*> pending{&root};
  while (!pending.empty()) {
    Module* m = pending.back();
    pending.pop_back();
    if (auto* bn = dynamic_cast<BatchNorm*>(m))
      bn->sum_over_replicas = [mesh, dp](const Tensor& t) {
        return dist::funcol::all_reduce(t, dist::ReduceOp::Sum, mesh, dp);
      };
    for (const auto& child : m->children()) pending.push_back(child.get());
  }
}

}  // namespace

Parallelized::Parallelized(std::shared_ptr<UnaryModule> inner, dist::DeviceMesh device_mesh, int64_t dp, int64_t tp,
                           const Plan& tp_plan)
    : UnaryModule("Parallelized"), module(std::move(inner)), mesh(std::move(device_mesh)), dp_dim(dp), tp_dim(tp) {
  WEFT_CHECK(module != nullptr && mesh.defined(), "parallelize: expected a module and a mesh");
  for (int64_t d = 0; d < mesh.ndim(); ++d)
    WEFT_CHECK(d == dp || d == tp, "parallelize: mesh dim ", d, " of ", mesh.to_string(),
               " is neither the data-parallel nor the tensor-parallel dim");
  WEFT_CHECK(tp >= 0 || tp_plan.empty(), "parallelize: a tensor-parallel plan needs a tensor-parallel mesh dim");
  // Sequence parallelism: every sequence-parallel layout of the plan must split the same dim.
  for (const auto& [path, style] : tp_plan) {
    std::optional<int64_t> dim = sequence_dim_of(style, path);
    if (!dim) continue;
    WEFT_CHECK(*dim >= 1, "parallelize: '", path, "' splits the sequence along dim ", *dim,
               "; expected a dim >= 1 (dim 0 holds the batch)");
    WEFT_CHECK(!sequence_ || sequence_->dim == *dim, "parallelize: '", path, "' splits the sequence along dim ",
               *dim, " but an earlier entry of the plan along dim ", sequence_->dim);
    if (!sequence_) sequence_ = std::make_shared<SequenceShard>(SequenceShard{mesh, tp, *dim, 0});
  }
  // Layouts of the parameters the plan names; every other parameter is Replicate everywhere.
  Layouts layouts;
  std::vector<const Module*> styled;
  for (const auto& [path, style] : tp_plan) {
    std::shared_ptr<Module> target = find_module(module, path);
    WEFT_CHECK(std::find(styled.begin(), styled.end(), target.get()) == styled.end(), "parallelize: the plan names '",
               path, "' twice");
    styled.push_back(target.get());
    Layouts more;
    if (std::holds_alternative<SequenceParallel>(style)) {
      more = apply_sequence_parallel(*target, path, sequence_);
    } else if (std::holds_alternative<VocabParallel>(style)) {
      auto emb = std::dynamic_pointer_cast<Embedding>(target);
      WEFT_CHECK(emb != nullptr, "parallelize: the plan makes '", path, "' VocabParallel, but it is a ",
                 target->type_name(), "; expected an Embedding");
      WEFT_CHECK(!sequence_ || (path == "wte" && dynamic_cast<GPT*>(module.get())), "parallelize: '", path,
                 "' is VocabParallel in a plan with sequence parallelism; expected it there only on a GPT's "
                 "'wte', whose tokens every rank then holds whole");
      more = apply_vocab_parallel(*emb, path, mesh, tp, sequence_);
    } else {
      auto lin = std::dynamic_pointer_cast<Linear>(target);
      WEFT_CHECK(lin != nullptr, "parallelize: the plan names '", path, "', which is not a Linear");
      WEFT_CHECK(!lin->parallel_forward, "parallelize: '", path, "' is already tensor parallel");
      more = apply_linear_style(*lin, style, mesh, tp, sequence_);
    }
    layouts.insert(layouts.end(), more.begin(), more.end());
  }
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots(*module, "", slots);
  NoGradGuard no_grad;
  for (const auto& [name, slot] : slots) {
    auto same = [&](const Param& p) { return p.slots[0]->is_same(*slot); };
    if (auto it = std::find_if(params_.begin(), params_.end(), same); it != params_.end()) {
      it->slots.push_back(slot);  // a tied weight: one DTensor in both slots
      continue;
    }
    const Tensor original = *slot;
    WEFT_CHECK(!original.is_dtensor(), "parallelize: parameter '", name, "' is already a DTensor");
    Placements placements = dist::replicate_all(mesh.ndim());
    Shape view = original.shape();
    std::optional<dist::Placement> tp_grad;
    for (const auto& [ptr, layout] : layouts)
      if (ptr == slot) {
        view = layout.view;
        placements[static_cast<size_t>(tp)] = layout.tp;
        tp_grad = layout.tp_grad;
      }
    Placements grads = placements;
    if (dp >= 0) grads[static_cast<size_t>(dp)] = dist::Partial();
    if (tp_grad) grads[static_cast<size_t>(tp)] = *tp_grad;
    DTensor d = dist::distribute_tensor(original.detach().reshape(view), mesh, placements, /*src_rank=*/mesh.ranks()[0]);
    d.requires_grad_(original.requires_grad());
    *slot = d;
    auto reducer = std::make_shared<GradReducer>();
    reducer->mesh = mesh;
    reducer->dp = dp;
    // The reduced gradient: Replicate on dp; on tp a Partial gradient stays Partial (the optimizer
    // all-reduces it; Note [Sequence parallelism]).
    reducer->placements = grads;
    if (dp >= 0) reducer->placements[static_cast<size_t>(dp)] = d.placements()[static_cast<size_t>(dp)];
    reducer->grad_placements = grads;
    reducer->global_shape = d.shape();
    params_.push_back({name, {slot}, original.shape(), grads, std::move(reducer)});
  }
  register_module("module", module);
  if (dp >= 0 && mesh.size(dp) > 1) synchronize_batch_norms(*module, mesh, dp);
  input_placements_ = dist::replicate_all(mesh.ndim());
  if (dp >= 0) input_placements_[static_cast<size_t>(dp)] = dist::Shard(0);
  // Sequence parallel: the tokens are split along the sequence, unless the vocabulary is (then
  // every rank needs every token; the lookup's sum reduce-scatters into the chunks).
  const bool whole_tokens = std::any_of(tp_plan.begin(), tp_plan.end(), [](const auto& entry) {
    return std::holds_alternative<VocabParallel>(entry.second);
  });
  if (sequence_ && !whole_tokens) input_placements_[static_cast<size_t>(tp)] = dist::Shard(sequence_->dim);
  // A GPT's head over this rank's vocabulary rows: the logits stay sharded over the vocabulary.
  output_placements_ = input_placements_;
  if (auto* gpt = dynamic_cast<GPT*>(module.get()); gpt && tp >= 0) {
    auto styled_as = [&](const std::string& name, auto tag) {
      return std::any_of(tp_plan.begin(), tp_plan.end(), [&](const auto& entry) {
        return entry.first == name && std::holds_alternative<decltype(tag)>(entry.second);
      });
    };
    if (gpt->lm_head ? styled_as("lm_head", ColwiseParallel{}) : styled_as("wte", VocabParallel{})) {
      output_placements_[static_cast<size_t>(tp)] = dist::Shard(2);
      output_even_ = gpt->config.vocab_size % mesh.size(tp) == 0;
    }
  }
}

int64_t Parallelized::sequence_dim() const { return sequence_ ? sequence_->dim : -1; }

Tensor Parallelized::local_batch(const Tensor& global_batch) const {
  weft::detail::check_plain(global_batch, "Parallelized.local_batch");
  Tensor out = global_batch;
  for (int64_t d = 0; d < mesh.ndim(); ++d) {
    const dist::Placement& p = input_placements_[static_cast<size_t>(d)];
    if (!p.is_shard()) continue;
    WEFT_CHECK(p.dim() < out.dim(), "Parallelized.local_batch: mesh dim ", d, " splits dim ", p.dim(),
               " of the batch, but got shape ", out.shape());
    auto [size, offset] = dist::chunk_size_and_offset(out.size(p.dim()), mesh.size(d), mesh.get_local_rank(d));
    out = out.narrow(p.dim(), offset, size);
  }
  return out;
}

double Parallelized::reduce_over_dp(double value) const {
  Tensor t = scalar_tensor(value, dtype(kFloat64)).reshape({1});
  for (int64_t d = 0; d < mesh.ndim(); ++d)
    if (input_placements_[static_cast<size_t>(d)].is_shard())
      t = dist::detail::all_reduce(t, dist::ReduceOp::Sum, mesh, d);
  return t.item<double>();
}

Tensor Parallelized::forward(const Tensor& x) {
  DTensor input = x.is_dtensor() ? DTensor(x)
                                 : dist::make_dtensor(local_batch(x).contiguous(), mesh, input_placements_, x.shape());
  std::vector<DTensor> params;
  std::vector<std::vector<Tensor*>> slots;
  dist::PlacementsList in{input_placements_}, in_grad{input_placements_};
  // See Note [Overlapped gradient reduction]. A mesh dim of one rank has nothing to reduce.
  const bool overlap = overlap_grad_reduce && dp_dim >= 0 && mesh.size(dp_dim) > 1 && GradMode::is_enabled();
  for (const Param& p : params_) {
    params.emplace_back(*p.slots[0]);
    slots.push_back(p.slots);
    in.push_back(params.back().placements());
    in_grad.push_back(p.grad_placements);
    const Tensor& param = params.back();
    if (!overlap || !param.requires_grad()) continue;
    GradReducer& r = *p.reducer;
    r.in_flight.clear();  // records a failed backward left behind (completed as they are dropped)
    if (r.hooked.lock().get() != param.impl()) {
      param.register_hook([reducer = p.reducer](const Tensor& g) { return reducer->finish(g); });
      r.hooked = param.impl_ptr();
    }
  }
  auto body = [&](const Tensor& local_x, const std::vector<Tensor>& locals) {
    // locals are the parameters' aliases on this call's tape: their hooks run when each parameter's
    // local gradient is complete, while the rest of the body's backward is still to come.
    for (size_t i = 0; overlap && i < locals.size(); ++i)
      if (locals[i].requires_grad())
        locals[i].register_hook([reducer = params_[i].reducer](const Tensor& g) { return reducer->start(g); });
    detail::SlotSwap swap(slots, locals);
    return module->forward(local_x);
  };
  if (sequence_) {
    WEFT_CHECK(input.dim() > sequence_->dim, "Parallelized (sequence parallel): expected an input with a sequence dim ",
               sequence_->dim, " but got shape ", input.shape());
    sequence_->length = input.size(sequence_->dim);
  }
  // Even rows (and sequence chunks) need no size exchange for the output's global shape.
  bool even = (dp_dim < 0 || input.size(0) % mesh.size(dp_dim) == 0) &&
              (!sequence_ || sequence_->length % mesh.size(tp_dim) == 0) && output_even_;
  const bool derive = derive_grad_placements && dist::spmd_types_enabled();
  return dist::local_map(body, {.out_placements = {output_placements_},
                                .in_placements = in,
                                .in_grad_placements = derive ? std::nullopt : std::optional(in_grad),
                                .device_mesh = mesh,
                                .redistribute_inputs = true,
                                .even_shards = even,
                                .derived_in_grad_placements = derive ? &derived_grad_placements : nullptr})(input, params);
}

StateDict Parallelized::full_state_dict() const {
  NoGradGuard no_grad;
  StateDict out;
  for (const Param& p : params_) {
    Tensor full = DTensor(*p.slots[0]).full_tensor();
    out.insert(p.name, full.reshape(p.original_shape).contiguous());
  }
  for (const auto& [name, b] : module->named_buffers())
    out.insert(name, b.is_dtensor() ? DTensor(b).full_tensor() : b);
  return out;
}

std::shared_ptr<Parallelized> data_parallel(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                            bool overlap_grad_reduce) {
  WEFT_CHECK(mesh.ndim() == 1, "data_parallel: expected a 1-D mesh but got ", mesh.to_string());
  auto model = std::make_shared<Parallelized>(std::move(module), mesh, 0, -1, Plan{});
  model->overlap_grad_reduce = overlap_grad_reduce;
  return model;
}

std::shared_ptr<Parallelized> tensor_parallel(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                              std::optional<Plan> plan) {
  WEFT_CHECK(mesh.ndim() == 1, "tensor_parallel: expected a 1-D mesh but got ", mesh.to_string());
  Plan p = plan ? *plan : default_tp_plan(*module);
  return std::make_shared<Parallelized>(std::move(module), mesh, -1, 0, p);
}

std::shared_ptr<Parallelized> sequence_parallel(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                                std::optional<Plan> plan) {
  WEFT_CHECK(mesh.ndim() == 1, "sequence_parallel: expected a 1-D mesh but got ", mesh.to_string());
  Plan p = plan ? *plan : default_sp_plan(*module);
  return std::make_shared<Parallelized>(std::move(module), mesh, -1, 0, p);
}

std::shared_ptr<Parallelized> parallelize(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                          const std::string& dp_name, const std::string& tp_name,
                                          std::optional<Plan> plan) {
  int64_t dp = dp_name.empty() ? -1 : mesh.dim_index(dp_name);
  int64_t tp = tp_name.empty() ? -1 : mesh.dim_index(tp_name);
  Plan p = tp < 0 ? Plan{} : plan ? *plan : default_tp_plan(*module);
  return std::make_shared<Parallelized>(std::move(module), mesh, dp, tp, p);
}

Tensor global_mean(const Tensor& local_sum, int64_t global_count) {
  WEFT_CHECK(global_count > 0, "global_mean: expected a positive global count but got ", global_count);
  return div(local_sum, static_cast<double>(global_count));
}

}  // namespace weft::nn::parallel
