// test_mpi_checkpoint: checkpoints of DTensor models under MPI: saved on a 2-rank sub-mesh with uneven
// Shard(0) weights, reloaded on the whole world, on a 1-rank mesh, on a 2-D mesh, with other
// placements and as a plain model; AdamW state gathered and resharded. Expected shards are cut from
// seeded full tensors by the chunk rule written out here.
#include <catch2/catch.hpp>

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "distributed/dtensor.h"
#include "distributed/runtime.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "tests/test_util.h"

using namespace weft;
using namespace weft::dist;

namespace {

constexpr int64_t kOut = 7, kIn = 3;  // 7 rows: uneven over 2 ([4, 3]) and 4 ([2, 2, 2, 1]) ranks

Tensor seeded(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, dtype(kFloat64), &gen);
}

// torch.chunk's piece r of n over k: [begin, end).
std::pair<int64_t, int64_t> chunk(int64_t n, int64_t k, int64_t r) {
  int64_t c = (n + k - 1) / k;
  return {std::min(n, c * r), std::min(n, c * r + c)};
}

// Rows [r0, r1) and columns [c0, c1) of a row-major 2-D `full`, or all of a 1-D one for rows.
std::vector<double> block(const Tensor& full, std::pair<int64_t, int64_t> rows, std::pair<int64_t, int64_t> cols) {
  std::vector<double> v = full.to_vector<double>(), out;
  int64_t width = full.dim() == 2 ? full.size(1) : 1;
  for (int64_t i = rows.first; i < rows.second; ++i)
    for (int64_t j = cols.first; j < cols.second; ++j) out.push_back(v[static_cast<size_t>(i * width + j)]);
  return out;
}

Tensor local_of(const Tensor& t) { return DTensor(t).spec().local; }

// A Linear(kIn, kOut) whose weight and bias are DTensors on `mesh`, starting from `w`, `b`.
std::shared_ptr<nn::Linear> dist_linear(const DeviceMesh& mesh, const Placements& wp, const Placements& bp,
                                        const Tensor& w, const Tensor& b) {
  auto lin = std::make_shared<nn::Linear>(kIn, kOut);
  lin->to(kFloat64);
  lin->parameter_slot("weight") = distribute_tensor(w.detach().requires_grad_(), mesh, wp, mesh.ranks()[0]);
  lin->parameter_slot("bias") = distribute_tensor(b.detach().requires_grad_(), mesh, bp, mesh.ranks()[0]);
  return lin;
}

// One directory for the whole run, made by world rank 0 and known to every rank.
std::string shared_dir() {
  static std::string dir;
  if (!dir.empty()) return dir;
  char buf[256] = {};
  if (world_rank() == 0) {
    std::strcpy(buf, "/tmp/weft_mpi_ckpt_XXXXXX");
    REQUIRE(::mkdtemp(buf) != nullptr);
  }
  MPI_Bcast(buf, sizeof(buf), MPI_CHAR, 0, MPI_COMM_WORLD);
  dir = buf;
  return dir;
}

void barrier() { MPI_Barrier(MPI_COMM_WORLD); }

}  // namespace

