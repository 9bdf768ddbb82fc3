// Vocabulary parallelism (nn/vocab_parallel.h): the embedding, the tied head and the cross-entropy
// on this rank's rows of an uneven vocabulary, against the single-process ops on the whole tensors,
// forward and gradients; gradcheck of the loss's local math; the errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "distributed/comm_debug.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "distributed/spmd.h"
#include "weft.h"
#include "tests/tensor_test_util.h"
#include "tests/test_util.h"

using namespace weft;
using namespace weft::dist;
namespace par = weft::nn::parallel;

namespace {

using test::seeded_randn;
using test::max_abs_diff;

// A vocabulary that no world size of 2 or more divides: 4k + 3 rows (uneven; at 4 ranks the last
// rank holds 4 rows less than the others).
int64_t uneven_vocab() { return 4 * world_size() + 3; }

// This rank's rows (dim `dim`) of a tensor every rank holds whole.
Tensor my_rows(const Tensor& full, int64_t dim, const DeviceMesh& mesh) {
  auto [rows, offset] = par::vocab_shard(full.size(dim), mesh, 0);
  return full.narrow(dim, offset, rows).contiguous();
}

Tensor seed_logits(int64_t vocab) { return seeded_randn({5, vocab}, 25); }

Tensor ids(const Shape& shape, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  return randint(0, vocab, shape, dtype(kInt64), &gen);
}

}  // namespace

TEST_CASE("vocab_parallel_embedding: the single-process lookup, one all-reduce, the table's rows' gradient") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  const int64_t V = uneven_vocab(), C = 5;
  Tensor table = seeded_randn({V, C}, 1), idx = ids({3, 7}, V, 2), grad_out = seeded_randn({3, 7, C}, 3);
  Tensor plain = table.detach().requires_grad_();
  Tensor expected = embedding(plain, idx);
  mul(expected, grad_out).sum().backward();

  Tensor local = my_rows(table, 0, mesh).requires_grad_();
  CommDebugMode comm;
  Tensor out = par::vocab_parallel_embedding(idx, local, V, mesh, 0);
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (world_size() > 1 ? 1 : 0));
  REQUIRE(max_abs_diff(out, expected) < 1e-15);  // one nonzero term per sum: exact
  mul(out, grad_out).sum().backward();
  REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllReduce));  // backward communicates nothing
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (world_size() > 1 ? 1 : 0));
  REQUIRE(max_abs_diff(local.grad(), my_rows(plain.grad(), 0, mesh)) < 1e-14);
}

TEST_CASE("vocab_parallel_logits: this rank's columns of linear(x, table); x's gradient all-reduced") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  const int64_t V = uneven_vocab(), C = 5;
  Tensor table = seeded_randn({V, C}, 4), x0 = seeded_randn({3, 7, C}, 5), grad_out = seeded_randn({3, 7, V}, 6);
  Tensor px = x0.detach().requires_grad_(), pw = table.detach().requires_grad_();
  Tensor expected = linear(px, pw);
  mul(expected, grad_out).sum().backward();

  Tensor x = x0.detach().requires_grad_(), local = my_rows(table, 0, mesh).requires_grad_();
  Tensor logits = par::vocab_parallel_logits(x, local, mesh, 0);
  REQUIRE(max_abs_diff(logits, my_rows(expected.detach(), 2, mesh)) < 1e-13);
  mul(logits, my_rows(grad_out, 2, mesh)).sum().backward();
  REQUIRE(max_abs_diff(x.grad(), px.grad()) < 1e-13);
  REQUIRE(max_abs_diff(local.grad(), my_rows(pw.grad(), 0, mesh)) < 1e-13);
}

TEST_CASE("vocab_parallel_cross_entropy: cross_entropy of the gathered logits, gradients local") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  const int64_t V = uneven_vocab(), N = 13;
  Tensor target = ids({N}, V, 7);
  target.data_ptr<int64_t>()[3] = -100;  // ignored rows
  target.data_ptr<int64_t>()[8] = -100;
  for (double scale : {1.0, 1000.0})  // large logits: stable only with the global max subtracted
    for (double smoothing : {0.0, 0.1})
      for (const char* reduction : {"none", "mean", "sum"}) {
        INFO("scale " << scale << ", label_smoothing " << smoothing << ", reduction " << reduction);
        Tensor full = mul(seeded_randn({N, V}, 8), scale), grad_out = seeded_randn({N}, 9);
        auto weighted = [&](const Tensor& loss) {
          return std::string(reduction) == "none" ? mul(loss, grad_out).sum() : mul(loss, 1.7);
        };
        Tensor plain = full.detach().requires_grad_();
        Tensor expected = cross_entropy(plain, target, reduction, -100, smoothing);
        weighted(expected).backward();

        Tensor local = my_rows(full, 1, mesh).requires_grad_();
        CommDebugMode comm;
        Tensor loss = par::vocab_parallel_cross_entropy(local, target, V, mesh, 0, reduction, -100, smoothing);
        // One all-gather of each rank's per-row log-sum-exp, target logit and logit sum; backward: none.
        REQUIRE(comm.count(CollectiveKind::AllGather) == (world_size() > 1 ? 1 : 0));
        REQUIRE(comm.total_count() == comm.count(CollectiveKind::AllGather));
        REQUIRE(std::isfinite(loss.sum().item<double>()));
        REQUIRE(max_abs_diff(loss, expected) < 1e-12 * scale);
        weighted(loss).backward();
        REQUIRE(comm.total_count() == (world_size() > 1 ? 1 : 0));
        REQUIRE(max_abs_diff(local.grad(), my_rows(plain.grad(), 1, mesh)) < 1e-13);
      }
}

