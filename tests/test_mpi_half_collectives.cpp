// test_mpi_half_collectives: the collectives on bfloat16 and float16 tensors (Note [16-bit floats
// in collectives]): a reduction is the float32 reduction of the same values rounded once, a move
// carries the bits unchanged, a DTensor in bfloat16 redistributes, gradients flow, and a rank that
// passes bfloat16 where another passes float32 is named as a mismatch.
#include <catch2/catch.hpp>

#include <cmath>

#include "distributed/collectives.h"
#include "distributed/dtensor.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "framework/factories.h"
#include "tests/test_util.h"
#include "weft.h"

using namespace weft;
using namespace weft::dist;

namespace {

const DType kHalves[] = {kBFloat16, kFloat16};

// Values exactly representable in dt (randn rounded to it), the same on every rank for one seed.
Tensor seeded(const Shape& shape, uint64_t seed, DType dt) {
  Generator gen(seed);
  return randn(shape, kFloat32, &gen).to(dt);
}

// Same dtype, shape and values, element for element (no tolerance: the claims are exact).
void require_same(const Tensor& got, const Tensor& want) {
  REQUIRE(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != w[i]) first = bad++ == 0 ? i : first;
  INFO(bad << " of " << g.size() << " elements differ; the first, " << first << ": got " << (bad ? g[first] : 0.0)
            << ", want " << (bad ? w[first] : 0.0));
  REQUIRE(bad == 0);
}

// Rank-dependent, possibly zero sizes along a gathered dim.
int64_t uneven_size(int64_t rank) { return (rank + 2) % 3; }

const ReduceOp kReduceOps[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min};

}  // namespace

TEST_CASE("all_reduce and reduce_scatter in 16 bits are the float32 reduction rounded once", "[half]") {
  const int64_t k = world_size(), me = world_rank();
  DeviceMesh mesh({k}, {"tp"});
  for (DType dt : kHalves)
    for (ReduceOp op : kReduceOps)
      for (bool async : {false, true})
        for (bool strided : {false, true}) {
          INFO(dtype_name(dt) << " " << to_string(op) << (async ? " async" : "") << (strided ? " strided" : ""));
          const int64_t n = k * 3 + 1;  // torch.chunk pieces of uneven size
          Tensor x = strided ? seeded({5, n}, 10 + me, dt).t() : seeded({n, 5}, 10 + me, dt);
          Tensor wide = x.to(kFloat32);
          Tensor y = async ? funcol::wait_tensor(funcol::all_reduce_async(x, op, mesh)) : funcol::all_reduce(x, op, mesh);
          require_same(y, funcol::all_reduce(wide, op, mesh).to(dt));
          for (int64_t dim : {0, 1}) {
            Tensor r = async ? funcol::wait_tensor(funcol::reduce_scatter_async(x, op, dim, mesh))
                             : funcol::reduce_scatter(x, op, dim, mesh);
            require_same(r, funcol::reduce_scatter(wide, op, dim, mesh).to(dt));
          }
        }
}

TEST_CASE("16-bit sums: exact values by hand, and one rounding rather than one per rank", "[half]") {
  const int64_t k = world_size(), me = world_rank();
  DeviceMesh mesh({k}, {"tp"});
  for (DType dt : kHalves) {
    INFO(dtype_name(dt));
    // Rank r holds m(r, i) / 8 with |m| below 2^7 (bfloat16) or 2^10 (float16): exact in dt, and
    // their float32 sum is exact; the sum needs up to two more bits, so rounding it is exercised.
    const int64_t range = dt == kBFloat16 ? 127 : 1023;
    auto m = [&](int64_t r, int64_t i) { return ((r * 7919 + i * 104729) % (2 * range + 1)) - range; };
    const int64_t n = 9;
    std::vector<double> mine(n), sum(n, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      mine[i] = static_cast<double>(m(me, i)) / 8;
      for (int64_t r = 0; r < k; ++r) sum[i] += static_cast<double>(m(r, i)) / 8;
    }
    Tensor x = tensor(mine, {n}, dtype(dt));
    REQUIRE(x.to_vector<double>() == mine);
    // The exact sum rounded to dt by weft's own float32 -> dt conversion (round to nearest even).
    require_same(funcol::all_reduce(x, ReduceOp::Sum, mesh), tensor(sum, {n}, dtype(kFloat32)).to(dt));
    // Rank 0 holds 1, every other rank half an ulp of 1 (2^-8 in bfloat16, 2^-11 in float16). The
    // exact sum 1 + (k - 1) half-ulps rounds to 1 on 2 ranks (a tie, to even) and to 1 + 2 ulps on 4
    // (1.5 ulps: a tie, to even). Rounding after each addition would give 1 on 4 ranks too.
    const double half_ulp = dt == kBFloat16 ? 1.0 / 256 : 1.0 / 2048;
    Tensor one = full({3}, me == 0 ? 1.0 : half_ulp, dtype(dt));
    const double want = k == 2 ? 1.0 : k == 4 ? 1.0 + 4 * half_ulp : std::nan("");
    if (k == 2 || k == 4)
      for (double v : funcol::all_reduce(one, ReduceOp::Sum, mesh).to_vector<double>()) REQUIRE(v == want);
  }
}

