// test_shape_ops: views (aliasing, strides, errors), copies (cat, index_select, gather, triu/tril), chunk's
// rule, and a float64 gradcheck for every differentiable shape op.
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "framework/factories.h"
#include "autograd/node.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "tests/test_util.h"

using namespace weft;
using Catch::Matchers::Contains;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
std::vector<double> iota(int64_t n, double start = 0) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
  return v;
}
Tensor range64(const Shape& shape) { return tensor(iota(numel_of(shape)), shape, kFloat64); }
Tensor leaf64(const Shape& shape) { return randn(shape, dtype(kFloat64).requires_grad()); }
Tensor index_of(const std::vector<int64_t>& v, const Shape& shape = {}) { return from_vector<int64_t>(v, shape); }

// Runs f and expects a weft::Error whose message names `op`.
template <class F>
void expect_error(F&& f, const std::string& op) {
  WEFT_CHECK_ERROR(f(), Contains(op));
  CHECK_THROWS_AS(f(), Error);
}

}  // namespace

TEST_CASE("reshape and view share storage when strides allow", "[shape]") {
  Tensor x = range64({2, 3, 4});
  SECTION("contiguous reshape is a view, -1 inferred") {
    Tensor y = reshape(x, {4, -1});
    CHECK(y.shape() == Shape{4, 6});
    CHECK(y.shares_storage(x));
    CHECK(values(y) == iota(24));
  }
  SECTION("a transposed tensor reshapes by copying, in row-major order of the transpose") {
    Tensor t = transpose(x, 0, 2);  // [4, 3, 2]
    Tensor y = reshape(t, {-1});
    CHECK_FALSE(y.shares_storage(x));
    std::vector<double> expect;
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 3; ++j)
        for (int i = 0; i < 2; ++i) expect.push_back(i * 12 + j * 4 + k);
    CHECK(values(y) == expect);
    expect_error([&] { return view(t, {-1}); }, "view");
  }
  SECTION("view of a narrowed tensor merges only compatible dims") {
    Tensor n = narrow(x, 2, 0, 2);  // [2, 3, 2], strides [12, 4, 1]
    expect_error([&] { return view(n, {12}); }, "view");
    Tensor v = view(transpose(x, 1, 2), {2, 4, 3});  // same shape: a plain alias
    CHECK(v.shares_storage(x));
    Tensor m = view(x, {6, 4});
    CHECK(m.strides() == Shape{4, 1});
    Tensor split_dim = view(select(x, 2, 1), {2, 3, 1});  // [2,3] strides [12,4] -> unsqueeze-like view
    CHECK(split_dim.shares_storage(x));
    CHECK(values(split_dim) == std::vector<double>{1, 5, 9, 13, 17, 21});
  }
  SECTION("errors name the op") {
    expect_error([&] { return reshape(x, {5, -1}); }, "reshape");
    expect_error([&] { return reshape(x, {-1, -1}); }, "reshape");
    expect_error([&] { return view(x, {7}); }, "view");
  }
  SECTION("writing through a view shows in the base") {
    Tensor y = reshape(x, {24});
    y.data_ptr<double>()[5] = 100.0;
    CHECK(values(x)[5] == 100.0);
    Tensor s = select(transpose(x, 0, 1), 1, 1);  // x[1, :, :] seen as [3, 4]
    s.data_ptr<double>()[s.stride(0) * 2 + 3] = -1.0;  // s[2][3] = x[1][2][3]
    CHECK(values(x)[12 + 8 + 3] == -1.0);
  }
}

