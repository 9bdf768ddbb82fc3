// nn normalization layers over channels: BatchNorm1d, BatchNorm2d (running statistics as buffers,
// train/eval behaviour, synchronized statistics under data parallelism) and GroupNorm.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nn/module.h"

namespace weft::nn {

// What BatchNorm1d and BatchNorm2d share; they differ only in the input ranks they accept.
// Training (or without running statistics): normalise by the batch's statistics and update the
// running ones (momentum; num_batches_tracked counts the updates); eval: by the running ones.
class BatchNorm : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t num_features;
  double eps, momentum;
  bool affine, track_running_stats;
  Tensor& weight;  // ones, undefined without affine
  Tensor& bias;    // zeros
  Tensor& running_mean;  // buffers (zeros, ones, int64 0), undefined without track_running_stats
  Tensor& running_var;
  Tensor& num_batches_tracked;
  // Set by data parallelism (nn/parallel.h): sums a tensor over the data-parallel ranks, so that
  // training statistics are those of the global batch (PyTorch's SyncBatchNorm) and every rank's
  // output and running statistics are the single-process ones. Differentiable. Empty: local.
  std::function<Tensor(const Tensor&)> sum_over_replicas;

 protected:
  BatchNorm(std::string name, std::vector<int64_t> ranks, int64_t num_features, double eps, double momentum,
            bool affine, bool track_running_stats);

 private:
  Tensor synchronized(const Tensor& x);
  std::vector<int64_t> ranks_;  // the input ranks accepted
};

// Inputs [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm("BatchNorm1d", {2, 3}, num_features, eps, momentum, affine, track_running_stats) {}
};

// Inputs [N, C, H, W].
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm("BatchNorm2d", {4}, num_features, eps, momentum, affine, track_running_stats) {}
};

class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t num_groups, num_channels;
  double eps;
  Tensor& weight;
  Tensor& bias;
};

}  // namespace weft::nn
