// DistributedSampler across a mesh dimension's ranks: together the ranks cover the dataset, each
// gets what the single-process computation gives it, uneven sizes padded as PyTorch's.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <algorithm>
#include <numeric>

#include "distributed/device_mesh.h"
#include "framework/factories.h"
#include "distributed/runtime.h"
#include "nn/data/dataloader.h"

using namespace weft;

namespace {

// Every rank's indices along the comm, concatenated in rank order.
std::vector<int64_t> gather_all(const std::vector<int64_t>& mine, MPI_Comm comm, int size) {
  std::vector<int64_t> all(mine.size() * size);
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(), static_cast<int>(mine.size()),
                MPI_INT64_T, comm);
  return all;
}

}  // namespace

TEST_CASE("DistributedSampler over a mesh dimension", "[mpi][data]") {
  const int64_t world = dist::world_size();
  dist::DeviceMesh mesh({world});
  for (int64_t n : {world * 3 + 1, world * 5, int64_t{1}}) {
    for (bool drop_last : {false, true}) {
      INFO("dataset " << n << ", drop_last " << drop_last);
      data::DistributedSampler sampler(n, mesh, 0, /*shuffle=*/true, /*seed=*/9, drop_last);
      sampler.set_epoch(2);
      std::vector<int64_t> mine = sampler.indices();
      CHECK(static_cast<int64_t>(mine.size()) == sampler.size());
      data::DistributedSampler same(n, world, dist::world_rank(), true, 9, drop_last);
      same.set_epoch(2);
      CHECK(mine == same.indices());
      std::vector<int64_t> all = gather_all(mine, mesh.comm(0), static_cast<int>(world));
      std::vector<int64_t> distinct = all;
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      if (drop_last) {
        CHECK(all.size() == static_cast<size_t>(n / world * world));
        CHECK(distinct.size() == all.size());  // nothing repeated
      } else {
        CHECK(all.size() == static_cast<size_t>((n + world - 1) / world * world));
        CHECK(distinct.size() == static_cast<size_t>(n));  // every example, the padding repeats
      }
    }
  }
}

TEST_CASE("A DataLoader over a DistributedSampler gives each rank its share of batches", "[mpi][data]") {
  const int64_t world = dist::world_size(), n = world * 3 + 1;
  dist::DeviceMesh mesh({world});
  auto dataset = std::make_shared<data::TensorDataset>(std::vector<Tensor>{arange(n)});
  auto sampler = std::make_shared<data::DistributedSampler>(n, mesh, 0, true, 1);
  data::DataLoader loader(dataset, {.batch_size = 2}, sampler);
  CHECK(loader.size() == 2);  // 4 indices per rank
  std::vector<int64_t> mine;
  for (const auto& batch : loader)
    for (int64_t v : batch[0].to_vector<int64_t>()) mine.push_back(v);
  CHECK(mine == sampler->indices());
  std::vector<int64_t> all = gather_all(mine, mesh.comm(0), static_cast<int>(world));
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  CHECK(all.size() == static_cast<size_t>(n));
}
