// nn/parallel.h: parallel styles built on dist::local_map: data parallel, Megatron tensor parallel
// (column- and row-parallel Linear), sequence parallel, and these together on a 2-D ("dp", "tp") mesh.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "distributed/device_mesh.h"
#include "distributed/dtensor.h"
#include "distributed/local_map.h"
#include "nn/layers.h"

namespace weft::nn::parallel {

// Note [Parallel styles on local_map]
// A parallelized model is ONE local_map call around the plain single-process module: its parameters
// become DTensors (distribute_tensor from rank 0, so every rank starts from rank 0's values), and
// the local_map body swaps each parameter's registry slot to its local shard, runs the module's own
// forward, and swaps back. So any module works unchanged under data parallelism, and the placements
// say the rest:
//  - data parallel (mesh dim dp): parameters Replicate, the batch Shard(0); in_grad_placements
//    Partial(sum) on dp, so each parameter's gradient is P(sum). With overlap_grad_reduce (the
//    default) its all-reduce starts during backward (Note [Overlapped gradient reduction]) and
//    .grad is already Replicate; without it the optimizer all-reduces the P(sum) gradients (see
//    Note [DTensor parameters in optimizers], coalesced into one all_reduce per step).
//  - tensor parallel (mesh dim tp): a Linear marked ColwiseParallel holds its weight and bias
//    Shard(0) over output features and RowwiseParallel holds its weight Shard(1) over input
//    features, bias Replicate. Their forward (Linear::parallel_forward) is Megatron's: column-parallel
//    is linear(copy_to_parallel_region(x), W_local, b_local) -- identity forward, all-reduce of the
//    input gradient backward -- and row-parallel is reduce_from_parallel_region(linear(x_local,
//    W_local)) + b -- one all-reduce forward, the bias added once. Everything between (GELU, the
//    attention of this rank's heads) is plain local code. We use the funcol pair inside the body
//    rather than local_map in/out placements per Linear because weft has no sharding propagation:
//    the ops between the two Linears must see plain local tensors anyway, and one local_map per
//    model keeps the outer tape to one node. Gradients: Shard params get Shard gradients (exact,
//    no communication); Replicate params on tp get Replicate gradients, which are exact because
//    every tp rank sees the full activations' gradients (copy_to_parallel_region all-reduced them).
// Batch norm under data parallelism: every BatchNorm in the module is given a sum over dp
// (BatchNorm::sum_over_replicas), so its training statistics are the global batch's, as PyTorch's
// SyncBatchNorm; outputs, gradients and running statistics (buffers) are then the single-process
// ones on every rank, and the buffers need no broadcast.
// Loss scaling: under data parallelism each rank's gradients are P(sum) over dp, so the loss each
// rank backpropagates must be its share of the GLOBAL mean: sum of its per-sample (per-token)
// losses divided by the global count (global_mean below). A per-rank mean would make the summed
// gradient dp times too large (and wrong for uneven shards).

// Note [Overlapped gradient reduction]
// The whole module runs inside one local_map, whose body sees each parameter as an alias of its
// local tensor (Note [local_map on the outer tape] in distributed/local_map.cpp). Each forward
// registers a hook on that alias, which runs as soon as the parameter's local gradient is
// complete (after every use, tied weights included: the alias's node runs as soon as it is
// ready, not at the end of backward), starts a
// non-blocking all_reduce over dp (async: the result waits on first data access, Note [Gradients
// in flight]) and records (local gradient, in-flight sum). The backward of the rest of the body
// goes on meanwhile; each later start() also lets MPI advance the sums in flight, which Open MPI
// does only inside MPI calls (Note [Progress of in-flight reductions] in distributed/progress.h).
// When local_map hands the P(sum) gradient to the DTensor parameter, a hook on the parameter
// (which runs before accumulation) recognises the local gradient it recorded (same storage and
// view) and replaces it by the in-flight sum as a Replicate DTensor. So:
//  - after backward, .grad is Replicate (its data may still be in flight); the optimizer's
//    sync_grads finds the placements matching and communicates nothing (a parameter used on
//    sequence chunks stays Partial on tp, for the optimizer; Note [Sequence parallelism]);
//  - gradient accumulation (a second backward without zero_grad) adds Replicate + Replicate:
//    the new contribution was itself replaced by its in-flight sum, so nothing is reduced twice
//    and the sum is exact; the add waits for both (during that backward);
//  - anything the hook does not recognise (two forwards summed by the engine before the
//    parameter sees them, a gradient with other placements) is left as it is: a P(sum) gradient
//    the optimizer all-reduces as without overlap; the unused in-flight sums are dropped;
//  - dropping an in-flight gradient (zero_grad, a stale record) completes its MPI request (the
//    pending work waits in its destructor), and an MPI error surfaces as weft::Error on first
//    access; a rank that never joins makes the others wait, which WEFT_COLLECTIVE_TIMEOUT turns
//    into an abort naming the collective.
// Every rank issues the all-reduces in the same order, because backward runs nodes in the same
// order on every rank. Only mesh dim dp is reduced this way; tp placements are not touched.

// Note [Sequence parallelism]
// Under tensor parallelism the code between the TP regions (norms, dropout, residual adds, the
// embeddings and the head) runs on the whole sequence on every tp rank. Sequence parallelism
// (Megatron-LM's, PyTorch's SequenceParallel with Colwise input_layouts=Shard(1) and Rowwise
// output_layouts=Shard(1)) splits that code along the sequence dim instead: the activations
// between TP regions are this rank's torch.chunk of the sequence, a column-parallel Linear
// all-gathers them first and a row-parallel one reduce-scatters its partial outputs back into
// chunks, so each TP region's all-reduce becomes an all-gather plus a reduce-scatter (the same
// bytes) and the activations outside the regions shrink by the tp size. When a plan holds any
// sequence-parallel layout, the Parallelized input and output are Shard(sequence_dim) on tp: each
// rank embeds its chunk of the tokens (the GPT's hook gives its positions), runs the final norm and
// the head on it, and the logits come out as sequence shards, so the loss needs the targets'
// matching chunk (local_batch) and its sum runs over tp too (reduce_over_dp). No collective runs
// at these two ends. Uneven lengths follow torch.chunk (a rank may hold an empty chunk). With the
// vocabulary split as well (VocabParallel on a GPT's "wte", Note [Vocabulary parallelism]) the ends
// change: every tp rank takes all the tokens (input Replicate on tp), its lookup's sum reduce-scatters
// into the chunks, the head all-gathers them, and the logits are Shard(2) on tp with whole sequences.
// Replicated parameters used on the chunks (norms, embeddings, the row-parallel bias) get Partial
// gradients over tp, all-reduced by the optimizer with the others (one all_reduce per step); the
// SPMD types check this: declaring such a gradient Replicate fails in the body.
// Dropout on a chunk (see nn/layers.h, Dropout::parallel_forward): PyTorch draws random values of
// a sharded DTensor as the matching part of the full tensor's draw (its offset-based RNG tracker),
// so masks differ across tp ranks exactly as the sequence positions they cover do, and no two
// ranks drop the same element for the same position by accident. We do the same: every tp rank
// draws the mask for the whole sequence of its rows from the shared generator and keeps its chunk,
// so the masks equal the single-process ones and the generator stays in step on every rank. Over
// dp nothing changes (each dp rank draws for its rows as under data parallelism).
// The SPMD types: a chunk is Varying on tp. The tokens are Shard(1) at the boundary, but an
// embedding's type comes from its table only (integer indices are neutral), so the GPT's hook
// reinterprets its embeddings as Varying: a Replicate table each rank reads at its own positions.

// Column-parallel Linear: output features sharded. `groups` and `unit` shard whole blocks: the
// output features are laid out as (groups, n, unit) and the n blocks of `unit` features are split
// across ranks within each group (qkv: groups = 3 for [q | k | v], unit = head_dim, so a rank holds
// whole heads of q, k and v; the weight is held as (3, n_head, head_dim, in)). Defaults: Shard(0).
// input_layout (PyTorch's input_layouts): Replicate, or Shard(d) under sequence parallelism: the
// sequence shards are all-gathered along d first (backward: reduce-scatter).
struct ColwiseParallel {
  int64_t groups = 1;
  int64_t unit = 1;
  dist::Placement input_layout = dist::Replicate();
};
// Row-parallel Linear: input features sharded in blocks of `unit` (attention's proj: unit =
// head_dim, matching the heads of the column-parallel qkv; the weight is held as (out, n, unit)).
// output_layout (PyTorch's output_layouts): Replicate sums the partial outputs with an all-reduce;
// Shard(d) reduce-scatters them along d into sequence shards (backward: all-gather), and the bias,
// added on the shard, gets a Partial gradient over tp.
struct RowwiseParallel {
  int64_t unit = 1;
  dist::Placement output_layout = dist::Replicate();
};
// Sequence parallel (PyTorch's SequenceParallel): the module runs on this rank's chunk of the
// sequence (dim `sequence_dim` of its input); its own parameters stay Replicate and their gradients
// are Partial(sum) over tp. A Dropout draws its mask for the whole sequence and keeps its chunk, a
// GPT takes its tokens as sequence shards; see Note [Sequence parallelism].
struct SequenceParallel {
  int64_t sequence_dim = 1;
};
// Vocab-parallel Embedding (Megatron's VocabParallelEmbedding; PyTorch's RowwiseParallel on an
// nn.Embedding): the table Shard(0) over tp (uneven vocabularies allowed, at least one row per
// rank); the lookup sums every rank's rows with one all-reduce, and the head tied to the table
// (Embedding::attend, a GPT with tie_weights) gives logits sharded over the vocabulary. On a GPT's
// "wte" (tied) or with its "lm_head" ColwiseParallel, the Parallelized output is Shard(2) on tp:
// take the loss with vocab_parallel_cross_entropy (nn/vocab_parallel.h). See Note [Vocabulary
// parallelism] there. With sequence parallelism (a GPT's "wte" only): every rank takes all the
// tokens (the input is Replicate on tp), the lookup reduce-scatters into sequence chunks and the head
// all-gathers them.
struct VocabParallel {};
using Style = std::variant<ColwiseParallel, RowwiseParallel, SequenceParallel, VocabParallel>;
// Module paths ("blocks.0.mlp.fc1"; "" is the root) and their styles (Colwise, Rowwise: Linear only;
// VocabParallel: Embedding only).
using Plan = std::vector<std::pair<std::string, Style>>;

// The default plans of nn's transformer modules are default_tp_plan and default_sp_plan (nn/transformer.h).

// A module distributed over a mesh; see Note [Parallel styles on local_map]. Its parameters are
// the inner module's, now DTensors; forward takes and returns DTensors.
class Parallelized : public UnaryModule {
 public:
  // dp_dim / tp_dim: mesh dims (-1: not used). Parameters are distributed here (collective).
  Parallelized(std::shared_ptr<UnaryModule> module, dist::DeviceMesh mesh, int64_t dp_dim, int64_t tp_dim,
               const Plan& tp_plan);

