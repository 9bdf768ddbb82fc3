// test_mpi_collectives: runtime, DeviceMesh, every functional collective (sync, async, gradients),
// CommDebugMode and the debug-mode mismatch check, against results each rank computes alone.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <numeric>
#include <thread>
#include <chrono>

#include "distributed/collectives.h"
#include "distributed/comm_debug.h"
#include "distributed/control_plane.h"
#include "distributed/sharding.h"
#include "distributed/device_mesh.h"
#include "distributed/runtime.h"
#include "distributed/watchdog.h"
#include "framework/copy.h"
#include "framework/factories.h"
#include "tests/test_util.h"

using namespace weft;
using namespace weft::dist;

namespace {

// A dense row-major reference value: shape + values, with the index arithmetic done by hand.
struct Dense {
  Shape shape;
  std::vector<double> v;
};
int64_t flat(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
  return f;
}
std::vector<int64_t> unflat(const Shape& s, int64_t f) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = f % s[d];
    f /= s[d];
  }
  return idx;
}
Dense narrow_ref(const Dense& x, int64_t dim, int64_t start, int64_t len) {
  Dense out{x.shape, {}};
  out.shape[dim] = len;
  for (int64_t f = 0; f < numel_of(out.shape); ++f) {
    auto idx = unflat(out.shape, f);
    idx[dim] += start;
    out.v.push_back(x.v[flat(x.shape, idx)]);
  }
  return out;
}
Dense cat_ref(const std::vector<Dense>& parts, int64_t dim) {
  Dense out{parts[0].shape, {}};
  out.shape[dim] = 0;
  for (const Dense& p : parts) out.shape[dim] += p.shape[dim];
  out.v.resize(numel_of(out.shape));
  int64_t at = 0;
  for (const Dense& p : parts) {
    for (int64_t f = 0; f < numel_of(p.shape); ++f) {
      auto idx = unflat(p.shape, f);
      idx[dim] += at;
      out.v[flat(out.shape, idx)] = p.v[f];
    }
    at += p.shape[dim];
  }
  return out;
}
Dense reduce_ref(const std::vector<Dense>& xs, ReduceOp op) {
  Dense out = xs[0];
  for (size_t r = 1; r < xs.size(); ++r)
    for (size_t i = 0; i < out.v.size(); ++i) {
      double a = out.v[i], b = xs[r].v[i];
      switch (op) {
        case ReduceOp::Sum:
        case ReduceOp::Avg: out.v[i] = a + b; break;
        case ReduceOp::Max: out.v[i] = std::max(a, b); break;
        case ReduceOp::Min: out.v[i] = std::min(a, b); break;
        case ReduceOp::Product: out.v[i] = a * b; break;
      }
    }
  if (op == ReduceOp::Avg)
    for (double& x : out.v) x /= static_cast<double>(xs.size());
  return out;
}

// Rank w's deterministic values; small so that products stay exact-ish.
Dense values(int w, const Shape& shape, int salt, DType dt) {
  Dense d{shape, {}};
  for (int64_t i = 0; i < numel_of(shape); ++i) {
    int64_t v = (w * 31 + i * 7 + salt * 13) % 11 - 5;
    if (dt == kBool) d.v.push_back(v > 0 ? 1 : 0);
    else if (is_floating(dt)) d.v.push_back(static_cast<double>(v) * 0.25 + (v == 0 ? 1.5 : 0));
    else d.v.push_back(static_cast<double>(v));
  }
  return d;
}
// A tensor holding d; non-contiguous (a transposed view) when asked and 2-D.
Tensor to_tensor(const Dense& d, DType dt, bool strided = false) {
  if (!strided || d.shape.size() != 2) return tensor(d.v, d.shape, dtype(dt));
  std::vector<double> tv(d.v.size());
  int64_t a = d.shape[0], b = d.shape[1];
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j) tv[j * a + i] = d.v[i * b + j];
  Tensor base = tensor(tv, Shape{b, a}, dtype(dt));
  return weft::detail::make_alias(base, Shape{a, b}, Shape{1, a}, 0);
}
void require_equal(const Tensor& t, const Dense& d, double tol = 1e-9) {
  REQUIRE(t.shape() == d.shape);
  auto got = t.to_vector<double>();
  REQUIRE(got.size() == d.v.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << " of shape " << d.shape);
    REQUIRE(std::abs(got[i] - d.v[i]) <= tol * (1 + std::abs(d.v[i])));
  }
}

