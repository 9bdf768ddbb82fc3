// scaled_dot_product_attention against PyTorch 2.0's math, run by PyTorch 1.13
// (tests/conformance/attention.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"scaled_dot_product_attention",
     [](const Args& a) {
       Tensor mask = a.size() > 3 && !a.is_none(3) ? a.tensor(3) : a.kw_tensor("attn_mask");
       std::optional<double> scale;
       if (a.has("scale")) scale = a.kw_real("scale", 0.0);
       return one(scaled_dot_product_attention(a.tensor(0), a.tensor(1), a.tensor(2), mask,
                                               a.kw_boolean("is_causal", false), scale));
     }},
};

TEST_CASE("scaled_dot_product_attention agrees with PyTorch", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/attention.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
