// test_allocator.cpp: the caching allocator: size classes, alignment, reuse, stats, and the
// steady state a training loop relies on (no new OS allocations after warm-up).
#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>
#include <vector>

#include "framework/allocator.h"
#include "framework/factories.h"
#include "framework/tensor.h"
#include "ops/copy_ops.h"

using namespace weft;

namespace {

bool aligned(const void* p, size_t alignment) { return reinterpret_cast<uintptr_t>(p) % alignment == 0; }

}  // namespace

TEST_CASE("size classes round to 64 bytes, then to quarters of a power of two", "[allocator]") {
  CHECK(allocator::size_class(0) == 64);
  CHECK(allocator::size_class(1) == 64);
  CHECK(allocator::size_class(64) == 64);
  CHECK(allocator::size_class(65) == 128);
  CHECK(allocator::size_class(4000) == 4032);
  CHECK(allocator::size_class(4096) == 4096);
  CHECK(allocator::size_class(4097) == 5120);  // 4096 + 1024
  CHECK(allocator::size_class(5121) == 6144);
  CHECK(allocator::size_class(8192) == 8192);
  CHECK(allocator::size_class(8193) == 10240);  // 8192 + 2048
  CHECK(allocator::size_class(size_t(3) << 20) == size_t(3) << 20);
  CHECK(allocator::size_class((size_t(3) << 20) + 1) == (size_t(7) << 19));  // 3 MiB + 1 -> 3.5 MiB
  // Every class wastes at most a quarter past 4 KiB.
  for (size_t n = 4097; n < (size_t(1) << 22); n = n * 3 / 2 + 17) {
    size_t c = allocator::size_class(n);
    INFO("n = " << n);
    CHECK(c >= n);
    CHECK(c % 64 == 0);
    CHECK(static_cast<double>(c) <= 1.25 * static_cast<double>(n + 63));
  }
}

TEST_CASE("blocks are 64-byte aligned; huge blocks are 2 MiB aligned", "[allocator]") {
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t n : {size_t(1), size_t(63), size_t(100), size_t(4097), size_t(100000), size_t(3) << 20}) {
    void* p = allocator::allocate(n);
    INFO("n = " << n);
    CHECK(aligned(p, 64));
    if (n >= (size_t(2) << 20)) CHECK(aligned(p, size_t(2) << 20));
    blocks.push_back({p, n});
  }
  for (auto [p, n] : blocks) allocator::deallocate(p, n);
  // Tensors take their data from the allocator too.
  Tensor t = zeros({3, 5}, kFloat64);
  CHECK(aligned(t.raw_data(), 64));
}

TEST_CASE("a freed block is reused: a hit, the same address, and the stats follow", "[allocator]") {
  allocator::empty_cache();
  allocator::reset_stats();
  AllocatorStats s0 = allocator::stats();
  CHECK(s0.hits == 0);
  CHECK(s0.misses == 0);
  CHECK(s0.bytes_cached == 0);

  void* a = allocator::allocate(1000);  // class 1024
  AllocatorStats s1 = allocator::stats();
  CHECK(s1.misses == 1);
  CHECK(s1.hits == 0);
  CHECK(s1.bytes_in_use == s0.bytes_in_use + 1024);

  allocator::deallocate(a, 1000);
  AllocatorStats s2 = allocator::stats();
  CHECK(s2.bytes_in_use == s0.bytes_in_use);
  CHECK(s2.bytes_cached == 1024);

  void* b = allocator::allocate(1010);  // same class: served from the cache
  AllocatorStats s3 = allocator::stats();
  CHECK(b == a);
  CHECK(s3.hits == 1);
  CHECK(s3.misses == 1);
  CHECK(s3.bytes_cached == 0);

  void* c = allocator::allocate(2000);  // another class: a miss even though a block is cached elsewhere
  CHECK(allocator::stats().misses == 2);
  allocator::deallocate(b, 1010);
  allocator::deallocate(c, 2000);
  CHECK(allocator::stats().bytes_cached == 1024 + 2048);

  allocator::empty_cache();
  CHECK(allocator::stats().bytes_cached == 0);
  allocator::reset_stats();
  CHECK(allocator::stats().hits == 0);
  CHECK(allocator::stats().misses == 0);
}

TEST_CASE("peak_bytes_in_use is the highest bytes_in_use since reset_peak_stats", "[allocator]") {
  allocator::reset_peak_stats();
  const uint64_t base = allocator::stats().bytes_in_use;
  CHECK(allocator::stats().peak_bytes_in_use == base);
  void* a = allocator::allocate(3000);      // class 3008
  void* b = allocator::allocate(100000);    // class 102400, the shared path
  allocator::deallocate(a, 3000);
  void* c = allocator::allocate(500);       // class 512: below the high-water mark
  const uint64_t high = base + allocator::size_class(3000) + allocator::size_class(100000);
  CHECK(allocator::stats().peak_bytes_in_use == high);
  allocator::deallocate(b, 100000);
  allocator::deallocate(c, 500);
  CHECK(allocator::stats().peak_bytes_in_use == high);  // a peak stays after the frees
  allocator::reset_peak_stats();
  CHECK(allocator::stats().peak_bytes_in_use == base);
  // Tensor storage counts too: a 1000-float tensor and the 2000-float cat of it with itself.
  {
    Tensor x = ones({1000});
    Tensor y = cat({x, x});
    CHECK(allocator::stats().peak_bytes_in_use >= base + allocator::size_class(4000) + allocator::size_class(8000));
  }
}