// The meshes every collective runs on: 1-D over the world, and 2-D when the world allows.
struct MeshCase {
  std::vector<int64_t> shape;
  DeviceMesh mesh;
};
std::vector<MeshCase> meshes() {
  int n = world_size();
  std::vector<MeshCase> out;
  out.push_back({{n}, DeviceMesh({n}, {"x"})});
  if (n == 4) out.push_back({{2, 2}, DeviceMesh({2, 2}, {"dp", "tp"})});
  if (n == 2) {
    out.push_back({{1, 2}, DeviceMesh({1, 2}, {"dp", "tp"})});
    out.push_back({{2, 1}, DeviceMesh({2, 1}, {"dp", "tp"})});
  }
  if (n == 1) out.push_back({{1, 1}, DeviceMesh({1, 1}, {"dp", "tp"})});
  return out;
}
// World ranks of the group along mesh dim d through this rank (row-major default ranks), computed
// by hand, and this rank's index in it.
std::vector<int> group(const std::vector<int64_t>& shape, int d) {
  auto me = unflat(to_shape(shape), world_rank());
  std::vector<int> g;
  for (int64_t i = 0; i < shape[d]; ++i) {
    auto c = me;
    c[d] = i;
    g.push_back(static_cast<int>(flat(to_shape(shape), c)));
  }
  return g;
}
int local_index(const std::vector<int64_t>& shape, int d) { return static_cast<int>(unflat(to_shape(shape), world_rank())[d]); }

// Rank-dependent, possibly zero sizes along the gather dim.
int64_t uneven_size(int local) { return (local + 2) % 3; }

double dot(const Tensor& a, const Dense& b) {
  auto va = a.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * b.v[i];
  return s;
}
double world_sum(double v) {
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return out;
}

}  // namespace

TEST_CASE("runtime: world, MPI errors", "[runtime]") {
  int n = 0, r = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  REQUIRE(is_initialized());
  REQUIRE(world_size() == n);
  REQUIRE(world_rank() == r);
  try {
    check_mpi(MPI_ERR_COUNT, "MPI_Allreduce (test)", MPI_COMM_WORLD);
    FAIL("check_mpi did not throw");
  } catch (const Error& e) {
    std::string what = e.what();
    REQUIRE(what.find("MPI_Allreduce (test)") != std::string::npos);
    REQUIRE(what.find("MPI_COMM_WORLD") != std::string::npos);
  }
  // MPI errors come back as codes (MPI_ERRORS_RETURN), not aborts: a negative count is refused.
  double v = 0;
  int rc = MPI_Bcast(&v, -1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  REQUIRE(rc != MPI_SUCCESS);
  REQUIRE_THROWS_AS(check_mpi(rc, "MPI_Bcast", MPI_COMM_WORLD), Error);
}

TEST_CASE("DeviceMesh: coordinates, slicing, equality, printing", "[mesh]") {
  int n = world_size(), me = world_rank();
  DeviceMesh m1 = init_device_mesh({n});
  REQUIRE(m1.ndim() == 1);
  REQUIRE(m1.size() == n);
  REQUIRE(m1.get_local_rank(0) == me);
  REQUIRE(m1 == DeviceMesh({n}));
  REQUIRE(m1.hash() == DeviceMesh({n}).hash());
  int size = 0;
  MPI_Comm_size(m1.comm(0), &size);
  REQUIRE(size == n);
  WEFT_REQUIRE_ERROR(m1.dim_index("tp"), Catch::Contains("no mesh dim named 'tp'"));
  REQUIRE_THROWS_AS(DeviceMesh({n + 1}), Error);
  REQUIRE_THROWS_AS(DeviceMesh({n}, {"a", "b"}), Error);
  if (n == 4) {
    DeviceMesh m({2, 2}, {"dp", "tp"});
    REQUIRE(m.to_string() == "DeviceMesh([[0, 1], [2, 3]], mesh_dim_names=(dp, tp))");
    REQUIRE(*m.get_coordinate() == std::vector<int64_t>{me / 2, me % 2});
    DeviceMesh tp = m["tp"], dp = m["dp"];
    REQUIRE(tp.ranks() == std::vector<int>{me / 2 * 2, me / 2 * 2 + 1});
    REQUIRE(dp.ranks() == std::vector<int>{me % 2, me % 2 + 2});
    REQUIRE(tp.get_local_rank(0) == me % 2);
    REQUIRE(tp.dim_names() == std::vector<std::string>{"tp"});
    REQUIRE(tp == DeviceMesh({2}, {}, {me / 2 * 2, me / 2 * 2 + 1}));
    REQUIRE(m != DeviceMesh({4}));
    REQUIRE(m != DeviceMesh({2, 2}, {}, {0, 2, 1, 3}));
    DeviceMesh swapped = m.sub_mesh({"tp", "dp"});
    REQUIRE(swapped.shape() == std::vector<int64_t>{2, 2});
    REQUIRE(swapped.ranks() == std::vector<int>{0, 2, 1, 3});
    // The sub-mesh's communicator is the parent's, and it really is the tp group.
    REQUIRE(tp.comm(0) == m.comm(1));
    int64_t got = 0, mine = me;
    MPI_Allreduce(&mine, &got, 1, MPI_INT64_T, MPI_SUM, tp.comm(0));
    REQUIRE(got == (me / 2 * 2) * 2 + 1);
    REQUIRE(DeviceMesh({2, 2}).to_string() == "DeviceMesh([[0, 1], [2, 3]])");
    // The control plane's mesh-wide all_gather answers in the mesh's own row-major order, for a
    // sub-mesh that names the dims in another order too.
    for (const DeviceMesh& mesh : {m, swapped, m.sub_mesh({"dp", "tp"})}) {
      std::vector<int64_t> got_ranks = dist::detail::mesh_all_gather({me, 10 * me}, mesh, "test");
      std::vector<int64_t> expected;
      for (int r : mesh.ranks()) expected.insert(expected.end(), {r, 10 * r});
      REQUIRE(got_ranks == expected);
    }
    std::vector<int64_t> tp_ranks = dist::detail::mesh_all_gather({me}, tp, "test");
    REQUIRE(tp_ranks == std::vector<int64_t>{me / 2 * 2, me / 2 * 2 + 1});
    int64_t v[2] = {me, -me};
    dist::detail::mesh_max(v, 2, m, "test");
    REQUIRE((v[0] == 3 && v[1] == 0));
  }
  if (n >= 2) {
    // Reversed ranks: local rank of world rank me is n-1-me.
    DeviceMesh rev({n}, {}, [&] { std::vector<int> r; for (int i = n - 1; i >= 0; --i) r.push_back(i); return r; }());
    REQUIRE(rev.get_local_rank(0) == n - 1 - me);
    auto y = funcol::all_gather(tensor({static_cast<double>(me)}, Shape{1}, dtype(kFloat64)), 0, rev);
    for (int i = 0; i < n; ++i) REQUIRE(y.to_vector<double>()[i] == n - 1 - i);
    // A mesh over a subset: the other ranks still construct it and get no communicator.
    DeviceMesh sub({1}, {"solo"}, {1});
    REQUIRE(sub.contains_this_rank() == (me == 1));
    REQUIRE(sub.get_coordinate().has_value() == (me == 1));
    if (me != 1) {
      REQUIRE(sub.comm(0) == MPI_COMM_NULL);
      REQUIRE_THROWS_AS(funcol::all_reduce(ones({2}), ReduceOp::Sum, sub), Error);
    } else {
      require_equal(funcol::all_reduce(ones({2}), ReduceOp::Sum, sub), Dense{{2}, {1, 1}});
    }
  }
}

TEST_CASE("all_reduce: every op and dtype, 1-D and 2-D meshes, contiguous or not", "[collectives]") {
  struct Case { DType dt; ReduceOp op; };
  std::vector<Case> cases = {{kFloat64, ReduceOp::Sum}, {kFloat64, ReduceOp::Avg}, {kFloat64, ReduceOp::Max},
                             {kFloat64, ReduceOp::Min}, {kFloat64, ReduceOp::Product}, {kFloat32, ReduceOp::Sum},
                             {kFloat32, ReduceOp::Avg}, {kInt64, ReduceOp::Sum}, {kInt64, ReduceOp::Max},
                             {kInt64, ReduceOp::Min}, {kInt64, ReduceOp::Product}, {kBool, ReduceOp::Max},
                             {kBool, ReduceOp::Min}};
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d)
      for (const Case& c : cases)
        for (bool strided : {false, true}) {
          INFO("mesh " << mc.mesh << " dim " << d << " dtype " << c.dt << " op " << to_string(c.op));
          Shape shape{3, 2};
          std::vector<Dense> ins;
          for (int w : group(mc.shape, d)) ins.push_back(values(w, shape, 1, c.dt));
          Tensor x = to_tensor(values(world_rank(), shape, 1, c.dt), c.dt, strided);
          Tensor y = funcol::all_reduce(x, c.op, mc.mesh, d);
          REQUIRE(y.dtype() == c.dt);
          require_equal(y, reduce_ref(ins, c.op), c.dt == kFloat32 ? 1e-6 : 1e-12);
        }
  WEFT_REQUIRE_ERROR(funcol::all_reduce(ones({2}, kInt64), ReduceOp::Avg, DeviceMesh({world_size()})),
                      Catch::Contains("avg needs a floating tensor"));
}

