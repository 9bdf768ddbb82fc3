// lstm and gru against torch.lstm and torch.gru of PyTorch 1.13 (tests/conformance/rnn.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

const OpTable table = {
    {"lstm",
     [](const Args& a) {
       auto [y, h, c] = lstm(a.tensor(0), a.tensors(1), a.tensors(2), a.boolean(3), a.integer(4), a.real(5),
                             a.boolean(6), a.boolean(7), a.boolean(8));
       return std::vector<Tensor>{y, h, c};
     }},
    {"gru",
     [](const Args& a) {
       auto [y, h] = gru(a.tensor(0), a.tensor(1), a.tensors(2), a.boolean(3), a.integer(4), a.real(5), a.boolean(6),
                         a.boolean(7), a.boolean(8));
       return std::vector<Tensor>{y, h};
     }},
};

TEST_CASE("lstm and gru agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/rnn.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
