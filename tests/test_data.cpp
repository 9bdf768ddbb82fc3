// randperm, multinomial, bernoulli; datasets, DataLoader and DistributedSampler in one process.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <unistd.h>

#include "framework/factories.h"
#include "framework/generator.h"
#include "nn/data/dataloader.h"
#include "nn/io/io.h"
#include "ops/sampling.h"
#include "test_util.h"

using namespace weft;
using weft::test::require_error;

namespace {

// |count - n p| within 6 standard deviations of a binomial count.
void check_count(int64_t count, int64_t n, double p) {
  INFO("count " << count << " of " << n << " draws, expected probability " << p);
  CHECK(std::fabs(count - n * p) <= 6 * std::sqrt(n * p * (1 - p)) + 1e-9);
}

}  // namespace

TEST_CASE("randperm is a uniformly random permutation from the generator", "[sampling]") {
  Generator gen(7);
  std::vector<int64_t> p = randperm(100, dtype(kInt64), &gen).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) CHECK(sorted[i] == i);
  Generator again(7);
  CHECK(randperm(100, dtype(kInt64), &again).to_vector<int64_t>() == p);
  CHECK(randperm(0).numel() == 0);
  CHECK(randperm(4, dtype(kFloat32)).dtype() == kFloat32);
  // Each value lands in each position with probability 1/5.
  const int64_t n = 5, draws = 12000;
  std::vector<int64_t> counts(n * n, 0);
  for (int64_t d = 0; d < draws; ++d) {
    std::vector<int64_t> q = randperm(n, dtype(kInt64), &gen).to_vector<int64_t>();
    for (int64_t pos = 0; pos < n; ++pos) ++counts[pos * n + q[pos]];
  }
  for (int64_t c : counts) check_count(c, draws, 1.0 / n);
  require_error([] { randperm(-1); }, "n must be non-negative");
}

TEST_CASE("multinomial draws categories in proportion to the weights", "[sampling]") {
  Generator gen(3);
  Tensor w = tensor({1, 2, 3, 4});
  const int64_t draws = 20000;
  std::vector<int64_t> s = multinomial(w, draws, /*replacement=*/true, &gen).to_vector<int64_t>();
  for (int64_t c = 0; c < 4; ++c) check_count(std::count(s.begin(), s.end(), c), draws, (c + 1) / 10.0);

  SECTION("without replacement: each row a permutation; the second pick follows p_j / (1 - p_i)") {
    Tensor rows = w.unsqueeze(0).expand({draws, 4}).contiguous();
    std::vector<int64_t> r = multinomial(rows, 4, false, &gen).to_vector<int64_t>();
    std::vector<int64_t> first(4, 0), second(4, 0);
    for (int64_t i = 0; i < draws; ++i) {
      std::set<int64_t> row(r.begin() + i * 4, r.begin() + i * 4 + 4);
      REQUIRE(row.size() == 4);
      ++first[r[i * 4]];
      ++second[r[i * 4 + 1]];
    }
    for (int64_t j = 0; j < 4; ++j) {
      double p_second = 0;
      for (int64_t i = 0; i < 4; ++i)
        if (i != j) p_second += (i + 1) / 10.0 * ((j + 1) / 10.0) / (1 - (i + 1) / 10.0);
      check_count(first[j], draws, (j + 1) / 10.0);
      check_count(second[j], draws, p_second);
    }
  }
  SECTION("zero weights are never drawn; errors as PyTorch's") {
    std::vector<int64_t> z = multinomial(tensor({0, 1, 0, 1}), 2, false, &gen).to_vector<int64_t>();
    CHECK(std::set<int64_t>(z.begin(), z.end()) == std::set<int64_t>{1, 3});
    require_error([&] { multinomial(tensor({0, 1, 0, 1}), 3, false, &gen); }, "not enough non-negative category");
    require_error([&] { multinomial(tensor({1, 1}), 3, false, &gen); }, "cannot sample n_sample (3) > prob_dist");
    require_error([&] { multinomial(tensor({1, -1}), 1, true, &gen); }, "element < 0");
    require_error([&] { multinomial(tensor({0, 0}), 1, true, &gen); }, "sum of probabilities <= 0");
  }
}

