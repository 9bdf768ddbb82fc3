// local_map under mpirun: PyTorch's own local_map cases, ported, plus errors and parallel MLPs.
#include <catch2/catch.hpp>

#include "distributed/collectives.h"
#include "distributed/comm_debug.h"
#include "distributed/local_map.h"
#include "distributed/runtime.h"
#include "weft.h"
#include "tests/tensor_test_util.h"
#include "tests/test_util.h"

using namespace weft;
using namespace weft::dist;

namespace {

using test::seeded_randn;  // the same tensor on every rank

DeviceMesh world_mesh() { return DeviceMesh({static_cast<int64_t>(world_size())}); }

void require_close(const Tensor& actual, const Tensor& expected, double tol = 1e-9) {
  REQUIRE(actual.shape() == expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(e[i]).margin(tol));
}

Tensor mm_body(const Tensor& a, const Tensor& b) { return matmul(a, b); }

}  // namespace

TEST_CASE("local_map 1: all_reduce of a sharded matmul is Replicate and costs one collective") {
  DeviceMesh mesh = world_mesh();
  Tensor x = seeded_randn({16, 8}, 1), w = seeded_randn({8, 12}, 2);
  int64_t k = world_size();
  if (8 % k != 0) return;  // PyTorch's case needs the shared dim to divide
  DTensor X = distribute_tensor(x, mesh, {Shard(1)});
  DTensor W = distribute_tensor(w, mesh, {Shard(0)});
  auto body = [](const DeviceMesh& m, const Tensor& a, const Tensor& b) {
    return funcol::all_reduce(matmul(a, b), ReduceOp::Sum, m);
  };
  LocalMapOptions options{.out_placements = {Placements{Replicate()}},
                          .in_placements = PlacementsList{std::nullopt, Placements{Shard(1)}, Placements{Shard(0)}}};
  SECTION("called directly") {
    CommDebugMode comm;
    DTensor Y = local_map(body, options)(mesh, X, W);
    REQUIRE(comm.total_count() == 1);
    REQUIRE(Y.placements() == Placements{Replicate()});
    require_close(Y.to_local(), matmul(x, w));
  }
  SECTION("through the reusable wrapper, twice") {
    auto wrapped = local_map(body, options);
    for (int i = 0; i < 2; ++i) {
      CommDebugMode comm;
      DTensor Y = wrapped(mesh, X, W);
      REQUIRE(comm.total_count() == 1);
      require_close(Y.to_local(), matmul(x, w));
    }
  }
}

TEST_CASE("local_map 2: a bool result with out_placements None comes back as a plain bool") {
  DeviceMesh mesh = world_mesh();
  DTensor X = distribute_tensor(seeded_randn({4, 4}, 3), mesh, {Replicate()});
  DTensor Y = distribute_tensor(seeded_randn({4, 4}, 4), mesh, {Replicate()});
  auto body = [](const Tensor& a, const Tensor& b, const DeviceMesh& m) {
    Tensor eq = from_vector<int64_t>({equal(a, b) ? 1 : 0});
    Tensor gathered = funcol::all_gather(eq, 0, m);
    return all(gathered.to(kBool)).item<bool>();
  };
  CommDebugMode comm;
  bool same = local_map(body, {.out_placements = {std::nullopt}})(X, Y, mesh);
  REQUIRE_FALSE(same);
  REQUIRE(comm.total_count() == 1);
}

TEST_CASE("local_map 3: without DTensor arguments the result is returned as func returned it") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({1, 4}, 10 + static_cast<uint64_t>(world_rank()));
  Tensor w = seeded_randn({4, 4}, 5);
  auto body = [](const DeviceMesh& m, const Tensor& a, const Tensor& b) { return funcol::all_gather(matmul(a, b), 0, m); };
  CommDebugMode comm;
  Tensor y = local_map(body, {.out_placements = {Placements{Shard(0)}},
                              .in_placements = PlacementsList{std::nullopt, Placements{Shard(0)}, Placements{Replicate()}}})(
      mesh, x, w);
  REQUIRE_FALSE(y.is_dtensor());
  REQUIRE(comm.total_count() == 1);
  REQUIRE(comm.count(CollectiveKind::AllGather) == 1);
  TensorList rows;
  for (int64_t r = 0; r < k; ++r) rows.push_back(seeded_randn({1, 4}, 10 + static_cast<uint64_t>(r)));
  require_close(y, matmul(cat(rows, 0), w));
}

