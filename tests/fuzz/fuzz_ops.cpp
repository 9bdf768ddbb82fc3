// fuzz_ops N [seed]: N seeded random calls of weft's public ops with valid and invalid arguments
// (0 and huge sizes, negative and out-of-range dims, mixed dtypes, non-contiguous and aliased
// inputs, requires_grad on and off), each followed by backward when the result requires grad.
// Every call must end in a result that agrees with a reference computed here (where one is
// written), or in a weft::Error whose message names the op. Exit status 1 on the first call that
// does neither (printing the seed and call number to replay it); the sanitizer job runs it under
// ASan and UBSan, where any memory or undefined-behaviour error also ends the run.
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>

#include "weft.h"

using namespace weft;

namespace {

std::mt19937_64 rng;
bool verbose = false;  // FUZZ_VERBOSE=1: print each call's op before running it (to find a hang)
long call_index = 0;
long results = 0, referenced = 0, errors = 0, backwards = 0;
int64_t pick(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

// A size: mostly small, sometimes 0, rarely huge or negative (invalid or too large to allocate:
// never a valid size that would really allocate gigabytes).
int64_t fuzz_size() {
  if (chance(0.9)) return pick(0, 4);
  static const int64_t extremes[] = {-1, -3, int64_t(1) << 50, int64_t(1) << 62, INT64_MAX, INT64_MIN};
  return extremes[pick(0, 5)];
}
int64_t fuzz_dim(int64_t rank) { return chance(0.85) ? pick(-rank, std::max<int64_t>(rank - 1, 0)) : pick(-8, 8); }
Shape small_shape(int64_t max_rank = 3) {
  Shape s(static_cast<size_t>(pick(0, max_rank)));
  for (int64_t& d : s) d = pick(chance(0.1) ? 0 : 1, 4);
  return s;
}
Shape fuzz_shape(int64_t max_rank = 3) {
  Shape s(static_cast<size_t>(pick(0, max_rank)));
  for (int64_t& d : s) d = fuzz_size();
  return s;
}
DType fuzz_dtype() {
  static const DType all[] = {kFloat32, kFloat64, kFloat32, kFloat64, kInt64, kBool};
  return all[pick(0, 5)];
}

// A small input: random values of a random dtype, sometimes a non-contiguous view (transposed or
// strided), floating ones sometimes requiring grad.
Tensor fuzz_tensor(Shape shape, DType dtype) {
  Tensor t = to_dtype(mul(randn(shape, kFloat64), 2.0), dtype);
  if (chance(0.2) && t.dim() >= 2) t = transpose(contiguous(transpose(t, 0, 1)), 0, 1);  // same values, strided
  else if (chance(0.15) && t.dim() >= 1) t = narrow(cat({t, t}, 0), 0, 0, t.size(0));
  if (is_floating(dtype) && chance(0.5)) t = t.detach().requires_grad_();
  return t;
}
Tensor fuzz_tensor() { return fuzz_tensor(small_shape(), fuzz_dtype()); }

// Values of `t` broadcast to `shape` (t's shape must broadcast to it), in row-major order.
std::vector<double> broadcast_values(const Tensor& t, const Shape& shape) {
  const std::vector<double> v = t.to_vector<double>();
  const Shape& ts = t.shape();
  std::vector<double> out(static_cast<size_t>(numel_of(shape)));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t rest = static_cast<int64_t>(i), src = 0, src_stride = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      const int64_t idx = rest % shape[d];
      rest /= shape[d];
      const size_t td = d + ts.size() - shape.size();
      if (d + ts.size() < shape.size()) continue;
      src += (ts[td] == 1 ? 0 : idx) * src_stride;
      src_stride *= ts[td];
    }
    out[i] = v[static_cast<size_t>(src)];
  }
  return out;
}

struct Failure {
  std::string what;
};

// Requires `got` to match `want` elementwise: NaNs in the same places, and relative error within
// float32 or float64 precision.
void check_close(const std::string& op, const Tensor& got, const std::vector<double>& want) {
  const std::vector<double> g = got.to_vector<double>();
  if (g.size() != want.size()) throw Failure{op + ": " + std::to_string(g.size()) + " values, reference has " +
                                             std::to_string(want.size())};
  const double tol = got.dtype() == kFloat32 ? 2e-5 : 1e-12;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(g[i])) continue;
    if (std::isinf(want[i]) && g[i] == want[i]) continue;
    if (!(std::fabs(g[i] - want[i]) <= tol * (1 + std::fabs(want[i]))))
      throw Failure{op + ": element " + std::to_string(i) + " is " + std::to_string(g[i]) + ", reference " +
                    std::to_string(want[i])};
  }
}

