// test_mpi_dtensor: DTensor under MPI. Inputs come from seeded generators, so every rank can compute
// the full expected tensor alone; shards are checked against a slicing loop written here.
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <cmath>
#include <functional>

#include "autograd/engine.h"
#include "distributed/comm_debug.h"
#include "distributed/dtensor.h"
#include "distributed/redistribute.h"
#include "distributed/redistribute_plan.h"
#include "distributed/runtime.h"
#include "ops/binary.h"
#include "distributed/sharding.h"
#include "framework/factories.h"

using namespace weft;
using namespace weft::dist;

namespace {

Tensor seeded(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, kFloat64, &gen);
}

// The block [offset, offset + shape) of `full`, by index arithmetic on its values.
std::vector<double> slice_ref(const Tensor& full, const Shape& shape, const Shape& offset) {
  std::vector<double> v = full.to_vector<double>(), out;
  const Shape& fs = full.shape();
  int64_t n = numel_of(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t f = 0;
    for (size_t d = 0; d < shape.size(); ++d) f = f * fs[d] + offset[d] + idx[d];
    out.push_back(v[static_cast<size_t>(f)]);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

bool close(const std::vector<double>& a, const std::vector<double>& b, double tol = 1e-12) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > tol * (1 + std::abs(b[i]))) return false;
  return true;
}

// This rank's share of `full` under a Partial(op) mesh dim, by its coordinate c of k: the shares
// reduce back to `full` exactly (up to roundoff for sum/avg).
Tensor partial_share(const Tensor& full, ReduceOp op, int64_t c, int64_t k) {
  std::vector<double> v = full.to_vector<double>();
  std::vector<std::vector<double>> noise;
  for (int64_t r = 0; r < k; ++r) noise.push_back(seeded(full.shape(), 1000 + static_cast<uint64_t>(r)).to_vector<double>());
  for (size_t i = 0; i < v.size(); ++i) {
    double rest = 0;
    for (int64_t r = 1; r < k; ++r) rest += noise[static_cast<size_t>(r)][i];
    double x = v[i];
    switch (op) {
      case ReduceOp::Sum: v[i] = c == 0 ? x - rest : noise[static_cast<size_t>(c)][i]; break;
      case ReduceOp::Avg: v[i] = k * (c == 0 ? x - rest : noise[static_cast<size_t>(c)][i]); break;
      case ReduceOp::Max: v[i] = c == k - 1 ? x : x - 1 - std::abs(noise[static_cast<size_t>(c)][i]); break;
      default: v[i] = c == k - 1 ? x : x + 1 + std::abs(noise[static_cast<size_t>(c)][i]); break;
    }
  }
  return tensor(v, full.shape(), kFloat64);
}

// A DTensor holding `full` with `placements` (at most one Partial mesh dim), made without
// communication from what every rank can compute.
DTensor make_input(const Tensor& full, const DeviceMesh& mesh, const Placements& placements) {
  std::vector<int64_t> coord = *mesh.get_coordinate();
  Tensor base = full;
  for (size_t i = 0; i < placements.size(); ++i)
    if (placements[i].is_partial()) base = partial_share(full, placements[i].reduce_op(), coord[i], mesh.size(i));
  auto [shape, offset] = local_shape_and_offset(full.shape(), mesh.shape(), coord, placements);
  return make_dtensor(tensor(slice_ref(base, shape, offset), shape, kFloat64), mesh, placements, full.shape());
}

// Checks a non-Partial DTensor holds exactly its shard of `full`.
void check_shard(const DTensor& d, const Tensor& full) {
  auto [shape, offset] = local_shape_and_offset(full.shape(), d.device_mesh().shape(),
                                                *d.device_mesh().get_coordinate(), d.placements());
  const Tensor& local = d.spec().local;
  CHECK(local.shape() == shape);
  CHECK(d.shape() == full.shape());
  CHECK(close(local.to_vector<double>(), slice_ref(full, shape, offset)));
}

using weft::test::error_of;

