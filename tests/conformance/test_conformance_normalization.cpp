// layer_norm and rms_norm against PyTorch 1.13 (tests/conformance/normalization.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

// F.layer_norm(x, shape, weight, bias, eps) / rms_norm(x, shape, weight, eps), positionally.
Tensor optional_tensor(const Args& a, size_t i) { return a.size() > i && !a.is_none(i) ? a.tensor(i) : Tensor(); }

const OpTable table = {
    {"layer_norm",
     [](const Args& a) {
       return one(layer_norm(a.tensor(0), a.ints(1), optional_tensor(a, 2), optional_tensor(a, 3),
                             a.size() > 4 ? a.real(4) : 1e-5));
     }},
    {"rms_norm",
     [](const Args& a) {
       std::optional<double> eps;
       if (a.size() > 3 && !a.is_none(3)) eps = a.real(3);
       return one(rms_norm(a.tensor(0), a.ints(1), optional_tensor(a, 2), eps));
     }},
};

TEST_CASE("layer_norm and rms_norm agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/normalization.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
