// The caching allocator. See Note [Caching allocator] and Note [Thread caches].
#include "framework/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "framework/error.h"

namespace weft::allocator {
namespace {

// Note [Thread caches]
// A 16-element op allocates and frees a block per output; a mutex and a hash lookup per call cost
// as much as the op itself. So each thread keeps its own LIFO free lists for the small and medium
// classes (up to 64 KiB: a 64x64 matmul's output is 16 KiB; one list per size class, linked
// through the free blocks themselves) and
// touches nothing shared on a hit. A block may be freed on another thread than the one that
// allocated it: it simply joins the freeing thread's list (memory is memory). A thread keeps at
// most kLocalBytes cached; past that, and when the thread exits, blocks go to the shared cache.
// Stats: each thread counts its own events in relaxed atomics written only by that thread, and
// stats() sums them under the shared mutex, so no update is lost and no counter is shared.
// empty_cache() frees the shared cache and the calling thread's lists at once; other threads
// give theirs back on their next allocator call (they notice a new epoch).
constexpr size_t kAlignment = 64;
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kSmallMax = 4096;  // one class per 64 bytes up to here, then four per doubling
constexpr size_t kLocalMax = 65536;
constexpr size_t kLocalClasses = kSmallMax / kAlignment + 4 * (std::countr_zero(kLocalMax / kSmallMax)) + 1;

// The thread-cache list of size class `bytes` (<= kLocalMax; see size_class()).
constexpr size_t local_index(size_t bytes) {
  if (bytes <= kSmallMax) return bytes / kAlignment - 1;
  const int top_log2 = std::bit_width(bytes) - 1;  // shifts, not divisions: this runs twice per op
  return kSmallMax / kAlignment + 4 * (top_log2 - std::countr_zero(kSmallMax)) + ((bytes >> (top_log2 - 2)) - 4);
}
// (Slot 64 stays empty: 4 KiB itself is a small class.)
static_assert(local_index(kSmallMax) == 63 && local_index(kSmallMax + 1024) == 65 &&
              local_index(kSmallMax + 3072) == 67 && local_index(2 * kSmallMax) == 68 &&
              local_index(kLocalMax) == kLocalClasses - 1);
constexpr size_t kLocalBytes = size_t(1) << 20;

// A counter one thread writes and any thread reads.
struct Counter {
  std::atomic<uint64_t> value{0};
  void add(uint64_t d) { value.store(value.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  void sub(uint64_t d) { value.store(value.load(std::memory_order_relaxed) - d, std::memory_order_relaxed); }
  uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct FreeBlock {
  FreeBlock* next;
  size_t bytes;  // its size class, for flushing to the shared lists
};

struct ThreadCache {
  FreeBlock* heads[kLocalClasses] = {};
  size_t cached = 0;  // bytes on this thread's lists
  uint64_t epoch = 0;
  Counter hits, misses, in_use, bytes_cached;
  Counter peak;  // the highest in_use since reset_peak_stats (in_use read as signed: see stats())

  // After in_use grew. A thread that frees blocks others allocated runs below zero; it has no peak.
  void note_peak() {
    const auto now = static_cast<int64_t>(in_use.get());
    if (now > static_cast<int64_t>(peak.get())) peak.value.store(static_cast<uint64_t>(now), std::memory_order_relaxed);
  }
  // reset_stats() baselines, written only under the shared mutex.
  uint64_t hits_base = 0, misses_base = 0;
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  AllocatorStats stats;  // events of the shared path and of exited threads
  std::vector<ThreadCache*> threads;
};

// Bumped by empty_cache(); constant-initialised, so the hot path reads it without a guard.
constinit std::atomic<uint64_t> g_epoch{0};

Cache& cache() {
  // Never destroyed: tensors with static lifetime may free after main returns.
  static Cache* instance = new Cache;
  return *instance;
}

// Undoes the miss counted for a block the system refused, then throws naming `op`.
[[noreturn]] void fail_allocation(size_t bytes, const char* op);

void* fresh_block(size_t bytes, const char* op) {
  size_t alignment = bytes >= kHugePage ? kHugePage : kAlignment;
  // posix_memalign, not aligned_alloc: C requires aligned_alloc's size to be a multiple of the
  // alignment, which a 3 MB size class under 2 MB alignment is not (AddressSanitizer rejects it).
  void* ptr = nullptr;
  if (posix_memalign(&ptr, alignment, bytes) != 0 || ptr == nullptr) [[unlikely]]
    fail_allocation(bytes, op);
  if (bytes >= kHugePage) madvise(ptr, bytes, MADV_HUGEPAGE);
  return ptr;
}

// Moves every block of `tc` to the shared lists; the caller holds the shared mutex.
void flush_locked(Cache& c, ThreadCache& tc) {
  for (size_t k = 0; k < kLocalClasses; ++k) {
    for (FreeBlock* b = tc.heads[k]; b != nullptr;) {
      FreeBlock* next = b->next;
      c.free_blocks[b->bytes].push_back(b);
      b = next;
    }
    tc.heads[k] = nullptr;
  }
  c.stats.bytes_cached += tc.cached;
  tc.bytes_cached.sub(tc.cached);
  tc.cached = 0;
}

// Registers this thread's cache on first use; at thread exit folds it into the shared cache.
struct ThreadCacheOwner {
  ThreadCache cache_;
  ThreadCacheOwner() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    cache_.epoch = g_epoch.load(std::memory_order_relaxed);
    c.threads.push_back(&cache_);
  }
  ~ThreadCacheOwner();
};

enum class TlsState : uint8_t { Unset, Live, Dead };
// initial-exec: a plain %fs-relative load instead of a __tls_get_addr call per allocation; the
// library is linked, not dlopen'ed late, and these take a few bytes of static TLS.
[[gnu::tls_model("initial-exec")]] thread_local TlsState tls_state = TlsState::Unset;
[[gnu::tls_model("initial-exec")]] thread_local ThreadCache* tls_cache = nullptr;

ThreadCacheOwner::~ThreadCacheOwner() {
  tls_state = TlsState::Dead;  // frees during later TLS destruction take the shared path
  tls_cache = nullptr;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  flush_locked(c, cache_);
  c.stats.hits += cache_.hits.get() - cache_.hits_base;
  c.stats.misses += cache_.misses.get() - cache_.misses_base;
  c.stats.bytes_in_use += cache_.in_use.get();
  c.threads.erase(std::find(c.threads.begin(), c.threads.end(), &cache_));
}

// First use on this thread, a pending empty_cache(), or a thread being torn down.
[[gnu::noinline]] ThreadCache* thread_cache_slow() {
  if (tls_state == TlsState::Live) {
    ThreadCache* tc = tls_cache;
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    flush_locked(c, *tc);
    tc->epoch = g_epoch.load(std::memory_order_relaxed);
    return tc;
  }
  if (tls_state == TlsState::Dead) return nullptr;
  static thread_local ThreadCacheOwner owner;
  tls_cache = &owner.cache_;
  tls_state = TlsState::Live;
  return tls_cache;
}

// This thread's cache, or null once the thread is being torn down.
inline ThreadCache* thread_cache() {
  if (tls_state == TlsState::Live) [[likely]] {
    ThreadCache* tc = tls_cache;
    if (tc->epoch == g_epoch.load(std::memory_order_relaxed)) [[likely]] return tc;
  }
  return thread_cache_slow();
}

// The shared path: large classes, local misses, and threads without a cache.
void* allocate_shared_path(size_t bytes, ThreadCache* tc, const char* op) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      c.stats.bytes_cached -= bytes;
      if (tc) tc->hits.add(1), tc->in_use.add(bytes), tc->note_peak();
      else ++c.stats.hits, c.stats.bytes_in_use += bytes;
      return ptr;
    }
    if (tc) tc->misses.add(1), tc->in_use.add(bytes), tc->note_peak();
    else ++c.stats.misses, c.stats.bytes_in_use += bytes;
  }
  return fresh_block(bytes, op);
}

void fail_allocation(size_t bytes, const char* op) {
  ThreadCache* tc = thread_cache();
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (tc) tc->misses.sub(1), tc->in_use.sub(bytes);
    else --c.stats.misses, c.stats.bytes_in_use -= bytes;
  }
  WEFT_ERROR(op, ": out of memory allocating ", bytes, " bytes");
}

}  // namespace

