// test_concurrency: what weft supports across threads, as PyTorch does (Note [Autograd and threads],
// Note [Generator threads]): concurrent backward passes over graphs sharing leaves, and the default
// generator drawn from by several threads. Run by the ThreadSanitizer job too (scripts/test-sanitize).
#include <algorithm>
#include <thread>

#include "test_util.h"
#include "weft.h"

using namespace weft;

namespace {
constexpr int kThreads = 4;

template <class F>
void run_threads(F&& body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(body, t);
  for (std::thread& th : threads) th.join();
}
}  // namespace

TEST_CASE("threads: concurrent backward passes sharing leaves accumulate every gradient") {
  constexpr int kSteps = 200;
  Tensor w = zeros({5}, kFloat64).requires_grad_();
  Tensor b = zeros({1}, kFloat64).requires_grad_();
  // Thread t builds and runs its own graphs over the shared leaves w and b:
  // loss = sum(w * c_t) + (t + 1) * sum(b * w), with c_t = [t, t + 1, ..., t + 4].
  run_threads([&](int t) {
    Tensor c = add(arange(5.0, kFloat64), static_cast<double>(t));
    for (int s = 0; s < kSteps; ++s) {
      Tensor loss = add(sum(mul(w, c)), mul(sum(mul(expand(b, {5}), w)), static_cast<double>(t + 1)));
      loss.backward();
    }
  });
  // w and b stay 0, so each step adds c_t to w.grad and (t + 1) * sum(w) = 0 to b.grad.
  std::vector<double> want(5);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < 5; ++i) want[i] += kSteps * static_cast<double>(t + i);
  CHECK(w.grad().to_vector<double>() == want);
  CHECK(b.grad().to_vector<double>() == std::vector<double>{0.0});
}

TEST_CASE("threads: concurrent forward and backward through a shared module's parameters") {
  manual_seed(3);
  nn::Linear layer(3, 2);
  Tensor x = randn({4, 3});
  // The reference: one thread's gradient, computed alone, times the number of passes.
  sum(layer.forward(x)).backward();
  const std::vector<float> one_w = layer.weight.grad().to_vector<float>();
  const std::vector<float> one_b = layer.bias.grad().to_vector<float>();
  layer.zero_grad();
  constexpr int kSteps = 50;
  run_threads([&](int) {
    for (int s = 0; s < kSteps; ++s) sum(layer.forward(x)).backward();
  });
  // Sums of equal float terms in different orders: compare with a relative bound.
  const std::vector<float> got_w = layer.weight.grad().to_vector<float>(), got_b = layer.bias.grad().to_vector<float>();
  for (size_t i = 0; i < one_w.size(); ++i) CHECK(got_w[i] == Approx(one_w[i] * kThreads * kSteps).epsilon(1e-4));
  for (size_t i = 0; i < one_b.size(); ++i) CHECK(got_b[i] == Approx(one_b[i] * kThreads * kSteps).epsilon(1e-4));
}

TEST_CASE("threads: the default generator hands out every value of its sequence exactly once") {
  constexpr int kDraws = 100, kBatch = 64;
  manual_seed(42);
  std::vector<std::vector<double>> drawn(kThreads);
  run_threads([&](int t) {
    for (int i = 0; i < kDraws; ++i) {
      std::vector<double> v = rand({kBatch}, kFloat64).to_vector<double>();
      drawn[t].insert(drawn[t].end(), v.begin(), v.end());
    }
  });
  std::vector<double> all;
  for (const auto& d : drawn) all.insert(all.end(), d.begin(), d.end());
  Generator reference(42);
  std::vector<double> want(all.size());
  for (double& v : want) v = reference.uniform();
  std::sort(all.begin(), all.end());
  std::sort(want.begin(), want.end());
  CHECK(all == want);
}

TEST_CASE("threads: manual_seed keeps one thread's draws reproducible") {
  auto draw = [] {
    manual_seed(7);
    Tensor a = randn({10}, kFloat64), b = rand({5}, kFloat64);
    return std::make_pair(a.to_vector<double>(), b.to_vector<double>());
  };
  std::pair<std::vector<double>, std::vector<double>> on_worker;
  std::thread worker([&] { on_worker = draw(); });
  worker.join();
  Generator g(7);
  std::vector<double> normals(10), uniforms(5);
  for (double& v : normals) v = g.normal();
  for (double& v : uniforms) v = g.uniform();
  CHECK(on_worker.first == normals);
  CHECK(on_worker.second == uniforms);
  CHECK(draw() == on_worker);
}
