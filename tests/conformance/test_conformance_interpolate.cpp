// interpolate against PyTorch 1.13 (tests/conformance/interpolate.py).
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

Tensor interpolate_case(const Args& a) {
  const Tensor x = a.tensor(0);
  std::optional<OutputSize> size;
  std::optional<ScaleFactor> scale;
  if (a.has("size")) {
    const Shape v = a.kw_ints("size");
    size = OutputSize(std::vector<int64_t>(v.begin(), v.end()));
  }
  if (a.has("scale_factor")) scale = ScaleFactor(a.kw_real("scale_factor", 0.0));
  if (a.has("scale_h")) scale = ScaleFactor(a.kw_real("scale_h", 0.0), a.kw_real("scale_w", 0.0));
  if (a.has("scale_d"))
    scale = ScaleFactor(a.kw_real("scale_d", 0.0), a.kw_real("scale_h", 0.0), a.kw_real("scale_w", 0.0));
  std::optional<bool> align_corners;
  if (a.has("align_corners")) align_corners = a.kw_boolean("align_corners", false);
  std::optional<bool> recompute;
  if (a.has("recompute_scale_factor")) recompute = a.kw_boolean("recompute_scale_factor", false);
  return interpolate(x, size, scale, a.kw_string("mode", "nearest"), align_corners, recompute,
                     a.kw_boolean("antialias", false));
}

const OpTable table = {
    {"interpolate", [](const Args& a) { return one(interpolate_case(a)); }},
};

TEST_CASE("interpolate agrees with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/interpolate.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
