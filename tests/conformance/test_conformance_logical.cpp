// The logical and bitwise ops, the comparisons and their operators against PyTorch 1.13
// (tests/conformance/logical.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

#define TENSORS(name) {#name, [](const Args& a) { return one(name(a.tensor(0), a.tensor(1))); }}
#define WITH_SCALAR(name) {#name ".scalar", [](const Args& a) { return one(name(a.tensor(0), a.scalar(1))); }}
#define OPERATORS(name, op)                                                                       \
  {#name ".operator", [](const Args& a) { return one(a.tensor(0) op a.tensor(1)); }},             \
  {#name ".operator_scalar", [](const Args& a) { return one(a.tensor(0) op a.scalar(1)); }},      \
  {#name ".operator_rscalar", [](const Args& a) { return one(a.scalar(0) op a.tensor(1)); }}

const OpTable table = {
    TENSORS(eq), TENSORS(ne), TENSORS(lt), TENSORS(le), TENSORS(gt), TENSORS(ge),
    WITH_SCALAR(eq), WITH_SCALAR(ne), WITH_SCALAR(lt), WITH_SCALAR(le), WITH_SCALAR(gt), WITH_SCALAR(ge),
    OPERATORS(eq, ==), OPERATORS(ne, !=), OPERATORS(lt, <), OPERATORS(le, <=), OPERATORS(gt, >), OPERATORS(ge, >=),
    TENSORS(logical_and), TENSORS(logical_or), TENSORS(logical_xor),
    TENSORS(bitwise_and), TENSORS(bitwise_or), TENSORS(bitwise_xor),
    WITH_SCALAR(bitwise_and), WITH_SCALAR(bitwise_or), WITH_SCALAR(bitwise_xor),
    OPERATORS(bitwise_and, &), OPERATORS(bitwise_or, |), OPERATORS(bitwise_xor, ^),
    {"logical_not", [](const Args& a) { return one(logical_not(a.tensor(0))); }},
    {"logical_not.operator", [](const Args& a) { return one(!a.tensor(0)); }},
    {"bitwise_not", [](const Args& a) { return one(bitwise_not(a.tensor(0))); }},
    {"bitwise_not.operator", [](const Args& a) { return one(~a.tensor(0)); }},
};

TEST_CASE("logical ops and comparisons agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/logical.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
