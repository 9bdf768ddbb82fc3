// test_checkpoint: nn::save_state/load_state and save_checkpoint/load_checkpoint in one process: the
// byte layout against a reader written here, round trips, training resumed exactly, atomic writes,
// and every corruption or mismatch refused with a message while the model stays untouched.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "framework/factories.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;
using weft::test::TempDir;

namespace {


std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
template <class T>
T at(const std::vector<unsigned char>& b, size_t offset) {
  T v;
  std::memcpy(&v, b.data() + offset, sizeof(T));
  return v;
}

// FNV-1a 64 written out again, so that the library's checksum is checked against the definition.
uint64_t fnv1a(const std::vector<unsigned char>& b, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

std::vector<std::vector<double>> snapshot(const nn::Module& m) {
  std::vector<std::vector<double>> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.to_vector<double>());
  return out;
}

// One AdamW step on a fixed batch: mse(model(x), y).
void train_step(nn::MLP& model, optim::AdamW& opt, const Tensor& x, const Tensor& y) {
  opt.zero_grad();
  mse_loss(model(x), y).backward();
  opt.step();
}

struct Fixture {
  std::shared_ptr<nn::MLP> model;
  std::unique_ptr<optim::AdamW> opt;
  Tensor x, y;
  explicit Fixture(uint64_t seed) {
    manual_seed(seed);
    model = std::make_shared<nn::MLP>(3, 5, 2);
    opt = std::make_unique<optim::AdamW>(model->parameters(), optim::AdamWOptions{.lr = 0.05});
    Generator gen(7);
    x = randn({4, 3}, {}, &gen);
    y = randn({4, 2}, {}, &gen);
  }
  void steps(int n) {
    for (int i = 0; i < n; ++i) train_step(*model, *opt, x, y);
  }
};

}  // namespace

TEST_CASE("checkpoint: state dict round trip keeps dtype, shape, order and values") {
  TempDir dir;
  nn::StateDict state;
  Generator gen(3);
  state.insert("f32", randn({3, 4}, {}, &gen));
  state.insert("f64.transposed", randn({2, 5}, dtype(kFloat64), &gen).t());  // non-contiguous
  state.insert("i64", arange(0, 7, 1));
  state.insert("flag", tensor({1, 0, 1}, {3}, dtype(kBool)));
  state.insert("scalar", scalar_tensor(2.5, dtype(kFloat64)));
  state.insert("empty", zeros({0, 3}));
  nn::save_state(dir / "s.ckpt", state);
  nn::StateDict back = nn::load_state(dir / "s.ckpt");
  REQUIRE(back.keys() == state.keys());
  for (const auto& [name, t] : state) {
    INFO(name);
    const Tensor& b = back[name];
    REQUIRE(b.dtype() == t.dtype());
    REQUIRE(b.shape() == t.shape());
    REQUIRE(b.to_vector<double>() == t.to_vector<double>());
  }
  REQUIRE(dir.files() == std::vector<std::string>{"s.ckpt"});  // no temporary left behind
}

TEST_CASE("checkpoint: the byte layout is the documented one") {
  TempDir dir;
  nn::StateDict state;
  state.insert("w", tensor({1.5, -2.0, 3.25, 4.0, 0.0, 8.0}, {2, 3}, dtype(kFloat64)));
  nn::save_state(dir / "f.ckpt", state);
  auto b = read_bytes(dir / "f.ckpt");
  // header 32 + entry (4 + 1 name + 1 dtype + 4 + 2*8 dims + 4 mesh ndim + 8 length + 48 data) + 8
  REQUIRE(b.size() == 32 + 86 + 8);
  REQUIRE(std::string(b.begin(), b.begin() + 8) == "WEFTCKPT");
  REQUIRE(at<uint32_t>(b, 8) == 1);
  REQUIRE(at<uint32_t>(b, 12) == 0);
  REQUIRE(at<uint64_t>(b, 16) == b.size());
  REQUIRE(at<uint64_t>(b, 24) == 1);
  REQUIRE(at<uint32_t>(b, 32) == 1);
  REQUIRE(b[36] == 'w');
  REQUIRE(b[37] == static_cast<unsigned char>(kFloat64));
  REQUIRE(at<uint32_t>(b, 38) == 2);
  REQUIRE(at<int64_t>(b, 42) == 2);
  REQUIRE(at<int64_t>(b, 50) == 3);
  REQUIRE(at<uint32_t>(b, 58) == 0);
  REQUIRE(at<uint64_t>(b, 62) == 48);
  REQUIRE(at<double>(b, 70) == 1.5);
  REQUIRE(at<double>(b, 70 + 5 * 8) == 8.0);
  REQUIRE(at<uint64_t>(b, b.size() - 8) == fnv1a(b, b.size() - 8));
}