int64_t expected_count(const RedistributePlan& plan, CollectiveKind kind) {
  int64_t n = 0;
  for (const RedistributeStep& s : plan) n += step_collective(s) == kind;
  return n;
}

void check_counts(const CommDebugMode& comm, const RedistributePlan& plan) {
  INFO(comm.table());
  CHECK(comm.total_count() == count_collectives(plan));
  for (CollectiveKind kind : {CollectiveKind::AllGather, CollectiveKind::AllReduce, CollectiveKind::ReduceScatter,
                              CollectiveKind::AllToAll})
    CHECK(comm.count(kind) == expected_count(plan, kind));
}

bool refused(const Placement& from, const Placement& to) { return to.is_partial() && to != from && !from.is_replicate(); }

std::vector<Shape> test_shapes(int64_t w) {
  return {Shape{2 * w, w}, Shape{3 * w + 1, 3}, Shape{std::max<int64_t>(1, w - 1), 2}};
}

}  // namespace

TEST_CASE("1-D mesh: every (source, target) pair", "[dtensor]") {
  const int64_t w = world_size();
  DeviceMesh mesh({w});
  Placements all{Replicate(), Shard(0), Shard(1), Shard(-1), Partial(), Partial(ReduceOp::Avg),
                 Partial(ReduceOp::Max), Partial(ReduceOp::Min)};
  uint64_t seed = 1;
  for (const Shape& shape : test_shapes(w))
    for (const Placement& from : all)
      for (const Placement& to : all) {
        INFO("shape " << shape << ": " << from.to_string() << " -> " << to.to_string());
        Tensor full = seeded(shape, seed++);
        DTensor x = make_input(full, mesh, {from});
        Placement to_n = normalize({to}, 2)[0];
        Placement from_n = normalize({from}, 2)[0];
        if (refused(from_n, to_n)) {
          CHECK_THAT(error_of([&] { redistribute_internal(x, {to}); }),
                     Catch::Contains("from " + from_n.to_string() + " to " + to_n.to_string() + " is not supported"));
          continue;
        }
        if (to_n.is_partial() && to_n != from_n)
          CHECK_THAT(error_of([&] { x.redistribute({to}); }),
                     Catch::Contains("Can not redistribute from " + from_n.to_string() + " to " + to_n.to_string() +
                                     ", redistributing to Partial is for internal use only"));
        const RedistributePlan& plan = cached_redistribute_plan({from}, {to}, shape, {w});
        x.requires_grad_(true);
        DTensor y;
        {
          CommDebugMode comm;
          y = to_n.is_partial() ? redistribute_internal(x, {to}) : x.redistribute({to});
          check_counts(comm, plan);
        }
        CHECK(y.placements() == Placements{to_n});
        if (!to_n.is_partial()) check_shard(y, full);
        {
          NoGradGuard no_grad;
          CHECK(close(y.full_tensor().to_vector<double>(), full.to_vector<double>()));
        }
        // Backward: the gradient arrives with the target's placements (Partial -> Replicate).
        Placements grad_out = partial_to_replicate({to_n});
        Tensor g_full = seeded(shape, 5000 + seed);
        DTensor gy = make_input(g_full, mesh, grad_out);
        Placements back = redistribute_backward_target({from_n}, grad_out);
        const RedistributePlan& back_plan = cached_redistribute_plan(grad_out, back, shape, {w});
        {
          CommDebugMode comm;
          y.backward(gy);
          check_counts(comm, back_plan);
        }
        REQUIRE(x.grad().is_dtensor());
        DTensor gx(x.grad());
        CHECK(gx.placements() == back);
        CHECK(gx.placements() == Placements{from_n.is_partial() ? Replicate() : from_n});
        check_shard(gx, g_full);
      }
}

