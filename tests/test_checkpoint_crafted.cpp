// test_checkpoint_crafted: checkpoint files written by hand to lie (valid checksum, impossible
// fields) are refused naming the field before anything is allocated; stale temporaries of killed
// saves are cleaned; saving through a symbolic link replaces the target and keeps the link.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "framework/factories.h"
#include "nn/nn.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/weft_crafted_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    for (const auto& f : files()) ::unlink((path + "/" + f).c_str());
    ::rmdir(path.c_str());
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    while (dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.push_back(e->d_name);
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }
};

// The bytes of one entry of Note [Checkpoint format], every field given as the file would say it.
struct Entry {
  std::string name = "w";
  uint8_t dtype = static_cast<uint8_t>(kFloat32);
  std::vector<int64_t> shape = {2};
  std::vector<int64_t> mesh;
  std::vector<std::tuple<uint8_t, int64_t, uint8_t>> placements;
  uint64_t nbytes = 8;
  std::vector<unsigned char> data = std::vector<unsigned char>(8, 0);
};

struct Bytes {
  std::vector<unsigned char> b;
  template <class T>
  void put(T v) {
    auto* p = reinterpret_cast<const unsigned char*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
};

// A whole file: header (with the true total unless `count` overrides the entry count), entries and
// a correct FNV-1a checksum, so that only the lying field can be blamed.
std::vector<unsigned char> craft(const std::vector<Entry>& entries, std::optional<uint64_t> count = {}) {
  Bytes body;
  for (const Entry& e : entries) {
    body.put(static_cast<uint32_t>(e.name.size()));
    body.b.insert(body.b.end(), e.name.begin(), e.name.end());
    body.put(e.dtype);
    body.put(static_cast<uint32_t>(e.shape.size()));
    for (int64_t s : e.shape) body.put(s);
    body.put(static_cast<uint32_t>(e.mesh.size()));
    for (int64_t s : e.mesh) body.put(s);
    for (auto [kind, dim, op] : e.placements) body.put(kind), body.put(dim), body.put(op);
    body.put(e.nbytes);
    body.b.insert(body.b.end(), e.data.begin(), e.data.end());
  }
  Bytes f;
  f.b = {'W', 'E', 'F', 'T', 'C', 'K', 'P', 'T'};
  f.put(uint32_t{1});
  f.put(uint32_t{0});
  f.put(static_cast<uint64_t>(32 + body.b.size() + 8));
  f.put(count.value_or(entries.size()));
  f.b.insert(f.b.end(), body.b.begin(), body.b.end());
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : f.b) h = (h ^ c) * 0x100000001b3ull;
  f.put(h);
  return f.b;
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST_CASE("crafted checkpoint: the builder writes files the reader accepts") {
  TempDir dir;
  Entry e;
  e.shape = {2, 1};
  float values[2] = {1.5f, -4.0f};
  std::memcpy(e.data.data(), values, 8);
  write_bytes(dir / "ok.ckpt", craft({e}));
  nn::StateDict state = nn::load_state(dir / "ok.ckpt");
  REQUIRE(state.at("w").shape() == Shape{2, 1});
  REQUIRE(state.at("w").to_vector<float>() == std::vector<float>{1.5f, -4.0f});
}

TEST_CASE("crafted checkpoint: every lying field is refused by name, before allocation") {
  TempDir dir;
  const std::string path = dir / "lie.ckpt";
  constexpr int64_t k32 = int64_t(1) << 32, k62 = int64_t(1) << 62;
  Entry e;
  std::optional<uint64_t> count;
  std::string field;
  SECTION("a shape whose byte count wraps to the 0 bytes stored") {
    e.shape = {k32, k32}, e.nbytes = 0, e.data.clear();  // 2^64 * 4 bytes == 0 mod 2^64
    field = "field 'shape' [4294967296, 4294967296] needs more bytes than the 78-byte file has";
  }
  SECTION("a shape far larger than the file") {
    e.shape = {k62}, e.nbytes = 0, e.data.clear();
    field = "field 'shape' [4611686018427387904] needs more bytes";
  }
  SECTION("a zero size does not excuse overflowing others") {
    e.shape = {0, k62, k62}, e.nbytes = 0, e.data.clear();
    field = "field 'shape' [0, 4611686018427387904, 4611686018427387904] needs more bytes";
  }
  SECTION("a negative size") {
    e.shape = {-2}, e.nbytes = 0, e.data.clear();
    field = "field 'shape' has a negative size in [-2]";
  }
  SECTION("an entry count the file cannot hold") {
    count = uint64_t(1) << 60;
    field = "field 'count' declares 1152921504606846976 entries";
  }
  SECTION("a rank past the format's limit") {
    e.shape = std::vector<int64_t>(65, 1), e.nbytes = 4, e.data.resize(4);
    field = "field 'rank' is implausible: 65";
  }
  SECTION("an unknown dtype") {
    e.dtype = 9;
    field = "field 'dtype' has an unknown code 9";
  }
  SECTION("a byte count that disagrees with the shape") {
    e.nbytes = 12, e.data.resize(12);
    field = "field 'nbytes' says 12 but shape [2] of float32 needs 8";
  }
  SECTION("a mesh dim of 0") {
    e.mesh = {0}, e.placements = {{1, 0, 0}};
    field = "field 'mesh_shape' is not a valid device mesh: [0]";
  }
  SECTION("a mesh of more devices than int64 counts") {
    e.mesh = {k62, k62}, e.placements = {{1, 0, 0}, {1, 0, 0}};
    field = "field 'mesh_shape' is not a valid device mesh";
  }
  SECTION("a shard of a dim the tensor does not have") {
    e.mesh = {2}, e.placements = {{0, 5, 0}};
    field = "field 'placements' shards dim 5 of a rank-1 tensor";
  }
  SECTION("an invalid placement kind") {
    e.mesh = {2}, e.placements = {{7, 0, 0}};
    field = "field 'placements' has an invalid placement (kind 7";
  }
  write_bytes(path, craft({e}, count));
  WEFT_REQUIRE_ERROR(nn::load_state(path), Contains(path) && Contains(field));
}

TEST_CASE("crafted checkpoint: stale temporaries of the same target are removed on the next save") {
  TempDir dir;
  const std::string path = dir / "m.ckpt";
  const pid_t gone = dead_pid();
  const std::string stale = "m.ckpt.tmp." + std::to_string(gone);
  const std::string live = "m.ckpt.tmp." + std::to_string(::getppid());   // a running process: kept
  const std::string other = "n.ckpt.tmp." + std::to_string(gone);        // another target's: kept
  for (const std::string& f : {stale, live, other}) write_bytes(dir / f, {1, 2, 3});
  nn::StateDict state;
  state.insert("x", tensor({1, 2, 3}));
  nn::save_state(path, state);
  REQUIRE(dir.files() == std::vector<std::string>{"m.ckpt", live, other});
  REQUIRE(nn::load_state(path).at("x").to_vector<float>() == std::vector<float>{1, 2, 3});
}

TEST_CASE("crafted checkpoint: saving through a symbolic link replaces the target and keeps the link") {
  TempDir dir;
  nn::StateDict first, second;
  first.insert("x", tensor({1, 2}));
  second.insert("x", tensor({7, 8, 9}));
  nn::save_state(dir / "target.ckpt", first);
  // A relative link to a relative link: both hops resolved from the link's own directory.
  REQUIRE(::symlink("target.ckpt", (dir / "hop.ckpt").c_str()) == 0);
  REQUIRE(::symlink("hop.ckpt", (dir / "link.ckpt").c_str()) == 0);
  nn::save_state(dir / "link.ckpt", second);
  struct stat st {};
  REQUIRE(::lstat((dir / "link.ckpt").c_str(), &st) == 0);
  REQUIRE(S_ISLNK(st.st_mode));
  REQUIRE(::lstat((dir / "hop.ckpt").c_str(), &st) == 0);
  REQUIRE(S_ISLNK(st.st_mode));
  REQUIRE(nn::load_state(dir / "target.ckpt").at("x").to_vector<float>() == std::vector<float>{7, 8, 9});
  REQUIRE(nn::load_state(dir / "link.ckpt").at("x").to_vector<float>() == std::vector<float>{7, 8, 9});
  REQUIRE(dir.files() == std::vector<std::string>{"hop.ckpt", "link.ckpt", "target.ckpt"});
  // A dangling link: the save creates the file it points to.
  REQUIRE(::symlink("fresh.ckpt", (dir / "dangling.ckpt").c_str()) == 0);
  nn::save_state(dir / "dangling.ckpt", first);
  REQUIRE(nn::load_state(dir / "fresh.ckpt").at("x").to_vector<float>() == std::vector<float>{1, 2});
  REQUIRE(::lstat((dir / "dangling.ckpt").c_str(), &st) == 0);
  REQUIRE(S_ISLNK(st.st_mode));
}
