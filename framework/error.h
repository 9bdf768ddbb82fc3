// weft::Error and the WEFT_CHECK macro: every mistake a user can make becomes an exception.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace weft {

// The one exception type weft throws for user errors. Messages name the operation, what was
// given and what was expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {

template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
[[noreturn]] void throw_internal(const char* file, int line, const char* cond,
                                 const std::string& message);

}  // namespace detail
}  // namespace weft

// Throws weft::Error with the streamed message when `cond` is false. Always on, in every build.
#define WEFT_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) [[unlikely]]                                                        \
      ::weft::detail::throw_error(__FILE__, __LINE__, ::weft::detail::str_cat(__VA_ARGS__)); \
  } while (0)

#define WEFT_ERROR(...) ::weft::detail::throw_error(__FILE__, __LINE__, ::weft::detail::str_cat(__VA_ARGS__))

// An invariant of weft itself (not of user input); still throws rather than aborting.
#define WEFT_INTERNAL_ASSERT(cond, ...)                                                   \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::weft::detail::throw_internal(__FILE__, __LINE__, #cond,                           \
                                     ::weft::detail::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
