// NumPy and safetensors files: files NumPy wrote load with their values, files weft writes load in
// NumPy, and a PyTorch model's weights run in weft with PyTorch's outputs (tests/io_fixtures.py).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "framework/factories.h"
#include "nn/io/io.h"
#include "nn/layers.h"
#include "test_util.h"

using namespace weft;
using weft::test::require_error;

namespace {

// A directory for the files io_fixtures.py and weft write, made once per run, removed at exit.
struct TempDir {
  std::string path;
  TempDir() : path((std::filesystem::temp_directory_path() / ("weft_io_" + std::to_string(getpid()))).string()) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};
const std::string& fixtures() {
  static const TempDir dir;
  return dir.path;
}

int python(const std::string& mode) {
  std::string cmd = "/usr/bin/python3 " WEFT_TESTS_DIR "/io_fixtures.py " + mode + " " + fixtures();
  return std::system(cmd.c_str());
}

std::string fixture(const std::string& name) { return fixtures() + "/" + name; }

// io_fixtures.py's value(code, shape) at row-major index i.
double value(const std::string& code, int64_t i) {
  if (code == "b1") return i % 3 == 0;
  if (code == "u1") return i * 37 % 256;
  if (code == "i4" || code == "i8") return (i * 7919) % 2001 - 1000;
  const double v = std::fmod(i * 0.37, 5.0) - 2.5;
  return code == "f4" ? static_cast<double>(static_cast<float>(v)) : v;
}

std::vector<double> values(const std::string& code, int64_t n) {
  std::vector<double> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(value(code, i));
  return out;
}

std::vector<double> as_doubles(const Tensor& t) { return t.to(kFloat64).contiguous().to_vector<double>(); }

Tensor made(const std::string& code, const Shape& shape) {
  DType dt = code == "b1" ? kBool : code == "f4" ? kFloat32 : code == "f8" ? kFloat64 : kInt64;
  return tensor(values(code, numel_of(shape)), shape, dtype(kFloat64)).to(dt);
}

struct Fixtures {
  Fixtures() { REQUIRE(python("write") == 0); }
};
const Fixtures& written() {
  static const Fixtures f;
  return f;
}

}  // namespace

TEST_CASE("load_npy reads NumPy's arrays of every supported dtype in C and Fortran order", "[io]") {
  written();
  for (std::string code : {"f4", "f8", "i8", "i4", "u1", "b1"}) {
    for (std::string order : {"c", "f"}) {
      INFO(code << "_" << order);
      Tensor t = io::load_npy(fixture(code + "_" + order + ".npy"));
      CHECK(t.shape() == Shape{3, 4, 5});
      DType want = code == "b1" ? kBool : code == "f4" ? kFloat32 : code == "f8" ? kFloat64
                 : code == "i4" ? kInt32 : code == "u1" ? kUInt8 : kInt64;
      CHECK(t.dtype() == want);
      CHECK(as_doubles(t) == values(code, 60));
    }
  }
  SECTION("format versions 2 and 3, big-endian, 0-d and empty arrays") {
    CHECK(as_doubles(io::load_npy(fixture("f8_v2.npy"))) == values("f8", 60));
    CHECK(as_doubles(io::load_npy(fixture("f8_v3.npy"))) == values("f8", 60));
    CHECK(as_doubles(io::load_npy(fixture("f8_big.npy"))) == values("f8", 60));
    Tensor scalar = io::load_npy(fixture("scalar.npy"));
    CHECK(scalar.dim() == 0);
    CHECK(scalar.item<double>() == 2.5);
    CHECK(io::load_npy(fixture("empty.npy")).shape() == Shape{0, 3});
  }
}

