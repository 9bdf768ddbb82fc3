// local_map's SPMD types under mpirun: the bug catalogue of issue 25 (each raising at its op with
// the mesh dim named), typed collectives, derived grad placements against declared ones, and the
// parallel styles typechecking clean with derived placements giving today's gradients.
#include <catch2/catch.hpp>

#include <functional>

#include "distributed/collectives.h"
#include "distributed/local_map.h"
#include "distributed/runtime.h"
#include "distributed/spmd.h"
#include "weft.h"
#include "tests/tensor_test_util.h"
#include "tests/test_util.h"

using namespace weft;
using namespace weft::dist;
namespace par = weft::nn::parallel;
using weft::test::require_error;

namespace {

using test::seeded_randn;

DeviceMesh named_mesh(const std::string& name) { return init_device_mesh({world_size()}, {name}); }

// A Partial DTensor whose sum over the ranks is `total`: rank r holds total * (r + 1) / T.
DTensor partial_of(const Tensor& total, const DeviceMesh& mesh) {
  const double k = static_cast<double>(world_size());
  Tensor local = mul(total, (world_rank() + 1) / (k * (k + 1) / 2));
  return make_dtensor(local, mesh, {Partial()}, total.shape());
}

void require_close(const Tensor& actual, const Tensor& expected, double tol = 1e-9) {
  REQUIRE(actual.shape() == expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(e[i]).margin(tol));
}

PlacementsList one(const Placement& p) { return PlacementsList{Placements{p}}; }

}  // namespace

TEST_CASE("local_map types: the bug catalogue raises at the op, naming the mesh dim") {
  DeviceMesh tp = named_mesh("tp"), dp = named_mesh("dp");
  Tensor x = seeded_randn({4, 6}, 1), w = seeded_randn({6, 8}, 2);

  SECTION("a column-parallel Linear without copy_to_parallel_region") {
    DTensor X = distribute_tensor(x, tp, {Replicate()});
    DTensor W = distribute_tensor(w.t().contiguous(), tp, {Shard(0)});  // (out, in), out sharded
    X.requires_grad_(true);
    auto column = [](const Tensor& a, const Tensor& weight) { return linear(a, weight); };
    LocalMapOptions options{.out_placements = {Placements{Shard(1)}},
                            .in_grad_placements = PlacementsList{Placements{Replicate()}, Placements{Shard(0)}}};
    require_error([&] { local_map(column, options)(X, W); },
                  "local_map: linear on mesh dim \"tp\" mixes an Invariant operand (local_map input 0) with a "
                  "Varying one");
    // With it, the same layer typechecks and is the column-sharded product.
    auto fixed = [&](const Tensor& a, const Tensor& weight) {
      return linear(funcol::copy_to_parallel_region(a, tp), weight);
    };
    DTensor Y = local_map(fixed, options)(X, W);
    require_close(Y.full_tensor(), matmul(x, w));
  }

  SECTION("a data-parallel weight declared with a Replicate gradient") {
    DTensor X = distribute_tensor(x, dp, {Shard(0)}), W = distribute_tensor(w, dp, {Replicate()});
    W.requires_grad_(true);
    LocalMapOptions options{.out_placements = {Placements{Shard(0)}},
                            .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}}};
    require_error([&] { local_map([](const Tensor& a, const Tensor& b) { return matmul(a, b); }, options)(X, W); },
                  "mm on mesh dim \"dp\" mixes an Invariant operand (local_map input 1) with a Varying one");
    require_error([&] { local_map([](const Tensor& a, const Tensor& b) { return matmul(a, b); }, options)(X, W); },
                  "declare input 1's grad placement Partial on \"dp\"");
  }

  SECTION("GELU of a Partial") {
    DTensor P = partial_of(x, tp);
    require_error([&] { local_map([](const Tensor& a) { return gelu(a); }, {.out_placements = one(Replicate())})(P); },
                  "local_map: gelu on mesh dim \"tp\" got a Partial operand (a pending sum over the ranks)");
  }

  SECTION("Partial times Partial") {
    DTensor P = partial_of(x, tp), Q = partial_of(x, tp);
    require_error([&] {
      local_map([](const Tensor& a, const Tensor& b) { return mul(a, b); }, {.out_placements = one(Partial())})(P, Q);
    }, "mul on mesh dim \"tp\" multiplies two Partial operands");
  }

  SECTION("Invariant mixed with Varying") {
    DTensor A = distribute_tensor(x, tp, {Replicate()}), B = distribute_tensor(x, tp, {Shard(1)});
    A.requires_grad_(true);
    auto body = [](const Tensor& a, const Tensor& b) { return add(a.narrow(1, 0, b.size(1)), b); };
    require_error([&] {
      local_map(body, {.out_placements = one(Shard(1)),
                       .in_grad_placements = PlacementsList{Placements{Replicate()}, Placements{Shard(1)}}})(A, B);
    }, "add on mesh dim \"tp\" mixes an Invariant operand (local_map input 0) with a Varying one");
  }

  SECTION("a Varying value returned as Replicate") {
    DTensor X = distribute_tensor(x, dp, {Shard(0)});
    require_error([&] { local_map([](const Tensor& a) { return mul(a, 2.0); }, {.out_placements = one(Replicate())})(X); },
                  "local_map: output 0 (declared (R,)) on mesh dim \"dp\" got a Varying value; it differs per rank");
  }

  SECTION("a Replicate value returned as Partial") {
    DTensor X = distribute_tensor(x, dp, {Shard(0)}), W = distribute_tensor(w, dp, {Replicate()});
    W.requires_grad_(true);
    auto body = [](const Tensor& a, const Tensor& b) { return std::make_tuple(matmul(a, b), mul(b, 2.0)); };
    require_error([&] { local_map(body, {.out_placements = {Placements{Shard(0)}, Placements{Partial()}}})(X, W); },
                  "local_map: output 1 (declared (P(sum),)) on mesh dim \"dp\" got a Replicate value (local_map input 1)");
  }

  SECTION("a Partial plus a Replicate") {
    DTensor P = partial_of(x, tp), R = distribute_tensor(x, tp, {Replicate()});
    require_error([&] {
      local_map([](const Tensor& a, const Tensor& b) { return add(a, b); }, {.out_placements = one(Partial())})(P, R);
    }, "add on mesh dim \"tp\" adds a Partial operand to a Replicate one: the Replicate term would be counted once "
       "per rank");
  }
}

