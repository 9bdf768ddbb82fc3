// nn::init: the scaled initialisers (Xavier, Kaiming), orthogonal and truncated normal.
#include "nn/init.h"

#include <algorithm>
#include <mutex>
#include <numbers>
#include <vector>

namespace weft::nn::init {

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity.rfind("conv", 0) == 0) return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    double slope = param < 0.0 ? 0.01 : param;
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4.0;
  WEFT_ERROR("init::calculate_gain: unsupported nonlinearity '", nonlinearity, "'; expected one of linear, conv1d, "
            "conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu");
}

std::pair<int64_t, int64_t> fans(const Tensor& t, const char* who) {
  WEFT_CHECK(t.defined(), who, ": expected a tensor but got an undefined one");
  WEFT_CHECK(t.dim() >= 2, who, ": fan in and fan out need a tensor with at least 2 dimensions but got shape ",
             t.shape());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

const Tensor& xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  detail::check_fillable(t, "init::xavier_uniform_");
  auto [fan_in, fan_out] = fans(t, "init::xavier_uniform_");
  double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(t, -bound, bound, gen);
}

const Tensor& xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  detail::check_fillable(t, "init::xavier_normal_");
  auto [fan_in, fan_out] = fans(t, "init::xavier_normal_");
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
}

namespace {

double kaiming_std(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity,
                   const char* who) {
  detail::check_fillable(t, who);
  auto [fan_in, fan_out] = fans(t, who);
  WEFT_CHECK(mode == "fan_in" || mode == "fan_out", who, ": mode must be \"fan_in\" or \"fan_out\" but got \"", mode,
             "\"");
  double fan = static_cast<double>(mode == "fan_in" ? fan_in : fan_out);
  WEFT_CHECK(fan > 0, who, ": the tensor of shape ", t.shape(), " has no elements to take the fan of");
  return calculate_gain(nonlinearity, a) / std::sqrt(fan);
}

// The inverse of the standard normal CDF: Acklam's rational approximation (relative error 1.2e-9)
// refined by one Halley step on erfc, which brings it to double precision.
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425 || p > 1 - 0.02425) {
    double q = std::sqrt(-2 * std::log(p < 0.5 ? p : 1 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    if (p > 0.5) x = -x;
  } else {
    double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  double u = e * std::sqrt(2 * std::numbers::pi) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

}  // namespace

const Tensor& kaiming_uniform_(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity,
                               Generator* gen) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity, "init::kaiming_uniform_");
  return uniform_(t, -bound, bound, gen);
}

const Tensor& kaiming_normal_(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity,
                              Generator* gen) {
  return normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity, "init::kaiming_normal_"), gen);
}

const Tensor& orthogonal_(const Tensor& t, double gain, Generator* gen) {
  detail::check_fillable(t, "init::orthogonal_");
  WEFT_CHECK(t.dim() >= 2, "init::orthogonal_: expected a tensor with at least 2 dimensions but got shape ", t.shape());
  const int64_t rows = t.size(0), cols = t.numel() / std::max<int64_t>(rows, 1);
  // Columns of a tall (m, k) matrix, m >= k, made orthonormal; the result is it or its transpose.
  const int64_t m = std::max(rows, cols), k = std::min(rows, cols);
  std::vector<double> q(static_cast<size_t>(m * k));  // column j at q[j * m]
  {
    Generator& g = gen ? *gen : default_generator();
    std::lock_guard<std::mutex> lock(g.mutex());
    for (double& v : q) v = g.normal();
  }
  // Modified Gram-Schmidt, which is the QR decomposition with R's diagonal positive: the same Q as
  // PyTorch's Householder QR followed by its sign correction.
  for (int64_t j = 0; j < k; ++j) {
    double* qj = &q[j * m];
    for (int64_t i = 0; i < j; ++i) {
      const double* qi = &q[i * m];
      double dot = 0.0;
      for (int64_t r = 0; r < m; ++r) dot += qi[r] * qj[r];
      for (int64_t r = 0; r < m; ++r) qj[r] -= dot * qi[r];
    }
    double norm = 0.0;
    for (int64_t r = 0; r < m; ++r) norm += qj[r] * qj[r];
    norm = std::sqrt(norm);
    for (int64_t r = 0; r < m; ++r) qj[r] /= norm;
  }
  // Element (row, col) of the (rows, cols) result: Q's (row, col) when tall, Q^T's when wide.
  int64_t index = 0;
  detail::fill_with(t, "init::orthogonal_", [&] {
    int64_t row = index / cols, col = index % cols;
    ++index;
    return gain * (rows >= cols ? q[col * m + row] : q[row * m + col]);
  });
  return t;
}

const Tensor& trunc_normal_(const Tensor& t, double mean, double std, double a, double b, Generator* gen) {
  WEFT_CHECK(std > 0.0 && a < b, "init::trunc_normal_: expected std > 0 and a < b but got std ", std, ", a ", a,
             ", b ", b);
  detail::check_fillable(t, "init::trunc_normal_");
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  WEFT_CHECK(hi > lo, "init::trunc_normal_: [", a, ", ", b, "] lies too far in the tail of N(", mean, ", ", std,
             "^2) to sample");
  Generator& g = gen ? *gen : default_generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  detail::fill_with(t, "init::trunc_normal_", [&] {
    double p = lo + (hi - lo) * g.uniform();
    p = std::clamp(p, std::nextafter(0.0, 1.0), std::nextafter(1.0, 0.0));
    return std::clamp(mean + std * normal_quantile(p), a, b);
  });
  return t;
}

}  // namespace weft::nn::init
