// test_tensor.cpp: the tensor core (framework/): factories, the generator, dtype promotion,
// strides and aliases, element access, printing, and the errors users meet there.
#include <catch2/catch.hpp>

#include "tests/test_util.h"

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "framework/copy.h"
#include "framework/factories.h"
#include "framework/tensor.h"

using namespace weft;

namespace {

using test::require_error;

template <class T>
void require_values(const Tensor& t, const std::vector<T>& expected) {
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  std::vector<T> got = t.to_vector<T>();
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i);
    if constexpr (std::is_floating_point_v<T>) CHECK(got[i] == Approx(expected[i]).margin(1e-12));
    else CHECK(got[i] == expected[i]);
  }
}

// A contiguous tensor seen with another shape (framework only, no shape ops).
Tensor shaped(const Tensor& t, const Shape& shape) {
  return detail::make_alias(t, shape, contiguous_strides(shape), t.storage_offset());
}

}  // namespace

TEST_CASE("factories produce the documented values", "[tensor][factories]") {
  SECTION("tensor and from_vector") {
    Tensor t = tensor({1.5, -2, 3}, {3});
    CHECK(t.dtype() == kFloat32);
    CHECK(t.shape() == Shape{3});
    require_values<float>(t, {1.5f, -2.f, 3.f});
    Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype(kFloat64));
    CHECK(m.shape() == Shape{2, 3});
    CHECK(m.strides() == Shape{3, 1});
    require_values<double>(m, {1, 2, 3, 4, 5, 6});
    Tensor i = from_vector<int64_t>({int64_t(1) << 53 | 1, -7}, {2});  // stored exactly, not via double
    CHECK(i.dtype() == kInt64);
    require_values<int64_t>(i, {(int64_t(1) << 53) | 1, -7});
    Tensor b = from_vector<bool>({true, false, true});
    require_values<bool>(b, {true, false, true});
    Tensor s = scalar_tensor(2.5, dtype(kFloat64));
    CHECK(s.dim() == 0);
    CHECK(s.item<double>() == 2.5);
  }
  SECTION("constants") {
    require_values<float>(zeros({2, 2}), {0, 0, 0, 0});
    require_values<int64_t>(ones({3}, dtype(kInt64)), {1, 1, 1});
    require_values<double>(full({2}, 7.25, dtype(kFloat64)), {7.25, 7.25});
    require_values<bool>(full({2}, true, dtype(kBool)), {true, true});
    Tensor e = empty({4, 0, 2});
    CHECK(e.numel() == 0);
    CHECK(e.shape() == Shape{4, 0, 2});
    CHECK(ones({}).dim() == 0);
    CHECK(ones({}).numel() == 1);
  }
  SECTION("ranges") {
    Tensor a = arange(5);
    CHECK(a.dtype() == kInt64);
    require_values<int64_t>(a, {0, 1, 2, 3, 4});
    require_values<int64_t>(arange(2, 11, 3), {2, 5, 8});
    require_values<int64_t>(arange(5, 0, -2), {5, 3, 1});
    Tensor f = arange(0, 1, 0.25);  // a floating step makes a float32 range, as in PyTorch
    CHECK(f.dtype() == kFloat32);
    require_values<float>(f, {0, 0.25f, 0.5f, 0.75f});
    require_values<double>(arange(1.0, 2.5, 0.5, dtype(kFloat64)), {1.0, 1.5, 2.0});
    CHECK(arange(3, 3).numel() == 0);
    require_values<double>(linspace(0, 1, 5, dtype(kFloat64)), {0, 0.25, 0.5, 0.75, 1});
    // torch.linspace(-1, 1, 1) is [-1]: one step gives `start`.
    CHECK(linspace(-1, 1, 1, dtype(kFloat64)).item<double>() == -1.0);
    CHECK(linspace(0, 1, 0).numel() == 0);
    // The last value is exactly `end` even when the step does not divide evenly in binary.
    CHECK(linspace(0, 0.3, 7, dtype(kFloat64)).to_vector<double>().back() == 0.3);
    require_values<float>(eye(2, 3), {1, 0, 0, 0, 1, 0});
    require_values<double>(eye(3, -1, dtype(kFloat64)), {1, 0, 0, 0, 1, 0, 0, 0, 1});
  }
  SECTION("*_like keep shape and dtype unless told") {
    Tensor base = shaped(arange(6), {2, 3});
    Tensor z = zeros_like(base);
    CHECK(z.dtype() == kInt64);
    CHECK(z.shape() == Shape{2, 3});
    require_values<int64_t>(z, {0, 0, 0, 0, 0, 0});
    Tensor o = ones_like(base, dtype(kFloat64));
    CHECK(o.dtype() == kFloat64);
    require_values<double>(o, {1, 1, 1, 1, 1, 1});
    require_values<float>(full_like(zeros({2}), -3), {-3, -3});
    CHECK(empty_like(base).shape() == base.shape());
    Tensor r = rand_like(zeros({4, 5}, kFloat64));
    CHECK(r.dtype() == kFloat64);
    CHECK(r.shape() == Shape{4, 5});
    CHECK(randn_like(zeros({7})).shape() == Shape{7});
  }
  SECTION("requires_grad option") {
    Tensor w = zeros({2}, requires_grad());
    CHECK(w.requires_grad());
    CHECK(w.is_leaf());
    CHECK_FALSE(zeros({2}).requires_grad());
    require_error([] { zeros({2}, TensorOptions(kInt64).requires_grad()); },
                  "zeros: only floating point tensors can require gradients, but dtype is int64");
    require_error([] { ones({2}, TensorOptions(kBool).requires_grad()); }, "ones: only floating point");
  }
}

