// randperm, multinomial and bernoulli: draws from weft's seeded generator, no autograd history.
#include "ops/sampling.h"

#include <cmath>
#include <utility>
#include <vector>

#include "autograd/grad_mode.h"
#include "framework/factories.h"

namespace weft {
namespace {

// The input's values as float64 in row-major order, read without recording anything.
std::vector<double> values_of(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(kFloat64).contiguous().to_vector<double>();
}

}  // namespace

Tensor randperm(int64_t n, TensorOptions options, Generator* gen) {
  WEFT_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  WEFT_CHECK(options.dtype_ != kBool, "randperm: expected an integer or floating dtype but got bool");
  Generator& g = gen ? *gen : default_generator();
  Tensor out = empty({n}, dtype(kInt64));
  int64_t* p = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[g.randint(0, i + 1)]);
  return options.dtype_ == kInt64 ? out : out.to(options.dtype_);
}

Tensor multinomial(const Tensor& input, int64_t num_samples, bool replacement, Generator* gen) {
  WEFT_CHECK(input.defined() && !input.is_dtensor() && input.is_floating_point(),
             "multinomial: expected a plain floating point tensor of weights");
  WEFT_CHECK(input.dim() == 1 || input.dim() == 2, "multinomial: prob_dist must be 1 or 2 dim, got shape ",
             input.shape());
  WEFT_CHECK(num_samples > 0, "multinomial: cannot sample ", num_samples, " (<= 0) samples");
  const int64_t rows = input.dim() == 1 ? 1 : input.shape()[0], cats = input.shape()[input.dim() - 1];
  WEFT_CHECK(replacement || num_samples <= cats, "multinomial: cannot sample n_sample (", num_samples,
             ") > prob_dist.size(-1) (", cats, ") samples without replacement");
  std::vector<double> w = values_of(input);
  Generator& g = gen ? *gen : default_generator();
  Tensor out = empty(input.dim() == 1 ? Shape{num_samples} : Shape{rows, num_samples}, dtype(kInt64));
  int64_t* dst = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    double* row = w.data() + r * cats;
    double total = 0.0;
    int64_t nonzero = 0;
    for (int64_t c = 0; c < cats; ++c) {
      WEFT_CHECK(std::isfinite(row[c]) && row[c] >= 0, "multinomial: probability tensor contains either inf, nan ",
                 "or element < 0 (row ", r, ", category ", c, ": ", row[c], ")");
      total += row[c];
      nonzero += row[c] > 0;
    }
    WEFT_CHECK(total > 0, "multinomial: invalid multinomial distribution (sum of probabilities <= 0) in row ", r);
    WEFT_CHECK(replacement || nonzero >= num_samples, "multinomial: invalid multinomial distribution (with ",
               "replacement=False, not enough non-negative category to sample): row ", r, " has ", nonzero,
               " nonzero weights for ", num_samples, " samples");
    for (int64_t s = 0; s < num_samples; ++s) {
      // Inverse CDF on the remaining weight; without replacement a drawn category's weight goes.
      double u = g.uniform() * total, acc = 0.0;
      int64_t pick = -1;
      for (int64_t c = 0; c < cats && pick < 0; ++c)
        if (row[c] > 0 && (acc += row[c]) > u) pick = c;
      for (int64_t c = cats - 1; pick < 0; --c)  // rounding left u at the very top: the last nonzero
        if (row[c] > 0) pick = c;
      dst[r * num_samples + s] = pick;
      if (!replacement) {
        total -= row[pick];
        row[pick] = 0.0;
      }
    }
  }
  return out;
}

Tensor bernoulli(const Tensor& probs, Generator* gen) {
  WEFT_CHECK(probs.defined() && !probs.is_dtensor() && probs.is_floating_point(),
             "bernoulli: expected a plain floating point tensor of probabilities");
  std::vector<double> p = values_of(probs);
  Generator& g = gen ? *gen : default_generator();
  std::vector<double> draws(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    WEFT_CHECK(p[i] >= 0 && p[i] <= 1, "bernoulli: expected all probabilities in [0, 1] but element ", i,
               " is ", p[i]);
    draws[i] = g.uniform() < p[i] ? 1.0 : 0.0;
  }
  return tensor(draws, probs.shape(), dtype(kFloat64)).to(probs.dtype());
}

Tensor bernoulli(const Tensor& input, double p, Generator* gen) {
  WEFT_CHECK(input.defined() && input.is_floating_point(), "bernoulli: expected a floating point tensor");
  WEFT_CHECK(p >= 0 && p <= 1, "bernoulli: expected p in [0, 1] but got ", p);
  return bernoulli(full(input.shape(), p, dtype(input.dtype())), gen);
}

}  // namespace weft
