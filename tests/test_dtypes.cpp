// bfloat16, float16, int32, int8 and uint8: conversion and rounding, promotion, arithmetic,
// reductions, matmul, indexing and printing, by hand and against PyTorch 1.13 (tests/dtype_oracle.py).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/python_oracle.h"
#include "tests/test_util.h"
#include "weft.h"

using namespace weft;
using json = nlohmann::json;

namespace {

const DType kAll[] = {kBool, kInt64, kFloat32, kFloat64, kUInt8, kInt8, kInt32, kBFloat16, kFloat16};

DType dtype_named(const std::string& name) {
  for (DType d : kAll)
    if (dtype_name(d) == name) return d;
  FAIL("dtype_oracle.py names a dtype weft does not know: " << name);
  return kBool;
}

template <class T>
Tensor from_bits(const std::vector<uint16_t>& bits, const Shape& shape = {}) {
  std::vector<T> v;
  for (uint16_t b : bits) v.push_back(T::from_bits(b));
  return from_vector(v, shape);
}

template <class T>
std::vector<uint16_t> bits_of(const Tensor& t) {
  std::vector<uint16_t> out;
  for (T v : t.to_vector<T>()) out.push_back(v.bits);
  return out;
}

std::vector<uint16_t> bits16(const Tensor& t) {
  return t.dtype() == kBFloat16 ? bits_of<BFloat16>(t) : bits_of<Half>(t);
}

Tensor from_bits16(DType dt, const std::vector<uint16_t>& bits, const Shape& shape = {}) {
  return dt == kBFloat16 ? from_bits<BFloat16>(bits, shape) : from_bits<Half>(bits, shape);
}

// JSON numbers, with NaN and infinities written as strings.
std::vector<float> floats(const json& j) {
  std::vector<float> out;
  for (const auto& v : j) out.push_back(v.is_string() ? std::stof(v.get<std::string>()) : v.get<float>());
  return out;
}

// Equal bits, except that any NaN matches any NaN.
void same_bits(const Tensor& got, const json& want_json) {
  std::vector<uint16_t> g = bits16(got), w = want_json.get<std::vector<uint16_t>>();
  REQUIRE(g.size() == w.size());
  std::vector<float> gf = got.to(kFloat32).to_vector<float>(), wf = from_bits16(got.dtype(), w).to(kFloat32).to_vector<float>();
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok = g[i] == w[i] || (std::isnan(gf[i]) && std::isnan(wf[i]));
    if (!ok && bad++ == 0) first = i;
  }
  INFO(bad << " differ; the first at " << first << ": " << g[first] << " vs " << w[first]);
  CHECK(bad == 0);
}

const json& oracle() {
  static const json data = test::run_python_oracle(WEFT_TESTS_DIR "/dtype_oracle.py");
  return data;
}

}  // namespace