// Note [Ring all-reduce for small groups]: on 2-rank groups weft asks Open MPI for its ring
// all-reduce from 4 KB up. Sizes that do not split evenly into the ring's parts, each dtype MPI
// reduces (bfloat16 in float32), sync and async, with the ring and with Open MPI's default: the
// sum the test computes from every rank's values, the same bits on every rank of the group, and
// the same bits either way (with two terms the order cannot matter).
TEST_CASE("all_reduce: the ring on 2-rank groups against the default and the reference sum", "[collectives][ring]") {
  REQUIRE(dist::detail::small_group_ring());
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d)
      for (DType dt : {kFloat32, kFloat64, kInt64, kBFloat16})
        for (int64_t n : {int64_t{1025}, int64_t{4097}, int64_t{65537}})
          for (bool async : {false, true}) {
            INFO("mesh " << mc.mesh << " dim " << d << " dtype " << dt << " n " << n << " async " << async);
            std::vector<Dense> ins;
            for (int w : group(mc.shape, d)) ins.push_back(values(w, {n}, 3, dt));
            Tensor x = to_tensor(values(world_rank(), {n}, 3, dt), dt);
            Tensor got[2];
            for (bool ring : {false, true}) {
              dist::detail::set_small_group_ring(ring);
              got[ring] = dist::detail::all_reduce(x, ReduceOp::Sum, mc.mesh, d, async);
              dist::detail::set_small_group_ring(true);
              require_equal(got[ring], reduce_ref(ins, ReduceOp::Sum), 0);
            }
            REQUIRE(got[0].to_vector<double>() == got[1].to_vector<double>());
            Tensor everyone = dist::detail::all_gather(got[1].reshape({1, n}), 0,
                                                       std::vector<int64_t>(static_cast<size_t>(mc.shape[d]), 1),
                                                       mc.mesh, d);
            for (int64_t r = 1; r < mc.shape[d]; ++r)
              REQUIRE(everyone.select(0, r).to_vector<double>() == everyone.select(0, 0).to_vector<double>());
          }
}

