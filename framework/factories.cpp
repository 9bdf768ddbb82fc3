// Factories.
#include "framework/factories.h"

#include <algorithm>
#include <cmath>

#include "framework/autograd_meta.h"

namespace weft {
namespace {

Tensor finish(Tensor t, const TensorOptions& options, const char* op) {
  if (options.requires_grad_) {
    WEFT_CHECK(is_floating(t.dtype()), op, ": only floating point tensors can require gradients, but dtype is ",
               t.dtype());
    t.impl()->autograd = AutogradMetaPtr(new (detail::pool_allocate(sizeof(AutogradMeta))) AutogradMeta);
    t.impl()->autograd->requires_grad = true;
  }
  return t;
}

Shape values_shape(size_t count, const Shape& shape, const char* op) {
  if (shape.empty() && count != 1) return Shape{static_cast<int64_t>(count)};
  WEFT_CHECK(numel_of(shape) == static_cast<int64_t>(count), op, ": ", count,
             " values do not fill the shape ", shape, " (", numel_of(shape), " elements)");
  return shape;
}

// A new tensor of `shape` for factory `op`: bad sizes are reported under the factory's own name.
Tensor allocate(const Shape& shape, const TensorOptions& options, const char* op) {
  return detail::make_empty(shape, options.dtype_, op);
}

template <class F>
Tensor generate(const Shape& shape, const TensorOptions& options, const char* op, F&& next) {
  Tensor t = allocate(shape, options, op);
  visit<kAllDTypes>(t.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(next(i));
  });
  return finish(std::move(t), options, op);
}

TensorOptions like(const Tensor& t, const std::optional<TensorOptions>& options) {
  return options ? *options : TensorOptions(t.dtype());
}

}  // namespace

namespace detail {
void fill_contiguous(const Tensor& t, Scalar value) {
  visit<kAllDTypes>(t.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    std::fill(p, p + t.numel(), value.to<T>());
  });
}
}  // namespace detail

Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  Shape s = values_shape(values.size(), shape, "tensor");
  return generate(s, options, "tensor", [&](int64_t i) { return values[static_cast<size_t>(i)]; });
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, bool requires_grad) {
  Shape s = values_shape(values.size(), shape, "from_vector");
  return generate(s, TensorOptions(dtype_v<T>).requires_grad(requires_grad), "from_vector",
                  [&](int64_t i) { return values[static_cast<size_t>(i)]; });
}
template Tensor from_vector<bool>(const std::vector<bool>&, const Shape&, bool);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, bool);
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, bool);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, bool);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, bool);
template Tensor from_vector<int8_t>(const std::vector<int8_t>&, const Shape&, bool);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, bool);
template Tensor from_vector<BFloat16>(const std::vector<BFloat16>&, const Shape&, bool);
template Tensor from_vector<Half>(const std::vector<Half>&, const Shape&, bool);

Tensor scalar_tensor(Scalar value, TensorOptions options) { return full({}, value, options); }

Tensor empty(const Shape& shape, TensorOptions options) {
  return finish(detail::make_empty(shape, options.dtype_, "empty"), options, "empty");
}

Tensor filled(const Shape& shape, Scalar value, const TensorOptions& options, const char* op) {
  Tensor t = allocate(shape, options, op);
  detail::fill_contiguous(t, value);
  return finish(std::move(t), options, op);
}

Tensor full(const Shape& shape, Scalar value, TensorOptions options) { return filled(shape, value, options, "full"); }
Tensor zeros(const Shape& shape, TensorOptions options) { return filled(shape, 0, options, "zeros"); }
Tensor ones(const Shape& shape, TensorOptions options) { return filled(shape, 1, options, "ones"); }

Tensor arange(Scalar end, TensorOptions options) { return arange(0, end, 1, options); }

Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions options) {
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  WEFT_CHECK(st != 0.0, "arange: step must be nonzero");
  WEFT_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), "arange: upper bound and step sign are inconsistent (start=",
             s, ", end=", e, ", step=", st, ")");
  const double count = std::ceil((e - s) / st);
  WEFT_CHECK(std::isfinite(count) && count < 0x1p62, "arange: start=", s, ", end=", e, ", step=", st,
             " make ", count, " elements, more than a tensor can hold");
  int64_t n = static_cast<int64_t>(count);
  if (start.is_floating() || end.is_floating() || step.is_floating())
    if (!is_floating(options.dtype_)) options = options.dtype(kFloat32);
  return generate({n}, options, "arange", [&](int64_t i) { return s + st * static_cast<double>(i); });
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions options) {
  WEFT_CHECK(steps >= 0, "linspace: number of steps must be non-negative but got ", steps);
  double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  return generate({steps}, options, "linspace", [&](int64_t i) {
    if (steps == 1) return start;
    // Fill from both ends, as PyTorch does, so that the last value is exactly `end`.
    return i < steps / 2 ? start + step * static_cast<double>(i)
                         : end - step * static_cast<double>(steps - 1 - i);
  });
}

Tensor eye(int64_t n, int64_t m, TensorOptions options) {
  if (m < 0) m = n;
  WEFT_CHECK(n >= 0, "eye: n must be non-negative but got ", n);
  return generate({n, m}, options, "eye", [&](int64_t i) { return i / m == i % m ? 1.0 : 0.0; });
}

Tensor rand(const Shape& shape, TensorOptions options, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  WEFT_CHECK(is_floating(options.dtype_), "rand: expected a floating dtype but got ", options.dtype_);
  std::lock_guard<std::mutex> lock(g.mutex());  // see Note [Generator threads]
  return generate(shape, options, "rand", [&](int64_t) { return g.uniform(); });
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  WEFT_CHECK(is_floating(options.dtype_), "randn: expected a floating dtype but got ", options.dtype_);
  std::lock_guard<std::mutex> lock(g.mutex());
  return generate(shape, options, "randn", [&](int64_t) { return g.normal(); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  WEFT_CHECK(low < high, "randint: expected low < high but got low=", low, ", high=", high);
  std::lock_guard<std::mutex> lock(g.mutex());
  return generate(shape, options, "randint", [&](int64_t) { return static_cast<double>(g.randint(low, high)); });
}

Tensor empty_like(const Tensor& t, std::optional<TensorOptions> o) { return empty(t.shape(), like(t, o)); }
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> o) { return zeros(t.shape(), like(t, o)); }
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> o) { return ones(t.shape(), like(t, o)); }
Tensor full_like(const Tensor& t, Scalar v, std::optional<TensorOptions> o) { return full(t.shape(), v, like(t, o)); }
Tensor rand_like(const Tensor& t, std::optional<TensorOptions> o) { return rand(t.shape(), like(t, o)); }
Tensor randn_like(const Tensor& t, std::optional<TensorOptions> o) { return randn(t.shape(), like(t, o)); }

}  // namespace weft
