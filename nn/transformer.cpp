// nn transformer: attention head split/merge, the residual block, the GPT forward pass and the
// default tensor-parallel plan of these modules.
#include "nn/transformer.h"

#include "framework/factories.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace weft::nn {

// --- CausalSelfAttention ---

CausalSelfAttention::CausalSelfAttention(int64_t embd, int64_t heads, bool bias, double dropout)
    : UnaryModule("CausalSelfAttention"), n_embd(embd), n_head(heads) {
  WEFT_CHECK(heads > 0 && embd % heads == 0, "CausalSelfAttention: n_embd (", embd,
             ") must be a positive multiple of n_head (", heads, ")");
  qkv = register_module("qkv", std::make_shared<Linear>(embd, 3 * embd, bias));
  proj = register_module("proj", std::make_shared<Linear>(embd, embd, bias));
  resid_dropout = register_module("resid_dropout", std::make_shared<Dropout>(dropout));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  WEFT_CHECK(x.dim() == 3 && x.size(2) == n_embd, "CausalSelfAttention: expected input (B, T, ", n_embd,
             ") but got shape ", x.shape());
  // Under tensor parallelism qkv returns this rank's heads only (nn/parallel.h), and under sequence
  // parallelism the whole sequence of x's chunk, so the width, the head count and the length are
  // read from its output: C = n_embd, H = n_head and T = x.size(1) in a single process.
  Tensor q_k_v = (*qkv)(x);
  int64_t B = x.size(0), T = q_k_v.size(1), C = q_k_v.size(2) / 3, D = n_embd / n_head, H = C / D;
  // (B, T, 3C) -> (B, 3H, T, D), views: heads become a batch dim for attention, and q, k, v are its
  // thirds (three parts even when C = 0). Split last, so that split's one backward writes the three
  // gradients straight into the layout of q_k_v (Note [Split's gradient] in ops/shape_ops.cpp):
  // reshaping each head gradient back to (B, T, C) first would copy each of them.
  Tensor all_heads = q_k_v.reshape({B, T, 3 * H, D}).transpose(1, 2);
  TensorList parts = split(all_heads, std::vector<int64_t>{H, H, H}, /*dim=*/1);
  Tensor y = scaled_dot_product_attention(parts[0], parts[1], parts[2], Tensor(), /*is_causal=*/true);
  y = y.transpose(1, 2).reshape({B, T, C});
  return (*resid_dropout)((*proj)(y));
}

std::string CausalSelfAttention::extra_repr() const {
  return "n_embd=" + std::to_string(n_embd) + ", n_head=" + std::to_string(n_head);
}

// --- TransformerBlock ---

TransformerBlock::TransformerBlock(int64_t embd, int64_t heads, int64_t mlp_ratio, bool bias, double dropout)
    : UnaryModule("TransformerBlock") {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(Shape{embd}, 1e-5, true, bias));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(embd, heads, bias, dropout));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(Shape{embd}, 1e-5, true, bias));
  mlp = register_module("mlp", std::make_shared<MLP>(embd, mlp_ratio * embd, embd, bias));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  Tensor h = x + (*attn)((*ln1)(x));
  return h + (*mlp)((*ln2)(h));
}

// --- GPT ---

GPT::GPT(const GPTConfig& cfg) : UnaryModule("GPT"), config(cfg) {
  WEFT_CHECK(cfg.vocab_size > 0 && cfg.block_size > 0 && cfg.n_layer >= 0,
             "GPT: expected positive vocab_size and block_size but got ", cfg.vocab_size, " and ", cfg.block_size);
  wte = register_module("wte", std::make_shared<Embedding>(cfg.vocab_size, cfg.n_embd));
  wpe = register_module("wpe", std::make_shared<Embedding>(cfg.block_size, cfg.n_embd));
  drop = register_module("drop", std::make_shared<Dropout>(cfg.dropout));
  blocks = register_module("blocks", std::make_shared<Sequential>());
  for (int64_t i = 0; i < cfg.n_layer; ++i)
    blocks->push_back(std::make_shared<TransformerBlock>(cfg.n_embd, cfg.n_head, 4, cfg.bias, cfg.dropout));
  ln_f = register_module("ln_f", std::make_shared<LayerNorm>(Shape{cfg.n_embd}, 1e-5, true, cfg.bias));
  if (!cfg.tie_weights)
    lm_head = register_module("lm_head", std::make_shared<Linear>(cfg.n_embd, cfg.vocab_size, false));
  // GPT-2's initialisation: small weights keep the initial logits near uniform, which matters
  // most with a tied head (N(0, 1) embeddings would give logits of size sqrt(n_embd)).
  for (auto& [name, p] : named_parameters()) {
    bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    bool is_norm = name.find("ln") != std::string::npos;
    if (is_norm) continue;
    if (is_bias) init::constant_(p, 0.0);
    else init::normal_(p, 0.0, 0.02);
  }
}