TEST_CASE("bernoulli draws ones with the given probabilities", "[sampling]") {
  Generator gen(11);
  const int64_t draws = 20000;
  Tensor p = tensor({0.0, 0.25, 1.0}).unsqueeze(0).expand({draws, 3}).contiguous();
  std::vector<float> b = bernoulli(p, &gen).to_vector<float>();
  int64_t ones[3] = {0, 0, 0};
  for (int64_t i = 0; i < draws * 3; ++i) {
    REQUIRE((b[i] == 0.0f || b[i] == 1.0f));
    ones[i % 3] += b[i] == 1.0f;
  }
  CHECK(ones[0] == 0);
  CHECK(ones[2] == draws);
  check_count(ones[1], draws, 0.25);
  std::vector<double> s = bernoulli(zeros({draws}, dtype(kFloat64)), 0.7, &gen).to_vector<double>();
  check_count(std::count(s.begin(), s.end(), 1.0), draws, 0.7);
  require_error([&] { bernoulli(tensor({0.5, 1.5}), &gen); }, "probabilities in [0, 1]");
}

TEST_CASE("DataLoader batches a TensorDataset in order, shuffled, with drop_last", "[data]") {
  Tensor x = arange(0, 10, 1, dtype(kFloat32)).unsqueeze(1).expand({10, 3}).contiguous();  // row i = i
  Tensor y = arange(10);
  auto dataset = std::make_shared<data::TensorDataset>(std::vector<Tensor>{x, y});
  for (int64_t prefetch : {0, 2}) {
    INFO("prefetch " << prefetch);
    data::DataLoader in_order(dataset, {.batch_size = 4, .prefetch = prefetch});
    CHECK(in_order.size() == 3);
    std::vector<int64_t> seen, sizes;
    for (const data::Batch& batch : in_order) {
      REQUIRE(batch.size() == 2);
      sizes.push_back(batch[0].shape()[0]);
      CHECK(batch[0].shape()[1] == 3);
      std::vector<int64_t> ys = batch[1].to_vector<int64_t>();
      std::vector<float> xs = batch[0].to_vector<float>();
      for (size_t i = 0; i < ys.size(); ++i) CHECK(xs[i * 3 + 2] == static_cast<float>(ys[i]));
      seen.insert(seen.end(), ys.begin(), ys.end());
    }
    CHECK(sizes == std::vector<int64_t>{4, 4, 2});
    CHECK(seen == y.to_vector<int64_t>());

    data::DataLoader shuffled(dataset, {.batch_size = 3, .shuffle = true, .drop_last = true, .prefetch = prefetch});
    CHECK(shuffled.size() == 3);
    manual_seed(5);
    std::vector<int64_t> pass1, pass2;
    for (const auto& batch : shuffled) {
      CHECK(batch[1].numel() == 3);
      for (int64_t v : batch[1].to_vector<int64_t>()) pass1.push_back(v);
    }
    for (const auto& batch : shuffled)
      for (int64_t v : batch[1].to_vector<int64_t>()) pass2.push_back(v);
    CHECK(pass1.size() == 9);
    CHECK(std::set<int64_t>(pass1.begin(), pass1.end()).size() == 9);
    CHECK(pass1 != pass2);  // a new order each pass (equal with probability 1/10!)
    // The order is randperm on a generator seeded from the default generator.
    manual_seed(5);
    Generator gen(default_generator().next_u64());
    std::vector<int64_t> want = randperm(10, dtype(kInt64), &gen).to_vector<int64_t>();
    want.resize(9);
    CHECK(pass1 == want);
  }
}

