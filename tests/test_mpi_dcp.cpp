// test_mpi_dcp: distributed checkpoints (nn/distributed_checkpoint.h) under MPI: saved on one mesh and
// placements and loaded on others (a 2-rank sub-mesh, the world, a 2-D mesh, one rank, one process),
// reading only the blocks a rank needs; AdamW training resumed after a reshard with the single-process
// losses; corruption and mismatches raising on every rank with the tensor and the file named.
// Expected shards come from distribute_tensor of the same seeded full tensors.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <ftw.h>
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "distributed/dtensor.h"
#include "distributed/runtime.h"
#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/test_util.h"

namespace par = weft::nn::parallel;

using namespace weft;
using namespace weft::dist;
using Catch::Matchers::Contains;

namespace {

// A resumed run's loss equals the single-process one to float64 rounding.
void require_same_loss(double got, double expected) {
  REQUIRE(std::abs(got - expected) <= 1e-10 * std::abs(expected));
}

Tensor seeded(const Shape& shape, uint64_t seed, DType dt = kFloat64) {
  Generator gen(seed);
  return randn(shape, dtype(dt), &gen);
}

// The full tensors every test saves: uneven over 2 and 4 ranks, three dtypes, a scalar.
nn::StateDict full_state() {
  nn::StateDict s;
  s.insert("w", seeded({11, 5}, 1));
  s.insert("v", seeded({5}, 2));
  s.insert("cube", seeded({3, 4, 6}, 3, kFloat32));
  s.insert("count", arange(7));
  s.insert("step", full({}, 42.0, dtype(kInt64)));
  return s;
}

// `full` laid out on `mesh`: each named entry distributed with its placements, the others plain.
nn::StateDict laid_out(const nn::StateDict& full, const DeviceMesh& mesh, const std::map<std::string, Placements>& pl) {
  nn::StateDict s;
  for (const auto& [name, t] : full) {
    auto it = pl.find(name);
    s.insert(name, it == pl.end() ? t.clone() : Tensor(distribute_tensor(t, mesh, it->second, mesh.ranks()[0])));
  }
  return s;
}

// The same layout with every value zero: what a load fills.
nn::StateDict zeros_like_state(const nn::StateDict& full, const DeviceMesh& mesh,
                               const std::map<std::string, Placements>& pl) {
  nn::StateDict z;
  for (const auto& [name, t] : full) z.insert(name, zeros(t.shape(), dtype(t.dtype())));
  return laid_out(z, mesh, pl);
}

Tensor local_of(const Tensor& t) { return t.is_dtensor() ? DTensor(t).spec().local : t; }

// Bit-identical local values, entry by entry.
void require_same(const nn::StateDict& got, const nn::StateDict& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, t] : want) {
    INFO("entry " << name);
    Tensor a = local_of(got[name]).contiguous(), b = local_of(t).contiguous();
    REQUIRE(a.dtype() == b.dtype());
    REQUIRE(a.shape() == b.shape());
    REQUIRE(std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * element_size(a.dtype())) == 0);
  }
}

char base_dir[256];  // zero-initialized: no load-time code

void remove_base_dir() {
  ::nftw(base_dir, [](const char* path, const struct stat*, int, FTW*) { return ::remove(path); }, 16,
         FTW_DEPTH | FTW_PHYS);
}

// A directory `name` under one temporary directory for the whole run, made by world rank 0 and
// removed with everything in it when the run exits.
std::string shared_dir(const std::string& name) {
  if (base_dir[0] == 0) {
    if (world_rank() == 0) {
      std::strcpy(base_dir, "/tmp/weft_mpi_dcp_XXXXXX");
      REQUIRE(::mkdtemp(base_dir) != nullptr);
      std::atexit(remove_base_dir);
    }
    MPI_Bcast(base_dir, sizeof(base_dir), MPI_CHAR, 0, MPI_COMM_WORLD);
  }
  return std::string(base_dir) + "/" + name;
}

void barrier() { MPI_Barrier(MPI_COMM_WORLD); }

