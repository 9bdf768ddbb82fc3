// fully_shard's mixed precision (FullyShardOptions::mp_policy, Note [FSDP mixed precision]) under
// mpirun -np 2 and -np 4, against single-process runs of the model with its parameters cast to
// bfloat16 by hand: forward outputs, the gradients on the float32 shards (reduce_dtype float32 and
// bfloat16), a few optimizer steps, the gather's bytes, and the dtype errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "distributed/comm_debug.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "tests/test_util.h"
#include "weft.h"

using namespace weft;
using namespace weft::dist;
namespace par = weft::nn::parallel;

namespace {

using Model = std::shared_ptr<nn::UnaryModule>;

std::vector<double> values(const Tensor& t) { return t.contiguous().to(kFloat64).to_vector<double>(); }

// Linear(5, 7) -> tanh -> Linear(7, 5), twice, then a LayerNorm: 7 rows split unevenly over 2 and
// 4 ranks, and the LayerNorm's 5 too.
// `probe`, if given, runs in the first block's forward with its first Linear (to look at its slots).
Model make_model(std::function<void(const nn::Linear&)> probe = nullptr) {
  manual_seed(31);
  auto m = std::make_shared<nn::Sequential>();
  for (int i = 0; i < 2; ++i) {
    auto fc1 = std::make_shared<nn::Linear>(5, 7);
    auto act = [fc1, probe = i == 0 ? probe : nullptr](const Tensor& x) {
      if (probe) probe(*fc1);
      return tanh(x);
    };
    m->push_back(std::make_shared<nn::Sequential>(std::initializer_list<Model>{
        fc1, std::make_shared<nn::Functional>(act), std::make_shared<nn::Linear>(7, 5)}));
  }
  m->push_back(std::make_shared<nn::LayerNorm>(5));
  return m;  // float32
}

// Every block a unit, then the root.
std::shared_ptr<par::FullyShardedModule> shard(Model m, const DeviceMesh& mesh, par::FullyShardOptions options) {
  auto seq = std::dynamic_pointer_cast<nn::Sequential>(m);
  for (size_t i = 0; i + 1 < seq->size(); ++i) par::fully_shard((*seq)[i], mesh, options);
  return par::fully_shard(m, mesh, options);
}

par::FullyShardOptions bf16_policy(std::optional<DType> reduce = std::nullopt) {
  return {.mp_policy = {.param_dtype = kBFloat16, .reduce_dtype = reduce}};
}

std::pair<Tensor, Tensor> batch(int step) {
  Generator gen(70 + step);
  int64_t n = 3 * world_size() + 1;  // uneven over dp
  return {randn({n, 5}, {}, &gen), randn({n, 5}, {}, &gen)};
}

Tensor loss_share(const Tensor& out, const Tensor& target, int64_t count) {
  return par::global_mean(mse_loss(out.to(kFloat32), target, "sum"), count);
}

// The single-process model computed another way: the float32 model with its parameters cast to
// bfloat16 by hand, run unsharded.
Model bf16_copy(const Model& master) {
  Model m = make_model();
  NoGradGuard no_grad;
  auto dst = m->parameters(), src = master->parameters();
  for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i].is_dtensor() ? DTensor(src[i]).full_tensor() : src[i]);
  m->to(kBFloat16);
  return m;
}

// A row range of t.
Tensor rows_of(const Tensor& t, int rank) {
  auto [size, offset] = chunk_size_and_offset(t.size(0), world_size(), rank);
  return t.narrow(0, offset, size);
}

}  // namespace

TEST_CASE("fully_shard bf16: forward equals the unsharded model with bf16-rounded parameters") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  Model master = make_model();
  Model ref = bf16_copy(master);
  auto model = shard(make_model(), mesh, bf16_policy());
  for (const Tensor& p : model->parameters()) REQUIRE(DTensor(p).spec().local.dtype() == kFloat32);
  auto [x, y] = batch(0);
  Tensor expected = ref->forward(x.to(kBFloat16));
  DTensor out(model->forward(x));
  REQUIRE(out.dtype() == kBFloat16);
  // The same bf16 parameters and rows through row-wise ops: the same bits on this rank's rows.
  REQUIRE(values(out.to_local()) == values(rows_of(expected, world_rank())));

  SECTION("output_dtype casts the output; cast_forward_inputs off leaves the input as given") {
    // On the root only (FSDP2 applies it per fully_shard call: on the blocks, the LayerNorm would
    // get a float32 input and compute in float32).
    Model m = make_model();
    auto seq = std::dynamic_pointer_cast<nn::Sequential>(m);
    for (size_t i = 0; i + 1 < seq->size(); ++i) par::fully_shard((*seq)[i], mesh, bf16_policy());
    auto f32_out = par::fully_shard(m, mesh, {.mp_policy = {.param_dtype = kBFloat16, .output_dtype = kFloat32}});
    DTensor o(f32_out->forward(x));
    REQUIRE(o.dtype() == kFloat32);
    REQUIRE(values(o.to_local()) == values(rows_of(expected, world_rank())));
    auto no_cast = shard(make_model(), mesh,
                         {.mp_policy = {.param_dtype = kBFloat16, .cast_forward_inputs = false}});
    // linear refuses float32 input with bf16 weights (as torch's does); a bf16 input is the user's
    // to give then, and gives the same result.
    WEFT_REQUIRE_ERROR(no_cast->forward(x), Catch::Contains("linear") && Catch::Contains("same dtype"));
    REQUIRE(values(DTensor(no_cast->forward(x.to(kBFloat16))).to_local()) == values(rows_of(expected, world_rank())));
  }
}