TEST_CASE("local_map 4: row-sharded matmul keeps S(0); even_shards exchanges nothing") {
  DeviceMesh mesh = world_mesh();
  Tensor x = seeded_randn({16, 8}, 6), w = seeded_randn({8, 12}, 7);
  DTensor X = distribute_tensor(x, mesh, {Shard(0)});
  DTensor W = distribute_tensor(w, mesh, {Replicate()});
  for (bool given : {true, false}) {
    LocalMapOptions options{.out_placements = {Placements{Shard(0)}}};
    if (given) options.in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}};
    DTensor Y = local_map(mm_body, options)(X, W);
    REQUIRE(Y.placements() == Placements{Shard(0)});
    REQUIRE(Y.shape() == Shape{16, 12});
    require_close(Y.full_tensor(), matmul(x, w));
  }
  CommDebugMode comm;
  DTensor Y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}}, .even_shards = true})(X, W);
  REQUIRE(comm.total_count() == 0);
  REQUIRE(Y.shape() == Shape{16, 12});
  // Uneven rows: the global shape comes from the control plane's exchange, which is not counted.
  DTensor Xu = distribute_tensor(seeded_randn({2 * world_size() + 1, 8}, 8), mesh, {Shard(0)});
  CommDebugMode uneven;
  DTensor Yu = local_map(mm_body, {.out_placements = {Placements{Shard(0)}}})(Xu, W);
  REQUIRE(uneven.total_count() == 0);
  REQUIRE(Yu.shape() == Shape{2 * world_size() + 1, 12});
}

TEST_CASE("local_map 5: scalars and plain tensors mix with DTensors") {
  DeviceMesh mesh = world_mesh();
  Tensor x = seeded_randn({8, 4}, 8), w = seeded_randn({4, 4}, 9);
  DTensor X = distribute_tensor(x, mesh, {Shard(0)});
  auto scale = [](const Tensor& a, double s) { return mul(a, s); };
  DTensor Y = local_map(scale, {.out_placements = {Placements{Shard(0)}},
                                .in_placements = PlacementsList{Placements{Shard(0)}, std::nullopt}})(X, 2.0);
  require_close(Y.full_tensor(), mul(x, 2.0));
  for (PlacementsList in : {PlacementsList{std::nullopt, std::nullopt},
                            PlacementsList{Placements{Replicate()}, Placements{Shard(0)}}}) {
    Tensor y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}}, .in_placements = in})(x, w);
    REQUIRE_FALSE(y.is_dtensor());
    require_close(y, matmul(x, w));
  }
}

TEST_CASE("local_map 6: a DTensor whose in_placements entry is None is refused") {
  DeviceMesh mesh = world_mesh();
  DTensor X = distribute_tensor(seeded_randn({8, 4}, 11), mesh, {Shard(0)});
  auto call = [&] {
    return local_map([](const Tensor& a) { return a; },
                     {.out_placements = {Placements{Shard(0)}}, .in_placements = PlacementsList{std::nullopt}})(X);
  };
  WEFT_REQUIRE_ERROR(call(), Catch::Contains("expects placements"));
}