TEST_CASE("2-D mesh: nested and mixed placements", "[dtensor]") {
  const int64_t w = world_size();
  if (w % 2 != 0) return;
  DeviceMesh mesh({w / 2, 2});
  std::vector<Placements> sources{{Shard(0), Shard(0)}, {Shard(0), Shard(1)}, {Shard(1), Shard(0)},
                                  {Replicate(), Shard(0)}, {Partial(), Shard(1)}, {Shard(-1), Shard(0)}};
  Placements plain{Replicate(), Shard(0), Shard(1)};
  uint64_t seed = 77;
  for (Shape shape : {Shape{9, 7}, Shape{3, 1}, Shape{8, 4}})
    for (const Placements& src : sources)
      for (const Placement& t0 : plain)
        for (const Placement& t1 : plain) {
          Placements dst{t0, t1};
          INFO("shape " << shape << ": " << to_string(src) << " -> " << to_string(dst));
          Tensor full = seeded(shape, seed++);
          DTensor x = make_input(full, mesh, src);
          x.requires_grad_(true);
          const RedistributePlan& plan = cached_redistribute_plan(src, dst, shape, mesh.shape());
          DTensor y;
          {
            CommDebugMode comm;
            y = x.redistribute(dst);
            check_counts(comm, plan);
          }
          check_shard(y, full);
          {
            NoGradGuard no_grad;
            CHECK(close(y.full_tensor().to_vector<double>(), full.to_vector<double>()));
          }
          Tensor g_full = seeded(shape, 9000 + seed);
          y.backward(make_input(g_full, mesh, dst));
          DTensor gx(x.grad());
          CHECK(gx.placements() == redistribute_backward_target(normalize(src, 2), dst));
          check_shard(gx, g_full);
        }
  // SEMANTICS' example: [S0,S1] -> [S1,S0] is two collectives (all_gather, all_to_all).
  Tensor full = seeded({9, 7}, 3);
  DTensor x = make_input(full, mesh, {Shard(0), Shard(1)});
  CommDebugMode comm;
  DTensor y = x.redistribute({Shard(1), Shard(0)});
  if (w == 4) {
    CHECK(comm.count(CollectiveKind::AllGather) == 1);
    CHECK(comm.count(CollectiveKind::AllToAll) == 1);
    CHECK(comm.total_count() == 2);
  }
  check_shard(y, full);
}