TEST_CASE("the generator is deterministic and well distributed", "[tensor][random]") {
  SECTION("same seed, same numbers; different seeds differ") {
    Generator g1(123), g2(123), g3(124);
    auto a = rand({64}, {}, &g1).to_vector<float>();
    auto b = rand({64}, {}, &g2).to_vector<float>();
    auto c = rand({64}, {}, &g3).to_vector<float>();
    CHECK(a == b);
    CHECK(a != c);
    manual_seed(7);
    auto d = randn({32}, dtype(kFloat64)).to_vector<double>();
    manual_seed(7);
    auto e = randn({32}, dtype(kFloat64)).to_vector<double>();
    CHECK(d == e);
    manual_seed(7);
    auto f = randint(0, 1000, {32}).to_vector<int64_t>();
    manual_seed(7);
    CHECK(f == randint(0, 1000, {32}).to_vector<int64_t>());
  }
  SECTION("rand is in [0, 1) with mean 1/2") {
    Generator g(1);
    auto v = rand({100000}, dtype(kFloat64), &g).to_vector<double>();
    double lo = 1, hi = 0, sum = 0;
    for (double x : v) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
    }
    CHECK(lo >= 0.0);
    CHECK(hi < 1.0);
    CHECK(sum / v.size() == Approx(0.5).margin(0.01));
  }
  SECTION("randn has mean 0 and std 1") {
    Generator g(2);
    auto v = randn({100000}, dtype(kFloat64), &g).to_vector<double>();
    double sum = 0, sq = 0;
    for (double x : v) {
      sum += x;
      sq += x * x;
    }
    double mean = sum / v.size(), stdev = std::sqrt(sq / v.size() - mean * mean);
    CHECK(std::fabs(mean) < 0.02);  // 6 standard errors of the mean
    CHECK(stdev == Approx(1.0).margin(0.02));
  }
  SECTION("randint stays in [low, high) and hits every value") {
    Generator g(3);
    auto v = randint(-2, 3, {2000}, dtype(kInt64), &g).to_vector<int64_t>();
    std::set<int64_t> seen(v.begin(), v.end());
    CHECK(seen == std::set<int64_t>{-2, -1, 0, 1, 2});
    require_error([] { randint(3, 3, {2}); }, "randint: expected low < high but got low=3, high=3");
  }
}