TEST_CASE("local_map types: on a 2-D mesh the error names the dim where the types clash") {
  if (world_size() % 2 != 0) return;
  DeviceMesh mesh = init_device_mesh({2, world_size() / 2}, {"dp", "tp"});
  Tensor x = seeded_randn({4, 6}, 3), w = seeded_randn({6, 8}, 4);
  // x: batch over dp, whole on tp; w: replicated on dp (its gradient declared Partial there), output
  // features over tp with a Shard gradient. Correct: no error. The same with w's dp grad Replicate: dp.
  DTensor X = distribute_tensor(x, mesh, {Shard(0), Replicate()});
  DTensor W = distribute_tensor(w, mesh, {Replicate(), Shard(1)});
  W.requires_grad_(true);
  auto body = [](const Tensor& a, const Tensor& b) { return matmul(a, b); };
  LocalMapOptions good{.out_placements = {Placements{Shard(0), Shard(1)}},
                       .in_grad_placements = PlacementsList{Placements{Shard(0), Replicate()},
                                                            Placements{Partial(), Shard(1)}}};
  DTensor Y = local_map(body, good)(X, W);
  require_close(Y.full_tensor(), matmul(x, w));
  LocalMapOptions bad = good;
  bad.in_grad_placements = PlacementsList{Placements{Shard(0), Replicate()}, Placements{Replicate(), Shard(1)}};
  require_error([&] { local_map(body, bad)(X, W); }, "mm on mesh dim \"dp\" mixes an Invariant operand (local_map input 1)");
}