// One op call: `run` makes the inputs and calls the op, returning the result and (optionally) a
// reference. Errors must be weft::Errors naming one of `names`.
struct Outcome {
  Tensor result;
  std::function<std::vector<double>()> reference;  // empty: no reference for this call
};

void expect_named(const std::string& names, const std::string& message, const char* phase) {
  size_t start = 0;
  while (start <= names.size()) {
    size_t end = names.find('|', start);
    if (end == std::string::npos) end = names.size();
    if (message.find(names.substr(start, end - start) + ":") != std::string::npos ||
        message.find(names.substr(start, end - start)) == 0)
      return;
    start = end + 1;
  }
  throw Failure{std::string(phase) + " error does not name " + names + ": " + message};
}

void call(const std::string& names, const std::function<Outcome()>& run) {
  if (verbose) std::fprintf(stderr, "fuzz_ops: call %ld: %s\n", call_index, names.c_str());
  Outcome out;
  try {
    out = run();
  } catch (const Error& e) {
    expect_named(names, e.what(), "forward");
    ++errors;
    return;
  }
  ++results;
  const Tensor& y = out.result;
  if (!y.defined()) return;
  const bool small = y.numel() <= (1 << 16);  // a huge expanded view is not summed element by element
  if (out.reference && small && is_floating(y.dtype())) check_close(names, y, out.reference()), ++referenced;
  if (small && y.requires_grad()) {
    try {
      sum(y).backward();
      ++backwards;
    } catch (const Error& e) {
      // A gradient too large to allocate (of a huge expanded input) is a fair refusal; others are not.
      const std::string m = e.what();
      const bool too_large = m.find("more than the limit of") != std::string::npos ||
                             m.find("out of memory") != std::string::npos;
      if (!too_large) throw Failure{names + ": backward of a valid call failed: " + m};
    }
  }
}

using Unary = Tensor (*)(const Tensor&);
struct UnaryCase {
  const char* name;
  Unary op;
  double (*ref)(double);
};
double ref_relu(double x) { return x > 0 ? x : 0; }
double ref_sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
const UnaryCase kUnary[] = {
    {"neg", neg, [](double x) { return -x; }}, {"abs", abs, [](double x) { return std::fabs(x); }},
    {"exp", exp, [](double x) { return std::exp(x); }}, {"log", log, [](double x) { return std::log(x); }},
    {"sqrt", sqrt, [](double x) { return std::sqrt(x); }}, {"sin", sin, [](double x) { return std::sin(x); }},
    {"cos", cos, [](double x) { return std::cos(x); }}, {"tanh", tanh, [](double x) { return std::tanh(x); }},
    {"sigmoid", sigmoid, ref_sigmoid}, {"relu", relu, ref_relu}, {"silu", silu, [](double x) { return x * ref_sigmoid(x); }},
    {"reciprocal", reciprocal, [](double x) { return 1 / x; }}, {"rsqrt", rsqrt, [](double x) { return 1 / std::sqrt(x); }},
};

