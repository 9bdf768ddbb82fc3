// Samplers: the order in which a DataLoader visits a dataset's examples.
#pragma once

#include <cstdint>
#include <vector>

#include "distributed/device_mesh.h"

namespace weft::data {

// A DataLoader asks for indices() once at the start of every pass over the data.
class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::vector<int64_t> indices() = 0;
  virtual int64_t size() const = 0;  // how many indices each pass yields
};

// PyTorch's DistributedSampler: each of num_replicas ranks gets its own num_samples indices. The
// order is a permutation seeded with seed + epoch (the same on every rank; call set_epoch before
// each pass to reshuffle), padded by repeating its start so that it divides evenly (or, with
// drop_last, cut to a multiple of num_replicas), and rank r takes positions r, r + num_replicas, ...
class DistributedSampler : public Sampler {
 public:
  DistributedSampler(int64_t dataset_size, int64_t num_replicas, int64_t rank, bool shuffle = true,
                     uint64_t seed = 0, bool drop_last = false);
  // Replicas are the ranks along `mesh_dim` of `mesh` (a data-parallel dimension); this rank's
  // coordinate on it is its rank.
  DistributedSampler(int64_t dataset_size, const dist::DeviceMesh& mesh, int64_t mesh_dim, bool shuffle = true,
                     uint64_t seed = 0, bool drop_last = false);

  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  std::vector<int64_t> indices() override;
  int64_t size() const override { return num_samples_; }
  int64_t total_size() const { return num_samples_ * num_replicas_; }

 private:
  int64_t dataset_size_, num_replicas_, rank_;
  bool shuffle_, drop_last_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t num_samples_;
};

}  // namespace weft::data
