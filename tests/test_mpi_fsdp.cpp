// fully_shard (FSDP) against single-process training from the same seed, under mpirun -np 2 and -np 4:
// flat and nested units, reshard_after_forward on and off, gradient accumulation, FSDP with tensor
// parallelism on a 2-D mesh, the collectives it issues, peak parameter memory, and misuse errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "distributed/comm_debug.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "framework/allocator.h"
#include "tests/tensor_test_util.h"
#include "tests/test_util.h"
#include "weft.h"

using namespace weft;
using namespace weft::dist;
namespace par = weft::nn::parallel;

namespace {

using test::seeded_randn;
using test::max_abs_diff;

using Model = std::shared_ptr<nn::UnaryModule>;

struct Problem {
  std::function<Model()> make_model;
  std::function<std::pair<Tensor, Tensor>(int step)> batch;  // global (input, target), the same on every rank
  std::function<Tensor(const Tensor& out, const Tensor& target, int64_t global_count)> loss;
  // Makes the units: fully_shard on the inner modules it chooses, then on the root.
  std::function<std::shared_ptr<par::FullyShardedModule>(Model)> shard;
};

// A block Linear(5, 7) -> tanh -> Linear(7, 5): 7 splits unevenly over 2 and 4 ranks. `probe`, if
// given, runs on the hidden activation in forward (its result replaces it).
std::shared_ptr<nn::Sequential> stack_block(int64_t d, int64_t h,
                                            std::function<Tensor(const Tensor&)> probe = nullptr) {
  auto act = [probe](const Tensor& x) { return tanh(probe ? probe(x) : x); };
  return std::make_shared<nn::Sequential>(std::initializer_list<Model>{std::make_shared<nn::Linear>(d, h),
                                                                       std::make_shared<nn::Functional>(act),
                                                                       std::make_shared<nn::Linear>(h, d)});
}

// Three blocks and a LayerNorm in a Sequential: the blocks are the nested units, the LayerNorm the root's
// own.
std::shared_ptr<nn::Sequential> stack_model(std::function<Tensor(const Tensor&)> probe = nullptr) {
  manual_seed(21);
  auto m = std::make_shared<nn::Sequential>();
  for (int i = 0; i < 3; ++i) m->push_back(stack_block(5, 7, i == 0 ? probe : nullptr));
  m->push_back(std::make_shared<nn::LayerNorm>(5));
  m->to(kFloat64);
  return m;
}

std::pair<Tensor, Tensor> stack_batch(int step) {
  int64_t n = 3 * world_size() + 1;  // uneven over dp
  return {seeded_randn({n, 5}, 40 + step), seeded_randn({n, 5}, 50 + step)};
}

Tensor mse_share(const Tensor& out, const Tensor& target, int64_t count) {
  return par::global_mean(mse_loss(out, target, "sum"), count);
}

// Every block of a Sequential root (all but its last module) a unit, then the root.
std::function<std::shared_ptr<par::FullyShardedModule>(Model)> nested(DeviceMesh mesh,
                                                                      par::FullyShardOptions options) {
  return [mesh, options](Model m) {
    auto seq = std::dynamic_pointer_cast<nn::Sequential>(m);
    for (size_t i = 0; i + 1 < seq->size(); ++i) par::fully_shard((*seq)[i], mesh, options);
    return par::fully_shard(m, mesh, options);
  };
}

Problem stack_problem(std::function<std::shared_ptr<par::FullyShardedModule>(Model)> shard) {
  return Problem{[] { return stack_model(); }, stack_batch, mse_share, std::move(shard)};
}

// The GPT with 3 heads and tied embedding/head, vocab 11 and 6 positions (uneven over 2 and 4).
Model gpt_model() {
  manual_seed(12);
  auto m = std::make_shared<nn::GPT>(
      nn::GPTConfig{.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 3, .n_embd = 12});
  m->to(kFloat64);
  return m;
}

std::pair<Tensor, Tensor> gpt_batch(int step) {
  Generator gen(60 + step);
  Tensor tokens = randint(0, 11, {2 * world_size() + 1, 7}, dtype(kInt64), &gen);
  return {tokens.narrow(1, 0, 6).contiguous(), tokens.narrow(1, 1, 6).contiguous()};
}

Tensor ce_share(const Tensor& logits, const Tensor& target, int64_t count) {
  int64_t v = logits.size(-1);
  return par::global_mean(cross_entropy(logits.reshape({-1, v}), target.reshape({-1}), "sum"), count);
}

// Per transformer block, then the root (a GPT, or a Parallelized around one).
std::function<std::shared_ptr<par::FullyShardedModule>(Model)> gpt_nested(DeviceMesh mesh,
                                                                          par::FullyShardOptions options) {
  return [mesh, options](Model m) {
    auto tp = std::dynamic_pointer_cast<par::Parallelized>(m);
    auto gpt = std::dynamic_pointer_cast<nn::GPT>(tp ? tp->module : m);
    for (size_t i = 0; i < gpt->blocks->size(); ++i) par::fully_shard((*gpt->blocks)[i], mesh, options);
    return par::fully_shard(m, mesh, options);
  };
}

// Per sub-layer (attention, MLP), per block, then the root: the blocks call their sub-layers as
// module(x), as PyTorch's do, so the sub-layers' forward wrappers run.
std::function<std::shared_ptr<par::FullyShardedModule>(Model)> gpt_per_layer(DeviceMesh mesh,
                                                                             par::FullyShardOptions options) {
  return [mesh, options](Model m) {
    auto gpt = std::dynamic_pointer_cast<nn::GPT>(m);
    for (size_t i = 0; i < gpt->blocks->size(); ++i) {
      auto block = std::dynamic_pointer_cast<nn::TransformerBlock>((*gpt->blocks)[i]);
      par::fully_shard(block->attn, mesh, options);
      par::fully_shard(block->mlp, mesh, options);
      par::fully_shard(block, mesh, options);
    }
    return par::fully_shard(m, mesh, options);
  };
}

Problem gpt_problem(std::function<std::shared_ptr<par::FullyShardedModule>(Model)> shard) {
  return Problem{gpt_model, gpt_batch, ce_share, std::move(shard)};
}

// Trains the sharded model and a single-process copy side by side with AdamW; losses, gradient
// norms and the final parameters must agree to float64 rounding. `micro` batches per step
// accumulate their gradients.
void check_training(const Problem& problem, int steps = 3, int micro = 1) {
  auto ref = problem.make_model();
  auto model = problem.shard(problem.make_model());
  for (const Tensor& p : model->parameters()) REQUIRE(p.is_dtensor());
  optim::AdamW ref_opt(ref->parameters(), {.lr = 1e-2, .weight_decay = 0.1});
  optim::AdamW opt(model->parameters(), {.lr = 1e-2, .weight_decay = 0.1});
  for (int step = 0; step < steps; ++step) {
    ref_opt.zero_grad();
    opt.zero_grad();
    double ref_total = 0.0, total = 0.0;
    for (int m = 0; m < micro; ++m) {
      auto [x, y] = problem.batch(step * micro + m);
      int64_t count = y.numel() * micro;
      Tensor ref_loss = problem.loss(ref->forward(x), y, count);
      ref_loss.backward();
      ref_total += ref_loss.item<double>();
      DTensor out(model->forward(x));
      Tensor loss = problem.loss(out.to_local(), model->local_batch(y), count);
      loss.backward();
      total += model->reduce_over_dp(loss.item<double>());
    }
    double ref_norm = optim::clip_grad_norm_(ref->parameters(), 1e9);
    double norm = optim::clip_grad_norm_(model->parameters(), 1e9);
    ref_opt.step();
    opt.step();
    REQUIRE(total == Approx(ref_total).epsilon(1e-12));
    REQUIRE(norm == Approx(ref_norm).epsilon(1e-10));
  }
  nn::StateDict full = model->full_state_dict(), expected = ref->state_dict();
  REQUIRE(full.keys() == expected.keys());
  for (const auto& [name, t] : expected) {
    INFO(name);
    REQUIRE(max_abs_diff(full[name], t) < 1e-10);
  }
}

}  // namespace