TEST_CASE("after a warm-up step, a loop asks the OS for nothing", "[allocator]") {
  const std::vector<size_t> sizes = {24, 700, 4096, 5000, 65536, 1 << 20, (3 << 20) + 5};
  auto step = [&] {
    std::vector<void*> live;
    for (size_t n : sizes) live.push_back(allocator::allocate(n));
    for (size_t i = 0; i < sizes.size(); ++i) allocator::deallocate(live[i], sizes[i]);
    // Tensors of a training step: made, used, freed.
    Tensor x = randn({64, 32});
    Tensor y = zeros({64, 32}, kFloat64);
    Tensor z = ones({1000}, kInt64);
    return x.numel() + y.numel() + z.numel();
  };
  step();  // warm-up fills the cache
  allocator::reset_stats();
  uint64_t in_use = allocator::stats().bytes_in_use;
  for (int i = 0; i < 10; ++i) step();
  AllocatorStats s = allocator::stats();
  CHECK(s.misses == 0);
  CHECK(s.hits == 10 * (sizes.size() + 3));
  CHECK(s.bytes_in_use == in_use);
}

TEST_CASE("storage frees its block back to the cache when the last tensor dies", "[allocator]") {
  allocator::reset_stats();
  uint64_t cached_before = allocator::stats().bytes_cached;
  void* address = nullptr;
  {
    Tensor t = empty({123, 7}, kFloat64);  // 6888 bytes -> class 7168
    Tensor alias = detail::make_alias(t, {7}, {1}, 7);
    address = t.raw_data();
    t = Tensor();
    CHECK(allocator::stats().bytes_cached == cached_before);  // the alias keeps the storage alive
    CHECK(alias.numel() == 7);
  }
  CHECK(allocator::stats().bytes_cached == cached_before + allocator::size_class(123 * 7 * 8));
  Tensor again = empty({123, 7}, kFloat64);
  CHECK(again.raw_data() == address);
}

TEST_CASE("blocks freed on another thread are reused there, counted once, and handed back at exit",
          "[allocator]") {
  // See Note [Thread caches]: small blocks live on per-thread lists.
  allocator::empty_cache();
  allocator::reset_stats();
  AllocatorStats s0 = allocator::stats();
  void* a = allocator::allocate(1000);  // class 1024, a miss on this thread
  void* again = nullptr;
  std::thread other([&] {
    allocator::deallocate(a, 1000);         // joins the other thread's list
    again = allocator::allocate(1000);      // a hit there: the same block
    AllocatorStats mid = allocator::stats();
    CHECK(mid.hits == 1);
    CHECK(mid.bytes_in_use == s0.bytes_in_use + 1024);
    allocator::deallocate(again, 1000);
  });  // the thread exits: its cached block moves to the shared cache
  other.join();
  CHECK(again == a);
  AllocatorStats s1 = allocator::stats();
  CHECK(s1.misses == 1);
  CHECK(s1.hits == 1);
  CHECK(s1.bytes_in_use == s0.bytes_in_use);
  CHECK(s1.bytes_cached == 1024);
  void* b = allocator::allocate(1000);  // served from the shared cache on this thread
  CHECK(b == a);
  CHECK(allocator::stats().hits == 2);
  allocator::deallocate(b, 1000);

  // Tensors made on one thread and dropped on another (their TensorImpl and Storage come from
  // per-thread object pools too) leave the byte count where it was.
  uint64_t in_use = allocator::stats().bytes_in_use;
  std::vector<Tensor> made;
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) made.push_back(full({16}, static_cast<double>(i)));
  });
  producer.join();
  CHECK(made[42].to_vector<float>()[3] == 42.0f);
  made.clear();
  CHECK(allocator::stats().bytes_in_use == in_use);
  allocator::empty_cache();
  CHECK(allocator::stats().bytes_cached == 0);
}

TEST_CASE("medium blocks live on the thread lists too, and each goes back to its own class", "[allocator]") {
  // Classes above 4 KiB (four per doubling) up to 64 KiB are cached per thread; one past that is
  // shared. A thread that exits hands each block back under its own size class.
  allocator::empty_cache();
  allocator::reset_stats();
  const std::vector<size_t> sizes{4097, 7000, 16384, 40000, 65536, 65537};  // six distinct classes
  std::vector<void*> blocks(sizes.size());
  std::thread other([&] {
    for (size_t i = 0; i < sizes.size(); ++i) blocks[i] = allocator::allocate(sizes[i]);
    for (size_t i = 0; i < sizes.size(); ++i) allocator::deallocate(blocks[i], sizes[i]);
    for (size_t i = 0; i < sizes.size(); ++i) CHECK(allocator::allocate(sizes[i]) == blocks[i]);  // LIFO hits
    for (size_t i = 0; i < sizes.size(); ++i) allocator::deallocate(blocks[i], sizes[i]);
  });
  other.join();
  size_t expected_cached = 0;
  for (size_t n : sizes) expected_cached += allocator::size_class(n);
  AllocatorStats s = allocator::stats();
  CHECK(s.bytes_cached == expected_cached);
  CHECK(s.misses == sizes.size());
  CHECK(s.hits == sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) CHECK(allocator::allocate(sizes[i]) == blocks[i]);
  CHECK(allocator::stats().hits == 2 * sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) allocator::deallocate(blocks[i], sizes[i]);
  allocator::empty_cache();
}
