// nn::init: in-place parameter initialisers drawing from the seeded generator (torch.nn.init).
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include "framework/generator.h"
#include "framework/tensor.h"

namespace weft::nn::init {

namespace detail {
// Writes f() into every element of a contiguous floating tensor, in order, and bumps its version.
inline void check_fillable(const Tensor& t, const char* who) {
  weft::detail::check_plain(t, who);
  WEFT_CHECK(t.is_floating_point(), who, ": expected a float32 or float64 tensor but got ", t.dtype());
  WEFT_CHECK(t.is_contiguous(), who, ": expected a contiguous tensor but got strides ", t.strides());
}

template <class F>
void fill_with(const Tensor& t, const char* who, F&& f) {
  check_fillable(t, who);
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

// The gain torch.nn.init.calculate_gain recommends for a nonlinearity: 1 for "linear", "conv*",
// "sigmoid"; 5/3 "tanh"; sqrt(2) "relu"; sqrt(2 / (1 + param^2)) "leaky_relu" (param: the negative
// slope, 0.01 by default: pass a negative value for the default); 3/4 "selu".
double calculate_gain(const std::string& nonlinearity, double param = -1.0);

// (fan_in, fan_out) of a weight shaped (out, in, *kernel): in * kernel and out * kernel; at least
// two dimensions are expected. `who` names the caller in errors.
std::pair<int64_t, int64_t> fans(const Tensor& t, const char* who = "init::fans");

// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio).
const Tensor& xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
const Tensor& xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

// He et al.: std = gain(nonlinearity, a) / sqrt(fan), fan = fan_in (mode "fan_in") or fan_out
// ("fan_out"); uniform draws U(-sqrt(3) std, sqrt(3) std), normal N(0, std^2). PyTorch's defaults.
const Tensor& kaiming_uniform_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                               const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
const Tensor& kaiming_normal_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                              const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

// A (semi-)orthogonal matrix times gain, the tensor seen as (size(0), numel / size(0)): the Q of the
// QR decomposition of a normal matrix with R's diagonal made positive (Saxe et al.), so rows are
// orthonormal when there are fewer rows than columns, columns otherwise.
const Tensor& orthogonal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

// N(mean, std^2) restricted to [a, b], drawn by inverting the normal CDF over [Phi(a), Phi(b)].
const Tensor& trunc_normal_(const Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0,
                            Generator* gen = nullptr);

}  // namespace weft::nn::init