TEST_CASE("local_map 7: mismatched input placements are redistributed only when asked") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({8, 8 * k}, 12), w = seeded_randn({8 * k, 8}, 13);
  DTensor X = distribute_tensor(x, mesh, {Shard(0)});
  DTensor W = distribute_tensor(w, mesh, {Shard(1)});
  auto body = [](const Tensor& a, const Tensor& b, const DeviceMesh& m) {
    return funcol::all_reduce(matmul(a, b), ReduceOp::Sum, m);
  };
  LocalMapOptions options{.out_placements = {Placements{Replicate()}},
                          .in_placements = PlacementsList{Placements{Shard(1)}, Placements{Shard(0)}, std::nullopt},
                          .redistribute_inputs = true};
  {
    CommDebugMode comm;
    DTensor Y = local_map(body, options)(X, W, mesh);
    REQUIRE(comm.total_count() == 3);
    REQUIRE(comm.count(CollectiveKind::AllToAll) == 2);
    require_close(Y.to_local(), matmul(x, w), 1e-8);
  }
  options.redistribute_inputs = false;
  WEFT_REQUIRE_ERROR(local_map(body, options)(X, W, mesh),
                      Catch::Contains("mismatched placements") && Catch::Contains("(S(0),)") &&
                          Catch::Contains("(S(1),)") && Catch::Contains("set redistribute_inputs=true"));
}

TEST_CASE("local_map 8: input gradients take the grad placements, with no collective in backward") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({k, 2}, 14), w = seeded_randn({2, 4}, 15);
  // Single-process reference gradients of sum(x @ w).
  Tensor xr = x.detach().requires_grad_(), wr = w.detach().requires_grad_();
  matmul(xr, wr).sum().backward();

  LocalMapOptions options{.out_placements = {Placements{Shard(0)}},
                          .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}},
                          .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()}}};
  SECTION("inputs already placed") {
    DTensor X = distribute_tensor(x, mesh, {Shard(0)}), W = distribute_tensor(w, mesh, {Replicate()});
    X.requires_grad_();
    W.requires_grad_();
    DTensor Y = local_map(mm_body, options)(X, W);
    Tensor loss = Y.to_local().sum();
    CommDebugMode comm;
    loss.backward();
    REQUIRE(comm.total_count() == 0);
    DTensor gx(X.grad()), gw(W.grad());
    REQUIRE(gx.placements() == Placements{Shard(0)});
    REQUIRE(gw.placements() == Placements{Partial()});
    require_close(gx.full_tensor(), xr.grad());
    require_close(gw.full_tensor(), wr.grad());
  }
  SECTION("a Replicate input redistributed on the way in") {
    DTensor X = distribute_tensor(x, mesh, {Replicate()}), W = distribute_tensor(w, mesh, {Replicate()});
    X.requires_grad_();
    W.requires_grad_();
    options.redistribute_inputs = true;
    DTensor Y = local_map(mm_body, options)(X, W);
    Y.to_local().sum().backward();
    require_close(DTensor(X.grad()).full_tensor(), xr.grad());
    require_close(DTensor(W.grad()).full_tensor(), wr.grad());
  }
}

TEST_CASE("local_map 9: mixed meshes, the output lands on device_mesh") {
  if (world_size() != 4) return;
  DeviceMesh mesh1d({4});
  DeviceMesh mesh2d({2, 2});
  Tensor x = seeded_randn({8, 32}, 16), w = seeded_randn({16, 8}, 17);
  DTensor X = distribute_tensor(x, mesh1d, {Shard(1)});
  DTensor W = distribute_tensor(w, mesh2d, {Shard(0), Shard(1)});
  auto body = [](const Tensor& a, const Tensor& b) { return matmul(a, b); };  // (8,8) @ (8,4)
  // The product differs per rank on mesh dim 0 yet is declared Replicate, which the SPMD types
  // refuse (see "local_map types: the bug catalogue"); this case tests the meshes, so types are off.
  DTensor Y = local_map(body, {.out_placements = {Placements{Replicate(), Shard(1)}},
                               .in_placements = PlacementsList{Placements{Shard(1)}, Placements{Shard(0), Shard(1)}},
                               .device_mesh = mesh2d,
                               .check_types = false})(X, W);
  REQUIRE(Y.to_local().shape() == Shape{8, 4});
  REQUIRE(Y.device_mesh() == mesh2d);
  // Each input's gradient lands on its own mesh. d sum(a b) / da[i][j] = sum_k b[j][k], / db[j][k] = sum_i a[i][j].
  X.requires_grad_();
  W.requires_grad_();
  local_map(body, {.out_placements = {Placements{Replicate(), Shard(1)}},
                   .in_placements = PlacementsList{Placements{Shard(1)}, Placements{Shard(0), Shard(1)}},
                   .device_mesh = mesh2d,
                   .check_types = false})(X, W).to_local().sum().backward();
  DTensor gx(X.grad()), gw(W.grad());
  REQUIRE(gx.device_mesh() == mesh1d);
  REQUIRE(gw.device_mesh() == mesh2d);
  Tensor a = X.to_local().detach(), b = W.to_local().detach();
  require_close(gx.to_local(), expand(reshape(b.sum({1}), {1, 8}), {8, 8}));
  require_close(gw.to_local(), expand(reshape(a.sum({0}), {8, 1}), {8, 4}));
}

