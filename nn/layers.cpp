// nn layers: construction (PyTorch's default initialisation) and forward over the differentiable ops.
#include "nn/layers.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace weft::nn {

namespace {
std::string bool_str(bool b) { return b ? "true" : "false"; }

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what kaiming_uniform(a=sqrt(5)) reduces to, and PyTorch's bias rule.
// `module` names the layer when the shape is invalid or too large.
Tensor fan_in_uniform(const Shape& shape, int64_t fan_in, const char* module) {
  Tensor t = kernels::make_empty(shape, kFloat32, module);
  double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return init::uniform_(t, -bound, bound);
}

Tensor linear_weight(int64_t in, int64_t out) {
  WEFT_CHECK(in >= 0 && out >= 0, "Linear: expected non-negative features but got in_features=", in,
             ", out_features=", out);
  return fan_in_uniform({out, in}, in, "Linear");
}
}  // namespace

// --- Linear ---

Linear::Linear(int64_t in, int64_t out, bool has_bias)
    : UnaryModule("Linear"),
      in_features(in),
      out_features(out),
      weight(register_parameter("weight", linear_weight(in, out))),
      bias(register_parameter("bias", has_bias ? fan_in_uniform({out}, in, "Linear") : Tensor())) {}

Tensor Linear::forward(const Tensor& x) {
  if (parallel_forward) return parallel_forward(x);
  WEFT_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear: expected input with last dim ", in_features,
             " but got shape ", x.shape());
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + bool_str(bias.defined());
}

// --- Embedding ---

namespace {
std::optional<int64_t> checked_padding_idx(std::optional<int64_t> padding_idx, int64_t n) {
  if (!padding_idx) return std::nullopt;
  WEFT_CHECK(*padding_idx >= -n && *padding_idx < n, "Embedding: padding_idx must be within num_embeddings (",
             n, ") but got ", *padding_idx);
  return *padding_idx < 0 ? *padding_idx + n : *padding_idx;
}
}  // namespace

Embedding::Embedding(int64_t n, int64_t dim, std::optional<int64_t> padding_idx_)
    : UnaryModule("Embedding"),
      num_embeddings(n),
      embedding_dim(dim),
      padding_idx(checked_padding_idx(padding_idx_, n)),
      weight(register_parameter("weight", init::normal_(kernels::make_empty({n, dim}, kFloat32, "Embedding")))) {
  if (padding_idx) {
    NoGradGuard no_grad;
    weight.select(0, *padding_idx).zero_();
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  if (parallel_forward) return parallel_forward(indices);
  return embedding(weight, indices, padding_idx);
}

Tensor Embedding::attend(const Tensor& x) {
  if (parallel_attend) return parallel_attend(x);
  WEFT_CHECK(x.dim() >= 1 && x.size(-1) == embedding_dim, "Embedding.attend: expected input with last dim ",
             embedding_dim, " but got shape ", x.shape());
  return linear(x, weight);
}

std::string Embedding::extra_repr() const {
  return std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim) +
         (padding_idx ? ", padding_idx=" + std::to_string(*padding_idx) : "");
}

// --- LayerNorm / RMSNorm ---

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, bool has_bias)
    : UnaryModule("LayerNorm"),
      normalized_shape(std::move(shape)),
      eps(eps_),
      weight(register_parameter("weight", affine ? ones(normalized_shape) : Tensor())),
      bias(register_parameter("bias", affine && has_bias ? zeros(normalized_shape) : Tensor())) {}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, eps); }

std::string LayerNorm::extra_repr() const {
  std::ostringstream out;
  out << normalized_shape << ", eps=" << eps << ", elementwise_affine=" << bool_str(weight.defined());
  return out.str();
}

RMSNorm::RMSNorm(Shape shape, std::optional<double> eps_, bool affine)
    : UnaryModule("RMSNorm"),
      normalized_shape(std::move(shape)),
      eps(eps_),
      weight(register_parameter("weight", affine ? ones(normalized_shape) : Tensor())) {}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, normalized_shape, weight, eps); }

std::string RMSNorm::extra_repr() const {
  std::ostringstream out;
  out << normalized_shape << ", eps=";
  if (eps) out << *eps;
  else out << "None";
  out << ", elementwise_affine=" << bool_str(weight.defined());
  return out.str();
}

// --- Dropout and activations ---

Dropout::Dropout(double p_) : UnaryModule("Dropout"), p(p_) {
  WEFT_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability has to be between 0 and 1, but got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (parallel_forward) return parallel_forward(x);
  return dropout(x, p, is_training());
}

std::string Dropout::extra_repr() const {
  std::ostringstream out;
  out << "p=" << p;
  return out.str();
}

GELU::GELU(std::string approx) : UnaryModule("GELU"), approximate(std::move(approx)) {
  WEFT_CHECK(approximate == "none" || approximate == "tanh",
             "GELU: approximate must be \"none\" or \"tanh\" but got \"", approximate, "\"");
}

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELU::extra_repr() const { return approximate == "none" ? "" : "approximate='" + approximate + "'"; }
Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }

// --- Sequential ---

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) : UnaryModule("Sequential") {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<UnaryModule> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : modules_) y = (*m)(y);  // through each module's forward wrappers
  return y;
}

// --- MLP ---

MLP::MLP(int64_t in, int64_t hidden, int64_t out, bool bias)
    : UnaryModule("MLP"),
      fc1(register_module("fc1", std::make_shared<Linear>(in, hidden, bias))),
      act(register_module("act", std::make_shared<GELU>())),
      fc2(register_module("fc2", std::make_shared<Linear>(hidden, out < 0 ? in : out, bias))) {}

Tensor MLP::forward(const Tensor& x) { return (*fc2)((*act)((*fc1)(x))); }

// --- losses ---

CrossEntropyLoss::CrossEntropyLoss(std::string red, int64_t ignore, double smoothing)
    : Module("CrossEntropyLoss"), reduction(std::move(red)), ignore_index(ignore), label_smoothing(smoothing) {}

Tensor CrossEntropyLoss::forward(const Tensor& logits, const Tensor& target) {
  return cross_entropy(logits, target, reduction, ignore_index, label_smoothing);
}

std::string CrossEntropyLoss::extra_repr() const {
  std::ostringstream out;
  out << "reduction=" << reduction << ", ignore_index=" << ignore_index << ", label_smoothing=" << label_smoothing;
  return out.str();
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) { return mse_loss(input, target, reduction); }

}  // namespace weft::nn
