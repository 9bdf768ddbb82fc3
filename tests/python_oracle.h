// The JSON an oracle script writes when run by Debian's /usr/bin/python3 with PyTorch (the suites'
// [torch] cases), and the skip when PyTorch is missing.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/temp_dir.h"

namespace weft::test {

// Exits with meson's "skipped" status when /usr/bin/python3 cannot import torch.
inline void skip_without_torch() {
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    std::printf("SKIP: PyTorch (Debian's python3-torch) is not installed for /usr/bin/python3\n");
    std::exit(77);
  }
}

// Runs `script` (a path) with the output file as its argument and parses what it wrote.
inline nlohmann::json run_python_oracle(const std::string& script) {
  TempDir dir;
  std::string cmd = "/usr/bin/python3 " + script + " " + (dir / "oracle.json");
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(dir / "oracle.json");
  return nlohmann::json::parse(in);
}

}  // namespace weft::test