TEST_CASE("local_map 10: global shapes are exact with uneven shards") {
  DeviceMesh mesh = world_mesh();
  auto twice = [](const Tensor& a) { return mul(a, 2.0); };
  Tensor x = seeded_randn({5, 4}, 18);
  DTensor X = distribute_tensor(x, mesh, {Shard(0)});
  DTensor Y = local_map(twice, {.out_placements = {Placements{Shard(0)}}})(X);
  REQUIRE(Y.shape() == Shape{5, 4});
  require_close(Y.full_tensor(), mul(x, 2.0));
  if (world_size() == 4) {
    DeviceMesh mesh2d({2, 2});
    Tensor z = seeded_randn({9, 5}, 19);
    for (Placements p : {Placements{Shard(0), Shard(1)}, Placements{Shard(0), Shard(0)}}) {
      DTensor Z = distribute_tensor(z, mesh2d, p);
      DTensor out = local_map(twice, {.out_placements = {p}})(Z);
      REQUIRE(out.shape() == Shape{9, 5});
      require_close(out.full_tensor(), mul(z, 2.0));
    }
  }
}

TEST_CASE("local_map errors follow SEMANTICS.md") {
  DeviceMesh mesh = world_mesh();
  DTensor X = distribute_tensor(seeded_randn({8, 4}, 20), mesh, {Shard(0)});
  auto id = [](const Tensor& a, double) { return a; };
  WEFT_REQUIRE_ERROR(local_map(id, {.out_placements = {Placements{Shard(0)}},
                                     .in_placements = PlacementsList{Placements{Shard(0)}}})(X, 1.0),
                      Catch::Contains("in_placements length 1 does not match the number of input args 2"));
  WEFT_REQUIRE_ERROR(local_map(id, {.out_placements = {Placements{Shard(0)}},
                                     .in_grad_placements = PlacementsList{Placements{Shard(0)}}})(X, 1.0),
                      Catch::Contains("in_grad_placements length 1 does not match the number of input args 2"));
  WEFT_REQUIRE_ERROR(local_map(id, {.out_placements = {Placements{Shard(0)}},
                                     .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}}})(X, 1.0),
                      Catch::Contains("Non-Tensor input 1 expects no placements"));
  WEFT_REQUIRE_ERROR(local_map(id, {.out_placements = {Placements{Shard(0)}, Placements{Shard(0)}}})(X, 1.0),
                      Catch::Contains("received 2 but 1 are expected"));
  auto returns_dtensor = [&](const Tensor&) { return Tensor(X); };
  WEFT_REQUIRE_ERROR(local_map(returns_dtensor, {.out_placements = {Placements{Shard(0)}}})(X),
                      Catch::Contains("returned a DTensor"));
  auto returns_bool = [](const Tensor&) { return true; };
  WEFT_REQUIRE_ERROR(local_map(returns_bool, {.out_placements = {Placements{Replicate()}}})(X),
                      Catch::Contains("non-Tensor output 0 expects no placements"));
  // Placement lists of the wrong length for the 1-D mesh are refused in forward, naming the entry.
  auto twice = [](const Tensor& a) { return mul(a, 2.0); };
  WEFT_REQUIRE_ERROR(local_map(twice, {.out_placements = {Placements{Shard(0), Replicate()}}})(X),
                      Catch::Contains("local_map: out_placements 0 (S(0), R) must have one placement per mesh "
                                      "dim (1)"));
  DTensor W = distribute_tensor(seeded_randn({8, 4}, 22), mesh, {Shard(0)});
  W.requires_grad_();
  WEFT_REQUIRE_ERROR(local_map(twice, {.out_placements = {Placements{Shard(0)}},
                                       .in_grad_placements = PlacementsList{Placements{Shard(0), Shard(1)}}})(W),
                      Catch::Contains("local_map: in_grad_placements 0 (S(0), S(1)) must have one placement per "
                                      "mesh dim (1)"));
}