TEST_CASE("from_local", "[dtensor]") {
  const int64_t w = world_size(), r = world_rank();
  DeviceMesh mesh({w});
  SECTION("without shape: even sharding is assumed") {
    Tensor full = seeded({3 * w, 2}, 11);
    Tensor local = tensor(slice_ref(full, {3, 2}, {3 * r, 0}), {3, 2}, kFloat64);
    DTensor d = DTensor::from_local(local, mesh, {Shard(0)});
    CHECK(d.shape() == Shape{3 * w, 2});
    CHECK(d.to_local().is_contiguous());
    CHECK(close(d.full_tensor().to_vector<double>(), full.to_vector<double>()));
    DTensor rep = DTensor::from_local(full, mesh);
    CHECK(rep.placements() == Placements{Replicate()});
    CHECK(rep.shape() == full.shape());
  }
  SECTION("with shape and stride: uneven shards") {
    Shape shape{3 * w + 1, 2};
    Tensor full = seeded(shape, 12);
    auto [ls, off] = local_shape_and_offset(shape, {w}, {r}, {Shard(0)});
    Tensor local = tensor(slice_ref(full, ls, off), ls, kFloat64);
    DTensor d = DTensor::from_local(local, mesh, {Shard(0)}, {.shape = shape, .stride = contiguous_strides(shape)});
    CHECK(d.shape() == shape);
    CHECK(close(d.full_tensor().to_vector<double>(), full.to_vector<double>()));
    CHECK_THAT(error_of([&] { DTensor::from_local(local, mesh, {Shard(0)}, {.shape = shape}); }),
               Catch::Contains("pass both shape and stride"));
    CHECK_THAT(error_of([&] { DTensor::from_local(local, mesh, {Shard(0)}, {.stride = Shape{2, 1}}); }),
               Catch::Contains("pass both shape and stride"));
    CHECK_THAT(error_of([&] { DTensor::from_local(local, mesh, {Shard(0), Replicate()}); }),
               Catch::Contains("one placement per mesh dim (1)"));
  }
  SECTION("run_check: inconsistent metadata and Replicate broadcast") {
    if (w > 1) {
      Tensor odd = zeros({r == 0 ? 2 : 3, 3}, kFloat64);
      CHECK_THAT(error_of([&] { DTensor::from_local(odd, mesh, {Replicate()}, {.run_check = true}); }),
                 Catch::Contains("Inconsistent tensor metadata across ranks"));
    }
    // One rank's local shape disagrees with its shard: every rank raises, none waits in a collective.
    Shape shape{3 * w + 1, 2};
    auto [ls, off] = local_shape_and_offset(shape, {w}, {r}, {Shard(0)});
    if (r == 0) ls[1] = 3;
    std::string err = error_of([&] {
      DTensor::from_local(zeros(ls, kFloat64), mesh, {Shard(0)},
                          {.run_check = true, .shape = shape, .stride = contiguous_strides(shape)});
    });
    CHECK_THAT(err, Catch::Contains(r == 0 ? "the local tensor has shape" : "the local tensor of another rank"));
    Tensor mine = seeded({2, 3}, 100 + static_cast<uint64_t>(r));
    DTensor d = DTensor::from_local(mine, mesh, {Replicate()}, {.run_check = true});
    CHECK(close(d.to_local().to_vector<double>(), seeded({2, 3}, 100).to_vector<double>()));
  }
  SECTION("backward: the local gradient is the shard of the output gradient") {
    Shape shape{3 * w + 1, 2};
    Tensor full = seeded(shape, 13), g = seeded(shape, 14);
    auto [ls, off] = local_shape_and_offset(shape, {w}, {r}, {Shard(0)});
    Tensor local = tensor(slice_ref(full, ls, off), ls, kFloat64).requires_grad_();
    DTensor d = DTensor::from_local(local, mesh, {Shard(0)}, {.shape = shape, .stride = contiguous_strides(shape)});
    Tensor f;
    {
      CommDebugMode comm;
      f = d.full_tensor();
      CHECK(comm.total_count() == (w > 1 ? 1 : 0));
    }
    CommDebugMode comm;
    f.backward(g);
    CHECK(comm.total_count() == 0);  // R -> S(0) is a local chunk
    REQUIRE(local.grad().defined());
    CHECK_FALSE(local.grad().is_dtensor());
    CHECK(close(local.grad().to_vector<double>(), slice_ref(g, ls, off)));
  }
  SECTION("backward of a Partial input: Replicate by default, grad_placements when given") {
    Tensor local = seeded({2, 2}, 15).requires_grad_();
    DTensor d = DTensor::from_local(local, mesh, {Partial()});
    Tensor g = seeded({2, 2}, 16);
    d.backward(make_input(g, mesh, {Replicate()}));
    CHECK(close(local.grad().to_vector<double>(), g.to_vector<double>()));
    Tensor local2 = seeded({2, 2}, 15).requires_grad_();
    DTensor d2 = DTensor::from_local(local2, mesh, {Replicate()}, {.grad_placements = Placements{Partial()}});
    CommDebugMode comm;
    d2.backward(make_input(g, mesh, {Replicate()}));  // R -> P(sum): divided by k, no communication
    CHECK(comm.total_count() == 0);
    std::vector<double> expect = g.to_vector<double>();
    for (double& v : expect) v /= static_cast<double>(w);
    CHECK(close(local2.grad().to_vector<double>(), expect));
  }
  SECTION("backward to a Partial grad_placements from a Shard gradient goes through Replicate") {
    Shape shape{3 * w + 1, 2};
    Tensor g = seeded(shape, 18);
    Tensor local = seeded(shape, 19).requires_grad_();
    DTensor d = DTensor::from_local(local, mesh, {Replicate()}, {.grad_placements = Placements{Partial()}});
    CommDebugMode comm;
    d.backward(make_input(g, mesh, {Shard(0)}));  // S(0) -> R (all_gather), R -> P(sum) (divide by k)
    CHECK(comm.total_count() == (w > 1 ? 1 : 0));
    std::vector<double> expect = g.to_vector<double>();
    for (double& v : expect) v /= static_cast<double>(w);
    CHECK(close(local.grad().to_vector<double>(), expect));
  }
}

