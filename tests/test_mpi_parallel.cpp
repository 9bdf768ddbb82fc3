// Optimizers with DTensor parameters and the parallel styles (data, tensor, both) against
// single-process training from the same seed, under mpirun -np 2 and -np 4.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "distributed/comm_debug.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "weft.h"
#include "tests/tensor_test_util.h"
#include "tests/test_util.h"

using namespace weft;
using namespace weft::dist;
namespace par = weft::nn::parallel;

namespace {

using test::seeded_randn;
using test::max_abs_diff;

DeviceMesh world_mesh() { return DeviceMesh({static_cast<int64_t>(world_size())}); }

// A gradient that differs per rank: rank r holds seed + r.
Tensor rank_grad(const Shape& shape, uint64_t seed) { return seeded_randn(shape, seed + 100 * world_rank()); }

Tensor sum_over_ranks(const Shape& shape, uint64_t seed) {
  Tensor total = zeros(shape, dtype(kFloat64));
  for (int r = 0; r < world_size(); ++r) total = add(total, seeded_randn(shape, seed + 100 * r));
  return total;
}

}  // namespace

TEST_CASE("optimizer: a Partial gradient of a Replicate weight is all-reduced once, then updated locally") {
  DeviceMesh mesh = world_mesh();
  Tensor w0 = seeded_randn({5, 3}, 1);
  DTensor w = distribute_tensor(w0, mesh, {Replicate()});
  w.requires_grad_();
  w.set_grad(make_dtensor(rank_grad({5, 3}, 2), mesh, {Partial()}, {5, 3}));
  optim::SGD sgd({w}, {.lr = 0.5});
  CommDebugMode comm;
  sgd.step();
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (world_size() > 1 ? 1 : 0));
  REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllReduce));
  REQUIRE(max_abs_diff(w.spec().local, sub(w0, mul(sum_over_ranks({5, 3}, 2), 0.5))) < 1e-12);
  REQUIRE(DTensor(w.grad()).placements() == Placements{Replicate()});  // stored: a second step costs nothing
  CommDebugMode again;
  sgd.step();
  REQUIRE(again.total_count() == 0);
}

TEST_CASE("optimizer: several Partial gradients share one all_reduce; matching placements cost nothing") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size(), n = 3 * k + 1;  // uneven shards
  std::vector<Tensor> inits = {seeded_randn({4}, 3), seeded_randn({2, 3}, 4), seeded_randn({n, 2}, 5)};
  DTensor a = distribute_tensor(inits[0], mesh, {Replicate()});
  DTensor b = distribute_tensor(inits[1], mesh, {Replicate()});
  DTensor s = distribute_tensor(inits[2], mesh, {Shard(0)});
  for (DTensor* p : {&a, &b, &s}) p->requires_grad_();
  a.set_grad(make_dtensor(rank_grad({4}, 6), mesh, {Partial()}, {4}));
  b.set_grad(make_dtensor(rank_grad({2, 3}, 7), mesh, {Partial()}, {2, 3}));
  Tensor gs = seeded_randn({n, 2}, 8);  // the global gradient of s, held as its shards
  s.set_grad(distribute_tensor(gs, mesh, {Shard(0)}));
  optim::AdamW adam({a, b, s}, {.lr = 0.1, .weight_decay = 0.1});
  CommDebugMode comm;
  adam.step();
  REQUIRE(comm.total_count() == (k > 1 ? 1 : 0));
  // Reference: AdamW on the plain global tensors and gradients.
  std::vector<Tensor> ref;
  for (const Tensor& t : inits) ref.push_back(t.detach().clone().requires_grad_());
  ref[0].set_grad(sum_over_ranks({4}, 6));
  ref[1].set_grad(sum_over_ranks({2, 3}, 7));
  ref[2].set_grad(gs);
  optim::AdamW ref_adam(ref, {.lr = 0.1, .weight_decay = 0.1});
  ref_adam.step();
  REQUIRE(max_abs_diff(a.full_tensor(), ref[0]) < 1e-12);
  REQUIRE(max_abs_diff(b.full_tensor(), ref[1]) < 1e-12);
  REQUIRE(max_abs_diff(s.full_tensor(), ref[2]) < 1e-12);
  // The state of a sharded parameter lives beside its shard.
  REQUIRE(adam.state(2).buffers.at("exp_avg").shape() == s.spec().local.shape());
  // A second step with matching placements communicates nothing.
  CommDebugMode second;
  adam.step();
  REQUIRE(second.total_count() == 0);
  // The optimizer's state dict round-trips with shard-shaped buffers.
  optim::AdamW copy({a, b, s}, {.lr = 0.1});
  copy.load_state_dict(adam.state_dict());
  REQUIRE(copy.state(2).buffers.at("exp_avg_sq").shape() == s.spec().local.shape());
}