TEST_CASE("local_map under no-grad records nothing") {
  DeviceMesh mesh = world_mesh();
  DTensor X = distribute_tensor(seeded_randn({8, 4}, 21), mesh, {Shard(0)});
  X.requires_grad_();
  NoGradGuard no_grad;
  DTensor Y = local_map([](const Tensor& a) { return mul(a, 3.0); }, {.out_placements = {Placements{Shard(0)}}})(X);
  REQUIRE_FALSE(Y.requires_grad());
  REQUIRE(Y.grad_fn() == nullptr);
}

TEST_CASE("local_map: a Megatron tensor-parallel MLP matches single-process gradients") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  int64_t hidden = 4 * k + 2;  // uneven column/row shards when k does not divide
  Tensor x = seeded_randn({6, 5}, 22), w1 = seeded_randn({hidden, 5}, 23), w2 = seeded_randn({5, hidden}, 24);
  // Reference: y = relu(x w1^T) w2^T, loss = sum(y^2).
  Tensor xr = x.detach().requires_grad_(), w1r = w1.detach().requires_grad_(), w2r = w2.detach().requires_grad_();
  Tensor yr = linear(relu(linear(xr, w1r)), w2r);
  mul(yr, yr).sum().backward();

  DTensor X = distribute_tensor(x, mesh, {Replicate()});
  DTensor W1 = distribute_tensor(w1, mesh, {Shard(0)});  // column parallel: output features
  DTensor W2 = distribute_tensor(w2, mesh, {Shard(1)});  // row parallel: input features
  X.requires_grad_();
  W1.requires_grad_();
  W2.requires_grad_();
  auto mlp = [](const Tensor& a, const Tensor& u, const Tensor& v, const DeviceMesh& m) {
    Tensor h = relu(linear(funcol::copy_to_parallel_region(a, m), u));
    return funcol::reduce_from_parallel_region(linear(h, v), m);
  };
  DTensor Y = local_map(mlp, {.out_placements = {Placements{Replicate()}},
                              .in_placements = PlacementsList{Placements{Replicate()}, Placements{Shard(0)},
                                                              Placements{Shard(1)}, std::nullopt}})(X, W1, W2, mesh);
  require_close(Y.to_local(), yr.detach(), 1e-8);
  Tensor local = Y.to_local();
  mul(local, local).sum().backward();
  require_close(DTensor(W1.grad()).full_tensor(), w1r.grad(), 1e-8);
  require_close(DTensor(W2.grad()).full_tensor(), w2r.grad(), 1e-8);
  require_close(DTensor(X.grad()).full_tensor(), xr.grad(), 1e-8);
}

