// Helpers shared by the test suites.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "framework/error.h"

namespace weft::test {

// Runs f and requires a weft::Error (not any other exception) whose message contains `needle`.
template <class F>
void require_error(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const Error& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
    return;
  }
  FAIL("expected weft::Error mentioning \"" << needle << "\"");
}

// The message of the weft::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace weft::test
