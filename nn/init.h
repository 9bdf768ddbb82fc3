// nn::init: in-place parameter initialisers drawing from the seeded generator (torch.nn.init).
#pragma once

#include <cmath>

#include "framework/generator.h"
#include "framework/tensor.h"

namespace weft::nn::init {

namespace detail {
// Writes f() into every element of a contiguous floating tensor, in order, and bumps its version.
template <class F>
void fill_with(const Tensor& t, const char* who, F&& f) {
  weft::detail::check_plain(t, who);
  WEFT_CHECK(t.is_contiguous(), who, ": expected a contiguous tensor but got strides ", t.strides());
  visit_floating(t.dtype(), who, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(f());
  });
  t.bump_version();
}
}  // namespace detail

// U(low, high), PyTorch's nn.init.uniform_.
inline const Tensor& uniform_(const Tensor& t, double low, double high, Generator* gen = nullptr) {
  Generator& g = gen ? *gen : default_generator();
  std::lock_guard<std::mutex> lock(g.mutex());  // see Note [Generator threads]
  detail::fill_with(t, "init::uniform_", [&] { return low + (high - low) * g.uniform(); });
  return t;
}

// N(mean, std^2), PyTorch's nn.init.normal_.
inline const Tensor& normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr) {
  Generator& g = gen ? *gen : default_generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  detail::fill_with(t, "init::normal_", [&] { return mean + std * g.normal(); });
  return t;
}

inline const Tensor& constant_(const Tensor& t, double value) {
  detail::fill_with(t, "init::constant_", [&] { return value; });
  return t;
}

}  // namespace weft::nn::init
