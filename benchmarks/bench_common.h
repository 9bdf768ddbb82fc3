// bench_common.h: what every benchmark binary shares: the weft-vs-baseline ratio counter, the thread
// setting, and a raw oneDNN engine/stream of the benchmarks' own (not weft's) for the baselines.
#pragma once

#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "weft.h"

namespace bench {

// Note [Ratio counter]
// Google Benchmark runs each case on its own, so a case cannot read another's time. Every pair is
// registered baseline first; the baseline stores its wall time per iteration under a key, and the weft
// case reports ratio = weft time / baseline time (lower is better, 1.0 = as fast as the baseline).
// scripts/bench recomputes the ratios from the JSON as well; the counter is for reading the console.
// Every ratio in the report reads this one way, weft's time over the baseline's, throughput targets
// included (">= 0.95x the throughput" is written as "<= 1.053x the time").
//
// Note [Which clock]
// The machine is shared (other builds run beside the benchmarks), so wall time mostly measures the
// scheduler. A single-threaded case is timed by the CPU time of the whole process, not of the
// calling thread: if a library opened a parallel region anyway, its other threads' work is counted,
// so a "1 thr" row can never show more than one core's throughput. A case running 2 OpenMP threads
// (or 2 MPI ranks) needs wall time, as its threads wait on each other. report.py applies the same
// rule to the JSON, and every paired case also reports cpu_per_wall (process CPU time / wall time
// over the case): about 1 for a case that really ran one thread, up to 2 for two busy threads.
inline double clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}
inline clockid_t clock_for(bool wall) { return wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID; }

class LoopClock {
 public:
  explicit LoopClock(bool wall = omp_get_max_threads() > 1) : wall_(wall), start_(now()) {}
  double ns_per_iter(const benchmark::State& state) const {
    return state.iterations() > 0 ? (now() - start_) / static_cast<double>(state.iterations()) : 0.0;
  }

 private:
  double now() const { return clock_ns(clock_for(wall_)); }
  bool wall_;
  double start_;
};

// Note [Paired timing]
// The host's speed drifts by 10-30% over the seconds between two cases (measured: the same raw
// 256^3 matmul at 423 and 476 us a minute apart), more than a tight target allows. A pair whose
// target is within a few percent therefore runs as one case: each iteration times a block of
// baseline calls, then a block of weft calls (the order alternating), and the medians of the
// per-call times are the counters baseline_us and weft_us, with ratio = weft_us / baseline_us.
// A block is one call or enough calls for ~200 us, so that reading the clock costs nothing.
template <class B, class W>
void paired(benchmark::State& state, B&& baseline, W&& weft) {
  const clockid_t clock = clock_for(omp_get_max_threads() > 1);  // Note [Which clock]
  auto now = [clock] { return clock_ns(clock); };
  auto timed = [&](auto& f, int64_t calls) {
    const double t0 = now();
    for (int64_t i = 0; i < calls; ++i) f();
    return (now() - t0) / static_cast<double>(calls);
  };
  timed(baseline, 1);  // warm: primitives made, output blocks cached, pages touched
  timed(weft, 1);
  const double one_call = std::max(1.0, std::min(timed(baseline, 1), timed(weft, 1)));
  const int64_t calls = std::max<int64_t>(1, static_cast<int64_t>(200e3 / one_call));
  std::vector<double> tb, tw;
  const double cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), wall0 = clock_ns(CLOCK_MONOTONIC);
  for (auto _ : state) {
    double b, w;
    if (tb.size() % 2 == 0) {
      b = timed(baseline, calls);
      w = timed(weft, calls);
    } else {
      w = timed(weft, calls);
      b = timed(baseline, calls);
    }
    state.SetIterationTime(w * 1e-9 * static_cast<double>(calls));
    tb.push_back(b);
    tw.push_back(w);
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  state.counters["cpu_per_wall"] =
      (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / std::max(1.0, clock_ns(CLOCK_MONOTONIC) - wall0);
  const double mb = median(tb), mw = median(tw);
  state.counters["baseline_us"] = mb * 1e-3;
  state.counters["weft_us"] = mw * 1e-3;
  if (mb > 0) state.counters["ratio"] = mw / mb;
}

// One side alone, timed as paired() times each side (blocks of calls for ~200 us, the median per-call
// time in the counter weft_us, named so for report.py however the library is): for binaries whose baseline lives in another binary (bench_torch).
template <class F>
void blocks(benchmark::State& state, F&& f) {
  const clockid_t clock = clock_for(omp_get_max_threads() > 1);  // Note [Which clock]
  auto timed = [&](int64_t calls) {
    const double t0 = clock_ns(clock);
    for (int64_t i = 0; i < calls; ++i) f();
    return (clock_ns(clock) - t0) / static_cast<double>(calls);
  };
  timed(1);  // warm
  const int64_t calls = std::max<int64_t>(1, static_cast<int64_t>(200e3 / std::max(1.0, timed(1))));
  std::vector<double> per_call;
  const double cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), wall0 = clock_ns(CLOCK_MONOTONIC);
  for (auto _ : state) {
    per_call.push_back(timed(calls));
    state.SetIterationTime(per_call.back() * 1e-9 * static_cast<double>(calls));
  }
  state.counters["cpu_per_wall"] =
      (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / std::max(1.0, clock_ns(CLOCK_MONOTONIC) - wall0);
  std::nth_element(per_call.begin(), per_call.begin() + per_call.size() / 2, per_call.end());
  state.counters["weft_us"] = per_call.empty() ? 0.0 : per_call[per_call.size() / 2] * 1e-3;
}

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