TEST_CASE("checkpoint: model and AdamW state reload, and training continues identically") {
  TempDir dir;
  Fixture a(11);
  a.steps(2);
  nn::save_checkpoint(dir / "m.ckpt", *a.model, a.opt.get());
  auto saved = snapshot(*a.model);

  Fixture b(99);  // different initial weights, a fresh optimizer
  REQUIRE(snapshot(*b.model) != saved);
  nn::load_checkpoint(dir / "m.ckpt", *b.model, b.opt.get());
  REQUIRE(snapshot(*b.model) == saved);
  for (size_t i = 0; i < a.opt->params().size(); ++i) {
    REQUIRE(b.opt->state(i).step == 2);
    for (const auto& [key, buf] : a.opt->state(i).buffers)
      REQUIRE(b.opt->state(i).buffers.at(key).to_vector<double>() == buf.to_vector<double>());
  }
  REQUIRE(b.opt->lr() == 0.05);

  a.steps(2);
  b.steps(2);
  REQUIRE(snapshot(*b.model) == snapshot(*a.model));  // bitwise: same data, same state, same order

  SECTION("without the optimizer state training diverges (the state matters)") {
    Fixture c(99);
    nn::load_checkpoint(dir / "m.ckpt", *c.model);
    REQUIRE(snapshot(*c.model) == saved);
    c.steps(2);
    REQUIRE(snapshot(*c.model) != snapshot(*a.model));
  }
  SECTION("a checkpoint is also a state dict file") {
    nn::StateDict raw = nn::load_state(dir / "m.ckpt");
    REQUIRE(raw.contains("model.fc1.weight"));
    REQUIRE(raw.contains("optim.state.0.exp_avg"));
    REQUIRE(raw["optim.state.0.step"].item<int64_t>() == 2);
  }
}

TEST_CASE("checkpoint: writes are atomic") {
  TempDir dir;
  Fixture a(1);
  const std::string path = dir / "m.ckpt";
  nn::save_checkpoint(path, *a.model, a.opt.get());
  auto before = read_bytes(path);

  SECTION("a missing directory fails before anything is written") {
    std::string bad = dir / "no/such/dir/m.ckpt";
    WEFT_REQUIRE_ERROR(nn::save_checkpoint(bad, *a.model), Contains(bad) && Contains("cannot create"));
  }
  SECTION("a write failing midway leaves the old file and no temporary") {
    a.steps(1);
    nn::StateDict big;
    big.insert("big", zeros({1 << 16}));  // 256 KiB, past the file size limit below
    // RLIMIT_FSIZE makes write() fail with EFBIG once the temporary passes 64 KiB.
    struct rlimit old {};
    ::getrlimit(RLIMIT_FSIZE, &old);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 1 << 16;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string message;
    try {
      nn::save_state(path, big);
    } catch (const Error& e) {
      threw = true;
      message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);
    REQUIRE(threw);
    REQUIRE_THAT(message, Contains(path) && Contains("write"));
  }
  REQUIRE(read_bytes(path) == before);
  REQUIRE(dir.files() == std::vector<std::string>{"m.ckpt"});
  // And the old file still loads.
  Fixture b(2);
  nn::load_checkpoint(path, *b.model, b.opt.get());
  REQUIRE(b.opt->state(0).step == 0);
}

