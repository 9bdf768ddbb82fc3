// collective_kind.h: the names of the collectives weft issues, shared by CommDebugMode, the
// redistribute planner and the watchdog's messages (a header of its own so that the pure planner
// need not include CommDebugMode).
#pragma once

#include <string>

namespace weft::dist {

// Reduce is the backward of broadcast (a reduction to the source rank).
enum class CollectiveKind { AllReduce, AllGather, ReduceScatter, AllToAll, Broadcast, Scatter, Reduce };
std::string to_string(CollectiveKind kind);  // "all_reduce", "all_gather", ...

}  // namespace weft::dist
