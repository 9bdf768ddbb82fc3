// DistributedSampler, following torch.utils.data.DistributedSampler.
#include "nn/data/sampler.h"

#include "framework/generator.h"
#include "ops/sampling.h"

namespace weft::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, int64_t num_replicas, int64_t rank, bool shuffle,
                                       uint64_t seed, bool drop_last)
    : dataset_size_(dataset_size), num_replicas_(num_replicas), rank_(rank), shuffle_(shuffle),
      drop_last_(drop_last), seed_(seed) {
  WEFT_CHECK(num_replicas >= 1, "DistributedSampler: num_replicas must be positive, got ", num_replicas);
  WEFT_CHECK(rank >= 0 && rank < num_replicas, "DistributedSampler: invalid rank ", rank,
             ", rank should be in the interval [0, ", num_replicas - 1, "]");
  WEFT_CHECK(dataset_size >= 0, "DistributedSampler: dataset_size must be non-negative, got ", dataset_size);
  // PyTorch: with drop_last the tail that does not divide evenly is dropped, else the order is
  // padded up to the next multiple.
  num_samples_ = drop_last && dataset_size % num_replicas != 0 ? (dataset_size - num_replicas) / num_replicas + 1
                                                               : (dataset_size + num_replicas - 1) / num_replicas;
  if (drop_last && dataset_size < num_replicas) num_samples_ = 0;
}

DistributedSampler::DistributedSampler(int64_t dataset_size, const dist::DeviceMesh& mesh, int64_t mesh_dim,
                                       bool shuffle, uint64_t seed, bool drop_last)
    : DistributedSampler(dataset_size, mesh.size(mesh_dim), mesh.get_local_rank(mesh_dim), shuffle, seed,
                         drop_last) {}

std::vector<int64_t> DistributedSampler::indices() {
  std::vector<int64_t> order(dataset_size_);
  if (shuffle_) {
    Generator gen(seed_ + static_cast<uint64_t>(epoch_));
    order = randperm(dataset_size_, dtype(kInt64), &gen).to_vector<int64_t>();
  } else {
    for (int64_t i = 0; i < dataset_size_; ++i) order[i] = i;
  }
  const int64_t total = total_size();
  if (!drop_last_) {
    // Pad by repeating the order from its start, as many times as needed.
    for (int64_t i = 0; static_cast<int64_t>(order.size()) < total; ++i) order.push_back(order[i]);
  }
  order.resize(total);
  std::vector<int64_t> mine;
  for (int64_t i = rank_; i < total; i += num_replicas_) mine.push_back(order[i]);
  return mine;
}

}  // namespace weft::data