std::vector<std::string> shard_files(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d))
      if (std::strncmp(e->d_name, "shard-", 6) == 0) out.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The path of shard file k (there is one save's files in `dir`).
std::string shard_file(const std::string& dir, int64_t k) {
  const std::string suffix = "-" + std::to_string(k) + ".weft";
  for (const std::string& f : shard_files(dir))
    if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) return dir + "/" + f;
  FAIL("no shard file " << k << " in " << dir);
  return {};
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
uint64_t file_size(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_size);
}

const std::map<std::string, Placements> kSaved2 = {
    {"w", {Shard(0)}}, {"v", {Shard(0)}}, {"cube", {Shard(1)}}, {"count", {Replicate()}}};

}  // namespace

TEST_CASE("dcp: saved on a 2-rank sub-mesh, loaded on any mesh, placements or one process") {
  const int W = world_size();
  REQUIRE(W >= 2);
  const nn::StateDict full = full_state();
  const std::string dir = shared_dir("sub2");
  DeviceMesh mesh2({2}, {}, {0, 1});  // collective over the world; ranks >= 2 are outside
  if (mesh2.contains_this_rank()) nn::save_distributed(dir, laid_out(full, mesh2, kSaved2));
  barrier();  // the metadata is committed once rank 0 returned

  auto load_as = [&](const DeviceMesh& mesh, const std::map<std::string, Placements>& pl) {
    nn::StateDict target = zeros_like_state(full, mesh, pl);
    nn::load_distributed(dir, target);
    require_same(target, laid_out(full, mesh, pl));
  };
  SECTION("the world, other shard dims (some shards empty)") {
    load_as(init_device_mesh({W}), {{"w", {Shard(1)}}, {"v", {Replicate()}}, {"cube", {Shard(2)}}, {"count", {Shard(0)}}});
  }
  SECTION("the world, Shard(0) everywhere, as the save") {
    load_as(init_device_mesh({W}), {{"w", {Shard(0)}}, {"v", {Shard(0)}}, {"cube", {Shard(0)}}, {"count", {Shard(0)}}});
  }
  SECTION("a 2-D mesh, two mesh dims sharding one tensor dim and two tensor dims") {
    load_as(init_device_mesh({2, W / 2}), {{"w", {Shard(0), Shard(1)}},
                                           {"v", {Shard(0), Shard(0)}},
                                           {"cube", {Replicate(), Shard(2)}},
                                           {"count", {Shard(0), Replicate()}}});
  }
  SECTION("views of the saved tensors: dims split or merged, then sharded") {
    auto world = init_device_mesh({W});
    nn::StateDict views;  // the same values in the shapes the targets have
    views.insert("w", full["w"].reshape({11, 1, 5}));
    views.insert("v", full["v"]);
    views.insert("cube", full["cube"].reshape({72}));
    views.insert("count", full["count"]);
    views.insert("step", full["step"].reshape({1}));
    const std::map<std::string, Placements> pl = {{"w", {Shard(2)}}, {"cube", {Shard(0)}}};
    nn::StateDict target = zeros_like_state(views, world, pl);
    nn::load_distributed(dir, target);
    require_same(target, laid_out(views, world, pl));
    nn::StateDict transposed = zeros_like_state(full, world, {});
    transposed["w"] = zeros({5, 11}, dtype(kFloat64));  // as many elements, another layout
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, transposed), Contains("shape mismatch for 'w'") && Contains("[5, 11]"));
  }
  SECTION("a 1-rank mesh") {
    DeviceMesh mesh1({1}, {}, {W - 1});
    if (mesh1.contains_this_rank()) load_as(mesh1, {{"w", {Shard(0)}}, {"cube", {Shard(1)}}});
  }
  SECTION("one process: plain tensors, no communication") {
    nn::StateDict plain = zeros_like_state(full, DeviceMesh(), {});
    nn::load_distributed(dir, plain);
    require_same(plain, full);
  }
  SECTION("and back: saved on the world as Shard(1), loaded on the sub-mesh and as plain tensors") {
    const std::string back = shared_dir("world_back");
    auto world = init_device_mesh({W});
    nn::save_distributed(back, laid_out(full, world, {{"w", {Shard(1)}}, {"v", {Shard(0)}}, {"cube", {Shard(2)}}}));
    barrier();
    if (mesh2.contains_this_rank()) {
      nn::StateDict target = zeros_like_state(full, mesh2, kSaved2);
      nn::load_distributed(back, target);
      require_same(target, laid_out(full, mesh2, kSaved2));
    }
    if (world_rank() == 0) {
      nn::StateDict plain = zeros_like_state(full, DeviceMesh(), {});
      nn::load_distributed(back, plain);
      require_same(plain, full);
    }
  }
  SECTION("saved by one process, loaded on the world") {
    const std::string single = shared_dir("single");
    if (world_rank() == 0) nn::save_distributed(single, full);  // plain tensors: a local save, one file
    barrier();
    REQUIRE(shard_files(single).size() == 1);
    auto world = init_device_mesh({W});
    nn::StateDict target = zeros_like_state(full, world, kSaved2);
    nn::load_distributed(single, target);
    require_same(target, laid_out(full, world, kSaved2));
  }
  barrier();
}

