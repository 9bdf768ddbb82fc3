// softmax and log_softmax against PyTorch 1.13 (tests/conformance/softmax.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"softmax", [](const Args& a) { return one(softmax(a.tensor(0), a.integer(1))); }},
    {"log_softmax", [](const Args& a) { return one(log_softmax(a.tensor(0), a.integer(1))); }},
};

TEST_CASE("softmax ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/softmax.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
