// Sorting and selection against PyTorch 1.13 (tests/conformance/sorting.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

std::vector<Tensor> two(std::pair<Tensor, Tensor> p) { return {std::move(p.first), std::move(p.second)}; }
int64_t dim_arg(const Args& a, size_t i) { return a.size() > i ? a.integer(i) : a.kw_integer("dim", -1); }
bool flag(const Args& a, size_t i, bool otherwise) { return a.size() > i ? a.boolean(i) : otherwise; }

std::pair<Tensor, Tensor> call_topk(const Args& a) {
  return topk(a.tensor(0), a.integer(1), dim_arg(a, 2), flag(a, 3, true));
}
std::pair<Tensor, Tensor> call_kthvalue(const Args& a) {
  return kthvalue(a.tensor(0), a.integer(1), dim_arg(a, 2), flag(a, 3, false));
}
std::pair<Tensor, Tensor> call_median(const Args& a) {
  return median(a.tensor(0), a.integer(1), flag(a, 2, false));
}

const OpTable table = {
    {"sort", [](const Args& a) { return two(sort(a.tensor(0), dim_arg(a, 1), flag(a, 2, false))); }},
    {"argsort", [](const Args& a) { return one(argsort(a.tensor(0), dim_arg(a, 1), flag(a, 2, false))); }},
    {"topk", [](const Args& a) { return two(call_topk(a)); }},
    {"topk.values", [](const Args& a) { return one(call_topk(a).first); }},
    {"kthvalue", [](const Args& a) { return two(call_kthvalue(a)); }},
    {"kthvalue.values", [](const Args& a) { return one(call_kthvalue(a).first); }},
    {"median", [](const Args& a) { return one(median(a.tensor(0))); }},
    {"median.dim", [](const Args& a) { return two(call_median(a)); }},
    {"median.dim.values", [](const Args& a) { return one(call_median(a).first); }},
};

TEST_CASE("sorting and selection agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/sorting.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
