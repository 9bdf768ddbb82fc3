// The pooling ops (1-D, 2-D and 3-D) against PyTorch 1.13 (tests/conformance/pooling.py).
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

Size3d triple(const Shape& v) { return v.size() == 1 ? Size3d(v[0]) : Size3d(v[0], v[1], v[2]); }

std::optional<Size3d> size3d(const Args& a, const std::string& name) {
  if (!a.has(name)) return std::nullopt;
  return triple(a.kw_ints(name));
}

std::optional<int64_t> int_or_none(const Args& a, const std::string& name) {
  if (!a.has(name)) return std::nullopt;
  return a.kw_ints(name)[0];  // PyTorch takes an int or a one-element list
}

std::optional<int64_t> divisor_of(const Args& a) {
  if (!a.has("divisor_override")) return std::nullopt;
  return a.kw_integer("divisor_override", 0);
}

std::vector<Tensor> max_pool1d_case(const Args& a, bool with_indices) {
  const int64_t k = a.ints(1)[0], pad = int_or_none(a, "padding").value_or(0);
  const int64_t dil = int_or_none(a, "dilation").value_or(1);
  const bool ceil = a.kw_boolean("ceil_mode", false);
  if (!with_indices) return {max_pool1d(a.tensor(0), k, int_or_none(a, "stride"), pad, dil, ceil)};
  auto [y, i] = max_pool1d_with_indices(a.tensor(0), k, int_or_none(a, "stride"), pad, dil, ceil);
  return {y, i};
}

std::vector<Tensor> max_pool3d_case(const Args& a, bool with_indices) {
  const Size3d k = triple(a.ints(1)), pad = size3d(a, "padding").value_or(0), dil = size3d(a, "dilation").value_or(1);
  const bool ceil = a.kw_boolean("ceil_mode", false);
  if (!with_indices) return {max_pool3d(a.tensor(0), k, size3d(a, "stride"), pad, dil, ceil)};
  auto [y, i] = max_pool3d_with_indices(a.tensor(0), k, size3d(a, "stride"), pad, dil, ceil);
  return {y, i};
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
    {"avg_pool1d",
     [](const Args& a) {
       return one(avg_pool1d(a.tensor(0), a.ints(1)[0], int_or_none(a, "stride"), int_or_none(a, "padding").value_or(0),
                             a.kw_boolean("ceil_mode", false), a.kw_boolean("count_include_pad", true)));
     }},
    {"max_pool1d", [](const Args& a) { return max_pool1d_case(a, false); }},
    {"max_pool1d_with_indices", [](const Args& a) { return max_pool1d_case(a, true); }},
    {"avg_pool3d",
     [](const Args& a) {
       return one(avg_pool3d(a.tensor(0), triple(a.ints(1)), size3d(a, "stride"), size3d(a, "padding").value_or(0),
                             a.kw_boolean("ceil_mode", false), a.kw_boolean("count_include_pad", true), divisor_of(a)));
     }},
    {"max_pool3d", [](const Args& a) { return max_pool3d_case(a, false); }},
    {"max_pool3d_with_indices", [](const Args& a) { return max_pool3d_case(a, true); }},
};

TEST_CASE("pooling ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/pooling.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
