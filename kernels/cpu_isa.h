// cpu_isa.h: which instruction-set copies of weft's own kernels this process runs.
#pragma once

namespace weft::kernels {

// Ordered: each level includes the ones below it.
enum class CpuIsa { kBaseline, kAvx2, kAvx512 };

// The widest set the CPU supports (avx2 means avx2 + fma; avx512 means F, DQ, BW and VL), capped by
// the environment variable WEFT_MAX_CPU_ISA ("baseline", "avx2" or "avx512") when it is set, so that
// tests run every copy on one host (as oneDNN's ONEDNN_MAX_CPU_ISA does for its kernels). Read once.
CpuIsa cpu_isa();

// Of a kernel's three copies (baseline, avx2, avx512), the widest this process runs.
template <class F>
F widest(F base, F avx2, F avx512) {
  switch (cpu_isa()) {
    case CpuIsa::kAvx512: return avx512;
    case CpuIsa::kAvx2: return avx2;
    case CpuIsa::kBaseline: break;
  }
  return base;
}

}  // namespace weft::kernels

// The attributes that compile a function's avx2 and avx512 copies. Off x86 they are empty and
// cpu_isa() is kBaseline, so the wider copies are compiled as plain code and never picked.
#if defined(__x86_64__) && defined(__GNUC__)
#define WEFT_AVX2 gnu::target("avx2,fma")
#define WEFT_AVX512 gnu::target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#else
#define WEFT_AVX2
#define WEFT_AVX512
#endif
