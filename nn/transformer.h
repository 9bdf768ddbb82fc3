// nn transformer: causal self-attention, the pre-norm block, and a small GPT language model.
#pragma once

#include "nn/layers.h"
#include "nn/parallel.h"

namespace weft::nn {

// Multi-head causal self-attention over (B, T, C): one fused qkv projection, per-head
// scaled_dot_product_attention with the causal mask, then the output projection.
class CausalSelfAttention : public UnaryModule {
 public:
  CausalSelfAttention(int64_t n_embd, int64_t n_head, bool bias = true, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t n_embd, n_head;
  std::shared_ptr<Linear> qkv;   // C -> 3C, laid out [q | k | v]
  std::shared_ptr<Linear> proj;  // C -> C
  std::shared_ptr<Dropout> resid_dropout;
};

// x + attn(ln1(x)), then x + mlp(ln2(x)).
class TransformerBlock : public UnaryModule {
 public:
  TransformerBlock(int64_t n_embd, int64_t n_head, int64_t mlp_ratio = 4, bool bias = true, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<LayerNorm> ln1;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<LayerNorm> ln2;
  std::shared_ptr<MLP> mlp;
};

struct GPTConfig {
  int64_t vocab_size = 64;
  int64_t block_size = 32;  // the longest sequence (number of positions)
  int64_t n_layer = 2;
  int64_t n_head = 2;
  int64_t n_embd = 32;
  double dropout = 0.0;
  bool bias = true;
  bool tie_weights = true;  // the output head reuses the token embedding
};

// Token + position embeddings, n_layer blocks, a final LayerNorm and the vocabulary head.
// Weights start as GPT-2's: N(0, 0.02) for linear and embedding weights, zero biases.
class GPT : public UnaryModule {
 public:
  explicit GPT(const GPTConfig& config);
  // idx: (B, T) int64 token ids with T <= block_size. Returns logits (B, T, vocab_size).
  Tensor forward(const Tensor& idx) override;
  std::string extra_repr() const override;

  GPTConfig config;
  std::shared_ptr<Embedding> wte, wpe;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<Sequential> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> lm_head;  // null when tie_weights
  // Set by sequence parallelism (nn/parallel.h): idx is then this rank's chunk of each sequence,
  // and this returns the chunk's token + position embeddings. Empty otherwise.
  std::function<Tensor(const Tensor& idx)> parallel_embed;
};

}  // namespace weft::nn

namespace weft::nn::parallel {
// Megatron's plan for the modules above: every MLP (fc1 column, fc2 row) and every
// CausalSelfAttention (qkv column by heads, proj row by heads) under `module`. With vocab_parallel
// and a GPT as `module`, also its vocabulary (Note [Vocabulary parallelism]): "wte" VocabParallel
// and, untied, "lm_head" ColwiseParallel; the logits are then Shard(2) on tp.
Plan default_tp_plan(const Module& module, bool vocab_parallel = false);
// default_tp_plan with sequence parallelism (Note [Sequence parallelism]): the column-parallel
// Linears gather sequence chunks along dim 1, the row-parallel ones reduce-scatter into them, and
// every other LayerNorm, RMSNorm, Dropout, Embedding, Linear and GPT (the root included) is
// SequenceParallel: it runs on this rank's chunk. With vocab_parallel, a GPT's "wte" is VocabParallel
// instead (every rank takes all the tokens; the lookup reduce-scatters into the chunks) and an
// untied "lm_head" ColwiseParallel over gathered chunks: the logits are Shard(2) on tp.
Plan default_sp_plan(const Module& module, bool vocab_parallel = false);
}  // namespace weft::nn::parallel
