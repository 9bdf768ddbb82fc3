// The caching allocator. See Note [Caching allocator].
#include "framework/allocator.h"

#include <sys/mman.h>

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "framework/error.h"

namespace weft::allocator {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kHugePage = size_t(2) << 20;

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  AllocatorStats stats;
};

Cache& cache() {
  // Never destroyed: tensors with static lifetime may free after main returns.
  static Cache* instance = new Cache;
  return *instance;
}

void* fresh_block(size_t bytes) {
  size_t alignment = bytes >= kHugePage ? kHugePage : kAlignment;
  void* ptr = std::aligned_alloc(alignment, bytes);
  WEFT_CHECK(ptr != nullptr, "allocator: out of memory allocating ", bytes, " bytes");
  if (bytes >= kHugePage) madvise(ptr, bytes, MADV_HUGEPAGE);
  return ptr;
}

}  // namespace

size_t size_class(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded <= 4096) return rounded;
  // Four classes per doubling: waste at most 25% and keep few distinct sizes.
  size_t top = std::bit_floor(rounded);
  size_t step = top / 4;
  return (rounded + step - 1) / step * step;
}

void* allocate(size_t nbytes) {
  size_t bytes = size_class(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.bytes_in_use += bytes;
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      c.stats.bytes_cached -= bytes;
      ++c.stats.hits;
      return ptr;
    }
    ++c.stats.misses;
  }
  return fresh_block(bytes);
}

void deallocate(void* ptr, size_t nbytes) {
  if (ptr == nullptr) return;
  size_t bytes = size_class(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free_blocks[bytes].push_back(ptr);
  c.stats.bytes_in_use -= bytes;
  c.stats.bytes_cached += bytes;
}

AllocatorStats stats() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().stats;
}

void reset_stats() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  cache().stats.hits = 0;
  cache().stats.misses = 0;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [bytes, blocks] : c.free_blocks)
    for (void* ptr : blocks) std::free(ptr);
  c.free_blocks.clear();
  c.stats.bytes_cached = 0;
}

}  // namespace weft::allocator
