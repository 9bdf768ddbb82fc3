// Data-parallel batch norm (nn/parallel.h synchronizes every BatchNorm's statistics over the dp
// ranks, as PyTorch's SyncBatchNorm): outputs, gradients, running statistics and evaluation match a
// single-process model from the same seed, on uneven shards, under mpirun -np 2 and -np 4.
#include <catch2/catch.hpp>

#include <cmath>

#include "distributed/runtime.h"
#include "weft.h"

using namespace weft;
using namespace weft::dist;
namespace par = weft::nn::parallel;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  return max(abs(sub(a.to(kFloat64), b.to(kFloat64)))).item<double>();
}

std::shared_ptr<nn::Sequential> make_model() {
  manual_seed(7);
  auto m = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Conv2d>(2, 4, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(4, 1e-5, 0.3),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::AdaptiveAvgPool2d>(1), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::BatchNorm1d>(3)});
  m->to(kFloat64);
  return m;
}

}  // namespace

TEST_CASE("data-parallel batch norm normalises by the global batch, as single-process training") {
  auto ref = make_model(), inner = make_model();
  auto model = par::data_parallel(inner, DeviceMesh({static_cast<int64_t>(world_size())}));
  const int64_t n = world_size() * 3 + 1;  // uneven shards
  for (uint64_t step = 0; step < 2; ++step) {
    Generator gen(10 + step);
    Tensor x = randn({n, 2, 5, 5}, dtype(kFloat64), &gen);
    Tensor y_ref = ref->forward(x);
    div(sum(mul(y_ref, y_ref)), static_cast<double>(n)).backward();
    DTensor y(model->forward(x));
    Tensor local = y.to_local();
    par::global_mean(sum(mul(local, local)), n).backward();
    CHECK(max_abs_diff(y.full_tensor(), y_ref) < 1e-10);
  }
  auto params = inner->named_parameters();
  for (const auto& [name, p] : ref->named_parameters()) {
    INFO(name);
    Tensor g;
    for (const auto& [other, q] : params)
      if (other == name) g = DTensor(q.grad()).full_tensor();
    REQUIRE(g.defined());
    CHECK(max_abs_diff(g, p.grad()) < 1e-10);  // two backward passes accumulated
  }
  auto buffers = inner->named_buffers();
  for (const auto& [name, b] : ref->named_buffers()) {
    INFO(name);
    for (const auto& [other, c] : buffers)
      if (other == name) CHECK(max_abs_diff(c, b) < 1e-12);
  }
  ref->eval();
  model->eval();
  Generator gen(99);
  Tensor x = randn({n, 2, 5, 5}, dtype(kFloat64), &gen);
  NoGradGuard no_grad;
  CHECK(max_abs_diff(DTensor(model->forward(x)).full_tensor(), ref->forward(x)) < 1e-10);
}