TEST_CASE("local_map types: the collectives are typed") {
  DeviceMesh tp = named_mesh("tp");
  Tensor x = seeded_randn({4, 4}, 5);
  DTensor R = distribute_tensor(x, tp, {Replicate()}), P = partial_of(x, tp);
  auto out_r = one(Replicate());
  // all_reduce of a value the same on every rank would multiply it by the number of ranks.
  require_error([&] {
    local_map([&](const Tensor& a) { return funcol::all_reduce(a, ReduceOp::Sum, tp); }, {.out_placements = out_r})(R);
  }, "local_map: all_reduce on mesh dim \"tp\" got a Replicate value (local_map input 0); it sums per-rank terms");
  require_error([&] { local_map([&](const Tensor& a) { return funcol::all_gather(a, 0, tp); }, {.out_placements = out_r})(P); },
                "all_gather on mesh dim \"tp\" got a Partial value");
  // reduce_from_parallel_region makes an Invariant: returned as Replicate, the total.
  DTensor Y = local_map([&](const Tensor& a) { return funcol::reduce_from_parallel_region(a, tp); },
                        {.out_placements = out_r})(P);
  require_close(Y.to_local(), x);
  // funcol::all_reduce makes a Replicate, whose gradient would be summed once per rank if returned
  // as Replicate: refused when it needs a gradient, with the fix.
  DTensor Pg = partial_of(x, tp);
  Pg.requires_grad_(true);
  require_error([&] {
    local_map([&](const Tensor& a) { return funcol::all_reduce(a, ReduceOp::Sum, tp); }, {.out_placements = out_r})(Pg);
  }, "output 0 (declared (R,)) on mesh dim \"tp\" got a Replicate value (local_map input 0); its gradient arrives "
     "the same on every rank");
  // A Varying local partial result is reinterpreted as Partial on purpose, then reduced.
  DTensor V = distribute_tensor(x, tp, {Shard(0)});
  auto sum_rows = [&](const Tensor& a) {
    Tensor partial = reinterpret(sum(a, {0}), spmd::Type::Varying, spmd::Type::Partial, tp);
    return funcol::reduce_from_parallel_region(partial, tp);
  };
  require_close(local_map(sum_rows, {.out_placements = out_r})(V).to_local(), sum(x, {0}));
  require_error([&] {
    local_map([&](const Tensor& a) { return gelu(reinterpret(a, spmd::Type::Varying, spmd::Type::Partial, tp)); }, {.out_placements = out_r})(V);
  }, "gelu on mesh dim \"tp\" got a Partial operand");
  // copy_to_parallel_region takes an Invariant: a Varying value's gradient needs no all-reduce.
  require_error([&] {
    local_map([&](const Tensor& a) { return funcol::copy_to_parallel_region(a, tp); }, {.out_placements = one(Shard(0))})(V);
  }, "copy_to_parallel_region on mesh dim \"tp\" got a Varying value");
}