TEST_CASE("every bfloat16 and float16 bit pattern round-trips through float32", "[dtypes]") {
  std::vector<uint16_t> all;
  for (uint32_t b = 0; b < 65536; ++b) all.push_back(static_cast<uint16_t>(b));
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    Tensor x = from_bits16(dt, all);
    Tensor back = x.to(kFloat32).to(dt);
    std::vector<uint16_t> got = bits16(back);
    std::vector<float> wide = x.to(kFloat32).to_vector<float>();
    size_t bad = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (std::isnan(wide[i])) bad += !std::isnan(static_cast<float>(back.to_vector<float>()[i]));
      else bad += got[i] != all[i];
      if (bad) break;
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("rounding to bfloat16 and float16 is to nearest, ties to even", "[dtypes]") {
  // 1 + 2^-8 is halfway between bfloat16's 1 and 1 + 2^-7: even wins (1); 1 + 3 * 2^-8 goes up.
  CHECK(BFloat16(1.00390625f).bits == 0x3F80);
  CHECK(BFloat16(1.01171875f).bits == 0x3F82);
  CHECK(BFloat16(-1.00390625f).bits == 0xBF80);
  CHECK(BFloat16(3.4e38f).bits == 0x7F80);  // rounds up past the largest finite value
  CHECK(BFloat16(std::nanf("")).bits == 0x7FC0);
  CHECK(Half(65504.0f).bits == 0x7BFF);
  CHECK(Half(65519.0f).bits == 0x7BFF);
  CHECK(Half(65520.0f).bits == 0x7C00);   // the tie above the largest half goes to infinity
  CHECK(Half(0x1p-24f).bits == 0x0001);   // the smallest subnormal
  CHECK(Half(0x1p-25f).bits == 0x0000);   // half of it: a tie, to even (zero)
  CHECK(Half(0x1.8p-24f).bits == 0x0002); // one and a half units: a tie, to even (two)
  CHECK(Half(1.0f + 0x1p-11f).bits == 0x3C00);
  CHECK(Half(1.0f + 0x3p-11f).bits == 0x3C02);
  CHECK(static_cast<float>(Half::from_bits(0x0001)) == 0x1p-24f);
  CHECK(static_cast<float>(BFloat16::from_bits(0x0001)) == 0x1p-133f);
}

TEST_CASE("dtype names, sizes and factories", "[dtypes]") {
  const size_t sizes[] = {1, 8, 4, 8, 1, 1, 4, 2, 2};
  const char* names[] = {"bool", "int64", "float32", "float64", "uint8", "int8", "int32", "bfloat16", "float16"};
  for (size_t i = 0; i < 9; ++i) {
    CHECK(element_size(kAll[i]) == sizes[i]);
    CHECK(dtype_name(kAll[i]) == names[i]);
  }
  CHECK(is_floating(kBFloat16));
  CHECK(is_floating(kFloat16));
  CHECK(is_integral(kUInt8, false));
  CHECK(!is_floating(kInt8));
  for (DType dt : kAll) {
    INFO(dt);
    Tensor z = zeros({2, 3}, dt), o = ones({2, 3}, dt), f = full({2}, 1, dt);
    CHECK(z.dtype() == dt);
    CHECK(z.to_vector<double>() == std::vector<double>(6, 0.0));
    CHECK(o.to_vector<double>() == std::vector<double>(6, 1.0));
    CHECK(f.to_vector<double>() == std::vector<double>(2, 1.0));
    if (dt != kBool) CHECK(arange(0, 5, 1, dt).to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4});
  }
  CHECK(full({1}, 0.1, kBFloat16).to_vector<BFloat16>()[0].bits == 0x3DCD);
  CHECK(full({1}, 300, kInt8).item<int64_t>() == 44);  // wraps as a C cast, as PyTorch's fill does
  Tensor r = randn({1000}, kBFloat16);
  CHECK(r.dtype() == kBFloat16);
  double m = mean(r.to(kFloat32)).item<double>();
  CHECK(std::fabs(m) < 0.15);
}

TEST_CASE("printing the new dtypes", "[dtypes]") {
  CHECK(tensor({1.5, 2.3}, {}, kBFloat16).to_string() == "tensor([1.5000, 2.2969], dtype=bfloat16, shape=[2])");
  CHECK(tensor({1, 2}, {}, kFloat16).to_string() == "tensor([1., 2.], dtype=float16, shape=[2])");
  CHECK(from_vector<int8_t>({-128, 5}).to_string() == "tensor([-128,    5], dtype=int8, shape=[2])");
  CHECK(from_vector<uint8_t>({255, 0}).to_string() == "tensor([255,   0], dtype=uint8, shape=[2])");
  CHECK(from_vector<int32_t>({7}, {1}).to_string() == "tensor([7], dtype=int32, shape=[1])");
}

TEST_CASE("int8 and uint8 arithmetic wraps; division is true division", "[dtypes]") {
  Tensor a = from_vector<int8_t>({100, -128, 127}), b = from_vector<int8_t>({100, -1, 1});
  CHECK((a + b).to_vector<int64_t>() == std::vector<int64_t>{-56, 127, -128});
  CHECK((a * b).to_vector<int64_t>() == std::vector<int64_t>{16, -128, 127});
  CHECK((-a).to_vector<int64_t>() == std::vector<int64_t>{-100, -128, -127});
  CHECK((a + b).dtype() == kInt8);
  Tensor q = a / b;
  CHECK(q.dtype() == kFloat32);
  CHECK(q.to_vector<double>() == std::vector<double>{1.0, 128.0, 127.0});
  Tensor u = from_vector<uint8_t>({0, 200}), v = from_vector<uint8_t>({1, 100});
  CHECK((u - v).to_vector<int64_t>() == std::vector<int64_t>{255, 100});
  CHECK((u + v).to_vector<int64_t>() == std::vector<int64_t>{1, 44});
  CHECK(sum(u).dtype() == kInt64);
  CHECK(sum(u).item<int64_t>() == 200);
  CHECK((u + v.to(kUInt8)).dtype() == kUInt8);
  // uint8 with int8: PyTorch gives int16, which weft does not have; int32 holds both.
  CHECK((u + from_vector<int8_t>({1, 1})).dtype() == kInt32);
  CHECK((from_vector<int32_t>({1 << 30}) * 4).item<int64_t>() == 0);
}

