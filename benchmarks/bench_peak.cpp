// bench_peak: what this machine can do, measured in the same run as the other benchmarks, so that
// every GFLOP/s and GB/s row of the report can say which fraction of the hardware it reaches.
// Compute: a loop of independent fused multiply-adds on AVX-512 registers (AVX2 where AVX-512 is
// absent), no memory traffic. Bandwidth: STREAM's copy (c = a) and add (c = a + b) over arrays far
// larger than the last-level cache, allocated on 2 MiB boundaries, advised to use huge pages and
// touched before timing, so no page fault lands in the measurement. Each case reports the best block
// (the fastest of its timed blocks): a peak, not a typical speed.
#include <immintrin.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "bench_common.h"

namespace {

// 16 accumulators hide the FMA latency (4 cycles) on two FMA ports with room to spare.
constexpr int kAcc = 16;
constexpr int64_t kFmaRounds = 1 << 16;

[[gnu::target("avx512f")]] float fma_loop_avx512(float seed) {
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(seed + j);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t r = 0; r < kFmaRounds; ++r)
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  __m512 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm512_add_ps(s, acc[j]);
  return _mm512_reduce_add_ps(s);
}

[[gnu::target("avx2,fma")]] float fma_loop_avx2(float seed) {
  __m256 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_set1_ps(seed + j);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t r = 0; r < kFmaRounds; ++r)
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  float out[8];
  __m256 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm256_add_ps(s, acc[j]);
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

// Times `block` (which runs the work once) repeatedly; sets the counter `name` to `amount` per ns of
// the fastest block (GFLOP/s or GB/s when amount is in flops or bytes).
template <class F>
void best_block(benchmark::State& state, const char* name, double amount, F block) {
  const clockid_t clock = bench::clock_for(omp_get_max_threads() > 1);  // Note [Which clock]
  block();  // warm
  double best = std::numeric_limits<double>::infinity();
  for (auto _ : state) {
    const double t0 = bench::clock_ns(clock);
    block();
    const double t = bench::clock_ns(clock) - t0;
    state.SetIterationTime(t * 1e-9);
    best = std::min(best, t);
  }
  state.counters[name] = amount / best;
}

void BM_peak_fma(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  bench::set_threads(threads);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const double lanes = avx512 ? 16 : 8;
  const double flops = threads * 2.0 * lanes * kAcc * kFmaRounds;
  float sink = 0;
  best_block(state, "GFLOPs", flops, [&] {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += avx512 ? fma_loop_avx512(static_cast<float>(omp_get_thread_num())) : fma_loop_avx2(1.0f);
  });
  benchmark::DoNotOptimize(sink);
  state.counters["avx512"] = avx512;
}

// An array of n floats on a 2 MiB boundary, advised to use huge pages and written once.
float* touched_array(int64_t n, float value) {
  const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + (2 << 20) - 1) / (2 << 20) * (2 << 20);
  auto* p = static_cast<float*>(std::aligned_alloc(2 << 20, bytes));
  madvise(p, bytes, MADV_HUGEPAGE);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = value;
  return p;
}

// 32M floats (128 MiB) per array: far past the 32-48 MiB last-level caches of current servers.
constexpr int64_t kStream = 32 << 20;

void BM_peak_stream(benchmark::State& state, bool add) {
  const int threads = static_cast<int>(state.range(0));
  bench::set_threads(threads);
  float *a = touched_array(kStream, 1.0f), *b = touched_array(kStream, 2.0f), *c = touched_array(kStream, 0.0f);
  best_block(state, "GBs", (add ? 3.0 : 2.0) * 4.0 * kStream, [&] {
    if (add) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
      for (int64_t i = 0; i < kStream; ++i) c[i] = a[i] + b[i];
    } else {
#pragma omp parallel for simd num_threads(threads) schedule(static)
      for (int64_t i = 0; i < kStream; ++i) c[i] = a[i];
    }
    benchmark::ClobberMemory();
  });
  benchmark::DoNotOptimize(c[kStream / 2]);
  std::free(a);
  std::free(b);
  std::free(c);
}

BENCHMARK(BM_peak_fma)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_peak_stream, copy, false)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_peak_stream, add, true)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