TEST_CASE("checkpoint: a model saved on a 2-rank sub-mesh reloads on any mesh") {
  const int W = world_size(), r = world_rank();
  REQUIRE(W >= 2);
  const Tensor w = seeded({kOut, kIn}, 1), b = seeded({kOut}, 2);
  const std::string path = shared_dir() + "/sub2.ckpt";
  DeviceMesh mesh2({2}, {}, {0, 1});  // collective over the world; ranks >= 2 are outside
  if (mesh2.contains_this_rank()) {
    auto lin = dist_linear(mesh2, {Shard(0)}, {Shard(0)}, w, b);
    REQUIRE(local_of(lin->weight).size(0) == (r == 0 ? 4 : 3));
    nn::save_checkpoint(path, *lin);
  }
  barrier();  // the file is complete (renamed) once every writer returned

  SECTION("on the whole world, Shard(0) over every rank") {
    auto mesh = init_device_mesh({W});
    auto lin = dist_linear(mesh, {Shard(0)}, {Replicate()}, zeros({kOut, kIn}, dtype(kFloat64)),
                           zeros({kOut}, dtype(kFloat64)));
    nn::load_checkpoint(path, *lin);
    REQUIRE(local_of(lin->weight).to_vector<double>() == block(w, chunk(kOut, W, r), {0, kIn}));
    REQUIRE(local_of(lin->bias).to_vector<double>() == b.to_vector<double>());
  }
  SECTION("on the whole world, Shard(1): three columns over W ranks, some empty") {
    auto mesh = init_device_mesh({W});
    auto lin = dist_linear(mesh, {Shard(1)}, {Shard(0)}, zeros({kOut, kIn}, dtype(kFloat64)),
                           zeros({kOut}, dtype(kFloat64)));
    nn::load_checkpoint(path, *lin);
    REQUIRE(local_of(lin->weight).to_vector<double>() == block(w, {0, kOut}, chunk(kIn, W, r)));
    REQUIRE(local_of(lin->bias).to_vector<double>() == block(b, chunk(kOut, W, r), {0, 1}));
  }
  SECTION("on a 1-rank mesh and as a plain model") {
    DeviceMesh mesh1({1}, {}, {W - 1});
    if (mesh1.contains_this_rank()) {
      auto lin = dist_linear(mesh1, {Shard(0)}, {Shard(0)}, zeros({kOut, kIn}, dtype(kFloat64)),
                             zeros({kOut}, dtype(kFloat64)));
      nn::load_checkpoint(path, *lin);
      REQUIRE(local_of(lin->weight).to_vector<double>() == w.to_vector<double>());
      REQUIRE(local_of(lin->bias).to_vector<double>() == b.to_vector<double>());
    }
    nn::Linear plain(kIn, kOut);
    plain.to(kFloat64);
    nn::load_checkpoint(path, plain);
    REQUIRE(plain.weight.to_vector<double>() == w.to_vector<double>());
    REQUIRE(plain.bias.to_vector<double>() == b.to_vector<double>());
  }
  if (W == 4) {
    SECTION("on a 2x2 mesh, [S(0), S(1)]") {
      auto mesh = init_device_mesh({2, 2});
      auto lin = dist_linear(mesh, {Shard(0), Shard(1)}, {Replicate(), Shard(0)},
                             zeros({kOut, kIn}, dtype(kFloat64)), zeros({kOut}, dtype(kFloat64)));
      nn::load_checkpoint(path, *lin);
      REQUIRE(local_of(lin->weight).to_vector<double>() == block(w, chunk(kOut, 2, r / 2), chunk(kIn, 2, r % 2)));
      REQUIRE(local_of(lin->bias).to_vector<double>() == block(b, chunk(kOut, 2, r % 2), {0, 1}));
    }
  }
  SECTION("a shape mismatch on a distributed model is refused and leaves its shards untouched") {
    auto mesh = init_device_mesh({W});
    auto lin = std::make_shared<nn::Linear>(kIn, kOut + 1);
    lin->to(kFloat64);
    lin->parameter_slot("weight") = distribute_tensor(seeded({kOut + 1, kIn}, 5), mesh, {Shard(0)});
    auto before = local_of(lin->weight).to_vector<double>();
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(path, *lin), Catch::Matchers::Contains("shape mismatch"));
    REQUIRE(local_of(lin->weight).to_vector<double>() == before);
  }
  barrier();
}

TEST_CASE("checkpoint: a failed write on the writing rank raises on every rank of the mesh") {
  const int W = world_size(), r = world_rank();
  auto mesh = init_device_mesh({W});
  auto lin = dist_linear(mesh, {Shard(0)}, {Replicate()}, seeded({kOut, kIn}, 3), seeded({kOut}, 4));
  const std::string bad = shared_dir() + "/missing/dir/x.ckpt";
  // Rank 0 cannot create the file; the others learn it and raise too, so no rank goes on alone.
  WEFT_REQUIRE_ERROR(nn::save_checkpoint(bad, *lin),
                      Catch::Matchers::Contains(bad) &&
                          Catch::Matchers::Contains(r == 0 ? "cannot create" : "writing failed on rank 0"));
  // The collectives stayed matched: a good save right after works on every rank.
  const std::string good = shared_dir() + "/after_failure.ckpt";
  nn::save_checkpoint(good, *lin);
  barrier();
  REQUIRE(nn::load_state(good)["model.weight"].to_vector<double>() == seeded({kOut, kIn}, 3).to_vector<double>());
  barrier();
}

