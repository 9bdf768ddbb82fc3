// Exits with graphs still held by a global, a function-local static and thread_locals (of the main
// thread and of a worker), so that they are freed during static and thread-local teardown, after
// the library's own thread-local state is gone. Passing means exit status 0 and, in the sanitizer
// build, no AddressSanitizer report (see Note [Iterative teardown] in autograd/node.cpp).
#include <cmath>
#include <cstdio>
#include <thread>

#include "weft.h"

using namespace weft;

namespace {
Tensor global_graph;
thread_local Tensor thread_graph;

// A chain long enough that freeing it recursively would overflow the stack.
Tensor chain(int64_t length) {
  Tensor x = ones({4}).requires_grad_();
  Tensor y = x;
  for (int64_t i = 0; i < length; ++i) y = mul(y, 1.0001);
  return sum(logsumexp(y, {0}, true));
}
}  // namespace

int main() {
  global_graph = chain(100000);
  thread_graph = chain(1000);
  static Tensor local_static = chain(1000);
  std::thread worker([] { thread_graph = chain(1000); });
  worker.join();
  // The graphs are live ones: d/dx of logsumexp(1.0001^n x) over 4 equal values is 1.0001^n / 4.
  Tensor x = ones({4}).requires_grad_();
  Tensor y = mul(x, 1.0001);
  for (int i = 1; i < 10; ++i) y = mul(y, 1.0001);
  sum(logsumexp(y, {0}, true)).backward();
  const double want = std::pow(1.0001, 10) / 4;
  for (float g : x.grad().to_vector<float>())
    if (std::fabs(g - want) > 1e-6) {
      std::printf("global_graph: gradient %.8f, expected %.8f\n", g, want);
      return 1;
    }
  return 0;
}