TEST_CASE("clip_grad_norm_: the global norm of sharded, replicated and partial gradients") {
  int64_t k = world_size();
  std::vector<std::pair<DeviceMesh, std::vector<Placements>>> cases = {
      {world_mesh(), {{Shard(0)}, {Replicate()}, {Shard(1)}, {Replicate()}}}};
  if (k == 4) {
    DeviceMesh m2 = init_device_mesh({2, 2}, {"dp", "tp"});
    cases.push_back({m2, {{Replicate(), Shard(0)}, {Replicate(), Replicate()}, {Shard(1), Shard(0)}, {Shard(0), Replicate()}}});
  }
  for (auto& [mesh, placements] : cases) {
    Shape shapes[4] = {{3 * k + 1, 2}, {5}, {2, 2 * k + 1}, {k + 1, 3}};
    std::vector<Tensor> params, full_grads;
    for (int i = 0; i < 4; ++i) {
      Tensor g = seeded_randn(shapes[i], 20 + i);
      DTensor p = distribute_tensor(zeros(shapes[i], dtype(kFloat64)), mesh, placements[i]);
      p.requires_grad_();
      p.set_grad(distribute_tensor(g, mesh, placements[i]));
      params.push_back(p);
      full_grads.push_back(g);
    }
    // One more: a Replicate weight whose gradient is still P(sum) on mesh dim 0.
    DTensor q = distribute_tensor(zeros({4}, dtype(kFloat64)), mesh, replicate_all(mesh.ndim()));
    q.requires_grad_();
    Placements partial = replicate_all(mesh.ndim());
    partial[0] = Partial();
    // Replicate on every other mesh dim: the local value depends only on the mesh-dim-0 coordinate.
    int64_t me0 = mesh.get_local_rank(0);
    q.set_grad(make_dtensor(seeded_randn({4}, 30 + 100 * me0), mesh, partial, {4}));
    params.push_back(q);
    Tensor q_full = zeros({4}, dtype(kFloat64));
    for (int64_t c = 0; c < mesh.size(0); ++c) q_full = add(q_full, seeded_randn({4}, 30 + 100 * c));
    full_grads.push_back(q_full);
    double ref_sq = 0.0;
    for (const Tensor& g : full_grads) ref_sq += sum(mul(g, g)).item<double>();
    double max_norm = 0.5 * std::sqrt(ref_sq);
    double norm = optim::clip_grad_norm_(params, max_norm);
    REQUIRE(norm == Approx(std::sqrt(ref_sq)).epsilon(1e-12));
    double coef = max_norm / (std::sqrt(ref_sq) + 1e-6);
    for (size_t i = 0; i < params.size(); ++i)
      REQUIRE(max_abs_diff(DTensor(params[i].grad()).full_tensor(), mul(full_grads[i], coef)) < 1e-12);
  }
}

