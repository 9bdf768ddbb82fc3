// The caching allocator: 64-byte aligned blocks, kept by size class and reused.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft {

struct AllocatorStats {
  uint64_t hits = 0;          // allocations served from the cache
  uint64_t misses = 0;        // allocations that asked the OS
  uint64_t bytes_in_use = 0;  // bytes handed out and not yet returned
  uint64_t bytes_cached = 0;  // bytes held in the cache, ready for reuse
  // The highest bytes_in_use since reset_peak_stats(), per thread, summed: exact when one thread
  // allocates (a training loop: OpenMP's workers allocate nothing), an upper bound otherwise.
  uint64_t peak_bytes_in_use = 0;
};

// Note [Caching allocator]
// A training loop allocates the same sizes every step. Freed blocks go back to a free list for
// their size class (sizes are rounded up to 64 bytes, and above 4 KiB to a quarter of a power of
// two), so after the first step no op reaches the OS and large buffers keep their pages mapped.
// Blocks of 2 MiB and more are asked to be backed by huge pages.
namespace allocator {

// Throws weft::Error naming `op` and the byte count when the system has no memory for it.
void* allocate(size_t nbytes, const char* op = "allocator");
void deallocate(void* ptr, size_t nbytes);
size_t size_class(size_t nbytes);
AllocatorStats stats();
void reset_stats();       // zeroes hits and misses
void reset_peak_stats();  // starts peak_bytes_in_use again from the bytes in use now
void empty_cache();     // gives every cached block back to the OS

}  // namespace allocator
}  // namespace weft