TEST_CASE("fully_shard: parameters become uneven Shard(0) DTensors; full_state_dict gives the model back") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  int64_t k = world_size();
  auto ref = stack_model();
  auto model = par::fully_shard(stack_model(), mesh);
  std::vector<std::pair<std::string, Tensor>> named = model->module->named_parameters();
  REQUIRE(named.size() == ref->named_parameters().size());
  for (const auto& [name, p] : named) {
    INFO(name);
    DTensor d(p);
    REQUIRE(d.placements() == Placements{Shard(0)});
    REQUIRE(d.requires_grad());
    REQUIRE(d.spec().local.size(0) == chunk_size_and_offset(d.size(0), k, world_rank()).first);
  }
  DTensor fc1(model->module->named_parameters()[0].second);  // 7 rows over k ranks
  REQUIRE(fc1.shape() == Shape{7, 5});
  nn::StateDict full = model->full_state_dict(), expected = ref->state_dict();
  for (const auto& [name, t] : expected) REQUIRE(max_abs_diff(full[name], t) == 0.0);
}

TEST_CASE("fully_shard of the whole model matches single-process AdamW training") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  auto flat = [mesh](Model m) { return par::fully_shard(m, mesh); };
  check_training(stack_problem(flat));
  check_training(gpt_problem(flat));
}