// Each coercion inside a body, against the plain computation it stands for: the global output and
// the input's gradient of sum(Y * w), with checks on and off (the gradients must not depend on them).
TEST_CASE("local_map types: reinterpret and convert give the gradients of what they mean") {
  DeviceMesh tp = named_mesh("tp");
  const int64_t n = world_size();
  using spmd::Type;
  struct Run {
    Tensor y, gx;
  };
  // x_global enters as `in` with grad placements `grad`; the body's output leaves as `out`.
  auto run = [&](const Tensor& x_global, const Placement& in, const Placement& grad, const Placement& out,
                 const std::function<Tensor(const Tensor&)>& body, bool check) {
    DTensor X = distribute_tensor(x_global, tp, {in});
    X.requires_grad_(true);
    DTensor Y = local_map(body, {.out_placements = one(out), .in_grad_placements = one(grad), .check_types = check})(X);
    Tensor y = Y.full_tensor();
    Tensor w = seeded_randn(y.shape(), 99);
    sum(mul(y, w)).backward();
    return std::pair<Run, Tensor>{Run{y.detach(), DTensor(X.grad()).full_tensor()}, w};
  };
  auto expect = [&](const Tensor& x_global, const Placement& in, const Placement& grad, const Placement& out,
                    const std::function<Tensor(const Tensor&)>& body, const std::function<Tensor(const Tensor&)>& meaning) {
    for (bool check : {true, false}) {
      auto [got, w] = run(x_global, in, grad, out, body, check);
      Tensor xr = x_global.detach();
      xr.requires_grad_(true);
      Tensor yr = meaning(xr);
      sum(mul(yr, w)).backward();
      require_close(got.y, yr.detach());
      require_close(got.gx, xr.grad());
    }
  };
  Tensor x = seeded_randn({n + 1, 3}, 21);  // n + 1 rows: the chunks are uneven
  Tensor rows = seeded_randn({n, 3}, 22);   // one row per rank
  auto same = [](const Tensor& t) { return t; };

  SECTION("convert to Varying keeps each rank's chunk; R and I inputs both get the whole gradient") {
    auto chunk = [&](Type from) {
      return [&, from](const Tensor& a) { return convert(a, from, Type::Varying, tp, 0, 0); };
    };
    expect(x, Replicate(), Partial(), Shard(0), chunk(Type::Replicate), same);
    expect(x, Replicate(), Replicate(), Shard(0), chunk(Type::Invariant), same);
    // Without a dim, each rank keeps its row of dim 0.
    expect(rows, Replicate(), Partial(), Shard(0),
           [&](const Tensor& a) { return convert(a, Type::Replicate, Type::Varying, tp); },
           [](const Tensor& t) { return reshape(t, {-1}); });
  }

  SECTION("convert to Partial: the first rank keeps the value, or Varying slots are stacked") {
    expect(x, Replicate(), Partial(), Partial(),
           [&](const Tensor& a) { return convert(a, Type::Replicate, Type::Partial, tp); }, same);
    expect(x, Replicate(), Replicate(), Partial(),
           [&](const Tensor& a) { return convert(a, Type::Invariant, Type::Partial, tp); }, same);
    expect(rows, Shard(0), Shard(0), Partial(),
           [&](const Tensor& a) { return convert(a, Type::Varying, Type::Partial, tp); },
           [](const Tensor& t) { return unsqueeze(t, 1); });
  }

  SECTION("reinterpret: R->I keeps one rank's gradient, I->R all-reduces it") {
    // Without the first-rank rule the Replicate input's Partial gradient would count n times.
    expect(x, Replicate(), Partial(), Replicate(),
           [&](const Tensor& a) { return reinterpret(a, Type::Replicate, Type::Invariant, tp); }, same);
    // I->R then times a Varying value: each rank's gradient term is summed, as copy_to_parallel_region.
    Tensor v = seeded_randn({n + 1, 3}, 23);
    DTensor V = distribute_tensor(v, tp, {Shard(0)});
    Tensor v_local = V.to_local();
    expect(x, Replicate(), Replicate(), Shard(0),
           [&](const Tensor& a) {
             Tensor mine = convert(a, Type::Invariant, Type::Varying, tp, 0, 0);
             return mul(mine, v_local);
           },
           [&](const Tensor& t) { return mul(t, v); });
    Tensor b = seeded_randn({3}, 24);
    expect(b, Replicate(), Replicate(), Shard(0),
           [&](const Tensor& a) { return mul(reinterpret(a, Type::Invariant, Type::Replicate, tp), v_local); },
           [&](const Tensor& t) { return mul(t, v); });
  }

  SECTION("what only communication can do is refused, and the source type is checked") {
    DTensor P = partial_of(x, tp);
    require_error([&] {
      local_map([&](const Tensor& a) { return reinterpret(a, Type::Partial, Type::Replicate, tp); },
                {.out_placements = one(Replicate())})(P);
    }, "reinterpret: cannot turn a Partial value into Replicate: a pending sum is settled only by communication");
    DTensor V = distribute_tensor(x, tp, {Shard(0)});
    require_error([&] {
      local_map([&](const Tensor& a) { return convert(a, Type::Varying, Type::Invariant, tp); },
                {.out_placements = one(Replicate())})(V);
    }, "convert: cannot turn a Varying value into Invariant: that is all_gather");
    require_error([&] {
      local_map([&](const Tensor& a) { return convert(a, Type::Replicate, Type::Partial, tp); },
                {.out_placements = one(Partial())})(V);
    }, "convert on mesh dim \"tp\" got a Varying value");
    DTensor R = distribute_tensor(x, tp, {Replicate()});
    require_error([&] {
      local_map([&](const Tensor& a) { return convert(a, Type::Replicate, Type::Varying, tp); },
                {.out_placements = one(Shard(0))})(R);
    }, "which must have the mesh dim's size " + std::to_string(n) + ", but got shape");
  }
}

// A custom Function inside a body is one op: NonLinear unless it declares its linearity.
struct Doubled : autograd::Function<Doubled> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return mul(x, 2.0); }
  static autograd::variable_list backward(autograd::AutogradContext*, autograd::variable_list g) {
    return {mul(g[0], 2.0)};
  }
};
struct DoubledLinear : autograd::Function<DoubledLinear> {
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) { return Doubled::forward(ctx, x); }
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list g) {
    return Doubled::backward(ctx, std::move(g));
  }
};

