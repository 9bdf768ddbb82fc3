// nn::checkpoint (nn/activation_checkpoint.h): gradients equal to the run that keeps its activations
// (dropout included: the recomputation replays the generator), gradcheck in float64, fewer bytes
// held between forward and backward, and its errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "framework/allocator.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"

using namespace weft;

namespace {

// A pre-norm MLP block with dropout: what a transformer would checkpoint.
struct Block {
  std::shared_ptr<nn::LayerNorm> ln = std::make_shared<nn::LayerNorm>(Shape{16});
  std::shared_ptr<nn::MLP> mlp = std::make_shared<nn::MLP>(16, 64, 16);
  Tensor operator()(const Tensor& x) const { return x + dropout(mlp->forward(ln->forward(x)), 0.3, true); }
  std::vector<Tensor> parameters() const {
    std::vector<Tensor> p = ln->parameters(), q = mlp->parameters();
    p.insert(p.end(), q.begin(), q.end());
    return p;
  }
};

std::vector<double> values(const Tensor& t) {
  Tensor d = t.to(kFloat64).contiguous();
  const double* p = d.data_ptr<double>();
  return {p, p + d.numel()};
}

// x.grad and every parameter's grad after loss.backward(), with or without checkpointing each block.
std::vector<std::vector<double>> grads_of(bool checkpointed) {
  manual_seed(21);
  std::vector<Block> blocks(3);
  Tensor x = randn({4, 8, 16}).requires_grad_();
  manual_seed(77);  // the dropout masks' draws start here in both runs
  Tensor h = x;
  for (const Block& b : blocks) h = checkpointed ? nn::checkpoint([&b](const Tensor& in) { return b(in); }, h) : b(h);
  (h * h).sum().backward();
  std::vector<std::vector<double>> out = {values(x.grad())};
  for (const Block& b : blocks)
    for (const Tensor& p : b.parameters()) out.push_back(values(p.grad()));
  out.push_back(values(randn({4})));  // the generator after backward: the caller's draws go on undisturbed
  return out;
}

}  // namespace

TEST_CASE("checkpoint gives the gradients of the run that keeps its activations", "[checkpoint]") {
  const auto plain = grads_of(false), ckpt = grads_of(true);
  REQUIRE(plain.size() == ckpt.size());
  for (size_t k = 0; k < plain.size(); ++k) {
    INFO("tensor " << k);
    REQUIRE(plain[k] == ckpt[k]);  // the same ops on the same values and masks: bit for bit
  }
}

TEST_CASE("checkpoint passes gradcheck in float64", "[checkpoint]") {
  manual_seed(3);
  Tensor w = randn({5, 5}, dtype(kFloat64)).requires_grad_();
  Tensor a = randn({3, 5}, dtype(kFloat64)).requires_grad_(), b = randn({3, 5}, dtype(kFloat64)).requires_grad_();
  // w passed as an input: autograd::grad only sees gradients that flow through checkpoint's inputs
  // (a tensor captured inside fn gets its gradient accumulated into .grad, as the first case checks).
  auto fn = [](const std::vector<Tensor>& in) {
    return nn::checkpoint([](const Tensor& x, const Tensor& y, const Tensor& m) { return tanh(matmul(x * y, m)) + x; },
                          in[0], in[1], in[2]);
  };
  REQUIRE(autograd::gradcheck(fn, {a, b, w}));
}

TEST_CASE("checkpoint holds fewer bytes between forward and backward", "[checkpoint]") {
  auto held_after_forward = [](bool checkpointed) {
    manual_seed(5);
    std::vector<Block> blocks(4);
    Tensor x = randn({64, 32, 16}).requires_grad_();
    allocator::empty_cache();
    const uint64_t before = allocator::stats().bytes_in_use;
    Tensor h = x;
    for (const Block& b : blocks) h = checkpointed ? nn::checkpoint([&b](const Tensor& in) { return b(in); }, h) : b(h);
    Tensor loss = h.sum();
    const uint64_t held = allocator::stats().bytes_in_use - before;
    loss.backward();
    return held;
  };
  const uint64_t plain = held_after_forward(false), ckpt = held_after_forward(true);
  INFO("bytes held after forward: plain " << plain << ", checkpointed " << ckpt);
  // Without checkpointing each block keeps at least its 4x-wide hidden activation (64*32*64 floats,
  // 512 KiB) and more; checkpointed, each keeps only its input and output (128 KiB each).
  const uint64_t hidden = 64 * 32 * 64 * 4;
  REQUIRE(plain >= 4 * hidden);
  REQUIRE(ckpt <= 4 * hidden / 2);
}

TEST_CASE("checkpoint without an input that requires grad records as usual", "[checkpoint]") {
  manual_seed(8);
  auto lin = std::make_shared<nn::Linear>(4, 3);
  Tensor x = randn({2, 4});  // no grad: parameters inside must still get theirs
  nn::checkpoint([&](const Tensor& in) { return lin->forward(in); }, x).sum().backward();
  REQUIRE(lin->weight.grad().defined());
  std::vector<double> g = values(lin->weight.grad()), xs = values(x);
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 4; ++i) REQUIRE(std::abs(g[o * 4 + i] - (xs[i] + xs[4 + i])) < 1e-6);
}

TEST_CASE("checkpoint errors name the op", "[checkpoint]") {
  REQUIRE_THROWS_WITH(nn::checkpoint(nn::CheckpointFn([](const std::vector<Tensor>& in) { return in.at(0); }), {}),
                      Catch::Contains("checkpoint") && Catch::Contains("at least one input"));
  REQUIRE_THROWS_WITH(nn::checkpoint(nn::CheckpointFn(), {ones({2})}), Catch::Contains("checkpoint"));
}