TEST_CASE("vocab_parallel_cross_entropy on DTensor logits Shard(-1): float32, 3-D, and a 2-D mesh") {
  const int64_t V = uneven_vocab();
  Tensor full = seeded_randn({2, 5, V}, 10).to(kFloat32), target = ids({2, 5}, V, 11);
  Tensor expected = cross_entropy(full.reshape({10, V}), target.reshape({10}));
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  DTensor logits = distribute_tensor(full, mesh, {Shard(2)});
  REQUIRE(par::vocab_parallel_cross_entropy(logits, target).item<double>() ==
          Approx(expected.item<double>()).epsilon(1e-6));
  // Over (dp, tp): this rank's rows on dp, its vocabulary on tp; the loss of its rows.
  if (world_size() == 4) {
    DeviceMesh grid = init_device_mesh({2, 2}, {"dp", "tp"});
    DTensor both = distribute_tensor(full, grid, {Shard(0), Shard(2)});
    int64_t row = grid.get_local_rank(0);
    Tensor mine = cross_entropy(full.narrow(0, row, 1).reshape({5, V}), target.narrow(0, row, 1).reshape({5}), "sum");
    REQUIRE(par::vocab_parallel_cross_entropy(both, target.narrow(0, row, 1), "sum").item<double>() ==
            Approx(mine.item<double>()).epsilon(1e-6));
  }
  DTensor replicated = distribute_tensor(full, mesh, {Replicate()});
  WEFT_REQUIRE_ERROR(par::vocab_parallel_cross_entropy(replicated, target),
                     Catch::Contains("vocab_parallel_cross_entropy") && Catch::Contains("Shard(2)") &&
                         Catch::Contains("got placements (R,)"));
}

TEST_CASE("vocab_parallel_cross_entropy: gradcheck of the local math in float64") {
  // A mesh dim of one rank: every rank checks the whole loss alone (perturbing all ranks' shards at
  // once would mix their derivatives). The sharded gradients are checked against cross_entropy above.
  DeviceMesh mesh = init_device_mesh({world_size(), 1}, {"dp", "tp"});
  const int64_t V = 7;
  Tensor logits = seeded_randn({4, V}, 12).requires_grad_(), target = ids({4}, V, 13);
  target.data_ptr<int64_t>()[1] = -100;
  for (double smoothing : {0.0, 0.2})
    for (const char* reduction : {"none", "mean", "sum"}) {
      INFO("label_smoothing " << smoothing << ", reduction " << reduction);
      REQUIRE(autograd::gradcheck(
          [&](const autograd::variable_list& in) {
            return par::vocab_parallel_cross_entropy(in[0], target, V, mesh, 1, reduction, -100, smoothing);
          },
          {logits}));
    }
}