size_t size_class(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  size_t rounded = (nbytes + kAlignment - 1) & ~(kAlignment - 1);
  if (rounded <= 4096) return rounded;
  // Four classes per doubling: waste at most 25% and keep few distinct sizes. The step is a power
  // of two, so rounding up to it is a mask (a division here cost every op's allocation ~5 ns).
  const size_t step_mask = (size_t(1) << (std::bit_width(rounded) - 3)) - 1;
  return (rounded + step_mask) & ~step_mask;
}

void* allocate(size_t nbytes, const char* op) {
  // Past this, size_class's rounding could wrap; no system has the memory anyway.
  WEFT_CHECK(nbytes <= (size_t(1) << 62), op, ": cannot allocate ", nbytes, " bytes");
  size_t bytes = size_class(nbytes);
  ThreadCache* tc = thread_cache();
  if (tc && bytes <= kLocalMax) {
    size_t k = local_index(bytes);
    if (FreeBlock* b = tc->heads[k]) {
      tc->heads[k] = b->next;
      tc->cached -= bytes;
      tc->bytes_cached.sub(bytes);
      tc->hits.add(1);
      tc->in_use.add(bytes);
      tc->note_peak();
      return b;
    }
  }
  return allocate_shared_path(bytes, tc, op);
}

void deallocate(void* ptr, size_t nbytes) {
  if (ptr == nullptr) return;
  size_t bytes = size_class(nbytes);
  ThreadCache* tc = thread_cache();
  if (tc && bytes <= kLocalMax && tc->cached + bytes <= kLocalBytes) {
    auto* b = static_cast<FreeBlock*>(ptr);
    size_t k = local_index(bytes);
    b->next = tc->heads[k];
    b->bytes = bytes;
    tc->heads[k] = b;
    tc->cached += bytes;
    tc->bytes_cached.add(bytes);
    tc->in_use.sub(bytes);
    return;
  }
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free_blocks[bytes].push_back(ptr);
  c.stats.bytes_cached += bytes;
  if (tc) tc->in_use.sub(bytes);
  else c.stats.bytes_in_use -= bytes;
}