TEST_CASE("comparisons, bitwise ops, clamp and arg reductions on the new dtypes", "[dtypes]") {
  Tensor u = from_vector<uint8_t>({0, 5, 250}), i = from_vector<int8_t>({-7, 0, 100});
  CHECK(gt(u, 4).to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK(bitwise_and(u, from_vector<uint8_t>({255, 4, 15})).to_vector<int64_t>() == std::vector<int64_t>{0, 4, 10});
  CHECK((~u).to_vector<int64_t>() == std::vector<int64_t>{255, 250, 5});
  CHECK(abs(i).to_vector<int64_t>() == std::vector<int64_t>{7, 0, 100});
  CHECK(abs(u).to_vector<int64_t>() == std::vector<int64_t>{0, 5, 250});
  CHECK(clamp(i, -5, 50).to_vector<int64_t>() == std::vector<int64_t>{-5, 0, 50});
  CHECK(clamp(i, -5, 50).dtype() == kInt8);
  Tensor h = tensor({0.5, -3.0, 7.25, 7.25}, {}, kBFloat16);
  CHECK(argmax(h).item<int64_t>() == 2);
  auto [values, indices] = max(h.reshape({2, 2}), 1);
  CHECK(values.dtype() == kBFloat16);
  CHECK(values.to_vector<double>() == std::vector<double>{0.5, 7.25});
  CHECK(indices.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(sum(from_vector<int32_t>({1 << 30, 1 << 30, 1 << 30})).item<int64_t>() == 3LL << 30);  // int64 sum
}

TEST_CASE("gradients flow through bfloat16 ops in bfloat16", "[dtypes]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, {}, TensorOptions(kBFloat16).requires_grad(true));
  Tensor y = sum(x * x + x);
  y.backward();
  CHECK(x.grad().dtype() == kBFloat16);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 5, 7});
  Tensor w = tensor({1.0, 2.0}, {}, TensorOptions(kFloat32).requires_grad(true));
  sum(w.to(kBFloat16) * 3.0).backward();
  CHECK(w.grad().dtype() == kFloat32);
  CHECK(w.grad().to_vector<double>() == std::vector<double>{3, 3});
}

TEST_CASE("16-bit floats compute in float32 and round once", "[dtypes]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, {}, kBFloat16);
  Tensor y = x + x * 256.0;  // 257, 514, 771: rounded to bfloat16's 8 bits (the first two are ties)
  CHECK(y.dtype() == kBFloat16);
  CHECK(y.to_vector<double>() == std::vector<double>{256, 512, 772});
  CHECK(mean(x).item<double>() == 2.0);
  CHECK((x + tensor({1.0}, {1}, kFloat16)).dtype() == kFloat32);
  CHECK((x + tensor({1.0}, {1}, kFloat32)).dtype() == kFloat32);
  CHECK((x + scalar_tensor(1.0, kFloat64)).dtype() == kBFloat16);  // a 0-dim operand of one category loses
  CHECK((from_vector<int8_t>({1}) + scalar_tensor(1.0, kBFloat16)).dtype() == kBFloat16);
  // A long sum accumulates in float: 4096 ones in bfloat16 sum to 4096, not to bfloat16's 256 plateau.
  CHECK(sum(ones({4096}, kBFloat16)).item<double>() == 4096.0);
  CHECK(max(tensor({1, 7, 3}, {}, kFloat16)).item<double>() == 7.0);
}