Tensor GPT::forward(const Tensor& idx) {
  WEFT_CHECK(idx.dim() == 2 && idx.dtype() == kInt64, "GPT: expected idx of shape (B, T) and dtype int64 but got ",
             idx.shape(), " ", idx.dtype());
  int64_t T = idx.size(1);
  WEFT_CHECK(T <= config.block_size, "GPT: cannot forward a sequence of length ", T, "; block_size is ",
             config.block_size);
  Tensor x = parallel_embed ? parallel_embed(idx) : (*wte)(idx) + (*wpe)(arange(T));  // (B, T, C) + (T, C)
  x = (*drop)(x);
  x = (*ln_f)((*blocks)(x));
  return lm_head ? (*lm_head)(x) : wte->attend(x);  // under VocabParallel: this rank's vocabulary rows
}

std::string GPT::extra_repr() const {
  return "vocab_size=" + std::to_string(config.vocab_size) + ", block_size=" + std::to_string(config.block_size) +
         ", tie_weights=" + (config.tie_weights ? "true" : "false");
}

}  // namespace weft::nn

namespace weft::nn::parallel {
namespace {
// Modules that run on sequence chunks under sequence parallelism, with their parameters replicated.
bool runs_on_chunks(const Module& m) {
  return dynamic_cast<const LayerNorm*>(&m) || dynamic_cast<const RMSNorm*>(&m) || dynamic_cast<const Dropout*>(&m) ||
         dynamic_cast<const Embedding*>(&m) || dynamic_cast<const Linear*>(&m) || dynamic_cast<const GPT*>(&m);
}

void collect_plan(const Module& m, const std::string& prefix, Plan& plan, bool sp) {
  const dist::Placement gathered = sp ? dist::Shard(1) : dist::Replicate();  // Colwise input, Rowwise output
  for (const auto& [name, child] : m.named_children()) {
    std::string path = prefix + name;
    if (dynamic_cast<const MLP*>(child.get()) != nullptr) {
      plan.push_back({path + ".fc1", ColwiseParallel{.input_layout = gathered}});
      plan.push_back({path + ".fc2", RowwiseParallel{.output_layout = gathered}});
    } else if (auto* attn = dynamic_cast<const CausalSelfAttention*>(child.get())) {
      int64_t head_dim = attn->n_embd / attn->n_head;
      plan.push_back({path + ".qkv", ColwiseParallel{.groups = 3, .unit = head_dim, .input_layout = gathered}});
      plan.push_back({path + ".proj", RowwiseParallel{.unit = head_dim, .output_layout = gathered}});
      if (sp) plan.push_back({path + ".resid_dropout", SequenceParallel{}});
    } else {
      if (sp && runs_on_chunks(*child)) plan.push_back({path, SequenceParallel{}});
      collect_plan(*child, path + ".", plan, sp);
    }
  }
}
}  // namespace

Plan default_tp_plan(const Module& module, bool vocab_parallel) {
  Plan plan;
  collect_plan(module, "", plan, /*sp=*/false);
  if (const auto* gpt = dynamic_cast<const GPT*>(&module); gpt && vocab_parallel) {
    plan.push_back({"wte", VocabParallel{}});
    if (gpt->lm_head) plan.push_back({"lm_head", ColwiseParallel{}});
  }
  return plan;
}

Plan default_sp_plan(const Module& module, bool vocab_parallel) {
  Plan plan;
  if (runs_on_chunks(module)) plan.push_back({"", SequenceParallel{}});
  collect_plan(module, "", plan, /*sp=*/true);
  if (dynamic_cast<const GPT*>(&module) && vocab_parallel)
    for (auto& [path, style] : plan) {
      if (path == "wte") style = VocabParallel{};
      if (path == "lm_head") style = ColwiseParallel{.input_layout = dist::Shard(1)};  // gathers the chunks
    }
  return plan;
}

}  // namespace weft::nn::parallel
