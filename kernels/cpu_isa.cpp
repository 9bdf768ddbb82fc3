#include "kernels/cpu_isa.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "framework/error.h"

namespace weft::kernels {
namespace {

CpuIsa detected() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return CpuIsa::kBaseline;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return avx512 ? CpuIsa::kAvx512 : CpuIsa::kAvx2;
#else
  return CpuIsa::kBaseline;
#endif
}

CpuIsa capped() {
  const CpuIsa cpu = detected();
  const char* cap = std::getenv("WEFT_MAX_CPU_ISA");
  if (cap == nullptr || *cap == '\0') return cpu;
  const std::string name(cap);
  CpuIsa limit;
  if (name == "baseline") limit = CpuIsa::kBaseline;
  else if (name == "avx2") limit = CpuIsa::kAvx2;
  else if (name == "avx512") limit = CpuIsa::kAvx512;
  else WEFT_ERROR("WEFT_MAX_CPU_ISA: expected baseline, avx2 or avx512 but got '", name, "'");
  return std::min(cpu, limit);
}

}  // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = capped();
  return isa;
}

}  // namespace weft::kernels
