// Progress of a training loop: one updating bar on a terminal, plain periodic lines otherwise
// (logs, CI), printed by rank 0 only under MPI.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace weft::nn {

struct ProgressOptions {
  std::string label = "";          // printed first, e.g. "train"
  double items_per_step = 0;       // e.g. tokens per step, for the throughput; 0 shows steps/s
  std::string item_name = "items";
  int64_t log_every = 0;           // plain lines every this many steps; 0: about twenty lines a run
  std::FILE* out = stderr;
  std::optional<bool> tty = std::nullopt;  // default: whether `out` is a terminal
};

class Progress {
 public:
  explicit Progress(int64_t total_steps, ProgressOptions options = {});
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // After step `step` (0-based) of total_steps, with its loss and an optional note.
  void update(int64_t step, double loss, const std::string& note = "");
  // Ends the bar's line; called by the destructor too.
  void finish();

  // "step 37/300 [=====>   ] loss 2.7431 | 65238 tokens/s | ETA 0:42": what update prints.
  std::string line(int64_t done, double loss, const std::string& note, double seconds) const;

 private:
  int64_t total_;
  ProgressOptions options_;
  bool enabled_, tty_, open_line_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace weft::nn