// Note [Wait trace]: every collective issued while tracing is on is recorded once, in order, with
// begin <= wait <= completion on the steady clock and its thread CPU times; a late peer shows as
// the others' wait after their begin. Off, nothing is recorded.
TEST_CASE("wait trace: one event per collective, ordered times, a late peer", "[collectives][watchdog][trace]") {
  DeviceMesh mesh({world_size()});
  Tensor x = ones({8});
  funcol::all_reduce(x, ReduceOp::Sum, mesh);
  REQUIRE(dist::detail::take_wait_trace().empty());
  dist::detail::set_wait_trace(true);
  const double t0 = dist::detail::trace_clock();
  if (world_rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));
  Tensor y = funcol::all_reduce(x, ReduceOp::Sum, mesh);
  Tensor z = dist::detail::all_gather(x, 0, std::vector<int64_t>(static_cast<size_t>(world_size()), 8), mesh, 0,
                                      /*async=*/true);
  z.raw_data();  // waits
  auto events = dist::detail::take_wait_trace();
  dist::detail::set_wait_trace(false);
  if (world_size() == 1) {  // a world of one communicates nothing
    REQUIRE(events.empty());
    return;
  }
  REQUIRE(events.size() == 2);
  REQUIRE(events[0].op.kind == static_cast<int32_t>(CollectiveKind::AllReduce));
  REQUIRE(events[1].op.kind == static_cast<int32_t>(CollectiveKind::AllGather));
  for (const auto& e : events) {
    REQUIRE(t0 <= e.begun);
    REQUIRE(e.begun <= e.waiting);
    REQUIRE(e.waiting <= e.done);
    REQUIRE(e.cpu_begun <= e.cpu_done);
  }
  if (world_rank() != 0) REQUIRE(events[0].done - events[0].begun >= 20e-3);  // waited for rank 0
  REQUIRE(events[0].done <= events[1].begun);
  funcol::all_reduce(x, ReduceOp::Sum, mesh);
  REQUIRE(dist::detail::take_wait_trace().empty());
}

// Every wait policy (Note [Watchdog]) completes a collective whose peers arrive late (the waiting
// ranks spin, then yield or nap, then sleep) with the right values, and counts the time it waited.
TEST_CASE("wait policies: a late peer, the values and the time waited", "[collectives][watchdog]") {
  const dist::detail::WaitPolicy saved = dist::detail::wait_policy();
  DeviceMesh mesh({world_size()});
  const double n = world_size();
  for (dist::detail::WaitPolicy policy : {dist::detail::WaitPolicy{}, dist::detail::WaitPolicy{0, false, true},
                                    dist::detail::WaitPolicy{0, true, true}, dist::detail::WaitPolicy{50e-6, true}}) {
    INFO("spin " << policy.spin << " nap " << policy.nap);
    dist::detail::set_wait_policy(policy);
    const double before = dist::detail::waited_seconds();
    if (world_rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Tensor y = funcol::all_reduce(full({3}, double(world_rank() + 1), kFloat64), ReduceOp::Sum, mesh);
    require_equal(y, Dense{{3}, std::vector<double>(3, n * (n + 1) / 2)}, 0);
    if (world_rank() != 0) REQUIRE(dist::detail::waited_seconds() - before >= 10e-3);
  }
  dist::detail::set_wait_policy(saved);
  REQUIRE_THROWS_WITH(dist::detail::set_wait_policy({-1, false, false}),
                      Catch::Contains("set_wait_policy: expected a spin of 0 to 0.01 s but got -1"));
}

TEST_CASE("all_gather: dims 0, 1 and 2, even and uneven (empty pieces), sizes known or exchanged", "[collectives]") {
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d)
      for (int64_t dim : {0, 1, 2})
        for (bool even : {true, false})
          for (bool pass_sizes : {false, true}) {
            INFO("mesh " << mc.mesh << " dim " << d << " tensor dim " << dim << " even " << even);
            auto g = group(mc.shape, d);
            std::vector<Dense> parts;
            std::vector<int64_t> sizes;
            for (size_t r = 0; r < g.size(); ++r) {
              Shape s{2, 3, 2};
              s[dim] = even ? 2 : uneven_size(static_cast<int>(r));
              sizes.push_back(s[dim]);
              parts.push_back(values(g[r], s, 2, kFloat64));
            }
            const Dense& mine = parts[local_index(mc.shape, d)];
            Tensor x = to_tensor(mine, kFloat64);
            Tensor y = funcol::all_gather(x, dim, mc.mesh, d, pass_sizes ? std::optional(sizes) : std::nullopt);
            require_equal(y, cat_ref(parts, dim));
          }
  // A non-contiguous float32 input.
  DeviceMesh m({world_size()});
  std::vector<Dense> parts;
  for (int w = 0; w < world_size(); ++w) parts.push_back(values(w, Shape{2, 3}, 3, kFloat32));
  require_equal(funcol::all_gather(to_tensor(parts[world_rank()], kFloat32, true), 1, m), cat_ref(parts, 1), 1e-6);
}