namespace {

enum class Opt { SGD, AdamW };

std::unique_ptr<optim::Optimizer> make_optimizer(Opt kind, std::vector<Tensor> params) {
  if (kind == Opt::SGD)
    return std::make_unique<optim::SGD>(std::move(params), optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  return std::make_unique<optim::AdamW>(std::move(params), optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.1});
}

struct Problem {
  std::function<std::shared_ptr<nn::UnaryModule>()> make_model;
  std::function<std::pair<Tensor, Tensor>(int step)> batch;  // global (input, target), same on every rank
  // The loss's share for these rows: sum of per-element losses / global_count.
  std::function<Tensor(const Tensor& out, const Tensor& target, int64_t global_count)> loss;
  // Set for a vocab-parallel model: its plan (from the model) and the loss of its DTensor output.
  std::function<par::Plan(const nn::UnaryModule&)> plan;
  std::function<Tensor(const DTensor& out, const Tensor& target, int64_t global_count)> parallel_loss;
};

// Trains the parallelized model and a single-process copy side by side; their losses, gradient norms
// and final parameters must agree to float64 rounding.
void check_training(const Problem& problem, const DeviceMesh& mesh, const std::string& dp, const std::string& tp,
                    Opt opt, bool overlap = true, int steps = 3) {
  auto ref = problem.make_model();
  auto inner = problem.make_model();
  auto model = par::parallelize(inner, mesh, dp, tp, problem.plan ? std::optional(problem.plan(*inner)) : std::nullopt);
  model->overlap_grad_reduce = overlap;
  auto ref_opt = make_optimizer(opt, ref->parameters());
  auto par_opt = make_optimizer(opt, model->parameters());
  for (int step = 0; step < steps; ++step) {
    auto [x, y] = problem.batch(step);
    int64_t count = y.numel();
    ref_opt->zero_grad();
    Tensor ref_loss = problem.loss(ref->forward(x), y, count);
    ref_loss.backward();
    double ref_norm = optim::clip_grad_norm_(ref->parameters(), 0.5);
    ref_opt->step();

    par_opt->zero_grad();
    DTensor out(model->forward(x));
    Tensor loss = problem.parallel_loss ? problem.parallel_loss(out, model->local_batch(y), count)
                                        : problem.loss(out.to_local(), model->local_batch(y), count);
    loss.backward();
    // With overlap every gradient is already reduced over dp (its sum may still be in flight).
    if (overlap && !dp.empty() && mesh.size(mesh.dim_index(dp)) > 1)
      for (const Tensor& p : model->parameters())
        REQUIRE(DTensor(p.grad()).placements() == DTensor(p).placements());
    double norm = optim::clip_grad_norm_(model->parameters(), 0.5);
    {
      CommDebugMode comm;  // clip_grad_norm_ already synced the gradients
      par_opt->step();
      REQUIRE(comm.total_count() == 0);
    }
    REQUIRE(model->reduce_over_dp(loss.item<double>()) == Approx(ref_loss.item<double>()).epsilon(1e-12));
    REQUIRE(norm == Approx(ref_norm).epsilon(1e-10));
  }
  nn::StateDict full = model->full_state_dict(), expected = ref->state_dict();
  REQUIRE(full.keys() == expected.keys());
  for (const auto& [name, t] : expected) {
    INFO(name);
    REQUIRE(max_abs_diff(full[name], t) < 1e-10);
  }
}

// An MLP whose hidden width (7) does not divide by 2 or 4: uneven column and row shards.
Problem mlp_problem() {
  Problem p;
  p.make_model = [] {
    manual_seed(11);
    auto m = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
        std::make_shared<nn::MLP>(5, 7, 5), std::make_shared<nn::LayerNorm>(5)});
    m->to(kFloat64);
    return m;
  };
  p.batch = [](int step) {
    int64_t n = 3 * world_size() + 1;  // uneven over dp
    return std::make_pair(seeded_randn({n, 5}, 40 + step), seeded_randn({n, 5}, 50 + step));
  };
  p.loss = [](const Tensor& out, const Tensor& target, int64_t count) {
    return par::global_mean(mse_loss(out, target, "sum"), count);
  };
  return p;
}

// The GPT with 3 heads: over 2 tp ranks the heads split [2, 1]; tied embedding and head.
Problem gpt_problem() {
  Problem p;
  p.make_model = [] {
    manual_seed(12);
    auto m = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 3,
                                                     .n_embd = 12});
    m->to(kFloat64);
    return m;
  };
  p.batch = [](int step) {
    Generator gen(60 + step);
    Tensor tokens = randint(0, 11, {3, 7}, dtype(kInt64), &gen);
    return std::make_pair(tokens.narrow(1, 0, 6).contiguous(), tokens.narrow(1, 1, 6).contiguous());
  };
  p.loss = [](const Tensor& logits, const Tensor& target, int64_t count) {
    int64_t v = logits.size(-1);
    return par::global_mean(cross_entropy(logits.reshape({-1, v}), target.reshape({-1}), "sum"), count);
  };
  return p;
}

