// The rearranging ops against PyTorch 1.13 (tests/conformance/rearrange.py): flip, roll, repeat,
// tile, repeat_interleave, movedim, unbind, diagonal, diag, trace.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

int64_t int_or(const Args& a, size_t i, int64_t otherwise) { return a.size() > i ? a.integer(i) : otherwise; }

std::optional<int64_t> kw_dim(const Args& a) {
  return a.has("dim") ? std::optional<int64_t>(a.kw_integer("dim", 0)) : std::nullopt;
}

const OpTable table = {
    {"flip", [](const Args& a) { return one(flip(a.tensor(0), a.ints(1))); }},
    {"roll",
     [](const Args& a) { return one(roll(a.tensor(0), a.ints(1), a.size() > 2 ? a.ints(2) : Shape{})); }},
    {"repeat", [](const Args& a) { return one(repeat(a.tensor(0), a.ints(1))); }},
    {"tile", [](const Args& a) { return one(tile(a.tensor(0), a.ints(1))); }},
    {"repeat_interleave",
     [](const Args& a) { return one(repeat_interleave(a.tensor(0), a.integer(1), kw_dim(a))); }},
    {"repeat_interleave.tensor",
     [](const Args& a) { return one(repeat_interleave(a.tensor(0), a.tensor(1), kw_dim(a))); }},
    {"movedim", [](const Args& a) { return one(movedim(a.tensor(0), a.integer(1), a.integer(2))); }},
    {"movedim.dims", [](const Args& a) { return one(movedim(a.tensor(0), a.ints(1), a.ints(2))); }},
    {"unbind", [](const Args& a) { return unbind(a.tensor(0), int_or(a, 1, 0)); }},
    {"diagonal",
     [](const Args& a) {
       return one(diagonal(a.tensor(0), int_or(a, 1, 0), int_or(a, 2, 0), int_or(a, 3, 1)));
     }},
    {"diag", [](const Args& a) { return one(diag(a.tensor(0), int_or(a, 1, 0))); }},
    {"trace", [](const Args& a) { return one(trace(a.tensor(0))); }},
};

TEST_CASE("rearranging ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/rearrange.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
