// The elementwise unary ops against PyTorch 1.13 (tests/conformance/unary.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"exp", [](const Args& a) { return one(exp(a.tensor(0))); }},
    {"clamp", [](const Args& a) { return one(clamp(a.tensor(0), a.kw_scalar("min"), a.kw_scalar("max"))); }},
};

TEST_CASE("unary ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/unary.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