// gpt_problem with the vocabulary split over tp (Note [Vocabulary parallelism]): 11 tokens are
// uneven over 2 and 4 ranks; the tied table or, untied, the lm_head, and the loss from logits that
// are never gathered.
Problem vocab_parallel_gpt_problem(bool tie_weights, bool sequence_parallel = false) {
  Problem p = gpt_problem();
  p.make_model = [tie_weights] {
    manual_seed(12);
    auto m = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 3,
                                                     .n_embd = 12, .tie_weights = tie_weights});
    m->to(kFloat64);
    return m;
  };
  p.plan = [sequence_parallel](const nn::UnaryModule& m) {
    return sequence_parallel ? par::default_sp_plan(m, /*vocab_parallel=*/true)
                             : par::default_tp_plan(m, /*vocab_parallel=*/true);
  };
  p.parallel_loss = [](const DTensor& logits, const Tensor& target, int64_t count) {
    REQUIRE(logits.placements().back() == Shard(2));  // the vocabulary stays sharded on tp
    return par::global_mean(par::vocab_parallel_cross_entropy(logits, target, "sum"), count);
  };
  return p;
}

}  // namespace

TEST_CASE("data parallel matches single-process training") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"dp"});
  for (bool overlap : {true, false}) {
    INFO("overlap_grad_reduce " << overlap);
    for (Opt opt : {Opt::SGD, Opt::AdamW}) {
      check_training(mlp_problem(), mesh, "dp", "", opt, overlap);
      check_training(gpt_problem(), mesh, "dp", "", opt, overlap);
    }
  }
}

TEST_CASE("data parallel without overlap: one all_reduce per step for all gradients") {
  DeviceMesh mesh = world_mesh();
  Problem problem = mlp_problem();
  auto model = par::data_parallel(problem.make_model(), mesh, /*overlap_grad_reduce=*/false);
  auto [x, y] = problem.batch(0);
  DTensor out(model->forward(x));
  problem.loss(out.to_local(), model->local_batch(y), y.numel()).backward();
  for (const Tensor& p : model->parameters()) REQUIRE(DTensor(p.grad()).placements() == Placements{Partial()});
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  CommDebugMode comm;
  sgd.step();
  REQUIRE(comm.total_count() == (world_size() > 1 ? 1 : 0));
}

TEST_CASE("tensor parallel matches single-process training") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  for (Opt opt : {Opt::SGD, Opt::AdamW}) {
    check_training(mlp_problem(), mesh, "", "tp", opt);
    check_training(gpt_problem(), mesh, "", "tp", opt);
  }
}

TEST_CASE("tensor parallel with a vocab-parallel embedding, head and loss matches single-process training") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  for (bool tied : {true, false})
    for (Opt opt : {Opt::SGD, Opt::AdamW}) {
      INFO("tie_weights " << tied);
      check_training(vocab_parallel_gpt_problem(tied), mesh, "", "tp", opt);
    }
  // On (dp, tp): the 2-D mesh of the test below.
  int64_t k = world_size();
  DeviceMesh grid = init_device_mesh(k == 4 ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{1, k}, {"dp", "tp"});
  check_training(vocab_parallel_gpt_problem(true), grid, "dp", "tp", Opt::AdamW);
  // The table's shards: torch.chunk of 11 rows; its gradient stays Shard(0), no communication.
  auto model = par::tensor_parallel(vocab_parallel_gpt_problem(true).make_model(), mesh,
                                    par::default_tp_plan(*gpt_problem().make_model(), true));
  auto gpt = std::dynamic_pointer_cast<nn::GPT>(model->module);
  DTensor wte(gpt->wte->weight);
  REQUIRE(wte.placements() == Placements{Shard(0)});
  REQUIRE(wte.to_local().size(0) == dist::chunk_size_and_offset(11, k, world_rank()).first);
  REQUIRE(model->output_placements() == Placements{Shard(2)});
  auto [x, y] = gpt_problem().batch(0);
  CommDebugMode comm;
  DTensor out(model->forward(x));
  // Forward: the embedding's all-reduce and one per row-parallel Linear (proj, fc2) per block.
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (k > 1 ? 5 : 0));
  par::vocab_parallel_cross_entropy(out, y).backward();
  // The loss: one all-gather of three numbers per row; backward: one all-reduce per column-parallel
  // input (qkv, fc1, the head).
  REQUIRE(comm.count(CollectiveKind::AllGather) == (k > 1 ? 1 : 0));
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (k > 1 ? 10 : 0));
  REQUIRE(DTensor(gpt->wte->weight.grad()).placements() == Placements{Shard(0)});
}

