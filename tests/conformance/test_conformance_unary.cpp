// The elementwise unary ops against PyTorch 1.13 (tests/conformance/unary.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

#define UNARY(name) {#name, [](const Args& a) { return one(name(a.tensor(0))); }}

std::optional<double> kw_optional_real(const Args& a, const std::string& name) {
  if (!a.has(name)) return std::nullopt;
  return a.kw_real(name, 0.0);
}

const OpTable table = {
    UNARY(neg), UNARY(abs), UNARY(exp), UNARY(log), UNARY(sqrt), UNARY(rsqrt), UNARY(sin), UNARY(cos),
    UNARY(tanh), UNARY(sigmoid), UNARY(relu), UNARY(silu), UNARY(sign), UNARY(reciprocal), UNARY(erf),
    UNARY(erfinv), UNARY(log1p), UNARY(expm1), UNARY(log2), UNARY(log10), UNARY(sinh), UNARY(cosh),
    UNARY(asin), UNARY(acos), UNARY(atan), UNARY(asinh), UNARY(acosh), UNARY(atanh), UNARY(floor),
    UNARY(ceil), UNARY(round), UNARY(trunc), UNARY(frac), UNARY(isnan), UNARY(isinf), UNARY(isfinite),
    {"gelu", [](const Args& a) { return one(gelu(a.tensor(0))); }},
    {"gelu.approximate", [](const Args& a) { return one(gelu(a.tensor(0), a.kw_string("approximate", "none"))); }},
    {"nan_to_num", [](const Args& a) { return one(nan_to_num(a.tensor(0))); }},
    {"nan_to_num.values",
     [](const Args& a) {
       return one(nan_to_num(a.tensor(0), a.kw_real("nan", 0.0), kw_optional_real(a, "posinf"),
                             kw_optional_real(a, "neginf")));
     }},
    {"clamp", [](const Args& a) { return one(clamp(a.tensor(0), a.kw_scalar("min"), a.kw_scalar("max"))); }},
    {"clamp.inplace",
     [](const Args& a) {
       Tensor c = a.tensor(0).clone();
       c.clamp_(a.kw_scalar("min"), a.kw_scalar("max"));
       return one(c);
     }},
};

TEST_CASE("unary ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/unary.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
