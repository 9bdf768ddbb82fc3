// embedding against PyTorch 1.13 (tests/conformance/embedding.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"embedding",
     [](const Args& a) {
       std::optional<int64_t> padding_idx;
       if (a.has("padding_idx")) padding_idx = a.kw_integer("padding_idx", 0);
       return one(embedding(a.tensor(0), a.tensor(1), padding_idx));
     }},
};

TEST_CASE("embedding agrees with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/embedding.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