TEST_CASE("gradient_to: every gradient's one way to its placements", "[dtensor]") {
  const int64_t w = world_size();
  DeviceMesh mesh({w});
  Shape shape{3 * w + 1, 3};
  Tensor full = seeded(shape, 17);
  SECTION("every pair keeps the value, Partial targets included") {
    Placements all{Shard(0), Shard(1), Replicate(), Partial(), Partial(ReduceOp::Avg), Partial(ReduceOp::Max)};
    for (const Placement& from : all) {
      for (const Placement& to : all) {
        INFO(from.to_string() << " -> " << to.to_string());
        DTensor g = gradient_to(make_input(full, mesh, {from}), Placements{to}, /*async=*/false);
        CHECK(g.placements() == Placements{to});
        if (!to.is_partial()) check_shard(g, full);
        NoGradGuard no_grad;
        CHECK(close(g.full_tensor().to_vector<double>(), full.to_vector<double>()));
      }
    }
  }
  SECTION("async leaves the last collective in flight; the values are right once read") {
    for (bool async : {false, true}) {
      DTensor g = gradient_to(make_input(full, mesh, {Shard(0)}), Placements{Replicate()}, async);
      CHECK((g.spec().local.impl()->pending != nullptr) == (async && w > 1));
      check_shard(g, full);
    }
  }
}