TEST_CASE("tensor + sequence parallel with the vocabulary split matches single-process training") {
  // 6 positions over 4 ranks: uneven sequence chunks too. Every rank takes all the tokens.
  int64_t k = world_size();
  for (bool tied : {true, false}) {
    INFO("tie_weights " << tied);
    check_training(vocab_parallel_gpt_problem(tied, true), init_device_mesh({k}, {"tp"}), "", "tp", Opt::AdamW);
  }
  DeviceMesh grid = init_device_mesh(k == 4 ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{1, k}, {"dp", "tp"});
  // Without overlap: parameters used on chunks keep Partial gradients on tp (Note [Sequence parallelism]),
  // which check_training's overlap check does not expect.
  check_training(vocab_parallel_gpt_problem(true, true), grid, "dp", "tp", Opt::AdamW, /*overlap=*/false);
  auto inner = vocab_parallel_gpt_problem(true, true).make_model();
  auto model = par::sequence_parallel(inner, init_device_mesh({k}, {"tp"}), par::default_sp_plan(*inner, true));
  REQUIRE(model->input_placements() == Placements{Replicate()});
  REQUIRE(model->output_placements() == Placements{Shard(2)});
  REQUIRE(model->sequence_dim() == 1);
}

TEST_CASE("tensor parallel: shards, gradient placements and communication") {
  DeviceMesh mesh = world_mesh();
  Problem problem = gpt_problem();
  auto model = par::tensor_parallel(problem.make_model(), mesh);
  auto gpt = std::dynamic_pointer_cast<nn::GPT>(model->module);
  auto block = std::dynamic_pointer_cast<nn::TransformerBlock>((*gpt->blocks)[0]);
  DTensor qkv(block->attn->qkv->weight), fc2(block->mlp->fc2->weight), fc2_bias(block->mlp->fc2->bias);
  REQUIRE(qkv.shape() == Shape{3, 3, 4, 12});  // (q|k|v, heads, head_dim, in): whole heads per rank
  REQUIRE(qkv.placements() == Placements{Shard(1)});
  REQUIRE(fc2.placements() == Placements{Shard(1)});
  REQUIRE(fc2_bias.placements() == Placements{Replicate()});
  auto [x, y] = problem.batch(0);
  CommDebugMode comm;
  DTensor out(model->forward(x));
  int64_t k = world_size();
  // Forward: one all_reduce per row-parallel Linear (proj, fc2) per block.
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (k > 1 ? 4 : 0));
  problem.loss(out.to_local(), y, y.numel()).backward();
  // Backward adds one per column-parallel Linear's input (qkv, fc1) per block.
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (k > 1 ? 8 : 0));
  REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllReduce));
  REQUIRE(DTensor(block->attn->qkv->weight.grad()).placements() == Placements{Shard(1)});
  REQUIRE(DTensor(block->mlp->fc2->bias.grad()).placements() == Placements{Replicate()});
  // The inner module's forward refuses its DTensor parameters with a clear message.
  WEFT_REQUIRE_ERROR(block->mlp->fc1->forward(zeros({2, 12}, dtype(kFloat64))), Catch::Contains("Parallelized"));
}

TEST_CASE("data and tensor parallel together on a 2-D mesh match single-process training") {
  int64_t k = world_size();
  std::vector<std::vector<int64_t>> shapes = k == 4 ? std::vector<std::vector<int64_t>>{{2, 2}}
                                                    : std::vector<std::vector<int64_t>>{{k, 1}, {1, k}};
  for (const auto& shape : shapes) {
    DeviceMesh mesh = init_device_mesh(shape, {"dp", "tp"});
    for (bool overlap : {true, false})
      for (Opt opt : {Opt::SGD, Opt::AdamW}) {
        check_training(mlp_problem(), mesh, "dp", "tp", opt, overlap);
        check_training(gpt_problem(), mesh, "dp", "tp", opt, overlap);
      }
  }
}