TEST_CASE("checkpoint: corrupted files are refused and the model stays untouched") {
  TempDir dir;
  Fixture a(5);
  a.steps(1);
  const std::string path = dir / "m.ckpt";
  nn::save_checkpoint(path, *a.model, a.opt.get());
  const auto good = read_bytes(path);
  Fixture b(6);
  b.steps(3);
  const auto params = snapshot(*b.model);
  const auto exp_avg = b.opt->state(0).buffers.at("exp_avg").to_vector<double>();

  auto bytes = good;
  std::string expected;
  SECTION("a flipped byte in the data") {
    bytes[bytes.size() - 20] ^= 0x10;
    expected = "checksum mismatch";
  }
  SECTION("a flipped byte in a name") {
    bytes[36] ^= 0x01;
    expected = "checksum mismatch";
  }
  SECTION("a flipped checksum byte") {
    bytes.back() ^= 0x80;
    expected = "checksum mismatch";
  }
  SECTION("wrong magic") {
    bytes[0] = 'X';
    expected = "bad magic";
  }
  SECTION("a newer format version") {
    bytes[8] = 2;
    expected = "unsupported format version 2";
  }
  SECTION("truncated inside the first entry's data") {
    bytes.resize(100);
    expected = "entry 0 ('model.fc1.weight')'s data is truncated";
  }
  SECTION("truncated inside the checksum") {
    bytes.resize(bytes.size() - 3);
    expected = "the checksum is missing";
  }
  SECTION("truncated inside the header") {
    bytes.resize(20);
    expected = "truncated";
  }
  SECTION("an empty file") {
    bytes.clear();
    expected = "bad magic";
  }
  SECTION("trailing bytes") {
    bytes.push_back(0);
    expected = "unexpected bytes after the declared end";
  }
  write_bytes(path, bytes);
  WEFT_REQUIRE_ERROR(nn::load_checkpoint(path, *b.model, b.opt.get()), Contains(path) && Contains(expected));
  WEFT_REQUIRE_ERROR(nn::load_state(path), Contains(expected));
  REQUIRE(snapshot(*b.model) == params);
  REQUIRE(b.opt->state(0).step == 3);
  REQUIRE(b.opt->state(0).buffers.at("exp_avg").to_vector<double>() == exp_avg);
}

TEST_CASE("checkpoint: a file that does not fit the model is refused and the model stays untouched") {
  TempDir dir;
  const std::string path = dir / "m.ckpt";
  Fixture a(5);
  a.steps(1);
  nn::save_checkpoint(path, *a.model, a.opt.get());

  SECTION("shape mismatch") {
    manual_seed(1);
    nn::MLP other(3, 6, 2);
    auto before = snapshot(other);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(path, other),
                        Contains(path) && Contains("shape mismatch for 'model.fc1.weight'") && Contains("[6, 3]"));
    REQUIRE(snapshot(other) == before);
  }
  SECTION("dtype mismatch") {
    manual_seed(1);
    nn::MLP other(3, 5, 2);
    other.to(kFloat64);
    auto before = snapshot(other);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(path, other), Contains("dtype mismatch") && Contains("float64"));
    REQUIRE(snapshot(other) == before);
  }
  SECTION("missing and unexpected entries") {
    nn::Linear lin(3, 5);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(path, lin), Contains("missing entry 'model.weight'"));
    nn::StateDict part;
    part.insert("model.fc1.weight", a.model->fc1->weight.detach());
    nn::save_state(dir / "part.ckpt", part);
    nn::MLP other(3, 5, 2);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(dir / "part.ckpt", other), Contains("missing entry 'model.fc1.bias'"));
    nn::StateDict extra = a.model->state_dict();
    nn::StateDict prefixed;
    for (const auto& [k, v] : extra) prefixed.insert("model." + k, v);
    prefixed.insert("model.fc3.weight", zeros({1}));
    nn::save_state(dir / "extra.ckpt", prefixed);
    auto before = snapshot(other);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(dir / "extra.ckpt", other), Contains("unexpected entry 'model.fc3.weight'"));
    REQUIRE(snapshot(other) == before);
  }
  SECTION("optimizer state absent or of another optimizer") {
    Fixture b(8);
    auto before = snapshot(*b.model);
    nn::save_checkpoint(dir / "model_only.ckpt", *a.model);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(dir / "model_only.ckpt", *b.model, b.opt.get()),
                        Contains("no optimizer state"));
    optim::SGD sgd(b.model->parameters(), {.lr = 0.1, .momentum = 0.9});
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(path, *b.model, &sgd), Contains("another optimizer"));
    REQUIRE(snapshot(*b.model) == before);
    REQUIRE(sgd.lr() == 0.1);
  }
  SECTION("a missing file") {
    manual_seed(1);
    nn::MLP other(3, 5, 2);
    WEFT_REQUIRE_ERROR(nn::load_checkpoint(dir / "none.ckpt", other), Contains("none.ckpt") && Contains("cannot open"));
  }
}