TEST_CASE("to_local, full_tensor and gradient placements", "[dtensor]") {
  const int64_t w = world_size();
  DeviceMesh mesh({w});
  SECTION("to_local(grad_placements=[Partial]) after R -> R costs one all_reduce in backward") {
    Tensor full = seeded({3, 2}, 21);
    DTensor x = make_input(full, mesh, {Replicate()});
    x.requires_grad_(true);
    DTensor y = x.redistribute({Replicate()});
    Tensor local = y.to_local(Placements{Partial()});
    CHECK(local.shares_storage(x.spec().local));  // an alias, no copy
    Tensor g = seeded({3, 2}, 22);
    CommDebugMode comm;
    local.backward(g);
    CHECK(comm.count(CollectiveKind::AllReduce) == (w > 1 ? 1 : 0));
    CHECK(comm.total_count() == (w > 1 ? 1 : 0));
    DTensor gx(x.grad());
    CHECK(gx.placements() == Placements{Replicate()});
    std::vector<double> expect = g.to_vector<double>();
    for (double& v : expect) v *= static_cast<double>(w);
    CHECK(close(gx.spec().local.to_vector<double>(), expect));
  }
  SECTION("a Partial gradient stays Partial; its full_tensor all-reduces") {
    DTensor x = make_input(seeded({4}, 23), mesh, {Replicate()});
    x.requires_grad_(true);
    Tensor g = seeded({4}, 24);
    x.to_local(Placements{Partial()}).backward(g);
    DTensor gx(x.grad());
    CHECK(gx.placements() == Placements{Partial()});
    CommDebugMode comm;
    Tensor total = gx.full_tensor();
    CHECK(comm.count(CollectiveKind::AllReduce) == (w > 1 ? 1 : 0));
    std::vector<double> expect = g.to_vector<double>();
    for (double& v : expect) v *= static_cast<double>(w);
    CHECK(close(total.to_vector<double>(), expect));
  }
  SECTION("two gradients with different placements accumulate into the first's placements") {
    Shape shape{3 * w + 1, 2};
    Tensor full = seeded(shape, 25), g1 = seeded(shape, 26), g2 = seeded(shape, 27);
    DTensor x = make_input(full, mesh, {Shard(0)});
    x.requires_grad_(true);
    DTensor y1 = x.redistribute({Shard(0)});
    DTensor y2 = x.redistribute({Replicate()});
    autograd::backward({y1, y2}, {make_input(g1, mesh, {Shard(0)}), make_input(g2, mesh, {Replicate()})});
    DTensor gx(x.grad());
    CHECK(gx.placements() == Placements{Shard(0)});
    std::vector<double> a = g1.to_vector<double>(), b = g2.to_vector<double>();
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    check_shard(gx, tensor(a, shape, kFloat64));
  }
  SECTION("a second backward adds into the DTensor .grad's shard in place") {
    // Note [In-place gradient accumulation]: the first .grad is kept, its shard summed into.
    Shape shape{3 * w + 1, 2};
    Tensor full = seeded(shape, 31), g1 = seeded(shape, 32), g2 = seeded(shape, 33);
    DTensor x = make_input(full, mesh, {Shard(0)});
    x.requires_grad_(true);
    autograd::backward({x.redistribute({Shard(0)})}, {make_input(g1, mesh, {Shard(0)})});
    const TensorImpl* shard = DTensor(x.grad()).spec().local.impl();
    autograd::backward({x.redistribute({Replicate()})}, {make_input(g2, mesh, {Replicate()})});
    DTensor gx(x.grad());
    CHECK(gx.placements() == Placements{Shard(0)});
    CHECK(gx.spec().local.impl() == shard);
    std::vector<double> sum = g1.to_vector<double>(), b = g2.to_vector<double>();
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += b[i];
    check_shard(gx, tensor(sum, shape, kFloat64));
  }
  SECTION("leaves whose DTensor gradients share one shard keep apart as they accumulate") {
    // add passes one local gradient to both to_local aliases, so both .grads start on one shard.
    Shape shape{3 * w + 1, 2};
    Tensor g = seeded(shape, 34);
    DTensor x = make_input(seeded(shape, 35), mesh, {Shard(0)}), y = make_input(seeded(shape, 36), mesh, {Shard(0)});
    x.requires_grad_(true);
    y.requires_grad_(true);
    DTensor gd = make_input(g, mesh, {Shard(0)});
    for (int round = 1; round <= 3; ++round) {
      Tensor local_sum = weft::add(x.to_local(), y.to_local());
      local_sum.backward(gd.spec().local);
      std::vector<double> expected = g.to_vector<double>();
      for (double& v : expected) v *= round;
      INFO("round " << round);
      check_shard(DTensor(x.grad()), tensor(expected, shape, kFloat64));
      check_shard(DTensor(y.grad()), tensor(expected, shape, kFloat64));
    }
    CHECK_FALSE(DTensor(x.grad()).spec().local.shares_storage(DTensor(y.grad()).spec().local));
  }
  SECTION("gradient addition goes through Replicate where a direct step is refused") {
    Shape shape{3 * w + 1, 2};
    Tensor a = seeded(shape, 29), b = seeded(shape, 30);
    std::vector<double> sum = a.to_vector<double>(), bv = b.to_vector<double>();
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += bv[i];
    for (Placements pair : {Placements{Partial(), Shard(0)}, Placements{Partial(), Partial(ReduceOp::Max)},
                            Placements{Shard(1), Partial()}, Placements{Replicate(), Shard(0)}}) {
      INFO(to_string(pair));
      Tensor added = autograd::accumulate_gradients(make_input(a, mesh, {pair[0]}), make_input(b, mesh, {pair[1]}));
      DTensor d(added);
      CHECK(d.placements() == Placements{pair[0]});
      NoGradGuard no_grad;
      CHECK(close(d.full_tensor().to_vector<double>(), sum));
    }
    CHECK_THAT(error_of([&] { autograd::accumulate_gradients(make_input(a, mesh, {Replicate()}), a); }),
               Catch::Contains("can not add a DTensor gradient and a plain tensor gradient"));
  }
  SECTION("printing") {
    DTensor x = make_input(seeded({2, 3}, 28), mesh, {Shard(1)});
    std::string s = x.to_string();
    CHECK_THAT(s, Catch::Contains("placements=(S(1),)"));
    CHECK_THAT(s, Catch::Contains("DeviceMesh("));
    CHECK_THAT(s, Catch::Contains("shape=[2, 3]"));
    CHECK_THROWS_AS(DTensor(seeded({2}, 1)), weft::Error);
  }
}

