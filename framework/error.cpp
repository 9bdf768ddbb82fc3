// Out-of-line throwing helpers, so that checks stay small at every call site.
#include "framework/error.h"

namespace weft::detail {

void throw_error(const char*, int, const std::string& message) { throw Error(message); }

void throw_internal(const char* file, int line, const char* cond, const std::string& message) {
  throw Error(str_cat("weft internal error at ", file, ":", line, ": ", cond,
                      message.empty() ? "" : " (", message, message.empty() ? "" : ")",
                      ". Please report this."));
}

}  // namespace weft::detail
