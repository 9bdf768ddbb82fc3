// bench_allocator: weft's caching allocator against std::aligned_alloc/free, for the sizes tensors
// commonly have; with and without touching every page (a tensor always writes its memory, and a
// fresh mapping pays a page fault per 4 KiB on first touch).
#include <cstdlib>

#include "bench_common.h"

namespace {

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// One write per page, as a tensor's first fill would make.
void touch(void* p, size_t n) {
  auto* c = static_cast<volatile char*>(p);
  for (size_t i = 0; i < n; i += 4096) c[i] = 1;
}
void* touched(void* p, size_t n) {
  touch(p, n);
  return p;
}

void BM_alloc_std(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool touch_pages = state.range(1) != 0;
  std::free(touched(std::aligned_alloc(64, round_up(n, 64)), n));  // warm, as the weft case is
  bench::LoopClock clock;
  for (auto _ : state) {
    void* p = std::aligned_alloc(64, round_up(n, 64));
    if (touch_pages) touch(p, n);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  bench::record_baseline(bench::key_of("alloc", state, 2), clock, state);
}

void BM_alloc_weft(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool touch_pages = state.range(1) != 0;
  weft::allocator::deallocate(touched(weft::allocator::allocate(n), n), n);  // warm: cached, pages mapped
  weft::allocator::reset_stats();
  bench::LoopClock clock;
  for (auto _ : state) {
    void* p = weft::allocator::allocate(n);
    if (touch_pages) touch(p, n);
    benchmark::DoNotOptimize(p);
    weft::allocator::deallocate(p, n);
  }
  bench::report_ratio(bench::key_of("alloc", state, 2), clock, state);
  const auto stats = weft::allocator::stats();
  state.counters["hits"] = static_cast<double>(stats.hits);
  state.counters["misses"] = static_cast<double>(stats.misses);
}

// A training-step-like pattern: 8 blocks of mixed sizes live at once, freed in reverse order.
constexpr size_t kPattern[] = {256, 4096, 65536, 1 << 20, 4 << 20, 64, 16384, 2 << 20};

void BM_pattern_std(benchmark::State& state) {
  void* blocks[8];
  bench::LoopClock clock;
  for (auto _ : state) {
    for (int i = 0; i < 8; ++i) touch(blocks[i] = std::aligned_alloc(64, round_up(kPattern[i], 64)), kPattern[i]);
    for (int i = 7; i >= 0; --i) std::free(blocks[i]);
  }
  bench::record_baseline("pattern", clock, state);
}

void BM_pattern_weft(benchmark::State& state) {
  void* blocks[8];
  weft::allocator::reset_stats();
  bench::LoopClock clock;
  for (auto _ : state) {
    for (int i = 0; i < 8; ++i) touch(blocks[i] = weft::allocator::allocate(kPattern[i]), kPattern[i]);
    for (int i = 7; i >= 0; --i) weft::allocator::deallocate(blocks[i], kPattern[i]);
  }
  bench::report_ratio("pattern", clock, state);
  const auto stats = weft::allocator::stats();
  state.counters["hits"] = static_cast<double>(stats.hits);
  state.counters["misses"] = static_cast<double>(stats.misses);
}

void size_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"bytes", "touch"});
  for (int t : {0, 1})
    for (int64_t n : {64, 4096, 65536, 1 << 20, 16 << 20}) b->Args({n, t});
}
BENCHMARK(BM_alloc_std)->Apply(size_args);
BENCHMARK(BM_alloc_weft)->Apply(size_args);
BENCHMARK(BM_pattern_std);
BENCHMARK(BM_pattern_weft);

}  // namespace

BENCHMARK_MAIN();