TEST_CASE("reduce_scatter: torch.chunk pieces, uneven and fewer rows than ranks, every op", "[collectives]") {
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d) {
      auto g = group(mc.shape, d);
      int64_t k = static_cast<int64_t>(g.size());
      int me = local_index(mc.shape, d);
      for (int64_t n : {k * 3 + 1, k * 2, std::max<int64_t>(k - 1, 1)})
        for (int64_t dim : {0, 1})
          for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min, ReduceOp::Product}) {
            INFO("mesh " << mc.mesh << " dim " << d << " n " << n << " tensor dim " << dim << " op " << to_string(op));
            Shape s{3, 2};
            s[dim] = n;
            std::vector<Dense> ins;
            for (int w : g) ins.push_back(values(w, s, 4, kFloat64));
            Tensor y = funcol::reduce_scatter(to_tensor(values(world_rank(), s, 4, kFloat64), kFloat64, dim == 1), op,
                                              dim, mc.mesh, d);
            auto [size, offset] = dist::chunk_size_and_offset(n, k, me);
            require_equal(y, narrow_ref(reduce_ref(ins, op), dim, offset, size));
          }
    }
}

TEST_CASE("all_to_all: split and concat dims, uneven splits and concat sizes", "[collectives]") {
  struct Case { int64_t split, concat; bool uneven_concat; };
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d)
      for (Case c : {Case{0, 1, false}, Case{1, 0, false}, Case{0, 1, true}, Case{1, 0, true}, Case{0, 0, false},
                     Case{1, 1, false}, Case{2, 1, true}})
        for (bool pass_sizes : {false, true}) {
          auto g = group(mc.shape, d);
          int64_t k = static_cast<int64_t>(g.size());
          int me = local_index(mc.shape, d);
          INFO("mesh " << mc.mesh << " dim " << d << " split " << c.split << " concat " << c.concat);
          int64_t n = k * 3 + 1;  // the split dim, uneven by torch.chunk
          std::vector<Dense> ins;
          std::vector<int64_t> concat_sizes;
          for (size_t r = 0; r < g.size(); ++r) {
            Shape s{2, 2, 2};
            if (c.concat != c.split) s[c.concat] = c.uneven_concat ? uneven_size(static_cast<int>(r)) : 2;
            s[c.split] = n;
            concat_sizes.push_back(s[c.concat]);
            ins.push_back(values(g[r], s, 5, kFloat64));
          }
          auto [size, offset] = dist::chunk_size_and_offset(n, k, me);
          std::vector<Dense> pieces;
          for (const Dense& x : ins) pieces.push_back(narrow_ref(x, c.split, offset, size));
          Tensor y = funcol::all_to_all(to_tensor(ins[me], kFloat64), c.split, c.concat, mc.mesh, d,
                                        pass_sizes ? std::optional(concat_sizes) : std::nullopt);
          require_equal(y, cat_ref(pieces, c.concat));
        }
}

TEST_CASE("reduce_scatter and all_to_all refuse a 0-dim tensor by name, before any communication", "[collectives]") {
  // Every rank raises locally, so nothing is left waiting; the message names the op.
  DeviceMesh mesh({world_size()});
  Tensor scalar = ones({});
  WEFT_REQUIRE_ERROR(funcol::reduce_scatter(scalar, ReduceOp::Sum, 0, mesh),
                      Catch::Contains("reduce_scatter: dimension 0 of a 0-dim tensor"));
  WEFT_REQUIRE_ERROR(funcol::all_to_all(scalar, 0, 0, mesh), Catch::Contains("all_to_all: dimension 0 of a 0-dim tensor"));
  REQUIRE_THROWS_AS(funcol::reduce_scatter_async(scalar, ReduceOp::Sum, -1, mesh), Error);
  // The world still works afterwards.
  require_equal(funcol::all_reduce(ones({2}), ReduceOp::Sum, mesh), Dense{{2}, {1.0 * world_size(), 1.0 * world_size()}});
}

TEST_CASE("broadcast and scatter", "[collectives]") {
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d) {
      auto g = group(mc.shape, d);
      int me = local_index(mc.shape, d);
      for (int64_t src = 0; src < static_cast<int64_t>(g.size()); ++src) {
        INFO("mesh " << mc.mesh << " dim " << d << " src " << src);
        Tensor x = to_tensor(values(world_rank(), Shape{2, 3}, 6, kFloat32), kFloat32, true);
        require_equal(funcol::broadcast(x, src, mc.mesh, d), values(g[src], Shape{2, 3}, 6, kFloat32));
        // src scatters chunks of different sizes (row r has r+... rows, some empty); others pass {}.
        TensorList chunks;
        if (me == src)
          for (size_t r = 0; r < g.size(); ++r)
            chunks.push_back(to_tensor(values(static_cast<int>(r) + 10 * g[src], Shape{uneven_size(static_cast<int>(r)), 2}, 7, kInt64), kInt64));
        Tensor y = funcol::scatter(chunks, src, mc.mesh, d);
        REQUIRE(y.dtype() == kInt64);
        require_equal(y, values(me + 10 * g[src], Shape{uneven_size(me), 2}, 7, kInt64));
      }
    }
}

