// comm_debug.h: CommDebugMode, an RAII scope that counts the collectives this rank issues.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "distributed/collective_kind.h"

namespace weft::dist {

// Counts every collective issued on this thread while the scope is open, forward and backward,
// whoever issues it, by kind. Nested scopes each count. Local chunking, divisions and waits never
// count, and neither does the control plane (control_plane.h: size and shape exchanges, mesh-wide
// checks, the debug mode's fingerprints): it moves metadata, not tensor data.
class CommDebugMode {
 public:
  CommDebugMode();
  ~CommDebugMode();
  CommDebugMode(const CommDebugMode&) = delete;
  CommDebugMode& operator=(const CommDebugMode&) = delete;

  int64_t total_count() const;
  int64_t count(CollectiveKind kind) const;
  std::map<CollectiveKind, int64_t> counts() const { return counts_; }
  // One line per kind seen: "all_gather: 2", then "total: N".
  std::string table() const;

 private:
  friend void record_collective_impl(CollectiveKind kind);
  std::map<CollectiveKind, int64_t> counts_;
};

namespace detail {
// Every issued collective calls this once.
void record_collective(CollectiveKind kind);
}  // namespace detail

}  // namespace weft::dist
