// The fused training-step kernels (kernels/optim_kernels.h) against the unfused rules written out
// element by element in double: the multi-tensor Adam/AdamW pass in float32 and float64, the AdamW
// optimizer's fused step over a group mixing both dtypes, the sum of squares and clip_grad_norm_.
// meson runs this suite once per float32 copy (WEFT_MAX_CPU_ISA=avx512, avx2, baseline).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "kernels/optim_kernels.h"
#include "nn/nn.h"
#include "ops/ops.h"

using namespace weft;

namespace {

// One parameter's state for the reference: everything in double.
struct RefParam {
  std::vector<double> p, g, m, v;
};

// torch.optim.Adam(W)'s update of one element, in double.
void reference_adam(RefParam& r, const kernels::AdamScalars& s, int64_t t) {
  const double step_size = s.lr / (1.0 - std::pow(s.beta1, double(t)));
  const double bc2 = std::sqrt(1.0 - std::pow(s.beta2, double(t)));
  for (size_t i = 0; i < r.p.size(); ++i) {
    double g = r.g[i];
    if (s.decoupled) r.p[i] *= 1.0 - s.lr * s.weight_decay;
    else g += s.weight_decay * r.p[i];
    r.m[i] = s.beta1 * r.m[i] + (1.0 - s.beta1) * g;
    r.v[i] = s.beta2 * r.v[i] + (1.0 - s.beta2) * g * g;
    r.p[i] -= step_size * r.m[i] / (std::sqrt(r.v[i]) / bc2 + s.eps);
  }
}

// Sizes that exercise the vector body, its tail, and pieces split across threads (over 2^16 in all).
const std::vector<int64_t> kSizes = {1, 7, 16, 17, 1000, 40000, 70001};

template <class T>
void check_adam_step(bool decoupled, double tol) {
  const kernels::AdamScalars s{1e-2, 0.9, 0.999, 1e-8, 0.1, decoupled};
  std::vector<RefParam> ref;
  std::vector<std::vector<T>> p, g, m, v;
  uint32_t seed = 12345;
  auto next = [&] {  // a small LCG in (-1, 1): values reproducible, no library RNG involved
    seed = seed * 1664525u + 1013904223u;
    return (double(seed >> 8) / double(1 << 24)) * 2.0 - 1.0;
  };
  for (int64_t n : kSizes) {
    RefParam r;
    for (int64_t i = 0; i < n; ++i) {
      r.p.push_back(T(next()));  // the reference starts from exactly the rounded values
      r.g.push_back(T(next() * 0.1));
    }
    r.m.assign(size_t(n), 0.0);
    r.v.assign(size_t(n), 0.0);
    p.emplace_back(r.p.begin(), r.p.end());
    g.emplace_back(r.g.begin(), r.g.end());
    m.emplace_back(size_t(n), T(0));
    v.emplace_back(size_t(n), T(0));
    ref.push_back(r);
  }
  for (int64_t t = 1; t <= 3; ++t) {
    std::vector<kernels::AdamSpan<T>> spans;
    for (size_t k = 0; k < kSizes.size(); ++k) {
      spans.push_back({p[k].data(), g[k].data(), m[k].data(), v[k].data(), kSizes[k],
                       s.lr / (1.0 - std::pow(s.beta1, double(t))), std::sqrt(1.0 - std::pow(s.beta2, double(t)))});
      reference_adam(ref[k], s, t);
    }
    kernels::adam_step(spans, s);
  }
  for (size_t k = 0; k < kSizes.size(); ++k)
    for (size_t i = 0; i < p[k].size(); ++i) {
      INFO("parameter " << k << " element " << i);
      REQUIRE(std::abs(double(p[k][i]) - ref[k].p[i]) <= tol * (1.0 + std::abs(ref[k].p[i])));
      REQUIRE(std::abs(double(m[k][i]) - ref[k].m[i]) <= tol * (1.0 + std::abs(ref[k].m[i])));
      REQUIRE(std::abs(double(v[k][i]) - ref[k].v[i]) <= tol * (1.0 + std::abs(ref[k].v[i])));
    }
}

std::vector<double> values(const Tensor& t) {
  Tensor d = t.to(kFloat64).contiguous();
  const double* p = d.data_ptr<double>();
  return {p, p + d.numel()};
}

}  // namespace

TEST_CASE("fused adam_step matches the element-wise rule", "[fused][optim]") {
  SECTION("AdamW float32") { check_adam_step<float>(true, 2e-6); }
  SECTION("AdamW float64") { check_adam_step<double>(true, 1e-13); }
  SECTION("Adam with coupled weight decay float32") { check_adam_step<float>(false, 2e-6); }
  SECTION("Adam with coupled weight decay float64") { check_adam_step<double>(false, 1e-13); }
}