namespace {

// Linear(5, 7) -> tanh -> Linear(7, 5) in float64. With `on_hidden_grad`, the hidden activation's
// gradient hook calls it: in backward that is after the second Linear's gradients are complete and
// before the first Linear's are.
std::shared_ptr<nn::UnaryModule> two_layer_model(std::function<void()> on_hidden_grad = nullptr) {
  manual_seed(13);
  auto probe = [on_hidden_grad](const Tensor& h) {
    if (on_hidden_grad && h.requires_grad()) h.register_hook([on_hidden_grad](const Tensor&) {
      on_hidden_grad();
      return Tensor();
    });
    return tanh(h);
  };
  auto m = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Linear>(5, 7), std::make_shared<nn::Functional>(probe), std::make_shared<nn::Linear>(7, 5)});
  m->to(kFloat64);
  return m;
}

// Global batch `step` (uneven over the ranks) and its mse loss share, on the plain and the DP model.
std::pair<Tensor, Tensor> uneven_batch(int step) {
  int64_t n = 3 * world_size() + 1;
  return {seeded_randn({n, 5}, 70 + step), seeded_randn({n, 5}, 80 + step)};
}
Tensor plain_loss(nn::UnaryModule& model, int step) {
  auto [x, y] = uneven_batch(step);
  return par::global_mean(mse_loss(model.forward(x), y, "sum"), y.numel());
}
Tensor dp_loss(par::Parallelized& model, int step) {
  auto [x, y] = uneven_batch(step);
  DTensor out(model.forward(x));
  return par::global_mean(mse_loss(out.to_local(), model.local_batch(y), "sum"), y.numel());
}

// Every DTensor parameter's gradient (brought to Replicate, no autograd) equals the plain one's.
void require_same_grads(const std::vector<Tensor>& dist_params, const std::vector<Tensor>& plain_params) {
  REQUIRE(dist_params.size() == plain_params.size());
  for (size_t i = 0; i < dist_params.size(); ++i) {
    INFO("parameter " << i);
    DTensor g(dist_params[i].grad());
    Tensor full = g.placements() == Placements{Replicate()} ? g.spec().local : g.full_tensor();
    REQUIRE(max_abs_diff(full, plain_params[i].grad()) < 1e-12);
  }
}

}  // namespace

TEST_CASE("data parallel with overlap: each gradient's all_reduce starts in backward as it completes") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  const CommDebugMode* active = nullptr;
  int64_t seen = -1;  // all_reduces issued when the hidden activation's gradient arrived
  auto ref = two_layer_model();
  auto model = par::data_parallel(two_layer_model([&] { seen = active ? active->count(CollectiveKind::AllReduce) : -1; }),
                                  mesh);
  REQUIRE(model->overlap_grad_reduce);  // the default
  plain_loss(*ref, 0).backward();
  Tensor loss = dp_loss(*model, 0);
  {
    CommDebugMode comm;
    active = &comm;
    loss.backward();
    active = nullptr;
    // One per parameter (2 weights, 2 biases), issued during backward: the second Linear's two
    // before the first Linear's backward has even run.
    REQUIRE(comm.count(CollectiveKind::AllReduce) == (k > 1 ? 4 : 0));
    REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllReduce));
    if (k > 1) REQUIRE(seen == 2);
  }
  // Before the optimizer: already Replicate (in flight until read) and equal to the plain gradient.
  std::vector<Tensor> params = model->parameters();
  for (const Tensor& p : params)
    REQUIRE(DTensor(p.grad()).placements() == (k > 1 ? Placements{Replicate()} : Placements{Partial()}));
  require_same_grads(params, ref->parameters());
  optim::SGD sgd(params, {.lr = 0.1});
  optim::SGD ref_sgd(ref->parameters(), {.lr = 0.1});
  {
    CommDebugMode comm;  // nothing left to reduce: no collective in clipping or the step
    REQUIRE(optim::sync_grads(params) == (k > 1 ? 0 : 4));
    double norm = optim::clip_grad_norm_(params, 1e-3);
    sgd.step();
    if (k > 1) REQUIRE(comm.total_count() == 0);
    REQUIRE(norm == Approx(optim::clip_grad_norm_(ref->parameters(), 1e-3)).epsilon(1e-12));
  }
  ref_sgd.step();
  REQUIRE(max_abs_diff(model->full_state_dict()["0.weight"], ref->state_dict()["0.weight"]) < 1e-12);
  REQUIRE(max_abs_diff(model->full_state_dict()["2.bias"], ref->state_dict()["2.bias"]) < 1e-12);
}