TEST_CASE("fully_shard bf16: gradients on the float32 shards are the per-rank bf16 gradients summed") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  const bool f32_reduce = GENERATE(true, false);
  INFO("reduce_dtype " << (f32_reduce ? "float32" : "bfloat16 (the default: param_dtype)"));
  Model master = make_model();
  auto model = shard(make_model(), mesh, bf16_policy(f32_reduce ? std::optional(kFloat32) : std::nullopt));
  auto [x, y] = batch(1);
  const int64_t count = y.numel();
  DTensor out(model->forward(x));
  loss_share(out.to_local(), model->local_batch(y), count).backward();

  // Each rank's bf16 gradient, computed single-process on that rank's rows, then summed in float32
  // in rank order and rounded once to the reduce dtype (Note [16-bit floats in collectives]).
  std::vector<Tensor> sums;
  for (int r = 0; r < world_size(); ++r) {
    Model ref = bf16_copy(master);
    loss_share(ref->forward(rows_of(x, r).to(kBFloat16)), rows_of(y, r), count).backward();
    auto ps = ref->parameters();
    for (size_t i = 0; i < ps.size(); ++i) {
      REQUIRE(ps[i].grad().dtype() == kBFloat16);
      Tensor g = ps[i].grad().to(kFloat32);
      if (r == 0) sums.push_back(g);
      else sums[i] = sums[i] + g;
    }
  }
  auto ps = model->parameters();
  REQUIRE(ps.size() == sums.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO("parameter " << i);
    DTensor g(ps[i].grad());
    REQUIRE(g.spec().local.dtype() == kFloat32);
    Tensor expected = f32_reduce ? sums[i] : sums[i].to(kBFloat16).to(kFloat32);
    std::vector<double> got = values(g.full_tensor()), want = values(expected);
    if (world_size() == 2) {
      REQUIRE(got == want);  // a + b is a + b in either order: exact
    } else {
      // Four addends may be summed in another order: one float32 rounding, or one bf16 step.
      const double rel = f32_reduce ? 1e-6 : 1.0 / 128;
      for (size_t j = 0; j < got.size(); ++j) REQUIRE(std::abs(got[j] - want[j]) <= rel * std::abs(want[j]) + 1e-7);
    }
  }
}

TEST_CASE("fully_shard bf16: SGD steps match single-process bf16 training with float32 master weights") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  const bool f32_reduce = GENERATE(true, false);
  Model master = make_model();
  auto model = shard(make_model(), mesh, bf16_policy(f32_reduce ? std::optional(kFloat32) : std::nullopt));
  optim::SGD ref_opt(master->parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::SGD opt(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 4; ++step) {
    auto [x, y] = batch(2 + step);
    const int64_t count = y.numel();
    // Single process: a bf16 copy of the master weights over the whole batch; its gradients, cast
    // to float32, step the master weights.
    Model work = bf16_copy(master);
    Tensor ref_loss = loss_share(work->forward(x.to(kBFloat16)), y, count);
    ref_loss.backward();
    auto mp = master->parameters(), wp = work->parameters();
    for (size_t i = 0; i < mp.size(); ++i) mp[i].set_grad(wp[i].grad().to(kFloat32));
    ref_opt.step();
    ref_opt.zero_grad();

    DTensor out(model->forward(x));
    Tensor loss = loss_share(out.to_local(), model->local_batch(y), count);
    loss.backward();
    opt.step();
    opt.zero_grad();
    // Same bf16 parameters up to the rounding of gradients summed per rank rather than per batch.
    REQUIRE(model->reduce_over_dp(loss.item<double>()) == Approx(ref_loss.item<double>()).epsilon(2e-2));
  }
  auto full = model->full_state_dict();
  auto named = master->named_parameters();
  for (const auto& [name, p] : named) {
    INFO(name);
    std::vector<double> got = values(full[name]), want = values(p);
    for (size_t j = 0; j < got.size(); ++j) REQUIRE(std::abs(got[j] - want[j]) <= 1e-2 * std::abs(want[j]) + 2e-3);
  }
}

TEST_CASE("fully_shard bf16: forward sees gathered bf16 parameters, so the gather moves 2-byte words") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  std::vector<std::pair<DType, Shape>> seen;
  const nn::Linear* fc1 = nullptr;
  Model m = make_model([&](const nn::Linear& l) {
    fc1 = &l;
    seen.emplace_back(l.weight.dtype(), l.weight.shape());
  });
  auto model = shard(m, mesh, bf16_policy());
  auto [x, y] = batch(0);
  DTensor out(model->forward(x));
  REQUIRE(seen.size() == 1);
  REQUIRE(seen[0].first == kBFloat16);
  REQUIRE(seen[0].second == Shape{7, 5});  // the whole weight: gathered, in bf16
  REQUIRE(fc1 != nullptr);
  DTensor w(fc1->weight);
  REQUIRE(w.spec().local.dtype() == kFloat32);  // the shard: float32 master weights
  REQUIRE(w.spec().local.size(0) == chunk_size_and_offset(7, world_size(), world_rank()).first);
}

TEST_CASE("fully_shard: a non-floating mp_policy dtype raises weft::Error") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  WEFT_REQUIRE_ERROR(par::fully_shard(make_model(), mesh, {.mp_policy = {.param_dtype = kInt64}}),
                     Catch::Contains("fully_shard") && Catch::Contains("param_dtype is int64") &&
                         Catch::Contains("expected a floating dtype"));
  WEFT_REQUIRE_ERROR(par::fully_shard(make_model(), mesh, {.mp_policy = {.reduce_dtype = kInt32}}),
                     Catch::Contains("reduce_dtype is int32"));
}
