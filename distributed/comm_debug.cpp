// comm_debug.cpp: CommDebugMode's thread-local stack of open scopes.
#include "distributed/comm_debug.h"

#include <algorithm>
#include <sstream>
#include <vector>

namespace weft::dist {
namespace {
// The open scopes of this thread, innermost last; a record increments all of them.
thread_local std::vector<CommDebugMode*> active_scopes;
}  // namespace

std::string to_string(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::AllReduce: return "all_reduce";
    case CollectiveKind::AllGather: return "all_gather";
    case CollectiveKind::ReduceScatter: return "reduce_scatter";
    case CollectiveKind::AllToAll: return "all_to_all";
    case CollectiveKind::Broadcast: return "broadcast";
    case CollectiveKind::Scatter: return "scatter";
    case CollectiveKind::Reduce: return "reduce";
  }
  return "unknown";
}

CommDebugMode::CommDebugMode() { active_scopes.push_back(this); }

CommDebugMode::~CommDebugMode() {
  // Scopes normally close innermost first; erase by identity so that any order stays safe.
  auto it = std::find(active_scopes.rbegin(), active_scopes.rend(), this);
  if (it != active_scopes.rend()) active_scopes.erase(std::next(it).base());
}

int64_t CommDebugMode::total_count() const {
  int64_t total = 0;
  for (const auto& [kind, n] : counts_) total += n;
  return total;
}

int64_t CommDebugMode::count(CollectiveKind kind) const {
  auto it = counts_.find(kind);
  return it == counts_.end() ? 0 : it->second;
}

std::string CommDebugMode::table() const {
  std::ostringstream out;
  for (const auto& [kind, n] : counts_) out << to_string(kind) << ": " << n << "\n";
  out << "total: " << total_count() << "\n";
  return out.str();
}

void record_collective_impl(CollectiveKind kind) {
  for (CommDebugMode* scope : active_scopes) ++scope->counts_[kind];
}

namespace detail {
void record_collective(CollectiveKind kind) {
  if (!active_scopes.empty()) record_collective_impl(kind);
}
}  // namespace detail

}  // namespace weft::dist