TEST_CASE("nested fully_shard (per block, then the root) matches single-process training") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  for (bool reshard : {true, false})
    for (bool prefetch : {true, false}) {
      INFO("reshard_after_forward " << reshard << ", prefetch " << prefetch);
      par::FullyShardOptions options{.reshard_after_forward = reshard, .prefetch = prefetch};
      check_training(stack_problem(nested(mesh, options)));
      check_training(gpt_problem(gpt_nested(mesh, options)));
    }
}

TEST_CASE("fully_shard per sub-layer, per block and the root matches single-process training") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  for (bool reshard : {true, false}) {
    INFO("reshard_after_forward " << reshard);
    check_training(gpt_problem(gpt_per_layer(mesh, {.reshard_after_forward = reshard})));
  }
}

TEST_CASE("fully_shard with gradient accumulation over micro-batches") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  for (bool reshard : {true, false}) {
    INFO("reshard_after_forward " << reshard);
    check_training(stack_problem(nested(mesh, {.reshard_after_forward = reshard})), 2, 3);
    check_training(gpt_problem(gpt_nested(mesh, {.reshard_after_forward = reshard})), 2, 2);
  }
}

TEST_CASE("fully_shard with tensor parallelism on a 2-D (dp, tp) mesh matches single-process training") {
  int64_t k = world_size();
  std::vector<std::vector<int64_t>> shapes =
      k == 4 ? std::vector<std::vector<int64_t>>{{2, 2}} : std::vector<std::vector<int64_t>>{{k, 1}, {1, k}};
  for (const auto& shape : shapes) {
    DeviceMesh mesh = init_device_mesh(shape, {"dp", "tp"});
    INFO(mesh.to_string());
    for (bool reshard : {true, false}) {
      INFO("reshard_after_forward " << reshard);
      auto shard = [mesh, reshard](Model m) {
        return gpt_nested(mesh, {.reshard_after_forward = reshard})(par::parallelize(m, mesh, "dp", "tp"));
      };
      check_training(gpt_problem(shard));
      check_training(gpt_problem(shard), 2, 2);
    }
    // The layout: qkv is (q|k|v, heads, head_dim, in) with heads Shard(1) on tp, so FSDP takes dim 0;
    // fc1 is Shard(0) on tp, so FSDP takes dim 1; fc1's bias (1-D, Shard(0) on tp) stays Replicate on dp.
    auto tp = par::parallelize(gpt_model(), mesh, "dp", "tp");
    auto gpt = std::dynamic_pointer_cast<nn::GPT>(tp->module);
    auto model = gpt_nested(mesh, {})(tp);
    auto block = std::dynamic_pointer_cast<nn::TransformerBlock>((*gpt->blocks)[0]);
    REQUIRE(DTensor(block->attn->qkv->weight).placements() == Placements{Shard(0), Shard(1)});
    REQUIRE(DTensor(block->mlp->fc1->weight).placements() == Placements{Shard(1), Shard(0)});
    REQUIRE(DTensor(block->mlp->fc1->bias).placements() == Placements{Replicate(), Shard(0)});
    REQUIRE(DTensor(block->mlp->fc2->weight).placements() == Placements{Shard(0), Shard(1)});
    REQUIRE(DTensor(gpt->wte->weight).placements() == Placements{Shard(0), Replicate()});
  }
}