TEST_CASE("AdamW's fused step over a group of float32 and float64 parameters", "[fused][optim]") {
  manual_seed(4);
  // Two float32 parameters and one float64, one of them without a gradient in step 2.
  std::vector<Tensor> params = {randn({70001}).requires_grad_(), randn({3, 5}).requires_grad_(),
                                randn({33}, dtype(kFloat64)).requires_grad_()};
  const kernels::AdamScalars s{1e-2, 0.9, 0.999, 1e-8, 0.05, true};
  std::vector<RefParam> ref;
  for (const Tensor& p : params) ref.push_back({values(p), {}, std::vector<double>(size_t(p.numel())),
                                                std::vector<double>(size_t(p.numel()))});
  std::vector<int64_t> steps(params.size(), 0);
  optim::AdamW opt(params, {.lr = s.lr, .beta1 = s.beta1, .beta2 = s.beta2, .eps = s.eps, .weight_decay = s.weight_decay});
  for (int step = 1; step <= 3; ++step) {
    opt.zero_grad();
    for (size_t k = 0; k < params.size(); ++k) {
      if (step == 2 && k == 1) continue;  // no gradient: skipped, its step count stays behind
      Tensor g = randn(params[k].shape(), dtype(params[k].dtype()));
      params[k].set_grad(g);
      ref[k].g = values(g);
      reference_adam(ref[k], s, ++steps[k]);
    }
    opt.step();
  }
  for (size_t k = 0; k < params.size(); ++k) {
    const double tol = params[k].dtype() == kFloat64 ? 1e-13 : 2e-6;
    std::vector<double> got = values(params[k]);
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("parameter " << k << " element " << i);
      REQUIRE(std::abs(got[i] - ref[k].p[i]) <= tol * (1.0 + std::abs(ref[k].p[i])));
    }
  }
  REQUIRE(opt.state(1).step == 2);
}

TEST_CASE("sum_of_squares and clip_grad_norm_ against plain double sums", "[fused][clip]") {
  manual_seed(9);
  for (DType dt : {kFloat32, kFloat64}) {
    std::vector<Tensor> params = {randn({1001}, dtype(dt)).requires_grad_(), randn({17, 3}, dtype(dt)).requires_grad_()};
    double sum_sq = 0.0;
    std::vector<std::vector<double>> grads;
    for (const Tensor& p : params) {
      Tensor g = randn(p.shape(), dtype(dt)).mul_(3.0);
      p.set_grad(g);
      grads.push_back(values(g));
      for (double x : grads.back()) sum_sq += x * x;
    }
    const Tensor& g0 = params[0].grad();
    const double direct = dt == kFloat32 ? kernels::sum_of_squares(g0.data_ptr<float>(), g0.numel())
                                         : kernels::sum_of_squares(g0.data_ptr<double>(), g0.numel());
    double want0 = 0.0;
    for (double x : grads[0]) want0 += x * x;
    REQUIRE(std::abs(direct - want0) <= 1e-12 * want0);
    const double norm = optim::clip_grad_norm_(params, 1.0);
    REQUIRE(std::abs(norm - std::sqrt(sum_sq)) <= 1e-12 * norm);
    const double coef = 1.0 / (std::sqrt(sum_sq) + 1e-6);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-14;
    for (size_t k = 0; k < params.size(); ++k) {
      std::vector<double> got = values(params[k].grad());
      for (size_t i = 0; i < got.size(); ++i) REQUIRE(std::abs(got[i] - grads[k][i] * coef) <= tol * (1 + std::abs(got[i])));
    }
  }
}

TEST_CASE("cross_entropy's fused float32 rows match log-softmax in double", "[fused][cross_entropy]") {
  manual_seed(13);
  for (auto [rows, classes] : {std::pair<int64_t, int64_t>{5, 3}, {37, 1000}, {64, 17}}) {
    for (double smoothing : {0.0, 0.1}) {
      Tensor x = randn({rows, classes}).mul_(4.0);
      Tensor t = randint(0, classes, {rows});
      t.data_ptr<int64_t>()[1] = -100;  // ignored
      Tensor got = cross_entropy(x, t, "none", -100, smoothing);
      std::vector<double> xs = values(x), loss = values(got);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t target = t.data_ptr<int64_t>()[r];
        if (target == -100) {
          REQUIRE(loss[size_t(r)] == 0.0);
          continue;
        }
        double m = -INFINITY, s = 0.0, mean = 0.0;
        for (int64_t c = 0; c < classes; ++c) m = std::max(m, xs[size_t(r * classes + c)]);
        for (int64_t c = 0; c < classes; ++c) {
          s += std::exp(xs[size_t(r * classes + c)] - m);
          mean += xs[size_t(r * classes + c)] / double(classes);
        }
        const double lse = m + std::log(s);
        const double want = (1 - smoothing) * (lse - xs[size_t(r * classes + target)]) + smoothing * (lse - mean);
        INFO("rows " << rows << " classes " << classes << " smoothing " << smoothing << " row " << r);
        REQUIRE(std::abs(loss[size_t(r)] - want) <= 2e-6 * (1 + std::abs(want)));
      }
    }
  }
}
