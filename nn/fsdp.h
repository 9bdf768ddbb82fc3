// nn/fsdp.h: fully_shard, FSDP2's design on DTensor: parameters held as Shard(0) shards, gathered
// around each sharded module's forward (the next one prefetched), gradients reduce-scattered back
// to the shards during backward.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distributed/device_mesh.h"
#include "distributed/placement.h"
#include "framework/dtype.h"
#include "nn/module.h"
#include "nn/parallel.h"

namespace weft::nn::parallel {

// Note [Fully sharded data parallel]
// fully_shard(m, mesh) makes m one FSDP unit: every parameter of m's tree not already in a nested
// unit becomes a DTensor Shard(0) over the dp mesh dim (torch.chunk pieces, so uneven sizes are
// fine), taken from rank 0's values. Nothing else changes in the tree: names, state dicts and the
// optimizers see the shards (an optimizer steps on them unchanged, Note [DTensor parameters in
// optimizers]). The unit's forward wrapper (UnaryModule::add_forward_wrapper, run when the module
// is called as module(x), as Sequential and weft's own modules call their children; a direct
// child->forward(x) skips it, as it skips PyTorch's hooks) does FSDP2's steps:
//  - pre-forward: all-gather the unit's parameters (async, one all_gather per parameter), start the
//    gather of the unit that ran next in the previous forward (prefetch, so it overlaps this unit's
//    compute), wait for its own, and point the parameter slots at the gathered tensors. Each one
//    is the output of a node whose input is the DTensor parameter (FsdpGather in fsdp.cpp).
//  - post-forward, with reshard_after_forward: the gathered tensors are freed. The graph does not
//    hold them, because the unit's forward runs under saved tensor hooks (Note [Saved tensor
//    hooks]) that keep a placeholder for any saved tensor sharing a gathered parameter's memory; a
//    hook on the unit's output (pre-backward) gathers them again before the unit's backward needs
//    them, and starts the gather of the unit before it in forward order (backward prefetch).
//  - backward: FsdpGather's backward gets the gradient of the gathered tensor, this rank's part of
//    a sum over dp, and brings it to the parameter's placements with gradient_to(async=true): one
//    reduce_scatter left in flight while the rest of backward runs (Note [Gradients in flight]),
//    and a probe that lets MPI advance what is in flight on dp (Note [Progress of in-flight
//    reductions] in distributed/progress.h). data_parallel gets the same overlap from hooks on
//    local_map's parameter aliases (Note [Overlapped gradient reduction]); here the gather is its
//    own node, whose backward runs exactly when the parameter's gradient is complete (tied uses
//    summed). When the unit's last gradient is issued, the reductions of the unit whose backward
//    ran before are waited for, so that at most about two units' full-size gradients are in flight.
// The module fully_shard returns (FullyShardedModule) is the root: its forward takes a batch as
// Parallelized::forward does and records the order the units ran in (the next forward prefetches
// by it). The root keeps its own parameters gathered after forward, as FSDP2 does, since its
// backward starts at once. Gradient accumulation needs nothing special: each forward gathers
// anew, and a second backward adds Shard(0) + Shard(0) gradients locally.
// Tensor parallelism (a Parallelized from parallelize(model, mesh, "dp", "tp")) composes: FSDP
// unwraps it, keeps its Megatron Linear forwards and shards the tp-local tensors over dp, so a
// parameter is [Shard(0) on dp, its tp placement]. weft has no _StridedShard, so where tp already
// shards dim 0, FSDP shards dim 1 (a 1-D one stays Replicate on dp; its gradient is all-reduced).
// Mixed precision: see Note [FSDP mixed precision].

// Note [FSDP mixed precision]
// MixedPrecisionPolicy is FSDP2's (torch.distributed.fsdp.MixedPrecisionPolicy), same defaults. The
// shards stay in their dtype (float32: the optimizer's master weights, and .grad lands there in it).
//  - param_dtype: each shard is cast before its all_gather (Gathered::gather in fsdp.cpp), so the
//    gather moves param_dtype words (half the bytes for bfloat16) and forward and backward compute
//    with param_dtype parameters: the gathered tensor is shard.to(param_dtype) gathered, exactly.
//  - reduce_dtype (unset: param_dtype): the gathered parameter's gradient is cast to it and
//    reduce-scattered in it (a bfloat16 reduction sums in float32 and rounds once, Note [16-bit
//    floats in collectives]), then cast to the shard's dtype. When that last cast changes the dtype
//    it waits for the reduce-scatter, so only reduce_dtype == the shard's dtype (float32, the
//    usual choice with bfloat16 params) keeps the reduction overlapped with backward
//    (async_reduce); a bfloat16 reduce_dtype halves the bytes but completes at once.
//  - cast_forward_inputs: a unit's floating inputs are cast to param_dtype (differentiably) before
//    its forward; integer inputs (token ids) pass as they are. Off, the caller casts: ops such as
//    linear refuse a float32 input with bfloat16 weights, as torch's do.
//  - output_dtype: a unit's floating output is cast to it. Per fully_shard call, as FSDP2's: set
//    on the root alone it gives the loss float32 logits while the blocks pass bfloat16 on.
// Everything in a unit computes in param_dtype, layer norms included (autocast, docs/autocast.md,
// picks per op instead).
// Unset param_dtype means no casts at all (reduce_dtype alone still casts the gradient for the
// reduction, as in PyTorch).
struct MixedPrecisionPolicy {
  std::optional<DType> param_dtype = std::nullopt;
  std::optional<DType> reduce_dtype = std::nullopt;
  std::optional<DType> output_dtype = std::nullopt;
  bool cast_forward_inputs = true;
};

struct FullyShardOptions {
  // The mesh dim sharded over, by name. Empty: a 1-D mesh's dim, or the dim named "dp".
  std::string mesh_dim = "";
  // Free the gathered parameters after forward and gather them again for backward (the root's
  // are kept either way).
  bool reshard_after_forward = true;
  // Start the next unit's all_gather before this unit computes (forward and backward).
  bool prefetch = true;
  // Leave each gradient's reduce-scatter in flight while backward goes on. Off, it completes
  // before backward continues: the benchmarks' no-overlap baseline.
  bool async_reduce = true;
  // With async_reduce: probe MPI at each gradient so that the collectives in flight advance (Note
  // [Progress of in-flight reductions]). Off: bench_overlap's paired baseline for the probe.
  bool advance_in_flight = true;
  // FSDP2's mp_policy; see Note [FSDP mixed precision]. Each dtype must be a floating one.
  MixedPrecisionPolicy mp_policy = {};
};

// The root module fully_shard returns; see Note [Fully sharded data parallel].
class FullyShardedModule : public UnaryModule {
 public:
  struct Unit;  // one FSDP unit: its parameters and their gathers (fsdp.cpp)