TEST_CASE("dcp: a rank reads only the blocks that hold its region") {
  const int W = world_size(), r = world_rank();
  constexpr int64_t kRows = 64, kCols = 32, kBlock = 512;
  nn::StateDict full;
  full.insert("big", seeded({kRows, kCols}, 7));
  DeviceMesh mesh2({2}, {}, {0, 1});
  auto world = init_device_mesh({W});
  // Saved on 2 ranks as rows or as columns, loaded as rows over the world: a rank reads its rows
  // of each file's piece, plus at most a partial block at each end and the block with the file's id.
  for (int64_t saved_dim : {0, 1}) {
    const std::string dir = shared_dir("blocks" + std::to_string(saved_dim));
    if (mesh2.contains_this_rank())
      nn::save_distributed(dir, laid_out(full, mesh2, {{"big", {Shard(saved_dim)}}}), {.block_bytes = kBlock});
    barrier();
    const uint64_t files = file_size(shard_file(dir, 0)) + file_size(shard_file(dir, 1));
    // The metadata's record of each file (size, checksum, id offset, block hashes) is the file's:
    // FNV-1a 64 written out here, over each kBlock bytes and over all but the 8-byte trailer.
    auto fnv = [](const std::string& b, size_t from, size_t to) {
      uint64_t h = 14695981039346656037ull;
      for (size_t i = from; i < to; ++i) h = (h ^ static_cast<unsigned char>(b[i])) * 1099511628211ull;
      return h;
    };
    for (int64_t k = 0; k < 2; ++k) {
      const std::string bytes = read_bytes(shard_file(dir, k));
      const std::vector<int64_t> record =
          nn::load_state(dir + "/metadata.weft")["dcp.file." + std::to_string(k)].to_vector<int64_t>();
      REQUIRE(static_cast<size_t>(record[0]) == bytes.size());
      REQUIRE(static_cast<uint64_t>(record[1]) == fnv(bytes, 0, bytes.size() - 8));
      REQUIRE(record.size() == 3 + (bytes.size() + kBlock - 1) / kBlock);
      for (size_t b = 0; b + 3 < record.size(); ++b)
        REQUIRE(static_cast<uint64_t>(record[3 + b]) == fnv(bytes, b * kBlock, std::min(bytes.size(), (b + 1) * kBlock)));
    }
    nn::StateDict target = zeros_like_state(full, world, {{"big", {Shard(0)}}});
    const uint64_t before = nn::detail::dcp_shard_bytes_read();
    nn::load_distributed(dir, target);
    const uint64_t read = nn::detail::dcp_shard_bytes_read() - before;
    const uint64_t needed = static_cast<uint64_t>(local_of(target["big"]).numel()) * 8;
    INFO("saved as S(" << saved_dim << "): rank " << r << " read " << read << " bytes of " << files
                       << "; its rows hold " << needed);
    REQUIRE(read >= needed);
    REQUIRE(read <= needed + 2 * 3 * kBlock);
    REQUIRE(read < files * 3 / 4);
    require_same(target, laid_out(full, world, {{"big", {Shard(0)}}}));
    barrier();
  }
}

