// max_pool2d, avg_pool2d and adaptive_avg_pool2d against PyTorch 1.13 (tests/conformance/pooling.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

Size2d pair(const Shape& v) { return v.size() == 1 ? Size2d(v[0]) : Size2d(v[0], v[1]); }

// PyTorch's int-or-pair keyword argument.
std::optional<Size2d> size2d(const Args& a, const std::string& name) {
  if (!a.has(name)) return std::nullopt;
  return pair(a.kw_ints(name));
}

const OpTable table = {
    {"max_pool2d",
     [](const Args& a) {
       return one(max_pool2d(a.tensor(0), pair(a.ints(1)), size2d(a, "stride"), size2d(a, "padding").value_or(0),
                             size2d(a, "dilation").value_or(1), a.kw_boolean("ceil_mode", false)));
     }},
    {"max_pool2d_with_indices",
     [](const Args& a) {
       auto [y, i] = max_pool2d_with_indices(a.tensor(0), pair(a.ints(1)), size2d(a, "stride"),
                                             size2d(a, "padding").value_or(0), size2d(a, "dilation").value_or(1),
                                             a.kw_boolean("ceil_mode", false));
       return std::vector<Tensor>{y, i};
     }},
    {"avg_pool2d",
     [](const Args& a) {
       std::optional<int64_t> divisor;
       if (a.has("divisor_override")) divisor = a.kw_integer("divisor_override", 0);
       return one(avg_pool2d(a.tensor(0), pair(a.ints(1)), size2d(a, "stride"), size2d(a, "padding").value_or(0),
                             a.kw_boolean("ceil_mode", false), a.kw_boolean("count_include_pad", true), divisor));
     }},
    {"adaptive_avg_pool2d", [](const Args& a) { return one(adaptive_avg_pool2d(a.tensor(0), pair(a.ints(1)))); }},
};

TEST_CASE("pooling ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/pooling.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
