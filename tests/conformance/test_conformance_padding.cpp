// pad in every mode against PyTorch 1.13 (tests/conformance/padding.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"pad",
     [](const Args& a) {
       const Shape p = a.ints(1);
       const std::string mode = a.size() > 2 ? a.string(2) : a.kw_string("mode", "constant");
       const double value = a.size() > 3 ? a.real(3) : a.kw_real("value", 0.0);
       return one(pad(a.tensor(0), std::vector<int64_t>(p.begin(), p.end()), mode, value));
     }},
};

TEST_CASE("pad agrees with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/padding.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
