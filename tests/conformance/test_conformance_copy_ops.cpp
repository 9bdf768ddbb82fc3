// The copying ops against PyTorch 1.13 (tests/conformance/copy_ops.py): cat, stack, clone,
// contiguous, to_dtype over every dtype pair, tril, triu.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

int64_t int_or(const Args& a, size_t i, int64_t otherwise) { return a.size() > i ? a.integer(i) : otherwise; }

std::vector<Tensor> to_dtype_case(const Args& a) {
  return one(to_dtype(a.tensor(0), dtype_named(a.string(1))));
}

const OpTable table = {
    {"cat", [](const Args& a) { return one(cat(a.tensors(0), int_or(a, 1, 0))); }},
    {"stack", [](const Args& a) { return one(stack(a.tensors(0), int_or(a, 1, 0))); }},
    {"clone", [](const Args& a) { return one(clone(a.tensor(0))); }},
    {"contiguous", [](const Args& a) { return one(contiguous(a.tensor(0))); }},
    {"to_dtype", to_dtype_case},
    {"to_dtype.out_of_range", to_dtype_case},
    {"tril", [](const Args& a) { return one(tril(a.tensor(0), int_or(a, 1, 0))); }},
    {"triu", [](const Args& a) { return one(triu(a.tensor(0), int_or(a, 1, 0))); }},
};

TEST_CASE("copying ops agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/copy_ops.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