TEST_CASE("indexing and shape ops move the new dtypes exactly", "[dtypes]") {
  for (DType dt : {kUInt8, kInt8, kInt32, kBFloat16, kFloat16}) {
    INFO(dt);
    Tensor x = arange(0, 12, 1, dt).reshape({3, 4});
    std::vector<double> t = transpose(x, 0, 1).contiguous().to_vector<double>();
    CHECK(t == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
    Tensor c = cat({x, x}, 0);
    CHECK(c.dtype() == dt);
    CHECK(c.shape() == Shape{6, 4});
    CHECK(c.to_vector<double>()[13] == 1.0);
    Tensor idx = from_vector<int64_t>({2, 0});
    CHECK(index_select(x, 0, idx).to_vector<double>() == std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3});
    Tensor g = gather(x, 1, from_vector<int64_t>({3, 0, 1}, {3, 1}));
    CHECK(g.to_vector<double>() == std::vector<double>{3, 4, 9});
    Tensor w = where(gt(x, 5), x, zeros_like(x));
    CHECK(w.dtype() == dt);
    CHECK(w.to_vector<double>()[6] == 6.0);
    CHECK(w.to_vector<double>()[5] == 0.0);
    CHECK(flip(x, {1}).to_vector<double>()[0] == 3.0);
    CHECK(eq(x.to(kFloat64).to(dt), x).to_vector<bool>() == std::vector<bool>(12, true));
  }
}

TEST_CASE("a bfloat16 matmul matches float32 on the same values to bfloat16 tolerance", "[dtypes]") {
  Tensor a = randn({33, 70}).to(kBFloat16), b = randn({70, 41}).to(kBFloat16);
  Tensor y = matmul(a, b);
  CHECK(y.dtype() == kBFloat16);
  Tensor ref = matmul(a.to(kFloat32), b.to(kFloat32));
  std::vector<double> got = y.to_vector<double>(), want = ref.to_vector<double>();
  test::require_within(got, want, [&](size_t i) { return std::fabs(want[i]) * 0x1p-8 + 1e-6; });
  Tensor batched = matmul(a.reshape({3, 11, 70}), b);
  CHECK(batched.dtype() == kBFloat16);
  CHECK(bits16(batched.reshape({33, 41})) == bits16(y));
  Tensor h = matmul(a.to(kFloat16), b.to(kFloat16));
  CHECK(h.dtype() == kFloat16);
  test::require_within(h.to_vector<double>(), want, [&](size_t i) { return std::fabs(want[i]) * 0x1p-10 + 1e-3; });
  CHECK(matmul(from_vector<int8_t>({1, 2, 3, 4}, {2, 2}), from_vector<int8_t>({100, 0, 0, 100}, {2, 2}))
            .to_vector<int64_t>() == std::vector<int64_t>{100, -56, 44, -112});
}

TEST_CASE("safetensors and npy files store and load every dtype as itself", "[dtypes][io]") {
  test::TempDir dir;
  nn::StateDict d;
  for (DType dt : kAll) d.insert(std::string(dtype_name(dt)), arange(0, 6, 1, kInt64).reshape({2, 3}).to(dt));
  d.insert("bf16_bits", from_bits<BFloat16>({0x3F81, 0x7FC0, 0xFF80, 0x0001}));
  io::save_safetensors(dir / "all.safetensors", d);
  nn::StateDict back = io::load_safetensors(dir / "all.safetensors");
  for (DType dt : kAll) {
    INFO(dt);
    const Tensor& t = back[std::string(dtype_name(dt))];
    CHECK(t.dtype() == dt);
    CHECK(t.to_vector<double>() == d[std::string(dtype_name(dt))].to_vector<double>());
    if (dt == kBFloat16) continue;  // NumPy has no bfloat16
    io::save_npy(dir / "t.npy", t);
    Tensor n = io::load_npy(dir / "t.npy");
    CHECK(n.dtype() == dt);
    CHECK(n.to_vector<double>() == t.to_vector<double>());
  }
  CHECK(bits16(back["bf16_bits"]) == std::vector<uint16_t>{0x3F81, 0x7FC0, 0xFF80, 0x0001});
  test::require_error([&] { io::save_npy(dir / "b.npy", d["bfloat16"]); }, "NumPy has no bfloat16");
}