TEST_CASE("local_map types: a custom Function takes the rule it declares") {
  DeviceMesh tp = named_mesh("tp");
  Tensor x = seeded_randn({3, 4}, 31);
  DTensor P = partial_of(x, tp);
  require_error([&] {
    local_map([](const Tensor& a) { return Doubled::apply(a); }, {.out_placements = one(Partial())})(P);
  }, "doubled on mesh dim \"tp\" got a Partial operand");
  DTensor Y = local_map([](const Tensor& a) { return DoubledLinear::apply(a); }, {.out_placements = one(Partial())})(P);
  require_close(Y.full_tensor(), mul(x, 2.0));
  // Its output is typed: a Varying result returned as Replicate is caught at the boundary.
  DTensor V = distribute_tensor(x, tp, {Shard(0)});
  require_error([&] {
    local_map([](const Tensor& a) { return Doubled::apply(a); }, {.out_placements = one(Replicate())})(V);
  }, "output 0 (declared (R,)) on mesh dim \"tp\" got a Varying value");
}

TEST_CASE("local_map types: check_types = false turns the checks off") {
  DeviceMesh tp = named_mesh("tp");
  Tensor x = seeded_randn({3, 5}, 6);
  DTensor P = partial_of(x, tp);
  DTensor Y = local_map([](const Tensor& a) { return gelu(a); },
                        {.out_placements = one(Partial()), .check_types = false})(P);
  require_close(Y.to_local(), gelu(P.to_local()));
}

TEST_CASE("local_map types: WEFT_SPMD_TYPES=0 turns the checks off", "[.off]") {
  REQUIRE_FALSE(spmd_types_enabled());
  DeviceMesh tp = named_mesh("tp");
  Tensor x = seeded_randn({3, 5}, 6);
  DTensor Y = local_map([](const Tensor& a) { return gelu(a); }, {.out_placements = one(Partial())})(partial_of(x, tp));
  require_close(Y.to_local(), gelu(partial_of(x, tp).to_local()));
}

TEST_CASE("local_map types: omitted grad placements are derived, readable, and give the declared gradients") {
  DeviceMesh dp = named_mesh("dp");
  Tensor x = seeded_randn({2 * world_size() + 1, 6}, 7), w = seeded_randn({6, 3}, 8), b = seeded_randn({3}, 9);
  auto body = [](const Tensor& a, const Tensor& weight, const Tensor& bias) { return add(matmul(a, weight), bias); };
  // Declared as a data-parallel layer should be, and derived: the same placements and gradients.
  std::vector<Tensor> grads[2];
  for (int derive = 0; derive < 2; ++derive) {
    DTensor X = distribute_tensor(x, dp, {Shard(0)}), W = distribute_tensor(w, dp, {Replicate()});
    DTensor B = distribute_tensor(b, dp, {Replicate()});
    X.requires_grad_(true);
    W.requires_grad_(true);
    B.requires_grad_(true);
    PlacementsList derived;
    LocalMapOptions options{.out_placements = one(Shard(0))};
    if (derive) options.derived_in_grad_placements = &derived;
    else options.in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()}, Placements{Partial()}};
    DTensor Y = local_map(body, options)(X, W, B);
    sum(Y.to_local()).backward();
    if (derive) REQUIRE(derived == PlacementsList{Placements{Shard(0)}, Placements{Partial()}, Placements{Partial()}});
    REQUIRE(DTensor(W.grad()).placements() == Placements{Partial()});
    for (const Tensor& t : {X, W, B}) grads[derive].push_back(DTensor(t.grad()).full_tensor());
  }
  // The reference: d sum(x w + b) / dw = x^T 1, / db = rows, / dx = 1 w^T.
  Tensor ones_out = ones({x.size(0), 3}, dtype(kFloat64));
  require_close(grads[1][0], matmul(ones_out, w.t()));
  require_close(grads[1][1], matmul(x.t(), ones_out));
  require_close(grads[1][2], full({3}, static_cast<double>(x.size(0)), dtype(kFloat64)));
  for (size_t i = 0; i < 3; ++i) require_close(grads[1][i], grads[0][i]);
  // A Replicate input used only with Replicate-grad (Invariant) values keeps a Replicate gradient.
  DeviceMesh tp = named_mesh("tp");
  DTensor A = distribute_tensor(x, tp, {Replicate()}), S = distribute_tensor(w, tp, {Replicate()});
  A.requires_grad_(true);
  PlacementsList derived;
  local_map([](const Tensor& a, const Tensor& s) { return matmul(a, s); },
            {.out_placements = one(Replicate()),
             .in_placements = PlacementsList{Placements{Replicate()}, Placements{Replicate()}},
             .derived_in_grad_placements = &derived})(A, S);
  REQUIRE(derived == PlacementsList{Placements{Replicate()}, Placements{Replicate()}});
}