TEST_CASE("async collectives: same values as sync, idempotent wait, dropped results", "[collectives][async]") {
  int n = world_size(), me = world_rank();
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d) {
      INFO("mesh " << mc.mesh << " dim " << d);
      int64_t k = mc.mesh.size(d);
      Tensor x = to_tensor(values(me, Shape{static_cast<int64_t>(k * 3 + 1), 3}, 8, kFloat64), kFloat64, true);
      Tensor u = to_tensor(values(me, Shape{uneven_size(local_index(mc.shape, d)), 3}, 9, kFloat64), kFloat64);
      Tensor a1 = funcol::all_reduce_async(x, ReduceOp::Avg, mc.mesh, d);
      Tensor a2 = funcol::all_gather_async(u, 0, mc.mesh, d);
      Tensor a3 = funcol::all_gather_async(x, 1, mc.mesh, d);
      Tensor a4 = funcol::reduce_scatter_async(x, ReduceOp::Sum, 0, mc.mesh, d);
      Tensor a5 = funcol::all_to_all_async(x, 0, 1, mc.mesh, d);
      funcol::all_reduce_async(x, ReduceOp::Sum, mc.mesh, d);  // dropped unread: must still complete
      // Computed while the collectives are in flight; all issued in the same order on every rank.
      Tensor s1 = funcol::all_reduce(x, ReduceOp::Avg, mc.mesh, d);
      Tensor s2 = funcol::all_gather(u, 0, mc.mesh, d);
      Tensor s3 = funcol::all_gather(x, 1, mc.mesh, d);
      Tensor s4 = funcol::reduce_scatter(x, ReduceOp::Sum, 0, mc.mesh, d);
      Tensor s5 = funcol::all_to_all(x, 0, 1, mc.mesh, d);
      for (auto [a, s] : {std::pair{a5, s5}, {a4, s4}, {a3, s3}, {a2, s2}, {a1, s1}}) {
        funcol::wait_tensor(a);
        funcol::wait_tensor(a);
        REQUIRE(a.to_vector<double>() == s.to_vector<double>());
        REQUIRE(a.to_vector<double>() == s.to_vector<double>());
      }
    }
  (void)n;
}

namespace {
// Runs y = f(x) with x requiring grad, backward with gradient g (i.e. L = sum(y * g)), returns x.grad.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Dense& x0, const Dense& g, DType dt = kFloat64) {
  Tensor x = to_tensor(x0, dt);
  x.requires_grad_();
  Tensor y = f(x);
  REQUIRE(y.shape() == g.shape);
  y.backward(to_tensor(g, dt));
  REQUIRE(x.grad().defined());
  return x.grad();
}
}  // namespace