TEST_CASE("distribute_tensor", "[dtensor]") {
  const int64_t w = world_size(), r = world_rank();
  DeviceMesh mesh({w});
  Shape shape{3 * w + 1, 3};
  // Every rank holds different data; all end up with their piece of the source rank's tensor.
  for (int64_t src = 0; src < w; ++src)
    for (const Placement& p : {Shard(0), Shard(1), Replicate()}) {
      Tensor mine = seeded(shape, 300 + static_cast<uint64_t>(r));
      DTensor d = distribute_tensor(mine, mesh, {p}, src);
      check_shard(d, seeded(shape, 300 + static_cast<uint64_t>(src)));
    }
  Tensor leaf = seeded(shape, 31).requires_grad_();
  DTensor d = distribute_tensor(leaf, mesh, {Shard(0)});
  CHECK(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK_THAT(error_of([&] { distribute_tensor(leaf, mesh, {Partial()}); }), Catch::Contains("Partial"));
  CHECK_THAT(error_of([&] { distribute_tensor(leaf, mesh, {Shard(0)}, w); }), Catch::Contains("is not in the mesh"));
  // In-place ops, with their view rebasing (CopySlices), stay plain-tensor only: a DTensor is refused
  // whole, and its base and history are left as they were.
  DTensor moved = d.redistribute({Replicate()});
  auto history = moved.grad_fn();
  CHECK_THAT(error_of([&] { moved.mul_(2.0); }), Catch::Contains("plain tensors only"));
  CHECK_THAT(error_of([&] { moved.zero_(); }), Catch::Contains("plain tensors only"));
  CHECK(moved.grad_fn() == history);
  if (w % 2 == 0) {
    DeviceMesh mesh2({w / 2, 2});
    for (int64_t src = 0; src < w; ++src) {
      Tensor mine = seeded(shape, 400 + static_cast<uint64_t>(r));
      DTensor d2 = distribute_tensor(mine, mesh2, {Shard(0), Shard(1)}, src);
      check_shard(d2, seeded(shape, 400 + static_cast<uint64_t>(src)));
    }
  }
}

TEST_CASE("debug mode: ranks disagreeing on placements raise on every rank, naming both", "[debug]") {
  int64_t n = world_size();
  int me = world_rank();
  if (n < 2) return;
  DeviceMesh mesh({n});
  set_debug_collectives(true);
  Tensor t = ones({2 * n, 3});
  WEFT_REQUIRE_ERROR(distribute_tensor(t, mesh, {me == 1 ? Shard(1) : Shard(0)}),
                     Catch::Contains("distribute_tensor on DeviceMesh") &&
                         Catch::Contains("rank 1 has placements (S(1),) of shape [" + std::to_string(2 * n) + ", 3]") &&
                         Catch::Contains("rank 0 has placements (S(0),)"));
  DTensor x = distribute_tensor(t, mesh, {Shard(0)});
  WEFT_REQUIRE_ERROR(x.redistribute({me == 1 ? Shard(1) : Replicate()}),
                     Catch::Contains("redistribute on DeviceMesh") &&
                         Catch::Contains("rank 1 has placements (S(0),) -> (S(1),)") &&
                         Catch::Contains("rank 0 has placements (S(0),) -> (R,)"));
  // Agreeing ranks pass, and get the right values.
  REQUIRE(x.redistribute({Replicate()}).to_local().sum().item<float>() == 6 * n);
  set_debug_collectives(false);
}
