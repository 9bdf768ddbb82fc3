// ops/scatter.h against PyTorch 1.13 (tests/conformance/scatter.py): scatter, scatter_add,
// scatter_reduce, index_fill, index_copy, masked_select, masked_scatter, nonzero, unique.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"scatter",
     [](const Args& a) { return one(scatter(a.tensor(0), a.integer(1), a.tensor(2), a.tensor(3))); }},
    {"scatter.value",
     [](const Args& a) { return one(scatter(a.tensor(0), a.integer(1), a.tensor(2), a.scalar(3))); }},
    {"scatter_add",
     [](const Args& a) { return one(scatter_add(a.tensor(0), a.integer(1), a.tensor(2), a.tensor(3))); }},
    {"scatter_reduce",
     [](const Args& a) {
       return one(scatter_reduce(a.tensor(0), a.integer(1), a.tensor(2), a.tensor(3), a.string(4),
                                 a.kw_boolean("include_self", true)));
     }},
    {"index_fill",
     [](const Args& a) { return one(index_fill(a.tensor(0), a.integer(1), a.tensor(2), a.scalar(3))); }},
    {"index_copy",
     [](const Args& a) { return one(index_copy(a.tensor(0), a.integer(1), a.tensor(2), a.tensor(3))); }},
    {"masked_select", [](const Args& a) { return one(masked_select(a.tensor(0), a.tensor(1))); }},
    {"masked_scatter",
     [](const Args& a) { return one(masked_scatter(a.tensor(0), a.tensor(1), a.tensor(2))); }},
    {"nonzero", [](const Args& a) { return one(nonzero(a.tensor(0))); }},
    {"unique",
     [](const Args& a) {
       const UniqueResult r = unique(a.tensor(0), a.boolean(1), a.boolean(2));
       std::vector<Tensor> out{r.values};
       if (r.inverse.defined()) out.push_back(r.inverse);
       if (r.counts.defined()) out.push_back(r.counts);
       return out;
     }},
};

TEST_CASE("scatter ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/scatter.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
