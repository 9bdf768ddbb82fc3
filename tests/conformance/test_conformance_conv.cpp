// conv1d, conv2d and conv_transpose2d against PyTorch 1.13 (tests/conformance/conv.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

Tensor optional_tensor(const Args& a, size_t i) { return a.size() > i && !a.is_none(i) ? a.tensor(i) : Tensor(); }

// PyTorch's int-or-pair keyword argument.
Size2d size2d(const Args& a, const std::string& name, int64_t otherwise) {
  if (!a.has(name)) return otherwise;
  Shape v = a.kw_ints(name);
  return v.size() == 1 ? Size2d(v[0]) : Size2d(v[0], v[1]);
}

// padding_mode ("same" / "valid") or padding (numbers).
ConvPadding conv_padding(const Args& a) {
  if (a.has("padding_mode")) return ConvPadding(a.kw_string("padding_mode", ""));
  if (!a.has("padding")) return 0;
  Shape v = a.kw_ints("padding");
  return v.size() == 1 ? ConvPadding(v[0]) : ConvPadding(v[0], v[1]);
}

const OpTable table = {
    {"conv2d",
     [](const Args& a) {
       return one(conv2d(a.tensor(0), a.tensor(1), optional_tensor(a, 2), size2d(a, "stride", 1), conv_padding(a),
                         size2d(a, "dilation", 1), a.kw_integer("groups", 1)));
     }},
    {"conv1d",
     [](const Args& a) {
       return one(conv1d(a.tensor(0), a.tensor(1), optional_tensor(a, 2), a.kw_integer("stride", 1), conv_padding(a),
                         a.kw_integer("dilation", 1), a.kw_integer("groups", 1)));
     }},
    {"conv_transpose2d",
     [](const Args& a) {
       return one(conv_transpose2d(a.tensor(0), a.tensor(1), optional_tensor(a, 2), size2d(a, "stride", 1),
                                   size2d(a, "padding", 0), size2d(a, "output_padding", 0), a.kw_integer("groups", 1),
                                   size2d(a, "dilation", 1)));
     }},
};

TEST_CASE("convolutions agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/conv.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
