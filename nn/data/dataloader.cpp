// DataLoader: a pass splits an order of indices into batches; a background thread collates them
// into a bounded queue while the training loop consumes them.
#include "nn/data/dataloader.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "framework/factories.h"
#include "framework/generator.h"
#include "ops/sampling.h"

namespace weft::data {

Batch default_collate(std::vector<Sample> samples) {
  WEFT_CHECK(!samples.empty(), "default_collate: expected at least one sample");
  Batch batch;
  for (size_t f = 0; f < samples[0].size(); ++f) {
    const Tensor& first = samples[0][f];
    Shape shape{static_cast<int64_t>(samples.size())};
    for (int64_t d : first.shape()) shape.push_back(d);
    Tensor out = empty(shape, dtype(first.dtype()));
    const size_t bytes = static_cast<size_t>(first.numel()) * first.element_size();
    for (size_t i = 0; i < samples.size(); ++i) {
      const Tensor& t = samples[i].at(f);
      WEFT_CHECK(t.shape() == first.shape() && t.dtype() == first.dtype(), "default_collate: field ", f,
                 " of sample ", i, " has shape ", t.shape(), " and dtype ", t.dtype(), " but sample 0 has ",
                 first.shape(), " and ", first.dtype(), "; pass a collate function for ragged examples");
      std::memcpy(static_cast<char*>(out.raw_data()) + i * bytes, t.contiguous().raw_data(), bytes);
    }
    batch.push_back(out);
  }
  return batch;
}

// One pass: its batches' indices and, with prefetch, the thread making them.
struct DataLoader::Pass {
  std::shared_ptr<const Dataset> dataset;
  Collate collate;
  std::vector<std::vector<int64_t>> batches;
  size_t prefetch = 0, consumed = 0;

  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Batch> ready;
  std::exception_ptr error;
  bool stop = false;
  std::thread worker;

  Batch make(size_t b) const {
    std::vector<Sample> samples;
    for (int64_t index : batches[b]) samples.push_back(dataset->get(index));
    return collate(std::move(samples));
  }
  void produce() {
    for (size_t b = 0; b < batches.size(); ++b) {
      Batch batch;
      std::exception_ptr failure;
      try {
        batch = make(b);
      } catch (...) {
        failure = std::current_exception();
      }
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return stop || ready.size() < prefetch; });
      if (stop) return;
      if (failure) {
        error = failure;  // the consumer rethrows it where it asked for this batch
        changed.notify_all();
        return;
      }
      ready.push_back(std::move(batch));
      changed.notify_all();
    }
  }
  Batch next() {
    if (prefetch == 0) return make(consumed++);
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return !ready.empty() || error; });
    if (ready.empty()) std::rethrow_exception(error);
    Batch batch = std::move(ready.front());
    ready.pop_front();
    ++consumed;
    changed.notify_all();
    return batch;
  }
  ~Pass() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    changed.notify_all();
    if (worker.joinable()) worker.join();
  }
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options,
                       std::shared_ptr<Sampler> sampler, Collate collate)
    : dataset_(std::move(dataset)), options_(options), sampler_(std::move(sampler)), collate_(std::move(collate)) {
  WEFT_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  WEFT_CHECK(options_.batch_size >= 1, "DataLoader: batch_size should be a positive integer value, but got ",
             options_.batch_size);
  WEFT_CHECK(options_.prefetch >= 0, "DataLoader: prefetch must be non-negative, got ", options_.prefetch);
  WEFT_CHECK(!(sampler_ && options_.shuffle), "DataLoader: sampler option is mutually exclusive with shuffle");
  WEFT_CHECK(collate_ != nullptr, "DataLoader: the collate function is empty");
}

int64_t DataLoader::size() const {
  const int64_t n = sampler_ ? sampler_->size() : dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<std::vector<int64_t>> DataLoader::batches_of_pass() {
  std::vector<int64_t> order;
  if (sampler_) {
    order = sampler_->indices();
  } else if (options_.shuffle) {
    // A generator per pass, seeded from the default one: manual_seed fixes every pass's order.
    Generator gen(default_generator().next_u64());
    order = randperm(dataset_->size(), dtype(kInt64), &gen).to_vector<int64_t>();
  } else {
    for (int64_t i = 0; i < dataset_->size(); ++i) order.push_back(i);
  }
  std::vector<std::vector<int64_t>> batches;
  const auto b = static_cast<size_t>(options_.batch_size);
  for (size_t start = 0; start < order.size(); start += b) {
    if (options_.drop_last && order.size() - start < b) break;
    batches.emplace_back(order.begin() + start, order.begin() + std::min(order.size(), start + b));
  }
  return batches;
}

DataLoader::Iterator DataLoader::begin() {
  auto pass = std::make_shared<Pass>();
  pass->dataset = dataset_;
  pass->collate = collate_;
  pass->batches = batches_of_pass();
  pass->prefetch = static_cast<size_t>(options_.prefetch);
  if (pass->prefetch > 0 && !pass->batches.empty()) pass->worker = std::thread([p = pass.get()] { p->produce(); });
  return Iterator(std::move(pass));
}

DataLoader::Iterator::Iterator(std::shared_ptr<Pass> pass) : pass_(std::move(pass)) { ++*this; }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (pass_->consumed == pass_->batches.size()) {
    pass_.reset();  // the pass's destructor stops and joins its thread
    batch_.clear();
    return *this;
  }
  batch_ = pass_->next();
  return *this;
}

}  // namespace weft::data
