// The view ops against PyTorch 1.13 (tests/conformance/shape_ops.py): values, gradients, errors,
// and that each result shares its input's storage where torch's does.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

int64_t int_or(const Args& a, size_t i, int64_t otherwise) { return a.size() > i ? a.integer(i) : otherwise; }

const OpTable table = {
    {"reshape", [](const Args& a) { return one(reshape(a.tensor(0), a.ints(1))); }},
    {"reshape.of_expanded", [](const Args& a) { return one(reshape(expand(a.tensor(0), {3, 4}), a.ints(1))); }},
    {"view", [](const Args& a) { return one(view(a.tensor(0), a.ints(1))); }},
    {"flatten",
     [](const Args& a) {
       return one(flatten(a.tensor(0), int_or(a, 1, 0), int_or(a, 2, -1)));
     }},
    {"squeeze", [](const Args& a) { return one(squeeze(a.tensor(0))); }},
    {"squeeze.dim", [](const Args& a) { return one(squeeze(a.tensor(0), a.integer(1))); }},
    {"unsqueeze", [](const Args& a) { return one(unsqueeze(a.tensor(0), a.integer(1))); }},
    {"transpose", [](const Args& a) { return one(transpose(a.tensor(0), a.integer(1), a.integer(2))); }},
    {"transpose.t", [](const Args& a) { return one(a.tensor(0).t()); }},
    {"permute", [](const Args& a) { return one(permute(a.tensor(0), a.ints(1))); }},
    {"expand", [](const Args& a) { return one(expand(a.tensor(0), a.ints(1))); }},
    {"narrow",
     [](const Args& a) { return one(narrow(a.tensor(0), a.integer(1), a.integer(2), a.integer(3))); }},
    {"select", [](const Args& a) { return one(select(a.tensor(0), a.integer(1), a.integer(2))); }},
    {"as_strided",
     [](const Args& a) { return one(as_strided(a.tensor(0), a.ints(1), a.ints(2), a.integer(3))); }},
    {"split", [](const Args& a) { return split(a.tensor(0), a.integer(1), int_or(a, 2, 0)); }},
    {"split.sizes",
     [](const Args& a) {
       const Shape sizes = a.ints(1);
       return split(a.tensor(0), std::vector<int64_t>(sizes.begin(), sizes.end()), int_or(a, 2, 0));
     }},
    {"chunk", [](const Args& a) { return chunk(a.tensor(0), a.integer(1), int_or(a, 2, 0)); }},
};

TEST_CASE("view ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/shape_ops.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
