// bench_common.h: what every benchmark binary shares: the weft-vs-baseline ratio counter, the thread
// setting, and a raw oneDNN engine/stream of the benchmarks' own (not weft's) for the baselines.
#pragma once

#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>

#include <map>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "weft.h"

namespace bench {

// Note [Ratio counter]
// Google Benchmark runs each case on its own, so a case cannot read another's time. Every pair is
// registered baseline first; the baseline stores its wall time per iteration under a key, and the weft
// case reports ratio = weft time / baseline time (lower is better, 1.0 = as fast as the baseline).
// scripts/bench recomputes the ratios from the JSON as well; the counter is for reading the console.
//
// Note [Which clock]
// The machine is shared (other builds run beside the benchmarks), so wall time mostly measures the
// scheduler. A single-threaded case is timed by its thread's CPU time; a case running 2 OpenMP threads
// (or 2 MPI ranks) needs wall time, as its threads wait on each other. report.py applies the same
// rule to the JSON: cpu_time for threads:1, real_time otherwise.
class LoopClock {
 public:
  explicit LoopClock(bool wall = omp_get_max_threads() > 1) : wall_(wall), start_(now()) {}
  double ns_per_iter(const benchmark::State& state) const {
    return state.iterations() > 0 ? (now() - start_) / static_cast<double>(state.iterations()) : 0.0;
  }

 private:
  double now() const {
    timespec ts;
    clock_gettime(wall_ ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
  }
  bool wall_;
  double start_;
};

inline std::map<std::string, double>& baseline_times() {
  static std::map<std::string, double> times;
  return times;
}

inline void record_baseline(const std::string& key, const LoopClock& clock, const benchmark::State& state) {
  baseline_times()[key] = clock.ns_per_iter(state);
}

// Sets the "ratio" counter when the baseline ran in this process (it is absent under a filter that
// left the baseline out).
inline void report_ratio(const std::string& key, const LoopClock& clock, benchmark::State& state) {
  auto it = baseline_times().find(key);
  if (it != baseline_times().end() && it->second > 0) state.counters["ratio"] = clock.ns_per_iter(state) / it->second;
}

// One setting for weft's loops and oneDNN (both OpenMP) and the baselines' own OpenMP loops.
inline void set_threads(int n) {
  weft::set_num_threads(n);
  omp_set_num_threads(n);
}

inline std::string key_of(const char* what, const benchmark::State& state, int nargs) {
  std::string key = what;
  for (int i = 0; i < nargs; ++i) key += "/" + std::to_string(state.range(i));
  return key;
}

// The baselines' oneDNN objects, separate from weft's so that nothing weft caches helps them.
inline dnnl::engine& raw_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
inline dnnl::stream& raw_stream() {
  static dnnl::stream stream(raw_engine());
  return stream;
}

inline dnnl::memory::desc f32_desc(const dnnl::memory::dims& dims, const dnnl::memory::dims& strides) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

// GFLOP/s: `flops` per iteration, divided by the time per iteration.
inline benchmark::Counter gflops(double flops) {
  return benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
// GB/s: `bytes` moved per iteration.
inline benchmark::Counter gbytes(double bytes) {
  return benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace bench