TEST_CASE("local_map: the body's graph sits on the caller's tape (retain_graph, hooks, the inputs' aliases)") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({2 * k + 1, 3}, 40), w = seeded_randn({3, 4}, 41);  // uneven row shards
  // Reference: y = tanh(x w), loss = sum(y * y); two backwards with retain_graph double the grads.
  Tensor xr = x.detach().requires_grad_(), wr = w.detach().requires_grad_();
  Tensor yr = tanh(matmul(xr, wr));
  Tensor lr = mul(yr, yr).sum();
  lr.backward(Tensor(), /*retain_graph=*/true);
  Tensor hidden_grad_ref = mul(yr.detach(), 2.0);  // d loss / d y
  lr.backward();

  DTensor X = distribute_tensor(x, mesh, {Shard(0)});
  DTensor W = distribute_tensor(w, mesh, {Replicate()});
  X.requires_grad_();
  W.requires_grad_();
  std::vector<Tensor> hooked;  // the body's output gradient, seen by a hook on a tensor inside the body
  std::vector<bool> alias_is_leaf;
  auto body = [&](const Tensor& a, const Tensor& b) {
    alias_is_leaf = {a.is_leaf(), b.is_leaf()};
    Tensor y = tanh(matmul(a, b));
    y.register_hook([&](const Tensor& g) {
      hooked.push_back(g.detach());
      return Tensor();
    });
    return y;
  };
  DTensor Y = local_map(body, {.out_placements = {Placements{Shard(0)}},
                               .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()}}})(X, W);
  // The inputs reach the body as aliases with history (to_local's node); the output leaves through
  // from_local's.
  REQUIRE(alias_is_leaf == std::vector<bool>{false, false});
  REQUIRE(Y.grad_fn()->name() == "FromLocalBackward");
  Tensor local = Y.to_local();
  Tensor loss = mul(local, local).sum();
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  REQUIRE(hooked.size() == 2);
  Tensor rows = distribute_tensor(hidden_grad_ref, mesh, {Shard(0)}).to_local();  // this rank's (maybe empty) rows
  require_close(hooked[0], rows, 1e-12);
  require_close(hooked[1], rows, 1e-12);
  require_close(DTensor(X.grad()).full_tensor(), xr.grad(), 1e-10);
  REQUIRE(DTensor(W.grad()).placements() == Placements{Partial()});
  require_close(DTensor(W.grad()).full_tensor(), wr.grad(), 1e-10);
}

TEST_CASE("local_map: vectors of DTensors in and out, more leaves than local_map keeps inline") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  constexpr size_t n = 6;  // leaves and outputs past local_map's inline records (4)
  std::vector<Tensor> xs, refs;
  std::vector<DTensor> Xs;
  for (size_t i = 0; i < n; ++i) {
    xs.push_back(seeded_randn({2 * k + 1, 2}, 50 + i));  // uneven row shards
    refs.push_back(xs.back().detach().requires_grad_());
    Xs.push_back(distribute_tensor(xs.back(), mesh, {Shard(0)}));
    Xs.back().requires_grad_();
  }
  // out_i = x_i * x_{i+1} (cyclic), so each input feeds two outputs.
  auto body = [](const std::vector<Tensor>& v) {
    std::vector<Tensor> out;
    for (size_t i = 0; i < v.size(); ++i) out.push_back(mul(v[i], v[(i + 1) % v.size()]));
    return out;
  };
  Tensor ref_loss = zeros({}, kFloat64);
  for (const Tensor& o : body(refs)) ref_loss = add(ref_loss, mul(o, o).sum());
  ref_loss.backward();
  std::vector<DTensor> outs = local_map(body, {.out_placements = PlacementsList(n, Placements{Shard(0)})})(Xs);
  REQUIRE(outs.size() == n);
  Tensor loss = zeros({}, kFloat64);
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(outs[i].placements() == Placements{Shard(0)});
    require_close(outs[i].full_tensor(), mul(xs[i], xs[(i + 1) % n]), 1e-12);
    Tensor local = outs[i].to_local();
    loss = add(loss, mul(local, local).sum());
  }
  loss.backward();
  for (size_t i = 0; i < n; ++i) require_close(DTensor(Xs[i].grad()).full_tensor(), refs[i].grad(), 1e-10);
}