  // x: the batch as a DTensor (redistributed to input_placements() if needed), or a plain tensor
  // holding the whole global batch on every rank (each rank takes its rows; no communication).
  // Returns the module's output as a DTensor with output_placements().
  Tensor forward(const Tensor& x) override;

  // [Shard(0) on dp, Replicate elsewhere]: the batch is split over dp and whole on every tp rank;
  // under sequence parallelism Shard(sequence_dim) on tp (each tp rank holds its sequence chunk),
  // except for a GPT with VocabParallel "wte" (every tp rank takes all the tokens).
  const dist::Placements& input_placements() const { return input_placements_; }
  // input_placements(), except Shard(2) on tp for a GPT whose head is vocab-parallel (VocabParallel
  // on its tied "wte", or ColwiseParallel on its "lm_head"): logits sharded over the vocabulary.
  const dist::Placements& output_placements() const { return output_placements_; }
  // This rank's part of a global batch that every rank holds (torch.chunk over dp, and over tp
  // under sequence parallelism; no communication): the rows its output (and loss) covers.
  Tensor local_batch(const Tensor& global_batch) const;
  // The sum of a per-rank value (a loss computed with global_mean) over the ranks holding different
  // parts of the batch: dp, and tp under sequence parallelism. The global value.
  double reduce_over_dp(double value) const;
  // The sequence dim split over tp (Note [Sequence parallelism]), or -1 without sequence parallelism.
  int64_t sequence_dim() const;
  // Every parameter and buffer gathered to a plain tensor with its single-process name and shape
  // ("blocks.0.attn.qkv.weight" as (3C, C)), loadable into the unparallelized model. Collective.
  StateDict full_state_dict() const;

