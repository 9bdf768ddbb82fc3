// kernels/layer_norm_rows.h (layer_norm's and rms_norm's float32 backward in one pass per block of rows)
// against the gradients written out element by element in double, and through the ops against the
// float64 backward (norm_backward's generic loops). meson runs this suite once per float32 copy
// (WEFT_MAX_CPU_ISA=avx512, avx2, baseline).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/layer_norm_rows.h"
#include "kernels/threads.h"
#include "tests/tensor_test_util.h"
#include "weft.h"

using namespace weft;

namespace {

struct Shape2 {
  int64_t rows, n;
};
// One element, one short row, a row past the kernel's 256-element float block, rows not a multiple of
// the 64-row block, and train_gpt's [1024, 64] (past kParallelGrain: blocks run in parallel).
const Shape2 kShapes[] = {{1, 1}, {3, 5}, {70, 64}, {5, 300}, {130, 17}, {1024, 64}};

std::vector<float> sample(size_t count, uint64_t seed, double offset) {
  std::vector<double> v = test::seeded_randn({static_cast<int64_t>(count)}, seed).to_vector<double>();
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(v[i] + offset);
  return out;
}

double max_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_CASE("norm_backward_rows matches the gradients written out in double", "[layer_norm_rows]") {
  for (const Shape2 s : kShapes)
    for (bool subtract_mean : {true, false})
      for (bool has_weight : {true, false}) {
        INFO("rows " << s.rows << ", n " << s.n << ", subtract_mean " << subtract_mean << ", weight " << has_weight);
        const size_t count = static_cast<size_t>(s.rows * s.n);
        std::vector<float> x = sample(count, 1, 3.0), g = sample(count, 2, 0.0), w = sample(s.n, 3, 1.0);
        std::vector<float> mean(s.rows), rstd(s.rows);
        for (int64_t r = 0; r < s.rows; ++r) {  // the forward's statistics, in double, stored as float
          double m = 0, v = 0;
          for (int64_t j = 0; j < s.n; ++j) m += x[r * s.n + j];
          m = subtract_mean ? m / s.n : 0.0;
          for (int64_t j = 0; j < s.n; ++j) v += (x[r * s.n + j] - m) * (x[r * s.n + j] - m);
          mean[r] = static_cast<float>(m);
          rstd[r] = static_cast<float>(1 / std::sqrt(v / s.n + 1e-5));
        }
        std::vector<double> dx_ref(count), dw_ref(s.n, 0.0), db_ref(s.n, 0.0);
        for (int64_t r = 0; r < s.rows; ++r) {
          double a = 0, b = 0;
          for (int64_t j = 0; j < s.n; ++j) {
            const double xhat = (double(x[r * s.n + j]) - mean[r]) * rstd[r];
            const double gw = double(g[r * s.n + j]) * (has_weight ? w[j] : 1.0);
            a += gw;
            b += gw * xhat;
            dw_ref[j] += g[r * s.n + j] * xhat;
            db_ref[j] += g[r * s.n + j];
          }
          a = subtract_mean ? a / s.n : 0.0;
          b /= s.n;
          for (int64_t j = 0; j < s.n; ++j) {
            const double xhat = (double(x[r * s.n + j]) - mean[r]) * rstd[r];
            const double gw = double(g[r * s.n + j]) * (has_weight ? w[j] : 1.0);
            dx_ref[r * s.n + j] = rstd[r] * (gw - a - xhat * b);
          }
        }
        std::vector<float> dx(count, -1.0f);
        std::vector<double> dw(s.n, 0.5), db(s.n, -0.5);  // accumulated into
        kernels::norm_backward_rows(x.data(), g.data(), has_weight ? w.data() : nullptr, mean.data(), rstd.data(),
                                    s.rows, s.n, subtract_mean, dx.data(), dw.data(), db.data());
        for (int64_t j = 0; j < s.n; ++j) {
          dw[j] -= 0.5;
          db[j] += 0.5;
        }
        CHECK(max_diff(dx, dx_ref) <= 2e-5 * (1 + max_abs(dx_ref)));
        std::vector<float> dwf(dw.begin(), dw.end()), dbf(db.begin(), db.end());
        CHECK(max_diff(dwf, dw_ref) <= 2e-5 * (1 + max_abs(dw_ref)) * std::sqrt(double(s.rows)));
        CHECK(max_diff(dbf, db_ref) <= 2e-5 * (1 + max_abs(db_ref)) * std::sqrt(double(s.rows)));
        // Outputs left out are not written.
        std::vector<float> untouched(count, 7.0f);
        std::vector<double> dw2(s.n, 0.0);
        kernels::norm_backward_rows(x.data(), g.data(), has_weight ? w.data() : nullptr, mean.data(), rstd.data(),
                                    s.rows, s.n, subtract_mean, nullptr, dw2.data(), nullptr);
        CHECK(dw2 == std::vector<double>(dw.begin(), dw.end()));
      }
}

TEST_CASE("norm_backward_rows gives the same bits at one thread and two", "[layer_norm_rows]") {
  const int64_t rows = 1024, n = 64;
  std::vector<float> x = sample(rows * n, 4, 0.0), g = sample(rows * n, 5, 0.0), w = sample(n, 6, 1.0);
  std::vector<float> mean(rows, 0.1f), rstd(rows, 0.9f);
  auto run = [&](int threads) {
    ScopedNumThreads scoped(threads);
    std::vector<float> dx(rows * n);
    std::vector<double> dw(n, 0.0), db(n, 0.0);
    kernels::norm_backward_rows(x.data(), g.data(), w.data(), mean.data(), rstd.data(), rows, n, true, dx.data(),
                                dw.data(), db.data());
    return std::make_tuple(dx, dw, db);
  };
  CHECK(run(1) == run(2));
}

TEST_CASE("float32 layer_norm and rms_norm backward match float64's", "[layer_norm_rows]") {
  for (const Shape2 s : kShapes)
    for (bool rms : {false, true}) {
      INFO("rows " << s.rows << ", n " << s.n << ", rms " << rms);
      Tensor x64 = test::seeded_randn({s.rows, s.n}, 7).add_(2.0), g64 = test::seeded_randn({s.rows, s.n}, 8);
      Tensor w64 = test::seeded_randn({s.n}, 9).add_(1.0), b64 = test::seeded_randn({s.n}, 10);
      auto grads = [&](DType dt) {
        Tensor x = x64.to(dt).requires_grad_(), w = w64.to(dt).requires_grad_(), b = b64.to(dt).requires_grad_();
        Tensor y = rms ? rms_norm(x, {s.n}, w, 1e-5) : layer_norm(x, {s.n}, w, b);
        y.backward(g64.to(dt));
        std::vector<Tensor> out{x.grad().to(kFloat64), w.grad().to(kFloat64)};
        if (!rms) out.push_back(b.grad().to(kFloat64));
        return out;
      };
      std::vector<Tensor> f32 = grads(kFloat32), f64 = grads(kFloat64);
      for (size_t k = 0; k < f32.size(); ++k) {
        INFO("gradient " << k);
        const double scale = max_abs(f64[k].contiguous().to_vector<double>());
        CHECK(test::max_abs_diff(f32[k], f64[k]) <= 5e-5 * (1 + scale));
      }
    }
}