  FullyShardedModule(std::shared_ptr<UnaryModule> module, std::shared_ptr<Parallelized> tp,
                     dist::DeviceMesh mesh, int64_t dp_dim, std::shared_ptr<Unit> unit);

  // x: the batch as a DTensor, or a plain tensor holding the whole global batch on every rank
  // (each rank takes its rows). Returns the output as a DTensor with input_placements().
  Tensor forward(const Tensor& x) override;

  // [Shard(0) on dp, Replicate elsewhere].
  const dist::Placements& input_placements() const { return input_placements_; }
  // This rank's rows of a global batch that every rank holds (no communication).
  Tensor local_batch(const Tensor& global_batch) const;
  // The sum over dp of a per-rank value (a loss computed with global_mean).
  double reduce_over_dp(double value) const;
  // Every parameter and buffer gathered to a plain tensor with its single-process name and shape.
  // Collective.
  StateDict full_state_dict() const;

  std::shared_ptr<UnaryModule> module;  // the sharded module (a Parallelized's inner module)
  dist::DeviceMesh mesh;
  int64_t dp_dim;

 private:
  std::shared_ptr<Parallelized> tp_;  // set when FSDP wraps a tensor-parallel model
  std::shared_ptr<Unit> unit_;
  std::vector<std::weak_ptr<Unit>> last_order_;  // the units in the order the last forward ran them
  dist::Placements input_placements_;
};

// Makes `module` an FSDP unit over `mesh` (collective) and returns it as a root. Call it on inner
// modules first (each transformer block), then on the root; a nested unit stays in its place in
// the tree and must be called as module(x) (Sequential does). `module` may be a Parallelized with
// a dp dim: FSDP then composes with its tensor parallelism.
std::shared_ptr<FullyShardedModule> fully_shard(std::shared_ptr<UnaryModule> module,
                                                const dist::DeviceMesh& mesh, FullyShardOptions options = {});

}  // namespace weft::nn::parallel