namespace {

// A two-layer net whose parameters are DTensors on `mesh` with `pl` (plain when mesh is undefined).
const std::vector<std::pair<std::string, Shape>> kNetParams = {{"w1", {9, 5}}, {"b1", {9}}, {"w2", {3, 9}}, {"b2", {3}}};

std::shared_ptr<nn::Module> make_net(const DeviceMesh& mesh, const std::vector<Placements>& pl, bool zero) {
  auto net = std::make_shared<nn::Module>("Net");
  for (size_t i = 0; i < kNetParams.size(); ++i) {
    const auto& [name, shape] = kNetParams[i];
    Tensor value = zero ? zeros(shape, dtype(kFloat64)) : seeded(shape, 20 + i);
    net->register_parameter(name, mesh.defined() ? Tensor(distribute_tensor(value, mesh, pl[i], mesh.ranks()[0])) : value);
  }
  return net;
}

// Every rank computes the same loss from the full parameters (gathered differentiably).
double train_step(nn::Module& net, optim::AdamW& opt) {
  auto full = [&](const char* name) {
    Tensor p = net.parameter_slot(name);
    return p.is_dtensor() ? DTensor(p).full_tensor() : p;
  };
  const Tensor x = seeded({6, 5}, 30), y = seeded({6, 3}, 31);
  Tensor h = tanh(linear(x, full("w1"), full("b1")));
  Tensor loss = mse_loss(linear(h, full("w2"), full("b2")), y);
  opt.zero_grad();
  loss.backward();
  opt.step();
  return loss.item<double>();
}

}  // namespace

TEST_CASE("dcp: AdamW training resumes after a reshard with the single-process losses") {
  const int W = world_size();
  const optim::AdamWOptions opts{.lr = 0.05, .weight_decay = 0.01};
  auto ref = make_net(DeviceMesh(), {}, false);
  optim::AdamW ref_opt(ref->parameters(), opts);
  std::vector<double> want;
  for (int s = 0; s < 6; ++s) want.push_back(train_step(*ref, ref_opt));

  const std::string dir = shared_dir("adamw");
  DeviceMesh mesh2({2}, {}, {0, 1});
  if (mesh2.contains_this_rank()) {
    // FSDP-like on the sub-mesh: every parameter Shard(0) (9 and 3 rows: uneven), AdamW on the shards.
    auto net = make_net(mesh2, {{Shard(0)}, {Shard(0)}, {Shard(0)}, {Shard(0)}}, false);
    optim::AdamW opt(net->parameters(), opts);
    for (int s = 0; s < 3; ++s) require_same_loss(train_step(*net, opt), want[static_cast<size_t>(s)]);
    nn::save_distributed(dir, *net, &opt);
    // Without the reload, training goes on the same.
    for (int s = 3; s < 6; ++s) require_same_loss(train_step(*net, opt), want[static_cast<size_t>(s)]);
  }
  barrier();
  SECTION("on the world, TP-like placements") {
    auto net = make_net(init_device_mesh({W}), {{Shard(1)}, {Replicate()}, {Shard(1)}, {Shard(0)}}, true);
    optim::AdamW opt(net->parameters(), {});
    nn::load_distributed(dir, *net, &opt);
    REQUIRE(opt.lr() == 0.05);
    REQUIRE(opt.state(0).step == 3);
    for (int s = 3; s < 6; ++s) require_same_loss(train_step(*net, opt), want[static_cast<size_t>(s)]);
  }
  SECTION("in one process, then back onto the world") {
    auto net = make_net(DeviceMesh(), {}, true);
    optim::AdamW opt(net->parameters(), {});
    nn::load_distributed(dir, *net, &opt);
    require_same_loss(train_step(*net, opt), want[3]);
    const std::string single = shared_dir("adamw_single");
    if (world_rank() == 0) nn::save_distributed(single, *net, &opt);  // plain tensors: a local save
    barrier();
    auto back = make_net(init_device_mesh({W}), {{Shard(0)}, {Shard(0)}, {Shard(1)}, {Replicate()}}, true);
    optim::AdamW back_opt(back->parameters(), {});
    nn::load_distributed(single, *back, &back_opt);
    REQUIRE(back_opt.state(0).step == 4);
    for (int s = 4; s < 6; ++s) require_same_loss(train_step(*back, back_opt), want[static_cast<size_t>(s)]);
  }
  SECTION("a model without one of the saved parameters is refused, untouched") {
    auto net = std::make_shared<nn::Module>("Net");
    net->register_parameter("w1", zeros({9, 5}, dtype(kFloat64)));
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, *net), Contains("unexpected tensor 'model.b1'"));
    REQUIRE(net->parameter_slot("w1").to_vector<double>() == std::vector<double>(45, 0.0));
  }
  barrier();
}

