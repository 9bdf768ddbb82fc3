// batch_norm, instance_norm and group_norm against PyTorch 1.13 (tests/conformance/batch_norm.py),
// with the running statistics after the call as extra outputs.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

Tensor optional_tensor(const Args& a, size_t i) { return a.size() > i && !a.is_none(i) ? a.tensor(i) : Tensor(); }

// The output, then the running statistics (updated in place) when given.
std::vector<Tensor> with_stats(Tensor y, const Tensor& running_mean, const Tensor& running_var) {
  std::vector<Tensor> out{std::move(y)};
  if (running_mean.defined()) out.push_back(running_mean);
  if (running_var.defined()) out.push_back(running_var);
  return out;
}

const OpTable table = {
    {"batch_norm",
     [](const Args& a) {
       Tensor rm = optional_tensor(a, 1), rv = optional_tensor(a, 2);
       Tensor y = batch_norm(a.tensor(0), rm, rv, optional_tensor(a, 3), optional_tensor(a, 4),
                             a.size() > 5 && a.boolean(5), a.size() > 6 ? a.real(6) : 0.1,
                             a.size() > 7 ? a.real(7) : 1e-5);
       return with_stats(y, rm, rv);
     }},
    {"instance_norm",
     [](const Args& a) {
       Tensor rm = optional_tensor(a, 1), rv = optional_tensor(a, 2);
       Tensor y = instance_norm(a.tensor(0), rm, rv, optional_tensor(a, 3), optional_tensor(a, 4),
                                a.size() > 5 ? a.boolean(5) : true, a.size() > 6 ? a.real(6) : 0.1,
                                a.size() > 7 ? a.real(7) : 1e-5);
       return with_stats(y, rm, rv);
     }},
    {"group_norm",
     [](const Args& a) {
       return one(group_norm(a.tensor(0), a.integer(1), optional_tensor(a, 2), optional_tensor(a, 3),
                             a.size() > 4 ? a.real(4) : 1e-5));
     }},
};

TEST_CASE("batch_norm, instance_norm and group_norm agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/batch_norm.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