AllocatorStats stats() {
  thread_cache();  // registers this thread, and applies a pending empty_cache to it
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  AllocatorStats s = c.stats;
  for (const ThreadCache* tc : c.threads) {
    s.hits += tc->hits.get() - tc->hits_base;
    s.misses += tc->misses.get() - tc->misses_base;
    s.bytes_in_use += tc->in_use.get();  // may wrap per thread (cross-thread frees); the sum is right
    s.bytes_cached += tc->bytes_cached.get();
    s.peak_bytes_in_use += tc->peak.get();
  }
  // Allocations of threads without a cache (being torn down) count as they stand.
  s.peak_bytes_in_use += c.stats.bytes_in_use;
  return s;
}

void reset_peak_stats() {
  thread_cache();
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (ThreadCache* tc : c.threads) {
    const auto now = static_cast<int64_t>(tc->in_use.get());
    tc->peak.value.store(now > 0 ? static_cast<uint64_t>(now) : 0, std::memory_order_relaxed);
  }
}

void reset_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.hits = 0;
  c.stats.misses = 0;
  for (ThreadCache* tc : c.threads) {
    tc->hits_base = tc->hits.get();
    tc->misses_base = tc->misses.get();
  }
}

void empty_cache() {
  ThreadCache* tc = thread_cache();
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (tc) flush_locked(c, *tc);
  for (auto& [bytes, blocks] : c.free_blocks)
    for (void* ptr : blocks) std::free(ptr);
  c.free_blocks.clear();
  c.stats.bytes_cached = 0;
  uint64_t next = g_epoch.load(std::memory_order_relaxed) + 1;
  g_epoch.store(next, std::memory_order_relaxed);
  if (tc) tc->epoch = next;
}

}  // namespace weft::allocator
