// cross_entropy, nll_loss and mse_loss against PyTorch 1.13 (tests/conformance/losses.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"cross_entropy",
     [](const Args& a) {
       return one(cross_entropy(a.tensor(0), a.tensor(1), a.kw_string("reduction", "mean"),
                                a.kw_integer("ignore_index", -100), a.kw_real("label_smoothing", 0.0),
                                a.kw_tensor("weight")));
     }},
    {"nll_loss",
     [](const Args& a) {
       return one(nll_loss(a.tensor(0), a.tensor(1), a.kw_string("reduction", "mean"),
                           a.kw_integer("ignore_index", -100), a.kw_tensor("weight")));
     }},
    {"mse_loss",
     [](const Args& a) { return one(mse_loss(a.tensor(0), a.tensor(1), a.kw_string("reduction", "mean"))); }},
};

TEST_CASE("losses agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/losses.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