TEST_CASE("dcp: corruption and mismatches raise on every rank, naming the tensor and the file") {
  const int W = world_size(), r = world_rank();
  const nn::StateDict full = full_state();
  auto world = init_device_mesh({W});
  const std::map<std::string, Placements> pl = {{"w", {Shard(0)}}, {"v", {Shard(0)}}, {"cube", {Shard(1)}}};
  const std::string dir = shared_dir("faults"), other = shared_dir("faults_other");
  nn::save_distributed(dir, laid_out(full, world, pl), {.block_bytes = 64});
  barrier();
  // Loaded as saved, rank k reads only file k (and file 0's plain entries): a fault in file 1 is seen
  // by rank 1 alone, and every other rank must still raise its message.
  auto load = [&] {
    nn::StateDict target = zeros_like_state(full, world, pl);
    nn::load_distributed(dir, target);
  };
  // Every rank names the file; the others also name rank 1. (A macro: Catch's && holds references.)
#define FROM_RANK1(what) Contains(what) && Contains(r == 1 ? "shard-" : "raised on world rank 1")

  SECTION("a flipped byte in rank 1's piece of 'w'") {
    if (r == 0) {
      // Where the piece starts, from the metadata's table for 'w': rows of file, offset, ...
      std::vector<int64_t> table = nn::load_state(dir + "/metadata.weft")["shards.w"].to_vector<int64_t>();
      const int64_t offset = table[6 + 1];  // the second piece is file 1's
      REQUIRE(table[6] == 1);
      std::string bytes = read_bytes(shard_file(dir, 1));
      bytes[static_cast<size_t>(offset + 3)] ^= 0x10;
      write_bytes(shard_file(dir, 1), bytes);
    }
    barrier();
    WEFT_REQUIRE_ERROR(load(), FROM_RANK1("corrupted") && Contains("'w'") && Contains("-1.weft"));
  }
  SECTION("a truncated shard file") {
    if (r == 0) REQUIRE(::truncate(shard_file(dir, 1).c_str(), static_cast<off_t>(file_size(shard_file(dir, 1)) - 10)) == 0);
    barrier();
    WEFT_REQUIRE_ERROR(load(), FROM_RANK1("truncated") && Contains("-1.weft"));
  }
  SECTION("a missing shard file") {
    if (r == 0) ::unlink(shard_file(dir, 1).c_str());
    barrier();
    WEFT_REQUIRE_ERROR(load(), FROM_RANK1("cannot open") && Contains("-1.weft"));
  }
  SECTION("metadata from another checkpoint") {
    nn::save_distributed(other, laid_out(full, world, pl), {.block_bytes = 64});
    barrier();
    if (r == 0) write_bytes(dir + "/metadata.weft", read_bytes(other + "/metadata.weft"));
    barrier();
    WEFT_REQUIRE_ERROR(load(), Contains("cannot open") && Contains("the metadata comes from another checkpoint"));
  }
  SECTION("a shard file of another save under this save's name") {
    nn::save_distributed(other, laid_out(full, world, pl), {.block_bytes = 64});
    barrier();
    if (r == 0) write_bytes(shard_file(dir, 1), read_bytes(shard_file(other, 1)));  // same size, other id
    barrier();
    WEFT_REQUIRE_ERROR(load(), FROM_RANK1("written by another save") && Contains("-1.weft"));
  }
  SECTION("a flipped byte in the metadata") {
    if (r == 0) {
      std::string bytes = read_bytes(dir + "/metadata.weft");
      bytes[bytes.size() / 2] ^= 0x01;
      write_bytes(dir + "/metadata.weft", bytes);
    }
    barrier();
    WEFT_REQUIRE_ERROR(load(), Contains("metadata.weft") && Contains("checksum mismatch"));
  }
  SECTION("files a killed save left behind do not disturb the checkpoint, and the next save removes them") {
    const std::string orphan = dir + "/shard-00000000deadbeef-0.weft";  // committed, but no metadata names it
    if (r == 0) write_bytes(orphan, read_bytes(shard_file(dir, 0)));
    barrier();
    nn::StateDict target = zeros_like_state(full, world, pl);
    nn::load_distributed(dir, target);
    require_same(target, laid_out(full, world, pl));
    barrier();
    nn::save_distributed(dir, laid_out(full, world, pl), {.block_bytes = 64});
    barrier();
    REQUIRE(::access(orphan.c_str(), F_OK) != 0);
    REQUIRE(shard_files(dir).size() == static_cast<size_t>(W));
  }
  SECTION("a target missing a saved tensor, or with one the checkpoint lacks") {
    nn::StateDict fewer = zeros_like_state(full, world, pl), more = zeros_like_state(full, world, pl);
    nn::StateDict without_v;
    for (const auto& [name, t] : fewer)
      if (name != "v") without_v.insert(name, t);
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, without_v), Contains("unexpected tensor 'v'") && Contains("metadata.weft"));
    more.insert("extra", zeros({2}, dtype(kFloat64)));
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, more), Contains("missing tensor 'extra'") && Contains("metadata.weft"));
  }
  SECTION("a wrong global shape or dtype leaves the target untouched") {
    nn::StateDict target = zeros_like_state(full, world, pl);
    target["w"] = distribute_tensor(seeded({11, 6}, 9), world, {Shard(0)});
    const std::vector<double> before = local_of(target["w"]).to_vector<double>();
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, target),
                       Contains("shape mismatch for 'w'") && Contains("[11, 5]") && Contains("[11, 6]"));
    REQUIRE(local_of(target["w"]).to_vector<double>() == before);
    REQUIRE(local_of(target["v"]).to_vector<double>() == std::vector<double>(local_of(target["v"]).numel(), 0.0));
    target["w"] = distribute_tensor(seeded({11, 5}, 9, kFloat32), world, {Shard(0)});
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, target), Contains("dtype mismatch for 'w'") && Contains("float32"));
  }
  SECTION("a local shard of the wrong shape on the last rank fails the save on every rank") {
    const int64_t c = (11 + W - 1) / W;  // every rank claims a first rank's share; the last one holds less
    nn::StateDict bad;
    bad.insert("w", make_dtensor(seeded({c, 5}, 9), world, {Shard(0)}, {11, 5}));
    WEFT_REQUIRE_ERROR(nn::save_distributed(dir, bad),
                       Contains("local shard of 'w' has shape") &&
                           Contains(r == W - 1 ? "give [" : "raised on world rank " + std::to_string(W - 1)));
    barrier();
    nn::StateDict target = zeros_like_state(full, world, pl);  // the previous checkpoint is still there
    nn::load_distributed(dir, target);
    require_same(target, laid_out(full, world, pl));
  }
  SECTION("a save that fails at the metadata leaves the previous checkpoint whole") {
    const std::string blocker = dir + "/metadata.weft.tmp." + std::to_string(::getpid());
    if (r == 0) REQUIRE(::mkdir(blocker.c_str(), 0755) == 0);  // rank 0 cannot create its temporary
    nn::StateDict changed;
    for (const auto& [name, t] : full) changed.insert(name, t * 2);
    WEFT_REQUIRE_ERROR(nn::save_distributed(dir, laid_out(changed, world, pl), {.block_bytes = 64}),
                       Contains("metadata.weft") && Contains(r == 0 ? "cannot create" : "raised on world rank 0"));
    barrier();
    if (r == 0) ::rmdir(blocker.c_str());
    REQUIRE(shard_files(dir).size() == static_cast<size_t>(W));  // the failed save's files are gone
    nn::StateDict target = zeros_like_state(full, world, pl);
    nn::load_distributed(dir, target);
    require_same(target, laid_out(full, world, pl));
  }
  barrier();
}