TEST_CASE("ops that do not take a dtype name the op and the dtype", "[dtypes]") {
  Tensor x = ones({2, 3}, kBFloat16);
  std::string msg = test::error_of([&] { bitwise_not(x); });
  CHECK(msg.find("bitwise_not") != std::string::npos);
  CHECK(msg.find("bfloat16") != std::string::npos);
  msg = test::error_of([&] { gelu(ones({2, 3}, kInt8)); });
  CHECK(msg.find("gelu") != std::string::npos);
  CHECK(msg.find("int8") != std::string::npos);
  // softmax, the norms and cross_entropy compute bfloat16 in float32 and round once (ops/reduced_float.h).
  Tensor p = softmax(x, 1);
  CHECK(p.dtype() == kBFloat16);
  CHECK(equal(p.to(kFloat32), softmax(x.to(kFloat32), 1).to(kBFloat16).to(kFloat32)));
  msg = test::error_of([&] { from_vector<int8_t>({1}) & ones({1}, kFloat16); });
  CHECK(msg.find("float16") != std::string::npos);
}

TEST_CASE("conversions match PyTorch bit for bit", "[dtypes][torch]") {
  test::skip_without_torch();
  const json& c = oracle()["conversions"];
  Tensor x = from_vector(floats(c["f32"]));
  // NaN may differ in sign and payload: PyTorch's vectorised conversion makes 0xFFFF, its scalar
  // one (and weft) 0x7FC0.
  same_bits(x.to(kBFloat16), c["bf16_bits"]);
  same_bits(x.to(kFloat16), c["f16_bits"]);
  same_bits(x.to(kBFloat16).to(kFloat16), c["bf16_to_f16_bits"]);
  same_bits(x.to(kFloat16).to(kBFloat16), c["f16_to_bf16_bits"]);
  std::vector<float> back = x.to(kBFloat16).to(kFloat32).to_vector<float>(), want = floats(c["bf16_back"]);
  for (size_t i = 0; i < back.size(); ++i)
    CHECK((back[i] == want[i] || (std::isnan(back[i]) && std::isnan(want[i]))));
  Tensor d = from_vector(c["f64"].get<std::vector<double>>());
  same_bits(d.to(kBFloat16), c["f64_bf16_bits"]);  // through float32, as PyTorch rounds twice
  same_bits(d.to(kFloat16), c["f64_f16_bits"]);
  Tensor i = from_vector(c["int64"].get<std::vector<int64_t>>());
  CHECK(i.to(kInt8).to_vector<int64_t>() == c["int64_to_int8"].get<std::vector<int64_t>>());
  CHECK(i.to(kUInt8).to_vector<int64_t>() == c["int64_to_uint8"].get<std::vector<int64_t>>());
  CHECK(i.to(kInt32).to_vector<int64_t>() == c["int64_to_int32"].get<std::vector<int64_t>>());
  same_bits(i.to(kBFloat16), c["int64_to_bf16_bits"]);
}

TEST_CASE("type promotion matches torch.result_type for every pair, 0-dim and scalar", "[dtypes][torch]") {
  test::skip_without_torch();
  for (const auto& row : oracle()["promotion"]["pairs"]) {
    DType a = dtype_named(row["a"]), b = dtype_named(row["b"]);
    INFO(dtype_name(a) << " with " << dtype_name(b));
    Tensor da = ones({2}, a), db = ones({2}, b), za = ones({}, a), zb = ones({}, b);
    auto expect = [](const json& name) {
      // weft has no int16: uint8 with int8 promotes to int32 instead (documented in dtype.h).
      return name == "int16" ? kInt32 : dtype_named(name);
    };
    CHECK(result_type(da, db) == expect(row["dim_dim"]));
    CHECK(result_type(da, zb) == expect(row["dim_zero"]));
    CHECK(result_type(za, db) == expect(row["zero_dim"]));
    CHECK(result_type(za, zb) == expect(row["zero_zero"]));
  }
  for (const auto& row : oracle()["promotion"]["scalars"]) {
    DType a = dtype_named(row["a"]);
    Tensor t = row["zero"].get<bool>() ? ones({}, a) : ones({2}, a);
    std::string kind = row["scalar"];
    INFO(dtype_name(a) << " with a " << kind << " scalar, 0-dim " << row["zero"].get<bool>());
    Scalar s = kind == "int" ? Scalar(2) : kind == "float" ? Scalar(2.5) : Scalar(true);
    CHECK(result_type(t, s) == dtype_named(row["result"]));
  }
}