TEST_CASE("checkpoint: AdamW state of sharded parameters is gathered and resharded") {
  const int W = world_size(), r = world_rank();
  const Tensor w = seeded({kOut, kIn}, 11), b = seeded({kOut}, 12);
  auto grad_w = [](int step) { return seeded({kOut, kIn}, 100 + static_cast<uint64_t>(step)); };
  auto grad_b = [](int step) { return seeded({kOut}, 200 + static_cast<uint64_t>(step)); };
  const optim::AdamWOptions opts{.lr = 0.1, .weight_decay = 0.05};

  // The reference: the same three steps on plain tensors in one process.
  nn::Linear ref(kIn, kOut);
  ref.to(kFloat64);
  ref.weight.detach().copy_(w);
  ref.bias.detach().copy_(b);
  optim::AdamW ref_opt(ref.parameters(), opts);
  auto ref_step = [&](int s) {
    ref.weight.set_grad(grad_w(s));
    ref.bias.set_grad(grad_b(s));
    ref_opt.step();
  };

  // Gradients with the parameter's placements, cut from the same full gradients.
  auto dist_step = [&](nn::Linear& lin, optim::AdamW& opt, int s) {
    for (auto [param, full] : {std::pair{lin.weight, grad_w(s)}, std::pair{lin.bias, grad_b(s)}}) {
      DTensor d(param);
      param.set_grad(distribute_tensor(full, d.device_mesh(), d.placements()));
    }
    opt.step();
  };

  const std::string path = shared_dir() + "/adamw.ckpt";
  DeviceMesh mesh2({2}, {}, {0, 1});
  if (mesh2.contains_this_rank()) {
    auto lin = dist_linear(mesh2, {Shard(0)}, {Shard(0)}, w, b);
    optim::AdamW opt(lin->parameters(), opts);
    dist_step(*lin, opt, 0);
    dist_step(*lin, opt, 1);
    nn::save_checkpoint(path, *lin, &opt);
  }
  barrier();
  ref_step(0);
  ref_step(1);

  // The file holds the full state, equal to the single-process run's.
  nn::StateDict file = nn::load_state(path);
  auto close = [](const std::vector<double>& a, const std::vector<double>& e) {
    REQUIRE(a.size() == e.size());
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(e[i]).epsilon(1e-12).margin(1e-14));
  };
  close(file["model.weight"].to_vector<double>(), ref.weight.to_vector<double>());
  close(file["optim.state.0.exp_avg"].to_vector<double>(), ref_opt.state(0).buffers.at("exp_avg").to_vector<double>());
  close(file["optim.state.1.exp_avg_sq"].to_vector<double>(),
        ref_opt.state(1).buffers.at("exp_avg_sq").to_vector<double>());
  REQUIRE(file["optim.state.0.step"].item<int64_t>() == 2);

  // Reloaded on the whole world with other placements, one more step matches the reference.
  auto mesh = init_device_mesh({W});
  auto lin = dist_linear(mesh, {Shard(0)}, {Replicate()}, zeros({kOut, kIn}, dtype(kFloat64)),
                         zeros({kOut}, dtype(kFloat64)));
  optim::AdamW opt(lin->parameters(), {});
  nn::load_checkpoint(path, *lin, &opt);
  REQUIRE(opt.lr() == 0.1);
  REQUIRE(opt.state(0).step == 2);
  close(opt.state(0).buffers.at("exp_avg").to_vector<double>(),
        block(ref_opt.state(0).buffers.at("exp_avg"), chunk(kOut, W, r), {0, kIn}));
  dist_step(*lin, opt, 2);
  ref_step(2);
  close(local_of(lin->weight).to_vector<double>(), block(ref.weight, chunk(kOut, W, r), {0, kIn}));
  close(local_of(lin->bias).to_vector<double>(), ref.bias.to_vector<double>());
  barrier();
  if (r == 0) {
    for (const char* f : {"/sub2.ckpt", "/adamw.ckpt", "/after_failure.ckpt"}) ::unlink((shared_dir() + f).c_str());
    ::rmdir(shared_dir().c_str());
  }
}