TEST_CASE("flatten, squeeze, unsqueeze", "[shape]") {
  Tensor x = range64({2, 1, 3, 1});
  CHECK(flatten(x).shape() == Shape{6});
  CHECK(flatten(x, 1, 2).shape() == Shape{2, 3, 1});
  CHECK(flatten(scalar_tensor(3.0)).shape() == Shape{1});
  CHECK(squeeze(x).shape() == Shape{2, 3});
  CHECK(squeeze(x, 1).shape() == Shape{2, 3, 1});
  CHECK(squeeze(x, 0).shape() == x.shape());  // not size 1: unchanged
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 1, 3, 1, 1});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 1, 3, 1});
  CHECK(values(squeeze(x)) == iota(6));
  CHECK(squeeze(x).shares_storage(x));
  expect_error([&] { return unsqueeze(x, 5); }, "unsqueeze");
  expect_error([&] { return flatten(x, 3, 1); }, "flatten");
  expect_error([&] { return squeeze(x, 4); }, "squeeze");
}

TEST_CASE("transpose, permute, expand, narrow, select, as_strided", "[shape]") {
  Tensor x = range64({2, 3});
  SECTION("transpose and permute") {
    CHECK(values(transpose(x, 0, 1)) == std::vector<double>{0, 3, 1, 4, 2, 5});
    CHECK(x.t().strides() == Shape{1, 3});
    Tensor p = permute(range64({2, 3, 4}), {2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.strides() == Shape{1, 12, 4});
    expect_error([&] { return permute(x, {0, 0}); }, "permute");
    expect_error([&] { return permute(x, {0}); }, "permute");
    expect_error([&] { return transpose(x, 0, 2); }, "transpose");
  }
  SECTION("expand") {
    Tensor col = range64({3, 1});
    Tensor e = expand(col, {2, -1, 4});
    CHECK(e.shape() == Shape{2, 3, 4});
    CHECK(e.strides() == Shape{0, 1, 0});
    CHECK(values(e)[4 * 2 + 3] == 2.0);  // e[0][2][3] = col[2]
    expect_error([&] { return expand(x, {3, 3}); }, "expand");
    expect_error([&] { return expand(x, {3}); }, "expand");
  }
  SECTION("narrow and select") {
    Tensor n = narrow(x, 1, 1, 2);
    CHECK(values(n) == std::vector<double>{1, 2, 4, 5});
    CHECK(n.shares_storage(x));
    CHECK(values(narrow(x, 1, -1, 1)) == std::vector<double>{2, 5});
    CHECK(values(select(x, 1, -1)) == std::vector<double>{2, 5});
    CHECK(values(select(x, 0, 1)) == std::vector<double>{3, 4, 5});
    expect_error([&] { return narrow(x, 1, 2, 2); }, "narrow");
    expect_error([&] { return select(x, 0, 2); }, "select");
  }
  SECTION("as_strided: overlapping windows") {
    Tensor v = range64({6});
    Tensor w = as_strided(v, {3, 3}, {1, 1}, 1);
    CHECK(values(w) == std::vector<double>{1, 2, 3, 2, 3, 4, 3, 4, 5});
    expect_error([&] { return as_strided(v, {3, 3}, {2, 1}, 1); }, "as_strided");
  }
}

TEST_CASE("index_select, gather, cat, stack", "[shape]") {
  Tensor x = range64({3, 4});
  SECTION("index_select with repeats") {
    Tensor r = index_select(x, 0, index_of({2, 0, 2}));
    CHECK(values(r) == std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
    Tensor c = index_select(transpose(x, 0, 1), 1, index_of({1}));  // non-contiguous input
    CHECK(values(c) == std::vector<double>{4, 5, 6, 7});
    expect_error([&] { return index_select(x, 0, index_of({3})); }, "index_select");
    expect_error([&] { return index_select(x, 0, tensor({1.0})); }, "index_select");
  }
  SECTION("gather along dim 1") {
    Tensor g = gather(x, 1, index_of({3, 0, 1, 1, 2, 2}, {3, 2}));
    CHECK(values(g) == std::vector<double>{3, 0, 5, 5, 10, 10});
    expect_error([&] { return gather(x, 1, index_of({4}, {1, 1})); }, "gather");
    expect_error([&] { return gather(x, 1, index_of({0})); }, "gather");
  }
  SECTION("cat and stack") {
    Tensor a = range64({2, 2}), b = tensor({9, 8}, {2, 1}, kFloat64);
    CHECK(values(cat({a, b}, 1)) == std::vector<double>{0, 1, 9, 2, 3, 8});
    CHECK(values(cat({a, a}, 0)) == std::vector<double>{0, 1, 2, 3, 0, 1, 2, 3});
    CHECK(cat({a, zeros({0, 2}, kFloat64)}, 0).shape() == Shape{2, 2});
    Tensor s = stack({a, a * 0.0}, 2);
    CHECK(s.shape() == Shape{2, 2, 2});
    CHECK(values(s) == std::vector<double>{0, 0, 1, 0, 2, 0, 3, 0});
    CHECK(cat({a, tensor({1, 2}, {1, 2}, kFloat32)}).dtype() == kFloat64);  // promotion
    expect_error([&] { return cat({a, b}, 0); }, "cat");
    expect_error([&] { return cat({}, 0); }, "cat");
    expect_error([&] { return stack({a, b}); }, "stack");
  }
}

TEST_CASE("split and chunk follow torch's rules", "[shape]") {
  auto sizes = [](const TensorList& parts) {
    std::vector<int64_t> s;
    for (const Tensor& p : parts) s.push_back(p.size(0));
    return s;
  };
  CHECK(sizes(chunk(range64({13}), 4)) == std::vector<int64_t>{4, 4, 4, 1});
  CHECK(sizes(chunk(range64({6}), 4)) == std::vector<int64_t>{2, 2, 2});
  CHECK(sizes(chunk(range64({1}), 4)) == std::vector<int64_t>{1});
  CHECK(sizes(split(range64({7}), 3)) == std::vector<int64_t>{3, 3, 1});
  TensorList parts = split(range64({2, 5}), std::vector<int64_t>{1, 4}, 1);
  CHECK(values(parts[1]) == std::vector<double>{1, 2, 3, 4, 6, 7, 8, 9});
  CHECK(parts[1].shares_storage(parts[0]));
  expect_error([&] { return split(range64({5}), std::vector<int64_t>{1, 2}); }, "split");
  expect_error([&] { return chunk(range64({5}), 0); }, "chunk");
}

TEST_CASE("chunk and split of a size-0 dim", "[shape]") {
  // torch.chunk on a size-0 dim returns `chunks` empty tensors (it goes through split_with_sizes
  // with [0] * chunks); torch.split with split_size 0 returns one empty piece, and split_size 0 on a
  // non-empty dim is an error.
  TensorList parts = chunk(zeros({0, 2}, kFloat64), 3);
  REQUIRE(parts.size() == 3);
  for (const Tensor& p : parts) CHECK(p.shape() == Shape{0, 2});
  TensorList cols = chunk(zeros({2, 0}), 4, -1);
  REQUIRE(cols.size() == 4);
  for (const Tensor& p : cols) CHECK(p.shape() == Shape{2, 0});
  CHECK(chunk(zeros({2, 0}), 4, 0).size() == 2);  // the chunked dim has size 2: two [1, 0] pieces
  TensorList one = split(zeros({0, 2}), 0);
  REQUIRE(one.size() == 1);
  CHECK(one[0].shape() == Shape{0, 2});
  test::require_error([&] { split(range64({3}), 0); }, "split");
  SECTION("the empty chunks are differentiable like the others") {
    Tensor x = zeros({0, 2}, dtype(kFloat64).requires_grad());
    TensorList xs = chunk(x, 2);
    REQUIRE(xs.size() == 2);
    sum(cat({xs[0], xs[1]}, 0)).backward();
    CHECK(x.grad().shape() == Shape{0, 2});
  }
}

// split's pieces share one backward node (Note [Split's gradient]); their gradients must be what
// separate narrows give, with zeros for a piece that got none, also through the layout that
// follows a transposed input and after an in-place op on a piece.
TEST_CASE("split's one backward node gives narrow's gradients", "[shape][grad]") {
  auto weighted = [](const TensorList& parts, const TensorList& w) {
    Tensor loss = sum(mul(parts[0], w[0]));
    for (size_t i = 1; i < w.size(); ++i) loss = add(loss, sum(mul(parts[i], w[i])));
    return loss;
  };
  Tensor x = leaf64({2, 5});
  TensorList parts = split(x, std::vector<int64_t>{1, 3, 1}, 1);
  CHECK(parts[0].grad_fn() == parts[2].grad_fn());
  CHECK(parts[0].grad_fn()->name() == "SplitBackward");
  add(sum(mul(parts[0], 2.0)), sum(mul(parts[2], 3.0))).backward();  // the middle piece unused
  CHECK(values(x.grad()) == std::vector<double>{2, 0, 0, 0, 3, 2, 0, 0, 0, 3});

  // Heads split from a transposed view, as nn::CausalSelfAttention does: [B, T, 3C] -> [B, 3H, T, D].
  Tensor t = leaf64({2, 3, 12});
  auto r = [] { return randn({2, 2, 3, 2}, dtype(kFloat64)); };
  TensorList w = {r(), r(), r()};
  Tensor heads = transpose(reshape(t, {2, 3, 6, 2}), 1, 2);
  weighted(split(heads, std::vector<int64_t>{2, 2, 2}, 1), w).backward();
  Tensor expected_grad = t.grad().clone();
  CHECK(t.grad().is_contiguous());
  t.set_grad(Tensor());
  Tensor heads2 = transpose(reshape(t, {2, 3, 6, 2}), 1, 2);
  weighted({narrow(heads2, 1, 0, 2), narrow(heads2, 1, 2, 2), narrow(heads2, 1, 4, 2)}, w).backward();
  CHECK(values(t.grad()) == values(expected_grad));
  using VL = autograd::variable_list;
  CHECK(autograd::gradcheck([](const VL& v) {
    TensorList p = split(transpose(reshape(v[0], {2, 3, 6, 2}), 1, 2), 2, 1);
    return VL{p[0], p[2]};
  }, {t}));

  // In place on a piece of a non-leaf: the piece's node is the split's, as it was the narrow's.
  auto through_inplace = [&](bool use_split) {
    Tensor y = range64({3, 4}).requires_grad_();
    Tensor a = mul(y, 1.5);
    TensorList p = use_split ? split(a, 2, 0) : TensorList{narrow(a, 0, 0, 2), narrow(a, 0, 2, 1)};
    p[1].mul_(3.0);
    add(sum(mul(a, a)), sum(mul(p[0], p[0]))).backward();
    return values(y.grad());
  };
  CHECK(through_inplace(true) == through_inplace(false));
}

TEST_CASE("triu, tril, contiguous, clone, to_dtype", "[shape]") {
  Tensor x = range64({3, 3}) + 1.0;
  CHECK(values(triu(x)) == std::vector<double>{1, 2, 3, 0, 5, 6, 0, 0, 9});
  CHECK(values(tril(x, -1)) == std::vector<double>{0, 0, 0, 4, 0, 0, 7, 8, 0});
  CHECK(values(triu(x, 1)) == std::vector<double>{0, 2, 3, 0, 0, 6, 0, 0, 0});
  expect_error([&] { return triu(range64({3})); }, "triu");
  CHECK(contiguous(x).is_same(x));
  Tensor t = contiguous(transpose(x, 0, 1));
  CHECK(t.is_contiguous());
  CHECK(values(t) == std::vector<double>{1, 4, 7, 2, 5, 8, 3, 6, 9});
  Tensor c = clone(x);
  c.data_ptr<double>()[0] = 42;
  CHECK(values(x)[0] == 1.0);
  Tensor i = to_dtype(tensor({1.7, -2.2}), kInt64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{1, -2});
  CHECK(to_dtype(x, kFloat64).is_same(x));
}

TEST_CASE("gradcheck of every differentiable shape op", "[shape][grad]") {
  using autograd::gradcheck;
  using VL = autograd::variable_list;
  Tensor x = leaf64({3, 4});
  CHECK(gradcheck([](const VL& v) { return reshape(transpose(v[0], 0, 1), {2, 6}); }, {x}));
  CHECK(gradcheck([](const VL& v) { return view(v[0], {4, 3}); }, {x}));
  CHECK(gradcheck([](const VL& v) { return flatten(unsqueeze(v[0], 1)); }, {x}));
  CHECK(gradcheck([](const VL& v) { return squeeze(unsqueeze(v[0], 0)); }, {x}));
  CHECK(gradcheck([](const VL& v) { return squeeze(unsqueeze(v[0], 2), 2); }, {x}));
  CHECK(gradcheck([](const VL& v) { return permute(unsqueeze(v[0], 0), {2, 0, 1}); }, {x}));
  CHECK(gradcheck([](const VL& v) { return expand(unsqueeze(v[0], 1), {3, 2, -1}); }, {x}));
  CHECK(gradcheck([](const VL& v) { return narrow(v[0], 1, 1, 2); }, {x}));
  CHECK(gradcheck([](const VL& v) { return select(v[0], 0, -1); }, {x}));
  CHECK(gradcheck([](const VL& v) { return as_strided(v[0], {3, 3}, {1, 2}, 1); }, {x}));
  // On a view: the geometry is in storage elements, so offset 5 is x[1][1].
  CHECK(gradcheck([](const VL& v) { return as_strided(narrow(v[0], 0, 1, 2), {2, 2}, {1, 4}, 5); }, {x}));
  CHECK(gradcheck([](const VL& v) { return index_select(v[0], 1, index_of({3, 0, 3})); }, {x}));
  CHECK(gradcheck([](const VL& v) { return gather(v[0], 0, index_of({2, 2, 0, 1, 1, 1}, {2, 3})); }, {x}));
  Tensor y = leaf64({2, 4});
  CHECK(gradcheck([](const VL& v) { return cat({v[0], v[1]}, 0); }, {x, y}));
  CHECK(gradcheck([](const VL& v) { return stack({v[0], v[0]}, 1); }, {x}));
  CHECK(gradcheck(
      [](const VL& v) {
        TensorList parts = chunk(v[0], 3, 1);
        return VL(parts.begin(), parts.end());
      },
      {x}));
  CHECK(gradcheck([](const VL& v) { return split(v[0], std::vector<int64_t>{1, 2}, 0)[1]; }, {x}));
  CHECK(gradcheck([](const VL& v) { return triu(v[0], 1); }, {x}));
  CHECK(gradcheck([](const VL& v) { return tril(v[0]); }, {x}));
  CHECK(gradcheck([](const VL& v) { return contiguous(transpose(v[0], 0, 1)); }, {x}));
  CHECK(gradcheck([](const VL& v) { return clone(v[0]); }, {x}));
  CHECK(gradcheck([](const VL& v) { return to_dtype(to_dtype(v[0], kFloat32), kFloat64); }, {x}, 1e-3, 1e-3,
                  1e-2));
}

TEST_CASE("Tensor methods forward to the ops", "[shape]") {
  Tensor x = range64({2, 3});
  CHECK(x.reshape({3, 2}).shape() == Shape{3, 2});
  CHECK(x.view({6}).shares_storage(x));
  CHECK(values(x.t()) == values(transpose(x, 0, 1)));
  CHECK(x.unsqueeze(0).squeeze().shape() == Shape{2, 3});
  CHECK(x.narrow(1, 0, 1).flatten().shape() == Shape{2});
  CHECK(values(x.select(0, 1)) == std::vector<double>{3, 4, 5});
  CHECK(x.expand({4, 2, 3}).strides() == Shape{0, 3, 1});
  CHECK(x.permute({1, 0}).shape() == Shape{3, 2});
  CHECK(x.to(kFloat32).dtype() == kFloat32);
  CHECK(values(x.clone()) == values(x));
  CHECK(x.sum().item<double>() == 15.0);
  expect_error([&] { return range64({2, 2, 2}).t(); }, "t:");
}
