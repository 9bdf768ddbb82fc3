// The end of an MPI benchmark binary's main (bench_mpi, bench_overlap): every rank runs the same
// cases (the filter is the same everywhere), and only rank 0 reports and writes --benchmark_out
// (else every rank would write the same file).
#pragma once

#include <benchmark/benchmark.h>

#include <string_view>
#include <vector>

#include "distributed/runtime.h"

namespace bench {

inline int run_on_every_rank(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  if (weft::dist::world_rank() != 0)
    std::erase_if(args, [](const char* a) { return std::string_view(a).starts_with("--benchmark_out"); });
  int nargs = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&nargs, args.data());
  if (weft::dist::world_rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    struct NullReporter : benchmark::BenchmarkReporter {
      bool ReportContext(const Context&) override { return true; }
      void ReportRuns(const std::vector<Run>&) override {}
    } null_reporter;
    benchmark::RunSpecifiedBenchmarks(&null_reporter);
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
