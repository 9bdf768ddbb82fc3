// Progress: the bar's and the plain lines' text, and when each is printed.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "nn/progress.h"
#include "test_util.h"

using namespace weft;

namespace {

std::string contents(std::FILE* f) {
  std::rewind(f);
  std::string text;
  for (int c; (c = std::fgetc(f)) != EOF;) text.push_back(static_cast<char>(c));
  return text;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("Progress prints plain lines at intervals when not on a terminal", "[progress]") {
  std::FILE* f = std::tmpfile();
  {
    nn::Progress progress(10, {.label = "train", .items_per_step = 100, .item_name = "tokens", .log_every = 4,
                               .out = f, .tty = false});
    for (int64_t step = 0; step < 10; ++step) progress.update(step, 2.5 - 0.1 * step, "lr 1e-3");
  }
  std::string text = contents(f);
  std::fclose(f);
  INFO(text);
  CHECK(count(text, "\n") == 4);  // steps 1, 4, 8 and 10
  CHECK(text.starts_with("train step 1/10 loss 2.5000 lr 1e-3 | "));
  CHECK(count(text, "train step 4/10 loss 2.2000 lr 1e-3 | ") == 1);
  CHECK(count(text, "train step 10/10 loss 1.6000 lr 1e-3 | ") == 1);
  CHECK(count(text, "tokens/s | ETA ") == 3);
  CHECK(count(text, "tokens/s | took 0:00") == 1);
  CHECK(count(text, "\r") == 0);
}

TEST_CASE("Progress redraws one bar in place on a terminal", "[progress]") {
  std::FILE* f = std::tmpfile();
  {
    nn::ProgressOptions options;
    options.out = f;
    options.tty = true;
    nn::Progress progress(4, options);
    for (int64_t step = 0; step < 4; ++step) progress.update(step, 1.0);
  }
  std::string text = contents(f);
  std::fclose(f);
  INFO(text);
  CHECK(count(text, "\n") == 1);  // one line, ended once
  CHECK(text.ends_with("\x1b[K\n"));
  CHECK(count(text, "\rstep 1/4 [=====>              ] loss 1.0000 | ") == 1);  // the first draw
  CHECK(count(text, "\rstep 4/4 [====================] loss 1.0000 | ") == 1);  // the last, always drawn
  CHECK(count(text, "steps/s") >= 2);
}

TEST_CASE("Progress line: throughput and ETA from the elapsed time", "[progress]") {
  nn::Progress progress(100, {.label = "", .items_per_step = 50, .item_name = "tokens", .tty = false});
  // 25 steps in 10 s: 2.5 steps/s, 125 tokens/s, 75 steps left take 30 s.
  CHECK(progress.line(25, 0.5, "", 10.0) == "step 25/100 loss 0.5000 | 125 tokens/s | ETA 0:30");
  CHECK(progress.line(100, 0.5, "", 4000.0) == "step 100/100 loss 0.5000 | 1 tokens/s | took 1:06:40");
  weft::test::require_error([] { nn::Progress(0); }, "expected at least one step");
}