TEST_CASE("local_map: gradient communication in backward stays in flight until the gradient is read") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({2 * k + 1, 3}, 25), w = seeded_randn({3, 2}, 26);
  Tensor xr = x.detach().requires_grad_();
  matmul(xr, w).sum().backward();
  DTensor X = distribute_tensor(x, mesh, {Replicate()});
  X.requires_grad_();
  DTensor W = distribute_tensor(w, mesh, {Replicate()});
  // X is redistributed R -> S(0) on the way in; its gradient goes back S(0) -> R (an all_gather).
  DTensor Y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}},
                                  .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}},
                                  .redistribute_inputs = true})(X, W);
  CommDebugMode comm;
  Y.to_local().sum().backward();
  REQUIRE(comm.count(CollectiveKind::AllGather) == (k > 1 ? 1 : 0));
  DTensor gx(X.grad());
  REQUIRE(gx.placements() == Placements{Replicate()});
  if (k > 1) REQUIRE(gx.spec().local.impl()->pending != nullptr);  // started, not yet waited for
  require_close(gx.to_local(), xr.grad());
}

TEST_CASE("local_map: its backward leaves its own gradient collectives in flight") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  const int64_t n = 2 * k + 1, d = 3, m = 3 * k + 1;  // w's columns shard unevenly
  Tensor a = seeded_randn({n, d}, 30), b = seeded_randn({n, d}, 31), w = seeded_randn({d, m}, 32);
  Tensor c = seeded_randn({n, m}, 33);
  // Single-process reference: loss = sum(((a + b) w) * c).
  Tensor ar = a.detach().requires_grad_(), br = b.detach().requires_grad_(), wr = w.detach().requires_grad_();
  mul(matmul(add(ar, br), wr), c).sum().backward();

  DTensor A = distribute_tensor(a, mesh, {Replicate()}), B = distribute_tensor(b, mesh, {Replicate()});
  DTensor W = distribute_tensor(w, mesh, {Shard(1)});
  A.requires_grad_();
  B.requires_grad_();
  W.requires_grad_();
  // A Replicate sum feeding a column-parallel product whose input gradient is Partial: the sum's
  // backward brings it P -> R (an all_reduce) and hands it to both inputs without reading it.
  DTensor H = local_map([](const Tensor& x, const Tensor& y) { return add(x, y); },
                        {.out_placements = {Placements{Replicate()}},
                         .in_placements = PlacementsList{Placements{Replicate()}, Placements{Replicate()}}})(A, B);
  DTensor Y = local_map(mm_body, {.out_placements = {Placements{Shard(1)}},
                                  .in_placements = PlacementsList{Placements{Replicate()}, Placements{Shard(1)}},
                                  .in_grad_placements = PlacementsList{Placements{Partial()}, Placements{Shard(1)}}})(H, W);
  Tensor c_local = distribute_tensor(c, mesh, {Shard(1)}).to_local();
  CommDebugMode comm;
  mul(Y.to_local(), c_local).sum().backward();
  REQUIRE(comm.count(CollectiveKind::AllReduce) == (k > 1 ? 1 : 0));
  REQUIRE(comm.total_count() == (k > 1 ? 1 : 0));
  DTensor ga(A.grad()), gb(B.grad());
  REQUIRE(ga.placements() == Placements{Replicate()});
  if (k > 1) {  // started in the sum's backward, not yet waited for
    REQUIRE(ga.spec().local.impl()->pending != nullptr);
    REQUIRE(gb.spec().local.impl()->pending != nullptr);
  }
  require_close(ga.to_local(), ar.grad());
  require_close(gb.to_local(), br.grad());
  require_close(DTensor(W.grad()).full_tensor(), wr.grad());
}

TEST_CASE("local_map: a plain gradient of a sharded output is the full gradient on every rank") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({3 * k + 1, 2}, 34), w = seeded_randn({2, 4}, 35), g = seeded_randn({3 * k + 1, 4}, 36);
  Tensor xr = x.detach().requires_grad_(), wr = w.detach().requires_grad_();
  matmul(xr, wr).backward(g);
  DTensor X = distribute_tensor(x, mesh, {Shard(0)}), W = distribute_tensor(w, mesh, {Replicate()});
  X.requires_grad_();
  W.requires_grad_();
  DTensor Y = local_map(mm_body, {.out_placements = {Placements{Shard(0)}},
                                  .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}},
                                  .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()}}})(X, W);
  CommDebugMode comm;
  Y.backward(g);  // R -> S(0) is this rank's chunk: no communication
  REQUIRE(comm.total_count() == 0);
  require_close(DTensor(X.grad()).full_tensor(), xr.grad());
  require_close(DTensor(W.grad()).full_tensor(), wr.grad());
}

