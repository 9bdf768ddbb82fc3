// DataLoader: batches of a dataset's examples, shuffled or in a sampler's order, prepared ahead
// by a background thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "nn/data/dataset.h"
#include "nn/data/sampler.h"

namespace weft::data {

// Each field of the examples, stacked along a new first dimension: {inputs (B, ...), targets (B, ...)}.
using Batch = std::vector<Tensor>;
using Collate = std::function<Batch(std::vector<Sample>)>;

// PyTorch's default_collate for tensors: field k of the batch stacks field k of every sample
// (all of one shape and dtype).
Batch default_collate(std::vector<Sample> samples);

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;    // a new order every pass: randperm on a generator seeded from weft's default
  bool drop_last = false;  // drop the last batch when it would be smaller than batch_size
  int64_t prefetch = 2;    // batches a background thread prepares ahead; 0 makes them on demand
};

class DataLoader {
 public:
  // With a sampler, its indices() give each pass's order and `shuffle` must be false.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {},
             std::shared_ptr<Sampler> sampler = nullptr, Collate collate = default_collate);

  // Batches per pass (PyTorch's len(loader)).
  int64_t size() const;

  struct Pass;
  // `for (const Batch& batch : loader)` makes one pass; each begin() starts a new one.
  class Iterator {
   public:
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    Iterator& operator++();
    bool operator==(std::default_sentinel_t) const { return pass_ == nullptr; }

   private:
    friend class DataLoader;
    explicit Iterator(std::shared_ptr<Pass> pass);
    std::shared_ptr<Pass> pass_;
    Batch batch_;
  };
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }

 private:
  std::vector<std::vector<int64_t>> batches_of_pass();

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::shared_ptr<Sampler> sampler_;
  Collate collate_;
};

}  // namespace weft::data