TEST_CASE("all_gather, all_to_all, broadcast and scatter move 16-bit values unchanged", "[half]") {
  const int64_t k = world_size(), me = world_rank();
  DeviceMesh mesh({k}, {"tp"});
  for (DType dt : kHalves) {
    INFO(dtype_name(dt));
    // all_gather, uneven (some ranks hold no rows), along dims 0 and 1, sync and async: the
    // concatenation of every rank's values, which each rank regenerates from the seeds.
    for (int64_t dim : {0, 1})
      for (bool async : {false, true}) {
        auto piece = [&](int64_t r) {
          Shape s{3, 2};
          s[dim] = uneven_size(r);
          return seeded(s, 20 + r, dt);
        };
        TensorList pieces;
        for (int64_t r = 0; r < k; ++r) pieces.push_back(piece(r));
        Tensor y = async ? funcol::wait_tensor(funcol::all_gather_async(piece(me), dim, mesh))
                         : funcol::all_gather(piece(me), dim, mesh);
        require_same(y, cat(pieces, dim));
      }
    // all_to_all: rank r's split dim (uneven) goes out in torch.chunk pieces; rank me receives
    // piece me of every rank, concatenated along dim 1.
    const int64_t n = k * 3 + 1;
    auto [size, offset] = chunk_size_and_offset(n, k, me);
    TensorList received;
    for (int64_t r = 0; r < k; ++r) received.push_back(seeded({n, 2}, 30 + r, dt).narrow(0, offset, size));
    require_same(funcol::all_to_all(seeded({n, 2}, 30 + me, dt), 0, 1, mesh), cat(received, 1));
    // broadcast from the last rank; scatter of uneven chunks from rank 0.
    require_same(funcol::broadcast(seeded({2, 3}, 40 + me, dt), k - 1, mesh), seeded({2, 3}, 40 + k - 1, dt));
    TensorList chunks;
    if (me == 0)
      for (int64_t r = 0; r < k; ++r) chunks.push_back(seeded({uneven_size(r), 2}, 50 + r, dt));
    require_same(funcol::scatter(chunks, 0, mesh), seeded({uneven_size(me), 2}, 50 + me, dt));
  }
}

TEST_CASE("gradients of 16-bit collectives equal the float32 gradients rounded", "[half][autograd]") {
  const int64_t k = world_size(), me = world_rank();
  DeviceMesh mesh({k}, {"tp"});
  // Each collective's backward runs its conjugate on the 16-bit gradient (reduce_scatter(avg)'s
  // scales it in float32); the float32 run of the same values, rounded, is the reference.
  auto check = [&](DType dt, const std::function<Tensor(const Tensor&)>& f, const Shape& shape) {
    Tensor x = seeded(shape, 60 + me, dt).requires_grad_();
    Tensor x32 = x.detach().to(kFloat32).requires_grad_();
    Tensor y = f(x), y32 = f(x32);
    Tensor w = seeded(y.shape(), 70 + me, dt);
    (y * w).sum().backward();
    (y32 * w.to(kFloat32)).sum().backward();
    require_same(x.grad(), x32.grad().to(dt));
  };
  const int64_t n = k * 3 + 1;
  for (DType dt : kHalves) {
    INFO(dtype_name(dt));
    check(dt, [&](const Tensor& x) { return funcol::reduce_scatter(x, ReduceOp::Avg, 0, mesh); }, {n, 3});
    check(dt, [&](const Tensor& x) { return funcol::reduce_scatter(x, ReduceOp::Sum, 1, mesh); }, {2, n});
    check(dt, [&](const Tensor& x) { return funcol::all_gather(x, 0, mesh); }, {uneven_size(me), 3});
    check(dt, [&](const Tensor& x) { return funcol::all_reduce(x, ReduceOp::Avg, mesh); }, {4});
    check(dt, [&](const Tensor& x) { return funcol::broadcast(x, 0, mesh); }, {2, 2});
    check(dt, [&](const Tensor& x) { return funcol::all_to_all(x, 0, 1, mesh); }, {n, 2});
  }
}