  std::shared_ptr<UnaryModule> module;
  dist::DeviceMesh mesh;
  int64_t dp_dim, tp_dim;
  // Start each gradient's all-reduce over dp during backward; see Note [Overlapped gradient
  // reduction]. Read at each forward (a graph recorded before a change keeps its behaviour).
  bool overlap_grad_reduce = true;
  // Omit local_map's in_grad_placements and let it derive them from the body's SPMD types (Note
  // [local_map SPMD types]); the last forward's derived placements are kept in
  // derived_grad_placements (the batch's entry first, then one per parameter). They equal the
  // declared ones (Partial on dp for every parameter, Shard params' own on tp, Replicate
  // elsewhere); without type checking (WEFT_SPMD_TYPES=0) nothing is derived, so this is ignored.
  bool derive_grad_placements = false;
  dist::PlacementsList derived_grad_placements;

  struct GradReducer;  // per parameter: the hooks' shared state (nn/parallel.cpp)
  struct SequenceShard;  // the sequence-parallel hooks' shared state (nn/parallel.cpp)

 private:
  // One distributed parameter and the registry slots that hold it (tied weights share one).
  struct Param {
    std::string name;
    std::vector<Tensor*> slots;
    Shape original_shape;
    dist::Placements grad_placements;
    std::shared_ptr<GradReducer> reducer;
  };
  std::vector<Param> params_;
  dist::Placements input_placements_, output_placements_;
  bool output_even_ = true;  // a vocab-sharded output splits evenly (no size exchange per forward)
  std::shared_ptr<SequenceShard> sequence_;  // null without sequence parallelism
};

// Data parallel over a 1-D mesh: replicated parameters, the batch split over ranks.
// overlap_grad_reduce: see Note [Overlapped gradient reduction]; off, the optimizer all-reduces.
std::shared_ptr<Parallelized> data_parallel(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                            bool overlap_grad_reduce = true);
// Tensor parallel over a 1-D mesh with `plan` (default: default_tp_plan(*module)).
std::shared_ptr<Parallelized> tensor_parallel(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                              std::optional<Plan> plan = std::nullopt);
// Tensor and sequence parallel over a 1-D mesh with `plan` (default: default_sp_plan(*module)).
std::shared_ptr<Parallelized> sequence_parallel(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                                std::optional<Plan> plan = std::nullopt);
// Both on a 2-D mesh, naming its dims: parallelize(model, init_device_mesh({2, 2}, {"dp", "tp"}),
// "dp", "tp"). Either name may be empty to leave that kind of parallelism out. For sequence
// parallelism pass default_sp_plan(*module) as the plan.
std::shared_ptr<Parallelized> parallelize(std::shared_ptr<UnaryModule> module, const dist::DeviceMesh& mesh,
                                          const std::string& dp_dim_name, const std::string& tp_dim_name,
                                          std::optional<Plan> plan = std::nullopt);

// A rank's share of the mean over the global batch: sum of its per-sample losses / global count.
// See the loss scaling paragraph of Note [Parallel styles on local_map].
Tensor global_mean(const Tensor& local_sum, int64_t global_count);

}  // namespace weft::nn::parallel
