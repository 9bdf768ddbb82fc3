// nn/vocab_parallel.h: Megatron's vocabulary parallelism: the token embedding, the output head tied
// to it and the cross-entropy, each on this rank's rows of the vocabulary, so no rank holds the
// whole table, the whole logits or their gradients.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "distributed/device_mesh.h"
#include "distributed/dtensor.h"

namespace weft::nn::parallel {

// Note [Vocabulary parallelism]
// Under tensor parallelism alone, the embedding, the head and the loss run whole on every rank: at
// train_gpt's size that replicated tail bounds a 2-rank step near 1.8x. Megatron-LM splits them over
// the vocabulary instead: rank r of mesh dim tp holds rows [offset, offset + rows) of the table,
// torch.chunk's r-th piece (uneven vocabularies leave the last ranks shorter, possibly empty).
//  - the embedding looks up the ids this rank owns and writes zeros for the others; the sum over
//    ranks (reduce_from_parallel_region: one all-reduce forward, none backward; or a reduce-scatter
//    into sequence chunks) is the full embedding. SPMD types: table Varying, lookup Varying, sum
//    Invariant (or Varying chunks).
//  - the head multiplies the activations (Invariant, through copy_to_parallel_region, whose
//    backward all-reduces their gradient; or sequence chunks all-gathered) by the same local rows:
//    logits (..., rows), Varying, the model's output Shard(last dim). Never gathered.
//  - the cross-entropy of those logits needs, per row, the log-sum-exp over the whole vocabulary
//    and the target's logit (held by one rank). Megatron all-reduces the max, then the sum of
//    exp(logit - max) and the target logit: two sync points. Here each rank sends three numbers per
//    row, the log-sum-exp of its own columns (stable: its own max inside), the target's logit (0
//    where another rank holds it) and the sum of its logits (for label smoothing), in ONE
//    all-gather (k x 3 x rows doubles), and every rank combines them stably: lse = M + log sum_r
//    exp(lse_r - M), M the largest lse_r. Its backward, g (softmax - (1 - eps) one-hot - eps / V),
//    is computed on this rank's columns alone: no communication, the full logits never exist. Typed
//    as a collective: Varying logits in, an Invariant loss out (its gradient arrives the same on
//    every rank).
// The table's gradient is Shard(0), exact, no communication: the lookup's and the head's parts of
// it are both this rank's rows.

// This rank's rows of a vocabulary of vocab_size split over mesh_dim: (rows, offset).
std::pair<int64_t, int64_t> vocab_shard(int64_t vocab_size, const dist::DeviceMesh& mesh, int64_t mesh_dim);

// indices: int64 ids in [0, vocab_size), the same on every rank of mesh_dim; local_weight: this
// rank's rows of the (vocab_size, C) table. Returns the embeddings (..., C), Invariant, or with
// sequence_dim >= 0 this rank's torch.chunk of that dim (reduce-scatter: Varying).
Tensor vocab_parallel_embedding(const Tensor& indices, const Tensor& local_weight, int64_t vocab_size,
                                const dist::DeviceMesh& mesh, int64_t mesh_dim, int64_t sequence_dim = -1);

// The head tied to the table: x (..., C) times this rank's rows, logits (..., rows), Varying. x is
// the same on every rank (Invariant), or with sequence_sizes (every rank's length along
// sequence_dim) this rank's chunk, all-gathered first.
Tensor vocab_parallel_logits(const Tensor& x, const Tensor& local_weight, const dist::DeviceMesh& mesh,
                             int64_t mesh_dim, int64_t sequence_dim = -1, std::vector<int64_t> sequence_sizes = {});

// cross_entropy(full logits, target, reduction, ignore_index, label_smoothing) from this rank's
// logits (..., rows) over a vocabulary of vocab_size split over mesh_dim, with the class dim LAST;
// target (...) int64, the same on every rank of mesh_dim. Returns the loss (per row with "none"),
// the same on every rank (Invariant); its gradient is local. Class weights and probability targets
// are not supported. Usable inside a local_map body (its collectives are the typed ones).
Tensor vocab_parallel_cross_entropy(const Tensor& local_logits, const Tensor& target, int64_t vocab_size,
                                    const dist::DeviceMesh& mesh, int64_t mesh_dim,
                                    const std::string& reduction = "mean", int64_t ignore_index = -100,
                                    double label_smoothing = 0.0);
// The same from DTensor logits sharded on their last dim (Shard(logits.dim() - 1) on one mesh dim,
// e.g. a vocab-parallel GPT's output), target being this rank's rows of the targets (as
// Parallelized::local_batch gives them). Returns this rank's loss as a plain tensor: over data
// parallelism, the reduction of its own rows.
Tensor vocab_parallel_cross_entropy(const dist::DTensor& logits, const Tensor& target,
                                    const std::string& reduction = "mean", int64_t ignore_index = -100,
                                    double label_smoothing = 0.0);

}  // namespace weft::nn::parallel