TEST_CASE("vocabulary parallelism: errors name the op, what was given and what was expected") {
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  const int64_t V = uneven_vocab();
  Tensor local = my_rows(seeded_randn({V, 3}, 14), 0, mesh);
  Tensor bad = ids({2, 3}, V, 15);
  bad.data_ptr<int64_t>()[4] = V;  // every rank holds the same ids: every rank raises alike
  WEFT_REQUIRE_ERROR(par::vocab_parallel_embedding(bad, local, V, mesh, 0),
                     Catch::Contains("vocab_parallel_embedding") && Catch::Contains("index " + std::to_string(V)) &&
                         Catch::Contains("expected 0 <= id < " + std::to_string(V)));
  Tensor logits = my_rows(seeded_randn({2, V}, 16), 1, mesh);
  Tensor target = tensor({1.0, -1.0}, {2}, dtype(kInt64));
  WEFT_REQUIRE_ERROR(par::vocab_parallel_cross_entropy(logits, target, V, mesh, 0),
                     Catch::Contains("vocab_parallel_cross_entropy: target -1 is out of range"));
  WEFT_REQUIRE_ERROR(par::vocab_parallel_cross_entropy(logits, seeded_randn({2, V}, 17), V, mesh, 0),
                     Catch::Contains("probability targets are not supported"));
  WEFT_REQUIRE_ERROR(par::vocab_parallel_embedding(ids({2}, V, 18), local.narrow(0, 0, 0), V, mesh, 0),
                     Catch::Contains("expected this rank's"));
  if (world_size() > 1) {
    const int64_t tiny = world_size() - 1;  // fewer rows than ranks
    WEFT_REQUIRE_ERROR(par::vocab_parallel_embedding(ids({2}, tiny, 19), zeros({1, 3}, dtype(kFloat64)), tiny, mesh, 0),
                       Catch::Contains("vocab_parallel_embedding: a vocabulary of " + std::to_string(tiny)) &&
                           Catch::Contains("expected a vocabulary of at least " + std::to_string(world_size())));
    auto small = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = tiny, .block_size = 4, .n_layer = 1,
                                                         .n_head = 1, .n_embd = 4});
    WEFT_REQUIRE_ERROR(par::tensor_parallel(small, mesh, par::default_tp_plan(*small, /*vocab_parallel=*/true)),
                       Catch::Contains("VocabParallel: 'wte' has a vocabulary of " + std::to_string(tiny)) &&
                           Catch::Contains("expected at least one row per rank"));
  }
  auto gpt = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = V, .block_size = 4, .n_layer = 1, .n_head = 1,
                                                     .n_embd = 4});
  WEFT_REQUIRE_ERROR(par::tensor_parallel(gpt, mesh, par::Plan{{"ln_f", par::VocabParallel{}}}),
                     Catch::Contains("'ln_f' VocabParallel, but it is a LayerNorm; expected an Embedding"));
  auto sp = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = V, .block_size = 4, .n_layer = 1, .n_head = 1,
                                                    .n_embd = 4});
  par::Plan plan = par::default_sp_plan(*sp);
  for (auto& [path, style] : plan)
    if (path == "wpe") style = par::VocabParallel{};  // the positions are not tokens every rank holds
  WEFT_REQUIRE_ERROR(par::sequence_parallel(sp, mesh, plan),
                     Catch::Contains("'wpe' is VocabParallel in a plan with sequence parallelism; expected it there "
                                     "only on a GPT's 'wte'"));
}

TEST_CASE("the vocab-parallel GPT typechecks; grad placements derived from its SPMD types equal the declared") {
  if (!spmd_types_enabled()) return;  // WEFT_SPMD_TYPES=0: nothing is checked or derived
  const int64_t V = uneven_vocab();
  auto run = [&](bool derive, PlacementsList* derived) {
    manual_seed(21);
    auto gpt = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = V, .block_size = 6, .n_layer = 1, .n_head = 2,
                                                       .n_embd = 8});
    gpt->to(kFloat64);
    auto model = par::tensor_parallel(gpt, init_device_mesh({world_size()}, {"tp"}), par::default_tp_plan(*gpt, true));
    model->derive_grad_placements = derive;
    Tensor x = ids({2, 6}, V, 22), y = ids({2, 6}, V, 23);
    par::vocab_parallel_cross_entropy(DTensor(model->forward(x)), y).backward();
    std::vector<Tensor> grads;
    for (const Tensor& p : model->parameters()) {
      if (derived) REQUIRE(DTensor(p.grad()).placements() == DTensor(p).placements());
      grads.push_back(DTensor(p.grad()).full_tensor());
    }
    if (derived) *derived = model->derived_grad_placements;
    return std::make_pair(grads, model);
  };
  PlacementsList derived;
  auto [declared_grads, model] = run(false, nullptr);
  auto [derived_grads, unused] = run(true, &derived);
  REQUIRE(derived.size() == model->parameters().size() + 1);
  size_t i = 1;
  for (const Tensor& p : model->parameters()) REQUIRE(derived[i++] == DTensor(p).placements());  // wte: Shard(0)
  for (size_t k = 0; k < declared_grads.size(); ++k) REQUIRE(max_abs_diff(derived_grads[k], declared_grads[k]) < 1e-12);
}

TEST_CASE("vocab_parallel_cross_entropy in a local_map body: typed Varying logits -> Invariant loss") {
  if (!spmd_types_enabled()) return;
  DeviceMesh mesh = init_device_mesh({world_size()}, {"tp"});
  const int64_t V = 2 * world_size();  // two columns per rank
  Tensor full = seed_logits(V), target = ids({5}, V, 24);
  auto loss_of = [&](const Tensor& local) { return par::vocab_parallel_cross_entropy(local, target, V, mesh, 0); };
  // Sharded logits: the loss is Invariant, so a Replicate output typechecks, and is cross_entropy's.
  DTensor sharded = distribute_tensor(full, mesh, {Shard(1)});
  DTensor loss = local_map(loss_of, {.out_placements = {Placements{Replicate()}}})(sharded);
  REQUIRE(loss.to_local().item<double>() == Approx(cross_entropy(full, target).item<double>()).epsilon(1e-12));
  // Logits the same on every rank (each rank's slice of a Replicate tensor) are refused, named.
  DTensor same = distribute_tensor(full.narrow(1, 0, 2).contiguous(), mesh, {Replicate()});
  same.requires_grad_(true);
  WEFT_REQUIRE_ERROR(local_map(loss_of, {.out_placements = {Placements{Replicate()}}})(same),
                     Catch::Contains("vocab_parallel_cross_entropy") && Catch::Contains("Varying"));
}