TEST_CASE("dtype promotion follows PyTorch", "[tensor][dtype]") {
  // torch.result_type for two tensors.
  CHECK(promote_types(kBool, kBool) == kBool);
  CHECK(promote_types(kBool, kInt64) == kInt64);
  CHECK(promote_types(kInt64, kBool) == kInt64);
  CHECK(promote_types(kBool, kFloat32) == kFloat32);
  CHECK(promote_types(kInt64, kFloat32) == kFloat32);
  CHECK(promote_types(kFloat32, kInt64) == kFloat32);
  CHECK(promote_types(kInt64, kFloat64) == kFloat64);
  CHECK(promote_types(kFloat32, kFloat64) == kFloat64);
  CHECK(promote_types(kFloat64, kBool) == kFloat64);
  CHECK(promote_types(kInt64, kInt64) == kInt64);
  // A Python scalar meeting a tensor: torch.tensor([True]) + 1 is int64, torch.tensor([1]) + 1.5
  // is float32 (the default dtype), a float64 tensor stays float64.
  CHECK(promote_with_scalar(kBool, false) == kInt64);
  CHECK(promote_with_scalar(kBool, true) == kFloat32);
  CHECK(promote_with_scalar(kInt64, false) == kInt64);
  CHECK(promote_with_scalar(kInt64, true) == kFloat32);
  CHECK(promote_with_scalar(kFloat32, false) == kFloat32);
  CHECK(promote_with_scalar(kFloat32, true) == kFloat32);
  CHECK(promote_with_scalar(kFloat64, false) == kFloat64);
  CHECK(promote_with_scalar(kFloat64, true) == kFloat64);
  CHECK(element_size(kBool) == 1);
  CHECK(element_size(kInt64) == 8);
  CHECK(element_size(kFloat32) == 4);
  CHECK(element_size(kFloat64) == 8);
  CHECK(dtype_name(kFloat32) == "float32");
  CHECK(is_floating(kFloat64));
  CHECK_FALSE(is_floating(kInt64));
  CHECK(is_integral(kBool, true));
  CHECK_FALSE(is_integral(kBool, false));
}