TEST_CASE("DataLoader: collate functions, early exit, errors from the background thread", "[data]") {
  auto dataset = std::make_shared<data::TensorDataset>(std::vector<Tensor>{arange(7)});
  data::Collate sum_collate = [](std::vector<data::Sample> samples) {
    int64_t total = 0;
    for (auto& s : samples) total += s[0].item<int64_t>();
    return data::Batch{scalar_tensor(total, dtype(kInt64))};
  };
  data::DataLoader loader(dataset, {.batch_size = 3}, nullptr, sum_collate);
  std::vector<int64_t> sums;
  for (const auto& batch : loader) sums.push_back(batch[0].item<int64_t>());
  CHECK(sums == std::vector<int64_t>{0 + 1 + 2, 3 + 4 + 5, 6});
  for (const auto& batch : loader) {  // leaving a pass early stops its thread
    CHECK(batch[0].item<int64_t>() == 3);
    break;
  }
  data::Collate failing = [](std::vector<data::Sample> samples) -> data::Batch {
    WEFT_CHECK(samples[0][0].item<int64_t>() < 3, "collate: refusing ", samples[0][0].item<int64_t>());
    return data::default_collate(std::move(samples));
  };
  data::DataLoader bad(dataset, {.batch_size = 3}, nullptr, failing);
  require_error([&] {
    for (const auto& batch : bad) (void)batch;
  }, "collate: refusing 3");
  require_error([&] { data::DataLoader(dataset, {.batch_size = 0}); }, "batch_size should be a positive");
  require_error([&] { data::TensorDataset({arange(3), arange(4)}); }, "size mismatch between tensors");
  require_error([&] { dataset->get(7); }, "index 7 is out of range");
}

TEST_CASE("NpyDataset reads rows from .npy files on demand", "[data]") {
  const std::string dir = (std::filesystem::temp_directory_path() / ("weft_data_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  Tensor x = arange(0, 24, 1, dtype(kFloat64)).reshape({6, 2, 2});
  Tensor y = arange(6) * 10;
  io::save_npy(dir + "/x.npy", x);
  io::save_npy(dir + "/y.npy", y);
  auto dataset = std::make_shared<data::NpyDataset>(std::vector<std::string>{dir + "/x.npy", dir + "/y.npy"});
  CHECK(dataset->size() == 6);
  std::vector<double> xs;
  std::vector<int64_t> ys;
  for (const auto& batch : data::DataLoader(dataset, {.batch_size = 4})) {
    for (double v : batch[0].to_vector<double>()) xs.push_back(v);
    for (int64_t v : batch[1].to_vector<int64_t>()) ys.push_back(v);
  }
  CHECK(xs == x.to_vector<double>());
  CHECK(ys == y.to_vector<int64_t>());
  io::save_npy(dir + "/short.npy", arange(5));
  require_error([&] { data::NpyDataset({dir + "/x.npy", dir + "/short.npy"}); }, "has 5 rows but");
  std::filesystem::remove_all(dir);
}

TEST_CASE("DistributedSampler splits, pads and drops as PyTorch's", "[data]") {
  // torch.utils.data.DistributedSampler(range(10), num_replicas=4, rank=r, shuffle=False)
  auto ranks = [](int64_t n, bool drop_last) {
    std::vector<std::vector<int64_t>> out;
    for (int64_t r = 0; r < 4; ++r) out.push_back(data::DistributedSampler(n, 4, r, false, 0, drop_last).indices());
    return out;
  };
  using V = std::vector<std::vector<int64_t>>;
  CHECK(ranks(10, false) == V{{0, 4, 8}, {1, 5, 9}, {2, 6, 0}, {3, 7, 1}});
  CHECK(ranks(10, true) == V{{0, 4}, {1, 5}, {2, 6}, {3, 7}});
  CHECK(ranks(3, false) == V{{0}, {1}, {2}, {0}});
  CHECK(ranks(3, true) == V{{}, {}, {}, {}});
  // Shuffled: the permutation randperm gives for seed + epoch, split the same way.
  data::DistributedSampler s(10, 4, 1, true, /*seed=*/42);
  s.set_epoch(3);
  Generator gen(45);
  std::vector<int64_t> perm = randperm(10, dtype(kInt64), &gen).to_vector<int64_t>();
  CHECK(s.indices() == std::vector<int64_t>{perm[1], perm[5], perm[9]});
  s.set_epoch(4);
  CHECK(s.indices() != std::vector<int64_t>{perm[1], perm[5], perm[9]});
  require_error([] { data::DistributedSampler(10, 4, 4); }, "invalid rank 4");
}
