// Helpers shared by the test suites.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

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

// Requires |got[i] - want[i]| <= bound[i] for every i (NaN counts as out of bounds), reporting how
// many are not and the first of them.
inline void require_within(const std::vector<double>& got, const std::vector<double>& want,
                           const std::function<double(size_t)>& bound) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= bound(i))) first = bad++ == 0 ? i : first;
  INFO(bad << " of " << got.size() << " elements out of bounds; the first, " << first << ": got "
            << (bad ? got[first] : 0.0) << ", the reference gives " << (bad ? want[first] : 0.0));
  CHECK(bad == 0);
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

// A Catch matcher on a weft::Error's message: REQUIRE_THROWS_WITH alone passes for any exception
// type, so error tests go through WEFT_REQUIRE_ERROR, which also requires the type.
template <class StringMatcher>
class ErrorMessage : public Catch::MatcherBase<Error> {
 public:
  explicit ErrorMessage(const StringMatcher& m) : m_(m) {}
  bool match(const Error& e) const override { return m_.match(e.what()); }
  std::string describe() const override { return "is a weft::Error whose message " + m_.toString(); }

 private:
  const StringMatcher& m_;  // the matcher lives to the end of the assertion's full expression
};

}  // namespace weft::test

// expr throws a weft::Error whose message satisfies matcher (Catch's Contains, combined with && / ||).
#define WEFT_REQUIRE_ERROR(expr, matcher) \
  REQUIRE_THROWS_MATCHES(expr, ::weft::Error, ::weft::test::ErrorMessage(matcher))
#define WEFT_CHECK_ERROR(expr, matcher) CHECK_THROWS_MATCHES(expr, ::weft::Error, ::weft::test::ErrorMessage(matcher))
