// Printing like PyTorch: nested brackets, aligned columns, elision past 1000 elements, then the
// dtype and shape.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "framework/copy.h"
#include "framework/tensor.h"

namespace weft {
namespace {

constexpr int64_t kElideAbove = 1000;
constexpr int64_t kEdgeItems = 3;

struct Format {
  bool floating = false;
  bool integral_values = true;  // floats that are all whole numbers print as "1."
  bool scientific = false;
  int width = 1;
};

std::string format_value(double v, const Format& f, DType dtype) {
  std::ostringstream out;
  if (dtype == kBool) return v != 0.0 ? "True" : "False";
  if (!f.floating) {
    out << static_cast<int64_t>(v);
    return out.str();
  }
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (f.scientific) out << std::scientific << std::setprecision(4) << v;
  else if (f.integral_values) out << std::fixed << std::setprecision(0) << v << '.';
  else out << std::fixed << std::setprecision(4) << v;
  return out.str();
}

Format choose_format(const std::vector<double>& values, DType dtype) {
  Format f;
  f.floating = is_floating(dtype);
  double max_abs = 0.0, min_abs = INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (v != std::floor(v)) f.integral_values = false;
    double a = std::fabs(v);
    max_abs = std::max(max_abs, a);
    if (a > 0) min_abs = std::min(min_abs, a);
  }
  if (f.floating && !f.integral_values && (max_abs >= 1e8 || min_abs < 1e-4)) f.scientific = true;
  if (f.floating && f.integral_values && max_abs >= 1e8) f.scientific = true;
  for (double v : values) f.width = std::max(f.width, static_cast<int>(format_value(v, f, dtype).size()));
  return f;
}

// Indices shown along a dim of `size`: all, or the edges around an ellipsis (-1).
std::vector<int64_t> shown_indices(int64_t size, bool elide) {
  std::vector<int64_t> idx;
  if (!elide || size <= 2 * kEdgeItems) {
    for (int64_t i = 0; i < size; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
    idx.push_back(-1);
    for (int64_t i = size - kEdgeItems; i < size; ++i) idx.push_back(i);
  }
  return idx;
}

// Appends the values print_dim shows, in order.
void collect_shown(const Shape& shape, const std::vector<double>& values, std::vector<double>& shown) {
  Shape strides = contiguous_strides(shape);
  std::vector<int64_t> offsets = {0};
  for (size_t d = 0; d < shape.size(); ++d) {
    std::vector<int64_t> next;
    for (int64_t base : offsets)
      for (int64_t i : shown_indices(shape[d], true))
        if (i >= 0) next.push_back(base + i * strides[d]);
    offsets = std::move(next);
  }
  for (int64_t o : offsets) shown.push_back(values[static_cast<size_t>(o)]);
}

void print_dim(std::ostream& out, const Tensor& t, const std::vector<double>& values, const Format& f,
               int64_t dim, int64_t offset, int indent, bool elide) {
  const Shape& shape = t.shape();
  const Shape strides = contiguous_strides(shape);
  out << '[';
  auto idx = shown_indices(shape[dim], elide);
  bool last_dim = dim + 1 == t.dim();
  for (size_t k = 0; k < idx.size(); ++k) {
    if (k > 0) {
      out << ',';
      if (last_dim) out << ' ';
      else out << std::string(static_cast<size_t>(t.dim() - dim - 1), '\n') << std::string(indent + 1, ' ');
    }
    if (idx[k] < 0) {
      out << "...";
      continue;
    }
    int64_t at = offset + idx[k] * strides[dim];
    if (last_dim) {
      std::string s = format_value(values[static_cast<size_t>(at)], f, t.dtype());
      out << std::string(f.width - static_cast<int>(s.size()), ' ') << s;
    } else {
      print_dim(out, t, values, f, dim + 1, at, indent + 1, elide);
    }
  }
  out << ']';
}

}  // namespace

std::string Tensor::to_string() const {
  std::ostringstream out;
  out << *this;
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  if (!t.defined()) return out << "tensor(undefined)";
  if (t.is_dtensor()) return out << "DTensor(global shape=" << t.shape() << ", dtype=" << t.dtype() << ")";
  std::vector<double> values = t.to_vector<double>();
  bool elide = t.numel() > kElideAbove;
  // The format is chosen from the values that will be shown, so elided ones cannot change it.
  std::vector<double> shown;
  if (elide) collect_shown(t.shape(), values, shown);
  Format f = choose_format(elide ? shown : values, t.dtype());
  out << "tensor(";
  if (t.dim() == 0) out << format_value(values[0], f, t.dtype());
  else print_dim(out, t, values, f, 0, 0, 7, elide);
  out << ", dtype=" << t.dtype() << ", shape=" << t.shape();
  if (t.requires_grad()) out << ", requires_grad=True";
  return out << ')';
}

}  // namespace weft
