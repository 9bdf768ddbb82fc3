// interpolate against PyTorch 1.13 (tests/conformance/interpolate.py).
#include <catch2/catch.hpp>

#include <cmath>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

Tensor interpolate_case(const Args& a) {
  const Tensor x = a.tensor(0);
  std::optional<Size2d> size;
  std::optional<ScaleFactor> scale;
  if (a.has("size")) {
    Shape v = a.kw_ints("size");
    size = v.size() == 1 ? Size2d(v[0]) : Size2d(v[0], v[1]);
  }
  if (a.has("scale_factor")) scale = ScaleFactor(a.kw_real("scale_factor", 0.0));
  if (a.has("scale_h")) scale = ScaleFactor(a.kw_real("scale_h", 0.0), a.kw_real("scale_w", 0.0));
  // recompute_scale_factor: PyTorch takes floor(input size * scale) as the size, and scales by that.
  if (a.kw_boolean("recompute_scale_factor", false) && scale && x.dim() == 4) {
    size = Size2d(static_cast<int64_t>(std::floor(double(x.size(2)) * scale->h)),
                  static_cast<int64_t>(std::floor(double(x.size(3)) * scale->w)));
    scale.reset();
  }
  std::optional<bool> align_corners;
  if (a.has("align_corners")) align_corners = a.kw_boolean("align_corners", false);
  return interpolate(x, size, scale, a.kw_string("mode", "nearest"), align_corners);
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