TEST_CASE("gradients of the differentiable collectives against single-process results", "[collectives][autograd]") {
  for (const MeshCase& mc : meshes())
    for (int d = 0; d < static_cast<int>(mc.shape.size()); ++d) {
      auto g = group(mc.shape, d);
      int64_t k = static_cast<int64_t>(g.size());
      int me = local_index(mc.shape, d);
      const DeviceMesh& mesh = mc.mesh;
      INFO("mesh " << mesh << " dim " << d);
      SECTION("all_gather (uneven): backward of sum(all_gather(x) * w) is the sum of every rank's w piece") {
        for (int64_t dim : {0, 1}) {
          std::vector<int64_t> sizes;
          for (int64_t r = 0; r < k; ++r) sizes.push_back(uneven_size(static_cast<int>(r)));
          Shape xs{2, 2}, ys{2, 2};
          xs[dim] = sizes[me];
          ys[dim] = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
          int64_t off = std::accumulate(sizes.begin(), sizes.begin() + me, int64_t{0});
          std::vector<Dense> w_pieces;
          for (int w : g) w_pieces.push_back(narrow_ref(values(w, ys, 11, kFloat64), dim, off, sizes[me]));
          Tensor gx = grad_of([&](const Tensor& x) { return funcol::all_gather(x, dim, mesh, d); },
                              values(world_rank(), xs, 10, kFloat64), values(world_rank(), ys, 11, kFloat64));
          require_equal(gx, reduce_ref(w_pieces, ReduceOp::Sum));
        }
      }
      SECTION("reduce_scatter (sum, avg): backward gathers every rank's gradient") {
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg}) {
          int64_t n = k * 3 + 1;
          std::vector<Dense> gs;
          for (int r = 0; r < k; ++r)
            gs.push_back(values(g[r], Shape{static_cast<int64_t>(dist::chunk_size_and_offset(n, k, r).first), int64_t{2}}, 12, kFloat64));
          Dense expected = cat_ref(gs, 0);
          if (op == ReduceOp::Avg)
            for (double& v : expected.v) v /= static_cast<double>(k);
          Tensor gx = grad_of([&](const Tensor& x) { return funcol::reduce_scatter(x, op, 0, mesh, d); },
                              values(world_rank(), Shape{n, 2}, 13, kFloat64), gs[me]);
          require_equal(gx, expected);
        }
      }
      SECTION("all_reduce (sum, avg) and Megatron's pair") {
        Shape s{2, 3};
        std::vector<Dense> gs;
        for (int w : g) gs.push_back(values(w, s, 14, kFloat64));
        Dense x0 = values(world_rank(), s, 15, kFloat64);
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg})
          require_equal(grad_of([&](const Tensor& x) { return funcol::all_reduce(x, op, mesh, d); }, x0, gs[me]),
                        reduce_ref(gs, op));
        require_equal(grad_of([&](const Tensor& x) { return funcol::all_reduce_async(x, ReduceOp::Sum, mesh, d); },
                              x0, gs[me]),
                      reduce_ref(gs, ReduceOp::Sum));
        Tensor x = to_tensor(x0, kFloat64);
        require_equal(funcol::copy_to_parallel_region(x, mesh, d), x0);
        require_equal(grad_of([&](const Tensor& t) { return funcol::copy_to_parallel_region(t, mesh, d); }, x0, gs[me]),
                      reduce_ref(gs, ReduceOp::Sum));
        std::vector<Dense> xs;
        for (int w : g) xs.push_back(values(w, s, 15, kFloat64));
        require_equal(funcol::reduce_from_parallel_region(x, mesh, d), reduce_ref(xs, ReduceOp::Sum));
        require_equal(grad_of([&](const Tensor& t) { return funcol::reduce_from_parallel_region(t, mesh, d); }, x0,
                              gs[me]),
                      gs[me]);
        WEFT_REQUIRE_ERROR(
            grad_of([&](const Tensor& t) { return funcol::all_reduce(t, ReduceOp::Max, mesh, d); }, x0, gs[me]),
            Catch::Contains("backward is defined for sum and avg only"));
      }
      SECTION("broadcast: src gets the sum of every gradient, the others zero") {
        Shape s{3};
        std::vector<Dense> gs;
        for (int w : g) gs.push_back(values(w, s, 16, kFloat64));
        for (int64_t src = 0; src < k; ++src) {
          Dense expected = me == src ? reduce_ref(gs, ReduceOp::Sum) : Dense{s, {0, 0, 0}};
          require_equal(grad_of([&](const Tensor& x) { return funcol::broadcast(x, src, mesh, d); },
                                values(world_rank(), s, 17, kFloat64), gs[me]),
                        expected);
        }
      }
      SECTION("all_to_all: the adjoint identity sum_r <A x, g> = sum_r <x, A^T g>, and A^T A x = x") {
        for (auto [split, concat] : {std::pair<int64_t, int64_t>{0, 1}, {1, 0}, {0, 0}}) {
          int64_t n = k * 3 + 1;
          Shape xs{2, 2};
          xs[split] = n;
          if (concat != split) xs[concat] = uneven_size(me);
          Dense x0 = values(world_rank(), xs, 18, kFloat64);
          Tensor x = to_tensor(x0, kFloat64);
          x.requires_grad_();
          Tensor y = funcol::all_to_all(x, split, concat, mesh, d);
          Dense gy = values(world_rank(), y.shape(), 19, kFloat64);
          y.backward(to_tensor(gy, kFloat64));
          double lhs = world_sum(dot(y, gy)), rhs = world_sum(dot(x.grad(), x0));
          REQUIRE(std::abs(lhs - rhs) < 1e-9 * (1 + std::abs(lhs)));
          // all_to_all is a permutation: backward of y itself returns x.
          Tensor x2 = to_tensor(x0, kFloat64);
          x2.requires_grad_();
          Tensor y2 = funcol::all_to_all(x2, split, concat, mesh, d);
          y2.backward(weft::detail::make_alias(y2.detach(), y2.shape(), y2.strides(), y2.storage_offset()));
          require_equal(x2.grad(), x0);
        }
      }
    }
}

