// cpu_isa.h: which instruction-set copies of weft's own kernels this process runs.
#pragma once

namespace weft::kernels {

// Ordered: each level includes the ones below it.
enum class CpuIsa { kBaseline, kAvx2, kAvx512 };

// The widest set the CPU supports (avx2 means avx2 + fma; avx512 means F, DQ, BW and VL), capped by
// the environment variable WEFT_MAX_CPU_ISA ("baseline", "avx2" or "avx512") when it is set, so that
// tests run every copy on one host (as oneDNN's ONEDNN_MAX_CPU_ISA does for its kernels). Read once.
CpuIsa cpu_isa();

}  // namespace weft::kernels
