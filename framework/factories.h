// Factories: tensors from values, constants, ranges and the seeded generator.
#pragma once

#include <vector>

#include "framework/generator.h"
#include "framework/tensor.h"

namespace weft {

// A tensor holding `values` in row-major order with `shape` (1-D when shape is empty).
Tensor tensor(const std::vector<double>& values, const Shape& shape = {}, TensorOptions options = {});
// The same with values of their own type, stored exactly (dtype from T).
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape = {}, bool requires_grad = false);
// A zero-dimensional tensor.
Tensor scalar_tensor(Scalar value, TensorOptions options = {});

Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, Scalar value, TensorOptions options = {});
Tensor arange(Scalar end, TensorOptions options = dtype(kInt64));
Tensor arange(Scalar start, Scalar end, Scalar step = 1, TensorOptions options = dtype(kInt64));
Tensor linspace(double start, double end, int64_t steps, TensorOptions options = {});
Tensor eye(int64_t n, int64_t m = -1, TensorOptions options = {});
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options = dtype(kInt64),
               Generator* gen = nullptr);

// *_like: the shape of `t`, and its dtype unless options name another.
Tensor empty_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);
Tensor full_like(const Tensor& t, Scalar value, std::optional<TensorOptions> options = std::nullopt);
Tensor rand_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);
Tensor randn_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);

namespace detail {
// Fills a contiguous tensor with `value` converted to its dtype.
void fill_contiguous(const Tensor& t, Scalar value);
}  // namespace detail

}  // namespace weft
