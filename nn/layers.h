// nn layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout, activations, Sequential, MLP, losses.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>

#include "nn/module.h"

namespace weft::nn {

// y = x W^T + b. Weight (out, in) and bias (out) start as PyTorch's: kaiming_uniform(a=sqrt(5)),
// which is U(-1/sqrt(in), 1/sqrt(in)), for both.
class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor& weight;
  Tensor& bias;  // undefined without bias
  // Set by a tensor-parallel style (nn/parallel.h): replaces forward with the local matmul on this
  // rank's shards and the collectives around it. Empty for an ordinary Linear.
  std::function<Tensor(const Tensor& x)> parallel_forward;
};

// Rows of a (num_embeddings, embedding_dim) table, N(0, 1) initialised; indices are int64 or int32.
// As PyTorch's: the row `padding_idx` (negative counts from the end) starts at zero and gets no
// gradient.
class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;

  // x (..., embedding_dim) against every row of the table: the logits of an output head tied to this
  // embedding (flax's Embed.attend), linear(x, weight).
  Tensor attend(const Tensor& x);

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // non-negative once constructed
  Tensor& weight;
  // Set by the VocabParallel style (nn/parallel.h): forward and attend on this rank's rows of the
  // table, with the collectives around them. Empty for an ordinary Embedding.
  std::function<Tensor(const Tensor& indices)> parallel_forward;
  std::function<Tensor(const Tensor& x)> parallel_attend;
};

// Normalises over the trailing `normalized_shape` dims; weight ones, bias zeros.
class LayerNorm : public UnaryModule {
 public:
  LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true);
  explicit LayerNorm(int64_t dim, double eps = 1e-5) : LayerNorm(Shape{dim}, eps) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Shape normalized_shape;
  double eps;
  Tensor& weight;  // undefined without elementwise_affine
  Tensor& bias;
};

// x / sqrt(mean(x^2) + eps) * weight; eps defaults to the dtype's machine epsilon (PyTorch).
class RMSNorm : public UnaryModule {
 public:
  RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt, bool elementwise_affine = true);
  explicit RMSNorm(int64_t dim, std::optional<double> eps = std::nullopt) : RMSNorm(Shape{dim}, eps) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Shape normalized_shape;
  std::optional<double> eps;
  Tensor& weight;
};

// Zeroes elements with probability p while training (scaling the rest by 1/(1-p)); identity in eval.
class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double p;
  // Set by sequence parallelism (nn/parallel.h): replaces forward with a mask drawn for the whole
  // sequence of which x is this rank's chunk. Empty for an ordinary Dropout.
  std::function<Tensor(const Tensor& x)> parallel_forward;
};

class GELU : public UnaryModule {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::string approximate;
};

class ReLU : public UnaryModule {
 public:
  ReLU() : UnaryModule("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class SiLU : public UnaryModule {
 public:
  SiLU() : UnaryModule("SiLU") {}
  Tensor forward(const Tensor& x) override;
};

// Wraps a function as a parameterless module, for use inside Sequential.
class Functional : public UnaryModule {
 public:
  explicit Functional(std::function<Tensor(const Tensor&)> fn, std::string name = "Functional")
      : UnaryModule(std::move(name)), fn_(std::move(fn)) {}
  Tensor forward(const Tensor& x) override { return fn_(x); }

 private:
  std::function<Tensor(const Tensor&)> fn_;
};

// Runs its modules in order; they are registered as "0", "1", ...
class Sequential : public UnaryModule {
 public:
  Sequential() : UnaryModule("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules);
  void push_back(std::shared_ptr<UnaryModule> module);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const { return modules_.at(i); }

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

// Linear(in, hidden) -> GELU -> Linear(hidden, out): the transformer's feed-forward block.
class MLP : public UnaryModule {
 public:
  MLP(int64_t in_features, int64_t hidden_features, int64_t out_features = -1, bool bias = true);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Linear> fc1;
  std::shared_ptr<GELU> act;
  std::shared_ptr<Linear> fc2;
};

// cross_entropy(logits (N, C) or (N, C, d...), target int64 class indices) as a module.
class CrossEntropyLoss : public Module {
 public:
  explicit CrossEntropyLoss(std::string reduction = "mean", int64_t ignore_index = -100,
                            double label_smoothing = 0.0);
  Tensor forward(const Tensor& logits, const Tensor& target);
  Tensor operator()(const Tensor& logits, const Tensor& target) { return forward(logits, target); }
  std::string extra_repr() const override;

  std::string reduction;
  int64_t ignore_index;
  double label_smoothing;
};

class MSELoss : public Module {
 public:
  explicit MSELoss(std::string reduction = "mean") : Module("MSELoss"), reduction(std::move(reduction)) {}
  Tensor forward(const Tensor& input, const Tensor& target);
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  std::string extra_repr() const override { return "reduction=" + reduction; }

  std::string reduction;
};

}  // namespace weft::nn