TEST_CASE("load_npy refuses other dtypes and files whose sizes do not add up", "[io]") {
  written();
  Tensor half = io::load_npy(fixture("f2.npy"));  // float16 loads (as zeros of its shape)
  CHECK(half.dtype() == kFloat16);
  CHECK(as_doubles(half) == std::vector<double>(3, 0.0));
  require_error([] { io::load_npy(fixture("c8.npy")); }, "holds dtype '<c8'");
  require_error([] { io::load_npy(fixture("structured.npy")); }, "structured array");
  require_error([] { io::load_npy(fixture("missing.npy")); }, "cannot open");
  std::string bytes;
  {
    std::ifstream in(fixture("f4_c.npy"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [](const std::string& name, const std::string& b) {
    std::ofstream(fixture(name), std::ios::binary) << b;
    return fixture(name);
  };
  const std::string truncated = write("truncated.npy", bytes.substr(0, bytes.size() - 4));
  require_error([&] { io::load_npy(truncated); }, "(240 bytes) but holds 236 bytes");
  const std::string longer = write("longer.npy", bytes + "xxxx");
  require_error([&] { io::load_npy(longer); }, "but holds 244 bytes");
  const std::string header_cut = write("header_cut.npy", bytes.substr(0, 40));
  require_error([&] { io::load_npy(header_cut); }, "truncated or corrupt");
  const std::string not_npy = write("not.npy", "hello");
  require_error([&] { io::load_npy(not_npy); }, "is not a .npy array");
}

TEST_CASE("load_npz reads np.savez and np.savez_compressed archives in order", "[io]") {
  written();
  for (std::string name : {"stored.npz", "deflated.npz"}) {
    INFO(name);
    nn::StateDict d = io::load_npz(fixture(name));
    CHECK(d.keys() == std::vector<std::string>{"b.weight", "a.bias", "mask"});
    CHECK(d["b.weight"].shape() == Shape{4, 5});
    CHECK(as_doubles(d["b.weight"]) == values("f4", 20));
    CHECK(d["a.bias"].dtype() == kInt32);
    CHECK(as_doubles(d["a.bias"]) == values("i4", 7));
    CHECK(as_doubles(d["mask"]) == values("b1", 6));
  }
  SECTION("a corrupted member fails its CRC") {
    std::ifstream in(fixture("stored.npz"), std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(in), {});
    bytes[200] ^= 1;  // inside the first member's data
    std::ofstream(fixture("corrupt.npz"), std::ios::binary) << bytes;
    require_error([] { io::load_npz(fixture("corrupt.npz")); }, "fails its CRC-32 check");
    std::ofstream(fixture("cut.npz"), std::ios::binary) << bytes.substr(0, 100);
    require_error([] { io::load_npz(fixture("cut.npz")); }, "not a zip archive");
  }
}

TEST_CASE("load_safetensors reads the format with its dtypes; sizes are checked", "[io]") {
  written();
  nn::StateDict d = io::load_safetensors(fixture("model.safetensors"));
  CHECK(d.keys() == std::vector<std::string>{"z.weight", "labels", "ids", "double"});  // file order
  CHECK(as_doubles(d["z.weight"]) == values("f4", 20));
  CHECK(d["labels"].dtype() == kUInt8);
  CHECK(d["ids"].dtype() == kInt32);
  CHECK(as_doubles(d["labels"]) == values("u1", 6));
  CHECK(as_doubles(d["ids"]) == values("i4", 4));
  CHECK(d["double"].dtype() == kFloat64);
  CHECK(as_doubles(d["double"]) == values("f8", 3));

  auto with_header = [](const std::string& json, size_t data_bytes) {
    std::string out(8, '\0');
    uint64_t n = json.size();
    std::memcpy(out.data(), &n, 8);
    std::ofstream(fixture("bad.safetensors"), std::ios::binary) << out + json + std::string(data_bytes, '\0');
    return fixture("bad.safetensors");
  };
  require_error([&] { io::load_safetensors(with_header(R"({"a":{"dtype":"I16","shape":[2],"data_offsets":[0,4]}})", 4)); },
                "stores 'a' as I16");
  require_error([&] { io::load_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4)); },
                "which does not hold 8 bytes");
  require_error([&] { io::load_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)); },
                "truncated or corrupt");
  require_error([&] { io::load_safetensors(with_header(R"({"a":)", 0)); }, "not valid JSON");
  require_error([&] { io::load_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)); },
                "negative dimension");
}

TEST_CASE("save_npy, save_npz and save_safetensors write what NumPy reads back", "[io]") {
  written();
  for (std::string code : {"f4", "f8", "i8", "b1"}) io::save_npy(fixture("weft_" + code + ".npy"), made(code, {3, 4, 5}));
  io::save_npy(fixture("weft_1d.npy"), made("f4", {7}));
  io::save_npy(fixture("weft_0d.npy"), scalar_tensor(2.5, dtype(kFloat64)));
  nn::StateDict d;
  d.insert("b.weight", made("f4", {4, 5}).t().contiguous().t());  // strided: written in logical order
  d.insert("a.bias", made("i4", {7}));
  d.insert("mask", made("b1", {2, 3}));
  io::save_npz(fixture("weft.npz"), d);
  nn::StateDict s;
  s.insert("z.weight", made("f4", {4, 5}).t().contiguous().t());
  s.insert("labels", made("u1", {6}));
  s.insert("mask", made("b1", {2, 3}));
  io::save_safetensors(fixture("weft.safetensors"), s);
  CHECK(python("check") == 0);
  SECTION("and weft reads them back") {
    CHECK(as_doubles(io::load_npz(fixture("weft.npz"))["a.bias"]) == values("i4", 7));
    CHECK(as_doubles(io::load_safetensors(fixture("weft.safetensors"))["z.weight"]) ==
          as_doubles(s["z.weight"]));
  }
}

TEST_CASE("a PyTorch model's weights run in weft with PyTorch's outputs, and back", "[io][torch]") {
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    std::printf("SKIP: PyTorch (Debian's python3-torch) is not installed for /usr/bin/python3\n");
    std::exit(77);  // meson's exit code for a skipped test
  }
  REQUIRE(python("torch") == 0);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Linear>(6, 16), std::make_shared<nn::GELU>(), std::make_shared<nn::LayerNorm>(16),
      std::make_shared<nn::Linear>(16, 3)});
  Tensor x = io::load_npy(fixture("torch_x.npy"));
  std::vector<double> want = as_doubles(io::load_npy(fixture("torch_y.npy")));
  for (std::string file : {"torch.npz", "torch.safetensors"}) {
    INFO(file);
    model->load_state_dict(file.ends_with(".npz") ? io::load_npz(fixture(file)) : io::load_safetensors(fixture(file)));
    weft::test::require_within(as_doubles(model->forward(x)), want,
                               [&](size_t i) { return 1e-5 * (1 + std::fabs(want[i])); });
  }
  io::save_safetensors(fixture("weft_model.safetensors"), model->state_dict());
  io::save_npy(fixture("weft_model_y.npy"), model->forward(x));
  CHECK(python("torch-check") == 0);
}