namespace {

// The stack model's parameters: weight and bias of two Linears per block, and the LayerNorm's two.
int64_t stack_param_count() { return 3 * 4 + 2; }

}  // namespace

TEST_CASE("fully_shard: collectives per step, and gradients reduce-scattered during backward") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  int64_t k = world_size();
  const CommDebugMode* active = nullptr;
  int64_t seen = -1;  // reduce_scatters issued when block 0's hidden gradient arrived
  auto probe = [&](const Tensor& h) {
    if (h.requires_grad())
      h.register_hook([&](const Tensor&) {
        seen = active ? active->count(CollectiveKind::ReduceScatter) : -1;
        return Tensor();
      });
    return h;
  };
  for (bool reshard : {true, false}) {
    INFO("reshard_after_forward " << reshard);
    auto model = nested(mesh, {.reshard_after_forward = reshard})(stack_model(probe));
    auto [x, y] = stack_batch(0);
    Tensor loss;
    {
      CommDebugMode comm;
      DTensor out(model->forward(x));
      // One all_gather per parameter: 4 per block, 2 for the root's LayerNorm.
      REQUIRE(comm.count(CollectiveKind::AllGather) == (k > 1 ? stack_param_count() : 0));
      REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllGather));
      loss = mse_share(out.to_local(), model->local_batch(y), y.numel());
    }
    CommDebugMode comm;
    active = &comm;
    loss.backward();
    active = nullptr;
    // Resharded blocks are gathered again (not the root); every gradient is reduce-scattered once.
    REQUIRE(comm.count(CollectiveKind::AllGather) == (k > 1 && reshard ? 12 : 0));
    REQUIRE(comm.count(CollectiveKind::ReduceScatter) == (k > 1 ? stack_param_count() : 0));
    REQUIRE(comm.total_count() ==
            comm.count(CollectiveKind::AllGather) + comm.count(CollectiveKind::ReduceScatter));
    // When block 0's backward is under way, the gradients of blocks 2 and 1 are on their way: a
    // unit's gather nodes come before its compute in the tape, so the engine runs them right after
    // the unit's backward (the root's, first in the tape, run last).
    if (k > 1) REQUIRE(seen == 4 + 4);
    for (const Tensor& p : model->parameters())
      REQUIRE(DTensor(p.grad()).placements() == Placements{Shard(0)});
  }
}

