// The running reductions against PyTorch 1.13 (tests/conformance/scans.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"cumsum", [](const Args& a) { return one(cumsum(a.tensor(0), a.integer(1))); }},
    {"cumprod", [](const Args& a) { return one(cumprod(a.tensor(0), a.integer(1))); }},
    {"logcumsumexp", [](const Args& a) { return one(logcumsumexp(a.tensor(0), a.integer(1))); }},
};

TEST_CASE("scans agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/scans.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
