// interpolate against PyTorch 1.13 (tests/conformance/interpolate.py).
#include <catch2/catch.hpp>

#include <cmath>

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
  // recompute_scale_factor: PyTorch takes floor(input size * scale) as the size, and scales by that.
  if (a.kw_boolean("recompute_scale_factor", false) && scale && x.dim() >= 3) {
    std::vector<int64_t> out;
    for (int64_t d = 2; d < x.dim(); ++d) {
      const double f = scale->values.size() == 1 ? scale->values[0] : scale->values[size_t(d - 2)];
      out.push_back(static_cast<int64_t>(std::floor(double(x.size(d)) * f)));
    }
    size = OutputSize(out);
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
