// nn::Upsample: its forward (PyTorch's checks of size and scale_factor) and what it prints.
#include "nn/upsampling.h"

#include <sstream>
#include <utility>
#include <vector>

namespace weft::nn {
namespace {

// As Python prints the value given: 2.0, 0.5; one value alone, several as a tuple.
std::string float_str(double v) {
  std::ostringstream s;
  s << v;
  std::string text = s.str();
  if (text.find_first_of(".eni") == std::string::npos) text += ".0";  // not 1e+20, inf, nan
  return text;
}

template <class T, class Str>
std::string values_str(const std::vector<T>& v, Str str) {
  if (v.size() == 1) return str(v[0]);
  std::string text = "(";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) text += ", ";
    text += str(v[i]);
  }
  return text + ")";
}

std::string size_str(const OutputSize& s) {
  return values_str(s.values, [](int64_t v) { return std::to_string(v); });
}
std::string scale_str(const ScaleFactor& s) { return values_str(s.values, float_str); }

}  // namespace

Tensor Upsample::forward(const Tensor& x) {
  WEFT_CHECK(!(size && scale_factor), "Upsample: only one of size or scale_factor should be defined, but got size ",
             size_str(*size), " and scale_factor ", scale_str(*scale_factor));
  WEFT_CHECK(size || scale_factor, "Upsample: either size or scale_factor should be defined, but got neither");
  return interpolate(x, size, scale_factor, mode, align_corners, recompute_scale_factor);
}

std::string Upsample::extra_repr() const {
  std::string text = scale_factor ? "scale_factor=" + scale_str(*scale_factor)
                                  : "size=" + (size ? size_str(*size) : std::string("None"));
  text += ", mode=" + mode;
  if (align_corners) text += std::string(", align_corners=") + (*align_corners ? "true" : "false");
  if (recompute_scale_factor)
    text += std::string(", recompute_scale_factor=") + (*recompute_scale_factor ? "true" : "false");
  return text;
}

}  // namespace weft::nn