TEST_CASE("integer and 16-bit float arithmetic matches PyTorch", "[dtypes][torch]") {
  test::skip_without_torch();
  const json& o = oracle()["arithmetic"];
  for (const std::string name : {"int8", "uint8"}) {
    INFO(name);
    const json& r = o[name];
    auto make = [&](const char* key) {
      std::vector<int64_t> v = o[key].get<std::vector<int64_t>>();
      return from_vector(v).to(name == "int8" ? kInt8 : kUInt8);
    };
    Tensor a = make(name == "int8" ? "a8" : "au"), b = make(name == "int8" ? "b8" : "bu");
    auto ints = [](const Tensor& t) { return t.to_vector<int64_t>(); };
    CHECK(ints(a + b) == r["add"].get<std::vector<int64_t>>());
    CHECK(ints(a - b) == r["sub"].get<std::vector<int64_t>>());
    CHECK(ints(a * b) == r["mul"].get<std::vector<int64_t>>());
    CHECK(ints(-a) == r["neg"].get<std::vector<int64_t>>());
    CHECK(ints(a * 3) == r["mul3"].get<std::vector<int64_t>>());
    CHECK(ints(remainder(a, b)) == r["remainder"].get<std::vector<int64_t>>());
    CHECK(ints(maximum(a, b)) == r["max"].get<std::vector<int64_t>>());
    CHECK(lt(a, b).to_vector<bool>() == r["lt"].get<std::vector<bool>>());
    CHECK((a / b).to_vector<float>() == floats(r["div"]));
    CHECK((a + 0.5).dtype() == kFloat32);
    CHECK((a + 0.5).to_vector<float>() == floats(r["add_f"]));
    CHECK(sum(a).item<int64_t>() == r["sum"].get<int64_t>());
    CHECK(max(a).item<int64_t>() == r["max_all"].get<int64_t>());
  }
  for (const std::string name : {"bfloat16", "float16"}) {
    INFO(name);
    const json& r = o[name];
    DType dt = dtype_named(name);
    Tensor x = from_bits16(dt, r["x_bits"]), y = from_bits16(dt, r["y_bits"]);
    auto check = [&](const char* key, const Tensor& got) {
      INFO(key);
      if (r[key].is_null()) return;  // PyTorch 1.13 has no CPU kernel for it
      CHECK(got.dtype() == dt);
      CHECK(bits16(got) == r[key].get<std::vector<uint16_t>>());
    };
    check("add", x + y);
    check("sub", x - y);
    check("mul", x * y);
    check("div", x / y);
    check("exp", exp(x));
    check("tanh", tanh(x));
    check("sqrt", sqrt(y));
    check("mul_scalar", x * 0.1);  // the number is rounded to x's dtype first, as in PyTorch
    check("add_scalar", x + 1.3);
    check("sum", sum(x).reshape({1}));
    check("mean", mean(x).reshape({1}));
    check("max", max(x).reshape({1}));
    CHECK(gt(x, y).to_vector<bool>() == r["gt"].get<std::vector<bool>>());
  }
  const json& l = o["long_sum"];
  Tensor v = from_bits16(kBFloat16, l["bits"]);
  CHECK(bits16(sum(v).reshape({1})) == l["sum"].get<std::vector<uint16_t>>());
  CHECK(bits16(sum(narrow(v, 0, 0, 4096).reshape({64, 64}), 1)) == l["rows"].get<std::vector<uint16_t>>());
}

TEST_CASE("a bfloat16 matmul matches PyTorch's to one bfloat16 rounding", "[dtypes][torch]") {
  test::skip_without_torch();
  const json& m = oracle()["matmul"];
  Tensor a = from_bits16(kBFloat16, m["a_bits"], {17, 70}), b = from_bits16(kBFloat16, m["b_bits"], {70, 23});
  std::vector<double> got = matmul(a, b).to(kFloat64).to_vector<double>();
  std::vector<double> torch_out = from_bits16(kBFloat16, m["out_bits"]).to(kFloat64).to_vector<double>();
  std::vector<float> exact_f = floats(m["exact_f32"]);
  std::vector<double> exact(exact_f.begin(), exact_f.end());
  // Both round the exact product once (each within half a bfloat16 ulp, up to float32 accumulation).
  test::require_within(got, exact, [&](size_t i) { return std::fabs(exact[i]) * 0x1p-8 + 1e-5; });
  test::require_within(got, torch_out, [&](size_t i) { return std::fabs(exact[i]) * 0x1p-7 + 1e-5; });
}