TEST_CASE("a bfloat16 DTensor redistributes as its float32 copy does, rounded", "[half][dtensor]") {
  const int64_t k = world_size(), me = world_rank();
  std::vector<DeviceMesh> meshes{DeviceMesh({k}, {"tp"})};
  if (k == 4) meshes.push_back(DeviceMesh({2, 2}, {"dp", "tp"}));
  const Shape shape{k * 3 + 1, 2 * k + 1};  // uneven along both dims
  for (const DeviceMesh& mesh : meshes) {
    const bool two_d = mesh.ndim() == 2;
    auto P = [&](Placement p) { return two_d ? Placements{p, Shard(1)} : Placements{p}; };
    struct Move {
      Placements from, to;
    };
    std::vector<Move> moves{{P(Shard(0)), P(Replicate())}, {P(Shard(0)), P(Shard(1))},
                            {P(Replicate()), P(Shard(0))}, {P(Partial()), P(Replicate())},
                            {P(Partial()), P(Shard(0))},   {P(Partial(ReduceOp::Avg)), P(Replicate())}};
    for (const Move& mv : moves) {
      INFO(mesh << ": " << to_string(mv.from) << " -> " << to_string(mv.to));
      const bool partial = mv.from[0].is_partial();
      // Partial: every rank's local term is its own seeded tensor of the shard's shape; else the
      // same full tensor distributed.
      DTensor x, x32;
      if (partial) {
        Shape local = shape;  // (P, S(1)) on the 2-D mesh: this rank's columns
        if (two_d) local[1] = chunk_size_and_offset(shape[1], 2, mesh.get_local_rank(1)).first;
        Tensor term = seeded(local, 90 + me, kBFloat16);
        x = DTensor::from_local(term, mesh, mv.from, {.shape = shape, .stride = contiguous_strides(shape)});
        x32 = DTensor::from_local(term.to(kFloat32), mesh, mv.from, {.shape = shape, .stride = contiguous_strides(shape)});
      } else {
        Tensor full = seeded(shape, 80, kBFloat16);
        x = distribute_tensor(full, mesh, mv.from);
        x32 = distribute_tensor(full.to(kFloat32), mesh, mv.from);
      }
      DTensor y = x.redistribute(mv.to);
      REQUIRE(y.placements() == mv.to);
      require_same(y.to_local(), x32.redistribute(mv.to).to_local().to(kBFloat16));
      if (!partial) require_same(y.full_tensor(), seeded(shape, 80, kBFloat16));
    }
  }
}

TEST_CASE("a rank passing bfloat16 where another passes float32 is named in debug mode", "[half][debug]") {
  const int64_t k = world_size(), me = world_rank();
  DeviceMesh mesh({k}, {"tp"});
  set_debug_collectives(true);
  WEFT_REQUIRE_ERROR(funcol::all_reduce(ones({4}, me == 1 ? kBFloat16 : kFloat32), ReduceOp::Sum, mesh),
                     Catch::Contains("rank 1 called all_reduce(sum, bf16[4]), rank 0 called all_reduce(sum, f32[4])"));
  WEFT_REQUIRE_ERROR(funcol::all_gather(ones({2}, me == 1 ? kFloat16 : kBFloat16), 0, mesh, 0, std::vector<int64_t>(k, 2)),
                     Catch::Contains("rank 1 called all_gather(f16[2]), rank 0 called all_gather(bf16[2])"));
  // Agreeing calls still run.
  require_same(funcol::all_reduce(ones({2}, kBFloat16), ReduceOp::Sum, mesh), full({2}, double(k), dtype(kBFloat16)));
  set_debug_collectives(false);
}