TEST_CASE("dcp: a Partial DTensor is saved reduced; a Partial target is refused") {
  const int W = world_size(), r = world_rank();
  auto world = init_device_mesh({W});
  Tensor sum = zeros({4, 3}, dtype(kFloat64));
  for (int k = 0; k < W; ++k) sum = sum + seeded({4, 3}, 50 + static_cast<uint64_t>(k));
  nn::StateDict state;
  state.insert("p", DTensor::from_local(seeded({4, 3}, 50 + static_cast<uint64_t>(r)), world, {Partial()}));
  const std::string dir = shared_dir("partial");
  nn::save_distributed(dir, state);
  barrier();
  nn::StateDict plain;
  plain.insert("p", zeros({4, 3}, dtype(kFloat64)));
  nn::load_distributed(dir, plain);
  const std::vector<double> got = plain["p"].to_vector<double>(), want = sum.to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == Approx(want[i]).epsilon(1e-14));
  nn::StateDict partial;
  partial.insert("p", DTensor::from_local(zeros({4, 3}, dtype(kFloat64)), world, {Partial()}));
  WEFT_REQUIRE_ERROR(nn::load_distributed(dir, partial), Contains("'p'") && Contains("Partial tensor cannot be loaded"));
  barrier();
}

namespace {

// test_mpi_parallel's GPT: 3 heads (over 2 tp ranks [2, 1]), tied embedding and head.
std::shared_ptr<nn::UnaryModule> make_gpt() {
  manual_seed(12);
  auto m = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 3,
                                                   .n_embd = 12});
  m->to(kFloat64);
  return m;
}

