// dropout's deterministic cases and errors against PyTorch 1.13 (tests/conformance/dropout.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"dropout", [](const Args& a) { return one(dropout(a.tensor(0), a.real(1), a.boolean(2))); }},
};

TEST_CASE("dropout agrees with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/dropout.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
