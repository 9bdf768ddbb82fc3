// sharding.cpp: torch.chunk's split rule and nested shard geometry.
#include "distributed/sharding.h"

#include <algorithm>

#include "framework/error.h"

namespace weft::dist {

std::pair<int64_t, int64_t> chunk_size_and_offset(int64_t n, int64_t k, int64_t r) {
  WEFT_CHECK(n >= 0 && k > 0 && r >= 0 && r < k, "chunk_size_and_offset: expected n >= 0 and 0 <= r < k but got n=",
             n, ", k=", k, ", r=", r);
  int64_t c = (n + k - 1) / k;
  int64_t begin = std::min(n, c * r);
  int64_t end = std::min(n, c * r + c);
  return {std::max<int64_t>(0, end - begin), begin};
}

std::vector<int64_t> chunk_sizes(int64_t n, int64_t k) {
  std::vector<int64_t> sizes(static_cast<size_t>(k));
  for (int64_t r = 0; r < k; ++r) sizes[static_cast<size_t>(r)] = chunk_size_and_offset(n, k, r).first;
  return sizes;
}

std::pair<Shape, Shape> local_shape_and_offset(const Shape& global, const std::vector<int64_t>& mesh_shape,
                                               const std::vector<int64_t>& coord, const Placements& placements) {
  WEFT_CHECK(mesh_shape.size() == placements.size() && coord.size() == placements.size(),
             "local_shape_and_offset: expected one placement and one coordinate per mesh dim (", mesh_shape.size(),
             ") but got ", placements.size(), " placements and ", coord.size(), " coordinates");
  Placements norm = normalize(placements, static_cast<int64_t>(global.size()));
  Shape local = global;
  Shape offset(global.size(), 0);
  for (size_t i = 0; i < norm.size(); ++i) {
    if (!norm[i].is_shard()) continue;
    size_t d = static_cast<size_t>(norm[i].shard_dim);
    auto [size, off] = chunk_size_and_offset(local[d], mesh_shape[i], coord[i]);
    local[d] = size;
    offset[d] += off;
  }
  return {local, offset};
}

Shape even_global_shape(const Shape& local, const std::vector<int64_t>& mesh_shape, const Placements& placements) {
  Placements norm = normalize(placements, static_cast<int64_t>(local.size()));
  Shape global = local;
  for (size_t i = 0; i < norm.size(); ++i)
    if (norm[i].is_shard()) global[static_cast<size_t>(norm[i].shard_dim)] *= mesh_shape[i];
  return global;
}

}  // namespace weft::dist
