// test_bf16_model.cpp: a GPT run in bfloat16 against the same GPT in float32. The forward must match to
// bfloat16 tolerance, and backward must reach every parameter with finite bfloat16 gradients.
#include <catch2/catch.hpp>

#include <cmath>

#include "weft.h"

using namespace weft;

namespace {

std::shared_ptr<nn::GPT> small_gpt() {
  manual_seed(5);
  return std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 48, .block_size = 16, .n_layer = 2, .n_head = 2,
                                                 .n_embd = 32});
}

double max_abs(const Tensor& t) { return max(abs(t.to(kFloat64))).item<double>(); }

}  // namespace

TEST_CASE("a bfloat16 GPT forward matches float32 to bfloat16 tolerance") {
  auto reference = small_gpt(), model = small_gpt();
  model->to(kBFloat16);
  for (const Tensor& p : model->parameters()) REQUIRE(p.dtype() == kBFloat16);
  Generator gen(9);
  Tensor tokens = randint(0, 48, {3, 16}, dtype(kInt64), &gen);
  Tensor expected = reference->forward(tokens);
  Tensor logits = model->forward(tokens);
  REQUIRE(logits.dtype() == kBFloat16);
  REQUIRE(logits.shape() == expected.shape());
  // bfloat16 keeps 8 significant bits (relative step 2^-8); two blocks of matmuls, norms and softmax
  // accumulate a few of those steps: well under 5% of the logits' scale, far above float32's error.
  const double scale = max_abs(expected);
  const double error = max_abs(sub(logits.to(kFloat32), expected));
  INFO("scale " << scale << ", error " << error);
  REQUIRE(error < 0.05 * scale);
  REQUIRE(error > 1e-6 * scale);  // it really ran in bfloat16

  Tensor loss = cross_entropy(reshape(logits, {-1, 48}), reshape(tokens, {-1}));
  REQUIRE(loss.dtype() == kBFloat16);
  Tensor expected_loss = cross_entropy(reshape(expected, {-1, 48}), reshape(tokens, {-1}));
  REQUIRE(loss.to(kFloat64).item<double>() == Approx(expected_loss.item<double>()).epsilon(0.02));
  loss.backward();
  for (const Tensor& p : model->parameters()) {
    REQUIRE(p.grad().defined());
    REQUIRE(p.grad().dtype() == kBFloat16);
    REQUIRE(std::isfinite(max_abs(p.grad())));
  }
}