TEST_CASE("strides, contiguity and aliases", "[tensor][strides]") {
  CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  CHECK(contiguous_strides({5}) == Shape{1});
  CHECK(contiguous_strides({}) == Shape{});
  CHECK(contiguous_strides({2, 0, 3}) == Shape{3, 3, 1});  // as torch.empty(2, 0, 3).stride()
  CHECK(numel_of({2, 0, 3}) == 0);
  CHECK(numel_of({}) == 1);
  CHECK(wrap_dim(-1, 3, "t") == 2);
  CHECK(wrap_dim(0, 0, "t") == 0);
  CHECK(broadcast_shapes({3, 1}, {4}, "t") == Shape{3, 4});
  require_error([] { broadcast_shapes({3}, {4}, "myop"); }, "myop: shapes [3] and [4] are not broadcastable");

  Tensor base = tensor({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {4, 3}, dtype(kFloat64));
  CHECK(base.is_contiguous());
  SECTION("a transposed alias reads columns") {
    Tensor t = detail::make_alias(base, {3, 4}, {1, 3}, 0);
    CHECK_FALSE(t.is_contiguous());
    CHECK(t.shares_storage(base));
    require_values<double>(t, {0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
  }
  SECTION("a row slice with an offset is contiguous; a column slice is not") {
    Tensor rows = detail::make_alias(base, {2, 3}, {3, 1}, 3);
    CHECK(rows.is_contiguous());
    CHECK(rows.storage_offset() == 3);
    require_values<double>(rows, {3, 4, 5, 6, 7, 8});
    CHECK(rows.data_ptr<double>()[0] == 3.0);
    Tensor cols = detail::make_alias(base, {4, 2}, {3, 1}, 1);
    CHECK_FALSE(cols.is_contiguous());
    require_values<double>(cols, {1, 2, 4, 5, 7, 8, 10, 11});
    Tensor one = detail::make_alias(base, {1, 1}, {99, 7}, 10);  // size-1 dims ignore their stride
    CHECK(one.is_contiguous());
    CHECK(one.item<double>() == 10.0);
    CHECK(one.item<int64_t>() == 10);
  }
  SECTION("a broadcast (stride 0) alias repeats values") {
    Tensor row = detail::make_alias(base, {3, 3}, {0, 1}, 6);
    CHECK_FALSE(row.is_contiguous());
    require_values<double>(row, {6, 7, 8, 6, 7, 8, 6, 7, 8});
    CHECK(detail::broadcast_strides(detail::make_alias(base, {1, 3}, {3, 1}, 0), {2, 3}) == Shape{0, 1});
  }
  SECTION("copy_into converts dtype through strides, and writes are shared by aliases") {
    Tensor t = detail::make_alias(base, {3, 4}, {1, 3}, 0);
    Tensor dst = zeros({3, 4}, kInt64);
    detail::copy_into(dst, t);
    require_values<int64_t>(dst, {0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
    base.data_ptr<double>()[1] = 42.0;
    CHECK(t.to_vector<double>()[4] == 42.0);
  }
}

TEST_CASE("printing", "[tensor][print]") {
  CHECK(tensor({1, 2, 3}).to_string() == "tensor([1., 2., 3.], dtype=float32, shape=[3])");
  CHECK(tensor({1.5, -2.25}, {2}, dtype(kFloat64)).to_string() ==
        "tensor([ 1.5000, -2.2500], dtype=float64, shape=[2])");
  CHECK(from_vector<int64_t>({1, -20, 300}).to_string() == "tensor([  1, -20, 300], dtype=int64, shape=[3])");
  CHECK(from_vector<bool>({true, false}).to_string() == "tensor([ True, False], dtype=bool, shape=[2])");
  CHECK(tensor({1, 2, 3, 4}, {2, 2}).to_string() ==
        "tensor([[1., 2.],\n"
        "        [3., 4.]], dtype=float32, shape=[2, 2])");
  CHECK(shaped(arange(8), {2, 2, 2}).to_string() ==
        "tensor([[[0, 1],\n"
        "         [2, 3]],\n"
        "\n"
        "        [[4, 5],\n"
        "         [6, 7]]], dtype=int64, shape=[2, 2, 2])");
  CHECK(scalar_tensor(3.5).to_string() == "tensor(3.5000, dtype=float32, shape=[])");
  CHECK(tensor({1e-5, 1}, {2}).to_string() == "tensor([1.0000e-05, 1.0000e+00], dtype=float32, shape=[2])");
  CHECK(zeros({0}).to_string() == "tensor([], dtype=float32, shape=[0])");
  CHECK(zeros({2}, requires_grad()).to_string() == "tensor([0., 0.], dtype=float32, shape=[2], requires_grad=True)");
  CHECK(Tensor().to_string() == "tensor(undefined)");
  SECTION("more than 1000 elements are elided around \"...\"") {
    CHECK(arange(1000).to_string().find("...") == std::string::npos);
    CHECK(arange(1001).to_string() ==
          "tensor([   0,    1,    2, ...,  998,  999, 1000], dtype=int64, shape=[1001])");
    std::string big = zeros({40, 30}).to_string();
    CHECK(big.find("...") != std::string::npos);
    CHECK(big.find("shape=[40, 30]") != std::string::npos);
    CHECK(big.size() < 600);
  }
  SECTION("printing a strided alias shows its logical order") {
    Tensor base = tensor({1, 2, 3, 4}, {2, 2}, dtype(kFloat64));
    CHECK(detail::make_alias(base, {2, 2}, {1, 2}, 0).to_string() ==
          "tensor([[1., 3.],\n"
          "        [2., 4.]], dtype=float64, shape=[2, 2])");
  }
}

TEST_CASE("errors name what went wrong", "[tensor][errors]") {
  require_error([] { zeros({2, -1}); }, "zeros: sizes must be non-negative but got [2, -1]");
  require_error([] { full({-1}, 2.0); }, "full: sizes must be non-negative but got [-1]");
  require_error([] { randn({3, -2}); }, "randn: sizes must be non-negative but got [3, -2]");
  require_error([] { empty({-3}); }, "empty: sizes must be non-negative but got [-3]");
  require_error([] { zeros({2, 3}).size(2); },
                "size: dimension out of range (expected to be in range of [-2, 1], but got 2)");
  require_error([] { zeros({2, 3}).size(-3); }, "size: dimension out of range");
  require_error([] { zeros({2, 3}).stride(5); }, "stride: dimension out of range");
  require_error([] { zeros({2}).item<float>(); },
                "item: expected a tensor with one element but got shape [2]");
  require_error([] { zeros({0}).item<float>(); },
                "item: expected a tensor with one element but got shape [0]");
  require_error([] { zeros({2}).data_ptr<double>(); },
                "data_ptr: tensor has dtype float32 but the requested type is float64");
  require_error([] { zeros({2}, kInt64).data_ptr<float>(); }, "data_ptr: tensor has dtype int64");
  require_error([] { Tensor().raw_data(); }, "Tensor: this tensor is undefined");
  require_error([] { Tensor().shape(); }, "Tensor: this tensor is undefined");
  require_error([] { Tensor().data_ptr<float>(); }, "Tensor: this tensor is undefined");
  require_error([] { detail::check_plain(Tensor(), "myop"); }, "myop: expected a defined tensor");
  require_error([] { tensor({1, 2, 3}, {2, 2}); }, "tensor: 3 values do not fill the shape [2, 2]");
  require_error([] { arange(0, 5, 0); }, "arange: step must be nonzero");
  require_error([] { arange(5, 0, 1); }, "arange: upper bound and step sign are inconsistent");
  require_error([] { linspace(0, 1, -1); }, "linspace: number of steps must be non-negative but got -1");
  require_error([] { eye(-1); }, "eye: n must be non-negative but got -1");
  require_error([] { rand({2}, kInt64); }, "rand: expected a floating dtype but got int64");
  require_error([] { randn({2}, kBool); }, "randn: expected a floating dtype but got bool");
  CHECK_FALSE(Tensor().defined());
}

TEST_CASE("printing an elided tensor formats from the values it shows") {
  Tensor t = zeros({40, 30}, dtype(kFloat64));
  t.data_ptr<double>()[30] = 0.5;  // element [1][0], which is shown
  REQUIRE_THAT(t.to_string(), Catch::Contains("0.5000"));
}

TEST_CASE("SmallVector keeps its elements when it grows past its inline capacity", "[tensor][shape]") {
  SmallVector<int64_t, 2> v;
  for (int64_t i = 0; i < 9; ++i) v.push_back(i * i);  // inline -> heap -> a larger heap block
  REQUIRE(v.size() == 9);
  for (int64_t i = 0; i < 9; ++i) CHECK(v[static_cast<size_t>(i)] == i * i);
  v.insert(v.begin() + 1, -1);
  CHECK(v[0] == 0);
  CHECK(v[1] == -1);
  CHECK(v[2] == 1);
  CHECK(v.back() == 64);
  SmallVector<int64_t, 2> moved(std::move(v));
  CHECK(moved.size() == 10);
  CHECK(moved[9] == 64);

  // Shapes of more dims than Shape keeps inline (6), built dim by dim.
  Tensor t = arange(0, 8);
  for (int i = 0; i < 7; ++i) t = t.unsqueeze(0);
  REQUIRE(t.dim() == 8);
  CHECK(t.size(-1) == 8);
  CHECK(t.sum().item<double>() == 28.0);
}

// copy_into without a conversion moves bits by element size, the two innermost dims as nested
// loops (Note [Copying short rows] in framework/copy.cpp): every element of every geometry must land
// where index arithmetic says, for each element size, into and out of strided memory.
TEST_CASE("copy_into of one dtype places every element of a strided geometry", "[tensor][copy]") {
  const Shape shape{3, 2, 4, 5};
  const int64_t n = numel_of(shape);
  std::vector<double> iota(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) iota[i] = static_cast<double>(i % 97);
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32, kInt8, kBFloat16, kFloat16, kBool}) {
    Tensor x = tensor(iota, shape, dt);
    // A permuted view: the source is strided, the destination contiguous.
    const Shape perm{2, 0, 3, 1};
    Shape pshape, pstrides;
    for (int64_t d : perm) pshape.push_back(shape[d]), pstrides.push_back(x.stride(d));
    Tensor src = detail::make_alias(x, pshape, pstrides, 0);
    Tensor dst = detail::make_empty(pshape, dt);
    detail::copy_into(dst, src);
    // And back, into a strided destination (dst's elements into a permuted view of a fresh buffer).
    Tensor back = detail::make_empty(shape, dt);
    detail::copy_into(detail::make_alias(back, pshape, pstrides, 0), dst);
    std::vector<double> got = dst.to_vector<double>(), round = back.to_vector<double>();
    std::vector<double> want = x.to_vector<double>();
    bool ok = true;
    for (int64_t a = 0; a < pshape[0]; ++a)
      for (int64_t b = 0; b < pshape[1]; ++b)
        for (int64_t c = 0; c < pshape[2]; ++c)
          for (int64_t d = 0; d < pshape[3]; ++d) {
            const int64_t flat = ((a * pshape[1] + b) * pshape[2] + c) * pshape[3] + d;
            ok = ok && got[flat] == want[a * pstrides[0] + b * pstrides[1] + c * pstrides[2] + d * pstrides[3]];
          }
    CHECK(ok);
    CHECK(round == want);
  }
}