TEST_CASE("CommDebugMode: one count per collective, nested scopes, backward, nothing for internals", "[comm_debug]") {
  int n = world_size();
  DeviceMesh mesh({n});
  Tensor x = ones({static_cast<int64_t>(n) * 2 + 1, 2}, kFloat64);
  CommDebugMode outer;
  REQUIRE(outer.total_count() == 0);
  int64_t expect = n > 1 ? 1 : 0;  // a mesh dim of size 1 communicates nothing
  {
    CommDebugMode inner;
    funcol::all_reduce(x, ReduceOp::Avg, mesh);
    funcol::all_gather(x, 0, mesh);  // sizes exchanged internally: not counted
    REQUIRE(inner.count(CollectiveKind::AllReduce) == expect);
    REQUIRE(inner.count(CollectiveKind::AllGather) == expect);
    REQUIRE(inner.total_count() == 2 * expect);
  }
  funcol::reduce_scatter(x, ReduceOp::Sum, 0, mesh);
  funcol::all_to_all(x, 0, 1, mesh);
  funcol::broadcast(x, 0, mesh);
  funcol::scatter(n > 0 && world_rank() == 0 ? TensorList(n, ones({1})) : TensorList{}, 0, mesh);
  // The control plane is never counted (Note [Control plane]).
  dist::detail::exchange_sizes(3, mesh, 0);
  REQUIRE(dist::detail::mesh_all_gather({1, 2}, mesh, "test").size() == 2 * static_cast<size_t>(n));
  REQUIRE(dist::detail::all_agree(true, MPI_COMM_WORLD, "test"));
  Tensor a = funcol::all_reduce_async(x, ReduceOp::Sum, mesh);
  funcol::wait_tensor(a);  // waits never count
  a.to_vector<double>();
  REQUIRE(outer.count(CollectiveKind::ReduceScatter) == expect);
  REQUIRE(outer.count(CollectiveKind::AllToAll) == expect);
  REQUIRE(outer.count(CollectiveKind::Broadcast) == expect);
  REQUIRE(outer.count(CollectiveKind::Scatter) == expect);
  REQUIRE(outer.count(CollectiveKind::AllReduce) == 2 * expect);
  REQUIRE(outer.total_count() == 7 * expect);
  // Backward counts too: all_gather's backward is one reduce_scatter.
  CommDebugMode bwd;
  Tensor leaf = ones({2, 2}, kFloat64);
  leaf.requires_grad_();
  Tensor y = funcol::all_gather(leaf, 0, mesh, 0, std::vector<int64_t>(n, 2));
  REQUIRE(bwd.total_count() == expect);
  y.backward(ones(y.shape(), kFloat64));
  REQUIRE(bwd.count(CollectiveKind::ReduceScatter) == expect);
  REQUIRE(bwd.total_count() == 2 * expect);
  REQUIRE(bwd.table().find("total: " + std::to_string(2 * expect)) != std::string::npos);
  if (n > 1) REQUIRE(bwd.table().find("all_gather: 1") != std::string::npos);
}

TEST_CASE("debug mode names both sides of a mismatch before the data moves", "[debug]") {
  int n = world_size(), me = world_rank();
  if (n < 2) return;  // a world of one has nobody to disagree with
  DeviceMesh mesh({n}, {"tp"});
  set_debug_collectives(true);
  CommDebugMode counts;
  // One matcher (Catch's && keeps references to its operands, so a helper returns just one).
  auto both = [&](const std::string& rank1, const std::string& rank0) {
    return Catch::Contains("rank 1 called " + rank1 + ", rank 0 called " + rank0);
  };
  // Every rank but 1 agrees; every rank raises the same message, naming rank 1 and rank 0.
  Tensor x = ones({me == 1 ? 5 : 4, 3}, kFloat32);
  WEFT_REQUIRE_ERROR(funcol::all_reduce(x, ReduceOp::Sum, mesh),
                     Catch::Contains("on mesh dim \"tp\"") && Catch::Contains("collective #") &&
                         Catch::Contains("rank 1 called all_reduce(sum, f32[5,3]), rank 0 called all_reduce(sum, f32[4,3])"));
  auto call = [&] {
    if (me == 1) funcol::all_gather(ones({4, 3}), 0, mesh, 0, std::vector<int64_t>(n, 4));
    else funcol::all_reduce(ones({4, 3}), ReduceOp::Sum, mesh);
  };
  WEFT_REQUIRE_ERROR(call(), both("all_gather(f32[4,3])", "all_reduce(sum, f32[4,3])"));
  WEFT_REQUIRE_ERROR(funcol::all_reduce(ones({4}), me == 1 ? ReduceOp::Max : ReduceOp::Sum, mesh),
                     both("all_reduce(max, f32[4])", "all_reduce(sum, f32[4])"));
  WEFT_REQUIRE_ERROR(funcol::all_reduce(ones({4}, me == 1 ? kFloat64 : kFloat32), ReduceOp::Sum, mesh),
                     both("all_reduce(sum, f64[4])", "all_reduce(sum, f32[4])"));
  WEFT_REQUIRE_ERROR(funcol::broadcast(ones({2}), me == 1 ? 1 : 0, mesh), both("broadcast(f32[2], root 1)", "broadcast(f32[2], root 0)"));
  // A collective rank 1 skipped: its next one meets the others' skipped one.
  auto skipped = [&] {
    if (me != 1) funcol::all_reduce(ones({2}), ReduceOp::Sum, mesh, 0);
    funcol::all_gather(ones({2}), 0, mesh, 0, std::vector<int64_t>(n, 2));
  };
  WEFT_REQUIRE_ERROR(skipped(), both("all_gather(f32[2])", "all_reduce(sum, f32[2])"));
  // Matching calls pass, an uneven gather included; the check itself is not counted.
  mesh = DeviceMesh({n}, {"tp2"});
  Tensor y = funcol::all_gather(ones({me % 2 + 1}, kFloat64), 0, mesh);
  REQUIRE(y.numel() == n + n / 2);
  REQUIRE(counts.total_count() == 1);
  set_debug_collectives(false);
}