namespace {

std::shared_ptr<nn::UnaryModule> small_gpt() {
  manual_seed(21);
  auto m = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 3,
                                                   .n_embd = 12});
  m->to(kFloat64);
  return m;
}

// One forward and backward of a parallelized GPT; the gradients gathered to full tensors.
std::vector<Tensor> gpt_gradients(const DeviceMesh& mesh, const std::string& dp, const std::string& tp, bool derive,
                                  dist::PlacementsList* derived, std::vector<Placements>* declared) {
  auto model = par::parallelize(small_gpt(), mesh, dp, tp);
  model->derive_grad_placements = derive;
  Generator gen(33);
  Tensor tokens = randint(0, 11, {3, 7}, dtype(kInt64), &gen);
  Tensor x = tokens.narrow(1, 0, 6).contiguous(), y = tokens.narrow(1, 1, 6).contiguous();
  DTensor out(model->forward(x));
  Tensor logits = out.to_local();
  par::global_mean(cross_entropy(logits.reshape({-1, 11}), model->local_batch(y).reshape({-1}), "sum"), y.numel())
      .backward();
  std::vector<Tensor> grads;
  for (const Tensor& p : model->parameters()) {
    grads.push_back(DTensor(p.grad()).full_tensor());
    if (declared) declared->push_back(DTensor(p.grad()).placements());
  }
  if (derived) *derived = model->derived_grad_placements;
  return grads;
}

}  // namespace

TEST_CASE("parallel styles: the GPT typechecks under TP, DP and both; derived grad placements give today's") {
  std::vector<std::tuple<std::vector<int64_t>, std::string, std::string>> setups = {
      {{world_size()}, "dp", ""}, {{world_size()}, "", "tp"}};
  if (world_size() % 2 == 0) setups.push_back({{2, world_size() / 2}, "dp", "tp"});
  for (const auto& [shape, dp, tp] : setups) {
    std::vector<std::string> names;
    if (!dp.empty()) names.push_back(dp);
    if (!tp.empty()) names.push_back(tp);
    DeviceMesh mesh = init_device_mesh(shape, names);
    INFO(mesh.to_string());
    std::vector<Tensor> declared = gpt_gradients(mesh, dp, tp, false, nullptr, nullptr);
    dist::PlacementsList derived;
    std::vector<Tensor> from_types = gpt_gradients(mesh, dp, tp, true, &derived, nullptr);
    REQUIRE(declared.size() == from_types.size());
    for (size_t i = 0; i < declared.size(); ++i) require_close(from_types[i], declared[i], 1e-12);
    // The derived placements are the declared ones: the batch's, then Partial on dp for every
    // parameter and each parameter's own placement on tp.
    auto model = par::parallelize(small_gpt(), mesh, dp, tp);
    REQUIRE(derived.size() == model->parameters().size() + 1);
    Placements batch_grad = model->input_placements();
    REQUIRE(derived[0] == batch_grad);
    size_t i = 1;
    for (const Tensor& p : model->parameters()) {
      Placements expected = DTensor(p).placements();
      if (!dp.empty()) expected[static_cast<size_t>(mesh.dim_index(dp))] = Partial();
      REQUIRE(derived[i++] == expected);
    }
  }
}

TEST_CASE("parallel styles: a column-parallel Linear that forgets copy_to_parallel_region raises at its linear") {
  DeviceMesh mesh = named_mesh("tp");
  auto model = par::tensor_parallel(small_gpt(), mesh);
  auto gpt = std::dynamic_pointer_cast<nn::GPT>(model->module);
  auto block = std::dynamic_pointer_cast<nn::TransformerBlock>((*gpt->blocks)[1]);
  nn::Linear* fc1 = block->mlp->fc1.get();
  fc1->parallel_forward = [fc1](const Tensor& x) { return linear(x, fc1->weight, fc1->bias); };  // the bug
  Tensor tokens = zeros({2, 6}, dtype(kInt64));
  require_error([&] { model->forward(tokens); }, "local_map: linear on mesh dim \"tp\" mixes an Invariant operand");
}