TEST_CASE("fully_shard: peak parameter memory is about 1/N of the model plus one unsharded block") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  const int64_t k = world_size(), width = 192, blocks = 12;
  // What the caching allocator hands out for one gathered block (sizes round up to a size class).
  const double block_bytes =
      double(allocator::size_class(size_t(width * width) * 8) + allocator::size_class(size_t(width) * 8));
  uint64_t forward_peak = 0, backward_peak = 0;
  auto in_use = [] { return allocator::stats().bytes_in_use; };
  auto make = [&] {
    manual_seed(5);
    auto m = std::make_shared<nn::Sequential>();
    for (int64_t i = 0; i < blocks; ++i) {
      auto probe = [&](const Tensor& h) {
        forward_peak = std::max(forward_peak, in_use());
        Tensor out = mul(h, 1.0);  // backward: h's gradient arrives after this block was gathered again
        if (h.requires_grad())
          h.register_hook([&](const Tensor&) {
            backward_peak = std::max(backward_peak, in_use());
            return Tensor();
          });
        return out;
      };
      m->push_back(std::make_shared<nn::Sequential>(std::initializer_list<Model>{
          std::make_shared<nn::Linear>(width, width), std::make_shared<nn::Functional>(probe)}));
    }
    m->push_back(std::make_shared<nn::LayerNorm>(width));  // the root's own parameters (kept gathered)
    m->to(kFloat64);
    return m;
  };
  Tensor x = seeded_randn({2 * k, width}, 3);
  struct Peaks {
    double before, forward, backward;
  };
  auto measure = [&](par::FullyShardOptions options) {
    auto model = nested(mesh, options)(make());
    model->forward(x);  // a first step records the order the units run in (prefetch follows it)
    forward_peak = backward_peak = 0;
    double before = double(in_use());
    DTensor out(model->forward(x));
    out.to_local().sum().backward();
    for (const Tensor& p : model->parameters()) funcol::wait_tensor(DTensor(p.grad()).spec().local);
    return Peaks{before, double(forward_peak) - before, double(backward_peak) - before};
  };
  const double model_bytes = double(blocks) * block_bytes, slack = 64.0 * 1024;
  Peaks sharded = measure({.reshard_after_forward = true, .prefetch = false});
  Peaks prefetched = measure({.reshard_after_forward = true, .prefetch = true});
  Peaks kept = measure({.reshard_after_forward = false, .prefetch = true});
  INFO("block " << block_bytes << " model " << model_bytes << "; forward/backward above the shards: sharded "
                << sharded.forward << "/" << sharded.backward << ", prefetched " << prefetched.forward << "/"
                << prefetched.backward << ", kept " << kept.forward << "/" << kept.backward);
  if (k == 1) return;
  // Forward: one gathered block (two with the next one prefetched) on top of the shards.
  REQUIRE(sharded.forward <= block_bytes + slack);
  REQUIRE(prefetched.forward <= 2 * block_bytes + slack);
  // Backward adds the shards' gradients (1/N) and about two full-size gradients in flight.
  REQUIRE(sharded.backward <= 3 * block_bytes + model_bytes / double(k) + slack);
  REQUIRE(prefetched.backward <= 4 * block_bytes + model_bytes / double(k) + slack);
  // Without resharding the graph keeps every gathered block until its backward.
  REQUIRE(kept.backward >= double(blocks - 1) * block_bytes);
}

TEST_CASE("fully_shard: misuse raises weft::Error naming the problem") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  WEFT_REQUIRE_ERROR(par::fully_shard(stack_model(), mesh, {.mesh_dim = "tp"}),
                     Catch::Contains("no dim of that name"));
  WEFT_REQUIRE_ERROR(par::fully_shard(std::make_shared<nn::GELU>(), mesh), Catch::Contains("no parameters"));
  auto block = stack_block(5, 7);
  auto sharded = par::fully_shard(block, mesh);
  WEFT_REQUIRE_ERROR(par::fully_shard(block, mesh), Catch::Contains("already fully sharded"));
  WEFT_REQUIRE_ERROR(par::fully_shard(sharded, mesh), Catch::Contains("already a FullyShardedModule"));
  if (world_size() == 4) {
    DeviceMesh mesh2 = init_device_mesh({2, 2}, {"dp", "tp"});
    WEFT_REQUIRE_ERROR(par::fully_shard(stack_model(), init_device_mesh({2, 2})),
                       Catch::Contains("name the dim"));
    auto tp = par::parallelize(gpt_model(), mesh2, "dp", "tp");
    WEFT_REQUIRE_ERROR(par::fully_shard(tp, mesh2, {.mesh_dim = "tp"}),
                       Catch::Contains("tensor-parallel dim"));
  }
}