using Binary = Tensor (*)(const Tensor&, const Tensor&);
struct BinaryCase {
  const char* name;
  Binary op;
  double (*ref)(double, double);
};
Tensor add2(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor sub2(const Tensor& a, const Tensor& b) { return sub(a, b); }
const BinaryCase kBinary[] = {
    {"add", add2, [](double a, double b) { return a + b; }}, {"sub", sub2, [](double a, double b) { return a - b; }},
    {"mul", mul, [](double a, double b) { return a * b; }}, {"div", div, [](double a, double b) { return a / b; }},
    {"maximum", maximum, [](double a, double b) { return std::max(a, b); }},
    {"minimum", minimum, [](double a, double b) { return std::min(a, b); }},
};

// A second operand: often broadcast-compatible with `a`, sometimes the same tensor (aliased).
Tensor partner(const Tensor& a) {
  if (chance(0.15)) return a;
  if (chance(0.6)) {
    Shape s = a.shape();
    for (int64_t& d : s) d = chance(0.3) ? 1 : d;
    while (!s.empty() && chance(0.2)) s.erase(s.begin());
    return fuzz_tensor(s, fuzz_dtype());
  }
  return fuzz_tensor();
}

void fuzz_unary() {
  const UnaryCase& c = kUnary[pick(0, std::size(kUnary) - 1)];
  call(c.name, [&] {
    Tensor x = fuzz_tensor();
    Tensor y = c.op(x);
    return Outcome{y, [&c, x] {
                     std::vector<double> v = x.to_vector<double>();
                     for (double& e : v) e = c.ref(e);
                     return v;
                   }};
  });
}

void fuzz_binary() {
  const BinaryCase& c = kBinary[pick(0, std::size(kBinary) - 1)];
  call(c.name, [&] {
    Tensor a = fuzz_tensor(), b = partner(a);
    Tensor y = c.op(a, b);
    Outcome out{y, {}};
    if (is_floating(a.dtype()) && is_floating(b.dtype()))
      out.reference = [&c, a, b, y] {
        std::vector<double> va = broadcast_values(a, y.shape()), vb = broadcast_values(b, y.shape());
        for (size_t i = 0; i < va.size(); ++i) va[i] = c.ref(va[i], vb[i]);
        return va;
      };
    return out;
  });
}

void fuzz_reduction() {
  Tensor x = fuzz_tensor();
  const int64_t d = fuzz_dim(x.dim());
  const bool keep = chance(0.5);
  switch (pick(0, 8)) {
    case 0: return call("sum", [&] {
      return Outcome{sum(x), [x] { double s = 0; for (double v : x.to_vector<double>()) s += v; return std::vector<double>{s}; }};
    });
    case 1: return call("mean", [&] { return Outcome{mean(x, {d}, keep), {}}; });
    case 2: return call("max", [&] { return Outcome{max(x, d, keep).first, {}}; });
    case 3: return call("logsumexp", [&] { return Outcome{logsumexp(x, {d}, keep), {}}; });
    case 4: return call("var", [&] { return Outcome{var(x, {d}, chance(0.5), keep), {}}; });
    case 5: return call("norm", [&] { return Outcome{norm(x, chance(0.5) ? 2.0 : 1.0, {d}, keep), {}}; });
    case 6: return call("prod", [&] { return Outcome{prod(x, d, keep), {}}; });
    case 7: return call("softmax", [&] { return Outcome{softmax(x, d), {}}; });
    default: return call("argmax", [&] { return Outcome{argmax(x, d, keep), {}}; });
  }
}

void fuzz_shape_op() {
  Tensor x = fuzz_tensor();
  const int64_t d = fuzz_dim(x.dim());
  auto same_values = [x] { return x.to_vector<double>(); };
  switch (pick(0, 11)) {
    case 0: return call("reshape", [&] {
      Shape s = chance(0.5) ? Shape{-1} : fuzz_shape();
      return Outcome{reshape(x, s), same_values};
    });
    case 1: return call("view", [&] { return Outcome{view(x, chance(0.5) ? Shape{x.numel()} : fuzz_shape()), same_values}; });
    case 2: return call("expand", [&] {
      Shape s = x.shape();
      for (int64_t& e : s) e = e == 1 || chance(0.2) ? fuzz_size() : e;
      if (chance(0.3)) s.insert(s.begin(), fuzz_size());
      return Outcome{expand(x, s), {}};
    });
    case 3: return call("narrow", [&] { return Outcome{narrow(x, d, fuzz_size(), fuzz_size()), {}}; });
    case 4: return call("select", [&] { return Outcome{select(x, d, pick(-5, 5)), {}}; });
    case 5: return call("transpose", [&] { return Outcome{transpose(x, d, fuzz_dim(x.dim())), {}}; });
    case 6: return call("as_strided", [&] {
      Shape size = fuzz_shape(2), stride(size.size());
      for (int64_t& s : stride) s = chance(0.8) ? pick(0, 3) : fuzz_size();
      return Outcome{as_strided(x, size, stride, chance(0.8) ? pick(0, 3) : fuzz_size()), {}};
    });
    case 7: return call("cat", [&] {
      Tensor y = partner(x);
      return Outcome{cat({x, y, x}, d), {}};
    });
    case 8: return call("stack", [&] { return Outcome{stack({x, partner(x)}, d), {}}; });
    case 9: return call("permute", [&] {
      Shape dims(static_cast<size_t>(x.dim()));
      for (int64_t& e : dims) e = fuzz_dim(x.dim());
      return Outcome{permute(x, dims), {}};
    });
    case 10: return call("index_select", [&] {
      Tensor idx = from_vector<int64_t>({pick(-1, 3), pick(0, 2)}, {2});
      return Outcome{index_select(x, d, idx), {}};
    });
    default: return call("squeeze|unsqueeze|flatten", [&] {
      return Outcome{flatten(unsqueeze(squeeze(x, d), fuzz_dim(x.dim())), 0, -1), {}};
    });
  }
}

void fuzz_factory() {
  Shape s = fuzz_shape();
  switch (pick(0, 5)) {
    case 0: return call("zeros", [&] { return Outcome{zeros(s, fuzz_dtype()), {}}; });
    case 1: return call("ones", [&] { return Outcome{ones(s), {}}; });
    case 2: return call("full", [&] { return Outcome{full(s, 2.5, kFloat64), {}}; });
    case 3: return call("randn", [&] { return Outcome{randn(s, fuzz_dtype()), {}}; });
    case 4: return call("arange", [&] {
      const double step = chance(0.5) ? 1.0 : 1e-300;
      return Outcome{arange(0.0, static_cast<double>(fuzz_size()), step), {}};
    });
    default: return call("Embedding|Linear", [&] {
      if (chance(0.5)) return Outcome{nn::Embedding(fuzz_size(), fuzz_size()).weight, {}};
      return Outcome{nn::Linear(fuzz_size(), fuzz_size()).weight, {}};
    });
  }
}

void fuzz_linalg() {
  const int64_t m = pick(0, 3), k = pick(0, 3), n = pick(0, 3);
  DType dt = chance(0.8) ? kFloat32 : fuzz_dtype();
  Tensor a = fuzz_tensor({m, k}, dt), b = fuzz_tensor({chance(0.9) ? k : k + 1, n}, chance(0.9) ? dt : fuzz_dtype());
  // A huge expanded operand: its product is refused by size (2^47 rows of >= 4 bytes) before any work.
  if (m >= 1 && chance(0.2)) a = expand(a.narrow(0, 0, 1), {chance(0.5) ? int64_t(1) << 47 : m, k});
  call("matmul|mm", [&] {
    Tensor y = matmul(a, b);
    if (a.numel() > (1 << 16)) return Outcome{y, {}};  // the huge operand: no reference loop over it
    return Outcome{y, [a, b, m, n, k] {
                     std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>(), out(m * n, 0.0);
                     for (int64_t i = 0; i < m; ++i)
                       for (int64_t j = 0; j < n; ++j)
                         for (int64_t p = 0; p < k; ++p) out[i * n + j] += va[i * k + p] * vb[p * n + j];
                     return out;
                   }};
  });
}

void fuzz_nn() {
  Tensor x = fuzz_tensor();
  switch (pick(0, 3)) {
    case 0: return call("cross_entropy", [&] {
      Tensor target = from_vector<int64_t>({pick(-1, 4)}, {1});
      return Outcome{cross_entropy(x, target), {}};
    });
    case 1: return call("layer_norm", [&] { return Outcome{layer_norm(x, small_shape(2)), {}}; });
    case 2: return call("embedding", [&] {
      return Outcome{embedding(x, from_vector<int64_t>({pick(-1, 3), pick(0, 2)}, {2})), {}};
    });
    default: return call("dropout", [&] { return Outcome{dropout(x, chance(0.8) ? 0.5 : 1.5, true), {}}; });
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 1000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  rng.seed(seed);
  manual_seed(seed);
  void (*const kinds[])() = {fuzz_unary, fuzz_binary, fuzz_reduction, fuzz_shape_op, fuzz_factory, fuzz_linalg, fuzz_nn};
  verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  for (long i = 0; i < calls; ++i) {
    call_index = i;
    try {
      kinds[pick(0, std::size(kinds) - 1)]();
    } catch (const Failure& f) {
      std::fprintf(stderr, "fuzz_ops: call %ld of seed %llu: %s\n", i, static_cast<unsigned long long>(seed),
                   f.what.c_str());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_ops: call %ld of seed %llu threw a non-weft exception: %s\n", i,
                   static_cast<unsigned long long>(seed), e.what());
      return 1;
    }
  }
  std::printf("fuzz_ops: %ld calls of seed %llu: %ld results (%ld checked against a reference, %ld backward "
              "passes), %ld weft::Errors naming their op\n", calls, static_cast<unsigned long long>(seed), results,
              referenced, backwards, errors);
  return 0;
}
