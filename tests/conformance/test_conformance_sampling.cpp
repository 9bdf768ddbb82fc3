// The random sampling ops against PyTorch 1.13 (tests/conformance/sampling.py): their errors, and
// the draws with one possible outcome.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"randperm", [](const Args& a) { return one(randperm(a.integer(0), dtype(dtype_named(a.string(1))))); }},
    {"multinomial", [](const Args& a) { return one(multinomial(a.tensor(0), a.integer(1), a.boolean(2))); }},
    {"bernoulli", [](const Args& a) { return one(bernoulli(a.tensor(0))); }},
    {"bernoulli.p", [](const Args& a) { return one(bernoulli(a.tensor(0), a.real(1))); }},
};

TEST_CASE("random sampling agrees with PyTorch 1.13 where the outcome is certain", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/sampling.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