TEST_CASE("data parallel: gradients accumulate over backward calls without zero_grad") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  for (bool overlap : {true, false}) {
    INFO("overlap_grad_reduce " << overlap);
    auto ref = two_layer_model();
    auto model = par::data_parallel(two_layer_model(), mesh, overlap);
    std::vector<Tensor> params = model->parameters(), ref_params = ref->parameters();
    const int64_t n_params = static_cast<int64_t>(params.size());
    // Two backward calls (different batches) accumulate; the reference sums the plain gradients.
    plain_loss(*ref, 0).backward();
    plain_loss(*ref, 1).backward();
    dp_loss(*model, 0).backward();
    {
      Tensor loss = dp_loss(*model, 1);  // forward exchanges the uneven output's sizes: not counted here
      CommDebugMode comm;
      loss.backward();
      // With overlap the new contribution is reduced once, in flight, and added to the reduced
      // gradient locally: one all_reduce per parameter, nothing more. Without, P + P adds locally.
      REQUIRE(comm.count(CollectiveKind::AllReduce) == (overlap && k > 1 ? n_params : 0));
      REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllReduce));
    }
    for (const Tensor& p : params)
      REQUIRE(DTensor(p.grad()).placements() == (overlap && k > 1 ? Placements{Replicate()} : Placements{Partial()}));
    require_same_grads(params, ref_params);

    // A third backward right after zero_grad, with the gradients still in flight: dropping them
    // completes their requests, and training goes on with the right values.
    optim::SGD sgd(params, {.lr = 0.1, .momentum = 0.9});
    optim::SGD ref_sgd(ref_params, {.lr = 0.1, .momentum = 0.9});
    sgd.step();
    ref_sgd.step();
    dp_loss(*model, 2).backward();
    sgd.zero_grad();
    ref_sgd.zero_grad();
    for (int step = 3; step < 5; ++step) {
      dp_loss(*model, step).backward();
      plain_loss(*ref, step).backward();
      sgd.step();
      ref_sgd.step();
      sgd.zero_grad();
      ref_sgd.zero_grad();
    }
    nn::StateDict full = model->full_state_dict(), expected = ref->state_dict();
    for (const auto& [name, t] : expected) {
      INFO(name);
      REQUIRE(max_abs_diff(full[name], t) < 1e-12);
    }

    // Two forwards and one backward of their sum: the engine adds the two P(sum) contributions
    // before the parameter sees them, so overlap does not recognise the sum and leaves it
    // Partial (its in-flight pieces are dropped); the optimizer reduces it. The value is right.
    (add(dp_loss(*model, 5), dp_loss(*model, 6))).backward();
    add(plain_loss(*ref, 5), plain_loss(*ref, 6)).backward();
    for (const Tensor& p : params) REQUIRE(DTensor(p.grad()).placements() == Placements{Partial()});
    require_same_grads(params, ref_params);
    sgd.zero_grad();
    ref_sgd.zero_grad();
  }
}

TEST_CASE("data parallel with overlap: a backward that fails midway leaves no request behind") {
  DeviceMesh mesh = world_mesh();
  bool fail = true;
  auto ref = two_layer_model();
  auto model = par::data_parallel(two_layer_model([&] {
                                    if (fail) WEFT_ERROR("injected failure in backward");
                                  }),
                                  mesh);
  // Every rank fails at the same point: after the second Linear's all_reduces were started, before
  // the first Linear's. The error reaches the caller; the started requests are completed when
  // their records are dropped (the next forward), and training goes on with the right values.
  Tensor loss = dp_loss(*model, 0);
  WEFT_REQUIRE_ERROR(loss.backward(), Catch::Contains("injected failure"));
  fail = false;
  for (const Tensor& p : model->parameters()) REQUIRE(!p.grad().defined());
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  optim::SGD ref_sgd(ref->parameters(), {.lr = 0.1});
  for (int step = 1; step < 3; ++step) {
    dp_loss(*model, step).backward();
    plain_loss(*ref, step).backward();
    require_same_grads(model->parameters(), ref->parameters());
    sgd.step();
    ref_sgd.step();
    sgd.zero_grad();
    ref_sgd.zero_grad();
  }
  REQUIRE(max_abs_diff(model->full_state_dict()["0.weight"], ref->state_dict()["0.weight"]) < 1e-12);
}