// Step s's batch: 5 sequences (uneven over 2 and 4 data-parallel ranks), inputs and next tokens.
std::pair<Tensor, Tensor> gpt_batch(int s) {
  Generator gen(60 + static_cast<uint64_t>(s));
  Tensor tokens = randint(0, 11, {5, 7}, dtype(kInt64), &gen);
  return {tokens.narrow(1, 0, 6).contiguous(), tokens.narrow(1, 1, 6).contiguous()};
}

Tensor gpt_loss_sum(const Tensor& logits, const Tensor& target) {
  return cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}), "sum");
}

// One AdamW step of a Parallelized GPT on step s's global batch; the global mean loss.
// One training step of a Parallelized or a FullyShardedModule; the loss averaged over dp.
template <class Model>
double parallel_step(Model& model, optim::AdamW& opt, int s) {
  auto [x, y] = gpt_batch(s);
  opt.zero_grad();
  DTensor out(model.forward(x));
  Tensor loss = par::global_mean(gpt_loss_sum(out.to_local(), model.local_batch(y)), y.numel());
  loss.backward();
  opt.step();
  return model.reduce_over_dp(loss.item<double>());
}

// The reference: the losses of `steps` AdamW steps of the plain model in one process, on the same
// global batches.
std::vector<double> single_process_losses(const optim::AdamWOptions& opts, int steps) {
  auto ref = make_gpt();
  optim::AdamW ref_opt(ref->parameters(), opts);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    auto [x, y] = gpt_batch(s);
    ref_opt.zero_grad();
    Tensor loss = gpt_loss_sum(ref->forward(x), y) / static_cast<double>(y.numel());
    loss.backward();
    ref_opt.step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

}  // namespace

