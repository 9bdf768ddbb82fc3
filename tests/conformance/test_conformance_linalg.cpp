// ops/linalg.h and ops/einsum.h against PyTorch 1.13 (tests/conformance/linalg.py): mm, bmm,
// matmul over every rank pair, addmm, linear, outer, einsum.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"mm", [](const Args& a) { return one(mm(a.tensor(0), a.tensor(1))); }},
    {"bmm", [](const Args& a) { return one(bmm(a.tensor(0), a.tensor(1))); }},
    {"matmul", [](const Args& a) { return one(matmul(a.tensor(0), a.tensor(1))); }},
    {"addmm",
     [](const Args& a) {
       return one(addmm(a.tensor(0), a.tensor(1), a.tensor(2), a.kw_scalar("beta").value_or(Scalar(1)),
                        a.kw_scalar("alpha").value_or(Scalar(1))));
     }},
    {"linear",
     [](const Args& a) {
       return one(linear(a.tensor(0), a.tensor(1), a.size() > 2 ? a.tensor(2) : Tensor()));
     }},
    {"outer", [](const Args& a) { return one(outer(a.tensor(0), a.tensor(1))); }},
    {"einsum", [](const Args& a) { return one(einsum(a.string(0), a.tensors(1))); }},
};

TEST_CASE("linear algebra agrees with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/linalg.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
