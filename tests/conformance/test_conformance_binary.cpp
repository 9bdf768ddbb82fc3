// The elementwise binary ops and the arithmetic operators against PyTorch 1.13
// (tests/conformance/binary.py).
#include <catch2/catch.hpp>

#include "framework/factories.h"
#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

// name(a, b) for two tensors, name(a, number), and the operator forms.
#define PAIR(name)                                                                            \
  {#name, [](const Args& a) { return one(name(a.tensor(0), a.tensor(1))); }},                 \
  {#name ".scalar", [](const Args& a) { return one(name(a.tensor(0), a.scalar(1))); }}

#define OPERATOR(name, op)                                                                        \
  {#name ".operator", [](const Args& a) { return one(a.tensor(0) op a.tensor(1)); }},             \
  {#name ".operator_scalar", [](const Args& a) { return one(a.tensor(0) op a.scalar(1)); }},      \
  {#name ".operator_rscalar", [](const Args& a) { return one(a.scalar(0) op a.tensor(1)); }}

#define INPLACE(name, op)                                                  \
  {#name ".operator_inplace", [](const Args& a) {                          \
     Tensor c = a.tensor(0).clone();                                       \
     c op a.tensor(1);                                                     \
     return one(c);                                                        \
   }},                                                                     \
  {#name ".operator_inplace_scalar", [](const Args& a) {                   \
     Tensor c = a.tensor(0).clone();                                       \
     c op a.scalar(1);                                                     \
     return one(c);                                                        \
   }}

const OpTable table = {
    PAIR(add), PAIR(sub), PAIR(mul), PAIR(div), PAIR(pow), PAIR(maximum), PAIR(minimum), PAIR(remainder), PAIR(fmod),
    {"atan2", [](const Args& a) { return one(atan2(a.tensor(0), a.tensor(1))); }},
    {"hypot", [](const Args& a) { return one(hypot(a.tensor(0), a.tensor(1))); }},
    {"remainder.rscalar", [](const Args& a) { return one(remainder(a.scalar(0), a.tensor(1))); }},
    {"add.alpha", [](const Args& a) { return one(add(a.tensor(0), a.tensor(1), *a.kw_scalar("alpha"))); }},
    {"sub.alpha", [](const Args& a) { return one(sub(a.tensor(0), a.tensor(1), *a.kw_scalar("alpha"))); }},
    OPERATOR(add, +), OPERATOR(sub, -), OPERATOR(mul, *), OPERATOR(div, /), OPERATOR(remainder, %),
    INPLACE(add, +=), INPLACE(sub, -=), INPLACE(mul, *=), INPLACE(div, /=),
    {"neg.operator", [](const Args& a) { return one(-a.tensor(0)); }},
    {"lerp", [](const Args& a) { return one(lerp(a.tensor(0), a.tensor(1), a.tensor(2))); }},
    {"lerp.scalar", [](const Args& a) { return one(lerp(a.tensor(0), a.tensor(1), a.scalar(2))); }},
    {"where", [](const Args& a) { return one(where(a.tensor(0), a.tensor(1), a.tensor(2))); }},
    {"masked_fill", [](const Args& a) { return one(masked_fill(a.tensor(0), a.tensor(1), a.scalar(2))); }},
    {"result_type", [](const Args& a) { return one(empty({0}, result_type(a.tensor(0), a.tensor(1)))); }},
    {"result_type.scalar", [](const Args& a) { return one(empty({0}, result_type(a.tensor(0), a.scalar(1)))); }},
};

TEST_CASE("binary ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/binary.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