TEST_CASE("dcp: data parallel on 2 ranks, resumed tensor parallel on the world and in one process") {
  const int W = world_size();
  const optim::AdamWOptions opts{.lr = 0.02, .weight_decay = 0.1};
  const std::vector<double> want = single_process_losses(opts, 5);

  const std::string dir = shared_dir("dp_to_tp");
  DeviceMesh mesh2({2}, {"dp"}, {0, 1});
  if (mesh2.contains_this_rank()) {
    auto model = par::data_parallel(make_gpt(), mesh2);
    optim::AdamW opt(model->parameters(), opts);
    for (int s = 0; s < 3; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
    nn::save_distributed(dir, *model, &opt);
  }
  barrier();
  SECTION("tensor parallel on the world: qkv and proj weights held as views, whole heads per rank") {
    auto model = par::tensor_parallel(make_gpt(), init_device_mesh({W}, {"tp"}));
    REQUIRE(model->state_dict()["module.blocks.0.attn.qkv.weight"].shape() == Shape{3, 3, 4, 12});  // a view of (36, 12)
    optim::AdamW opt(model->parameters(), {});
    nn::load_distributed(dir, *model, &opt);
    for (int s = 3; s < 5; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
  }
  SECTION("one process: the plain model through the state-dict form, the optimizer left out") {
    auto plain = make_gpt();
    nn::StateDict state;
    for (const auto& [name, t] : plain->state_dict()) state.insert("model.module." + name, t);
    WEFT_REQUIRE_ERROR(nn::load_distributed(dir, state), Contains("unexpected tensor 'optim."));
    nn::load_distributed(dir, state, /*strict=*/false);
    auto [x, y] = gpt_batch(3);
    require_same_loss(gpt_loss_sum(plain->forward(x), y).item<double>() / static_cast<double>(y.numel()), want[3]);
  }
  SECTION("a 1-rank data-parallel mesh, with the optimizer") {
    DeviceMesh mesh1({1}, {"dp"}, {W - 1});
    if (mesh1.contains_this_rank()) {
      auto model = par::data_parallel(make_gpt(), mesh1);
      optim::AdamW opt(model->parameters(), {});
      nn::load_distributed(dir, *model, &opt);
      for (int s = 3; s < 5; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
    }
  }
  barrier();
}

TEST_CASE("dcp: fully_shard training saved and resumed under data parallel, and the reverse") {
  const int W = world_size();
  const optim::AdamWOptions opts{.lr = 0.02, .weight_decay = 0.1};
  const std::vector<double> want = single_process_losses(opts, 6);
  // Per block, then the root: the parameters are uneven Shard(0) DTensors over the world.
  auto sharded = [](const DeviceMesh& mesh) {
    auto gpt = std::dynamic_pointer_cast<nn::GPT>(make_gpt());
    for (size_t i = 0; i < gpt->blocks->size(); ++i) par::fully_shard((*gpt->blocks)[i], mesh);
    return par::fully_shard(gpt, mesh);
  };
  DeviceMesh world = init_device_mesh({W}, {"dp"});

  const std::string from_fsdp = shared_dir("fsdp_to_dp");
  {
    auto model = sharded(world);
    optim::AdamW opt(model->parameters(), opts);
    for (int s = 0; s < 3; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
    nn::save_distributed(from_fsdp, *model, &opt);
  }
  barrier();
  DeviceMesh mesh2({2}, {"dp"}, {0, 1});
  if (mesh2.contains_this_rank()) {
    auto model = par::data_parallel(make_gpt(), mesh2);
    optim::AdamW opt(model->parameters(), {});
    nn::load_distributed(from_fsdp, *model, &opt);
    for (int s = 3; s < 6; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
  }
  barrier();

  const std::string to_fsdp = shared_dir("dp_to_fsdp");
  if (mesh2.contains_this_rank()) {
    auto model = par::data_parallel(make_gpt(), mesh2);
    optim::AdamW opt(model->parameters(), opts);
    for (int s = 0; s < 3; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
    nn::save_distributed(to_fsdp, *model, &opt);
  }
  barrier();
  auto model = sharded(world);
  optim::AdamW opt(model->parameters(), {});
  nn::load_distributed(to_fsdp, *model, &opt);
  for (int s = 3; s < 6; ++s) require_same_loss(parallel_step(*model, opt, s), want[static_cast<size_t>(s)]);
  barrier();
}
