// fault.h: what every fault scenario shares. Each scenario is a whole program that one rank (rank
// 1) gets wrong; scripts/test-faults runs it under mpirun and checks that the job ends non-zero,
// in time, with a message naming the rank and the collective (docs/faults.md).
#pragma once

#include <cstdio>

#include "distributed/collectives.h"
#include "distributed/dtensor.h"
#include "distributed/local_map.h"
#include "distributed/runtime.h"
#include "weft.h"

namespace fault {

using namespace weft;
using namespace weft::dist;

inline DeviceMesh world_mesh() { return DeviceMesh({world_size()}, {"tp"}); }

// The body of the local_map scenarios: a row-sharded matmul.
inline Tensor mm_body(const Tensor& x, const Tensor& w) { return matmul(x, w); }

// A value every rank should read; anything else is a corrupted result reaching the user.
inline void check_value(const Tensor& t, double expected) {
  double got = t.sum().item<double>();
  if (got != expected) std::printf("weft-fault: rank %d read CORRUPT value %g (expected %g)\n", world_rank(), got, expected);
}

}  // namespace fault
