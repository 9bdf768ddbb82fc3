// Progress: a bar redrawn in place on a terminal, lines at intervals elsewhere, rank 0 only.
#include "nn/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "distributed/runtime.h"
#include "framework/error.h"

namespace weft::nn {
namespace {

std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, std::round(seconds)));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                               static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

Progress::Progress(int64_t total_steps, ProgressOptions options)
    : total_(total_steps), options_(std::move(options)), start_(std::chrono::steady_clock::now()) {
  WEFT_CHECK(total_steps >= 1, "Progress: expected at least one step but got ", total_steps);
  WEFT_CHECK(options_.out != nullptr, "Progress: the output stream is null");
  enabled_ = dist::world_rank() == 0;
  tty_ = options_.tty.value_or(isatty(fileno(options_.out)) == 1);
  if (options_.log_every <= 0) options_.log_every = std::max<int64_t>(1, total_steps / 20);
}

std::string Progress::line(int64_t done, double loss, const std::string& note, double seconds) const {
  std::ostringstream out;
  if (!options_.label.empty()) out << options_.label << " ";
  out << "step " << done << "/" << total_;
  if (tty_) {
    constexpr int kWidth = 20;
    const auto filled = static_cast<int>(kWidth * done / total_);
    out << " [" << std::string(filled, '=') << (filled < kWidth ? ">" : "")
        << std::string(std::max(0, kWidth - filled - 1), ' ') << "]";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, " loss %.4f", loss);
  out << buf;
  if (!note.empty()) out << " " << note;
  const double rate = seconds > 0 ? done / seconds : 0.0;
  if (options_.items_per_step > 0) std::snprintf(buf, sizeof buf, " | %.0f %s/s", rate * options_.items_per_step,
                                                 options_.item_name.c_str());
  else std::snprintf(buf, sizeof buf, " | %.2f steps/s", rate);
  out << buf << " | " << (done < total_ ? "ETA " + clock_text(rate > 0 ? (total_ - done) / rate : 0.0)
                                         : "took " + clock_text(seconds));
  return out.str();
}

void Progress::update(int64_t step, double loss, const std::string& note) {
  if (!enabled_) return;
  const int64_t done = std::min(step + 1, total_);
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    // At most ten redraws a second, and always the last step.
    if (done < total_ && open_line_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    std::fprintf(options_.out, "\r%s\x1b[K", line(done, loss, note, seconds).c_str());
    open_line_ = true;
    last_draw_ = now;
  } else if (done == 1 || done % options_.log_every == 0 || done == total_) {
    std::fprintf(options_.out, "%s\n", line(done, loss, note, seconds).c_str());
  }
  std::fflush(options_.out);
}

void Progress::finish() {
  if (!open_line_) return;
  std::fprintf(options_.out, "\n");
  std::fflush(options_.out);
  open_line_ = false;
}

}  // namespace weft::nn