TEST_CASE("local_map: a 100-step training loop keeps memory flat") {
  DeviceMesh mesh = world_mesh();
  int64_t k = world_size();
  Tensor x = seeded_randn({3 * k + 1, 4}, 27), target = seeded_randn({3 * k + 1, 2}, 28);
  DTensor X = distribute_tensor(x, mesh, {Shard(0)});
  DTensor T = distribute_tensor(target, mesh, {Shard(0)});
  DTensor W = distribute_tensor(seeded_randn({4, 2}, 29), mesh, {Replicate()});
  W.requires_grad_();
  auto step_loss = local_map(
      [](const Tensor& a, const Tensor& w, const Tensor& t) {
        Tensor d = sub(matmul(a, w), t);
        return mul(d, d).sum({1});
      },
      {.out_placements = {Placements{Shard(0)}},
       .in_placements = PlacementsList{Placements{Shard(0)}, Placements{Replicate()}, Placements{Shard(0)}},
       .in_grad_placements = PlacementsList{Placements{Shard(0)}, Placements{Partial()}, Placements{Shard(0)}}});
  uint64_t in_use_at_10 = 0;
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 100; ++step) {
    DTensor per_row = step_loss(X, W, T);
    Tensor loss = per_row.to_local().sum();
    loss.backward();
    Tensor g = DTensor(W.grad()).full_tensor();  // P(sum) -> R: one all_reduce
    double global_loss = funcol::all_reduce(loss.detach(), ReduceOp::Sum, mesh).item<double>();
    if (step == 0) first_loss = global_loss;
    last_loss = global_loss;
    {
      NoGradGuard no_grad;
      Tensor local = DTensor(W).spec().local;  // shares the shard's storage
      local.sub_(g, 0.01);
    }
    W.mutable_grad() = Tensor();
    // Measured at the same point of the loop each time, while the step's tensors are alive.
    if (step == 10) in_use_at_10 = allocator::stats().bytes_in_use;
    if (step == 99) REQUIRE(allocator::stats().bytes_in_use == in_use_at_10);
  }
  REQUIRE(last_loss < 0.5 * first_loss);
}

TEST_CASE("local_map: in debug mode, ranks disagreeing on in or out placements raise naming both", "[debug]") {
  int64_t k = world_size();
  if (k < 2) return;
  DeviceMesh mesh = world_mesh();
  int me = world_rank();
  DTensor X = distribute_tensor(seeded_randn({2 * k, 3}, 40), mesh, {Shard(0)});
  DTensor W = distribute_tensor(seeded_randn({3, 2}, 41), mesh, {Replicate()});
  set_debug_collectives(true);
  Placements out = me == 1 ? Placements{Replicate()} : Placements{Shard(0)};
  WEFT_REQUIRE_ERROR(local_map(mm_body, {.out_placements = {out}})(X, W),
                     Catch::Contains("local_map on DeviceMesh") &&
                         Catch::Contains("rank 1 has in_placements None, out_placements [(R,)]") &&
                         Catch::Contains("rank 0 has in_placements None, out_placements [(S(0),)]"));
  PlacementsList in{Placements{me == 1 ? Replicate() : Shard(0)}, Placements{Replicate()}};
  WEFT_REQUIRE_ERROR(local_map(mm_body, {.out_placements = {Placements{Shard(0)}}, .in_placements = in,
                                         .redistribute_inputs = true})(X, W),
                     Catch::Contains("rank 1 has in_placements [(R,), (R,)]") &&
                         Catch::Contains("rank 0 has in_placements [(S(0),), (R,)]"));
  set_debug_collectives(false);
}
