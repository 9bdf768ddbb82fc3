// The local SPMD type rules (autograd/spmd_types.h) on one process: a Checker installed by hand,
// inputs typed as local_map types them, every rule and error exercised op by op.
#include <catch2/catch.hpp>

#include "autograd/spmd_types.h"
#include "weft.h"
#include "tests/test_util.h"

using namespace weft;
using spmd::Type;
using weft::test::require_error;

namespace {

const std::vector<std::string> kAxes = {"dp", "tp"};

// A checker over ("dp", "tp") with room for 8 inputs, installed for the fixture's life.
struct Body {
  spmd::Checker checker{kAxes, 0, 8};
  spmd::Scope scope{&checker};

  // A requires-grad local input `index` of types (dp, tp); `undecided` marks R-or-I axes.
  Tensor input(size_t index, Type dp, Type tp, uint8_t undecided = 0, bool grad = true) {
    Tensor t = ones({2, 2});
    if (grad) t.requires_grad_(true);
    Type types[2] = {dp, tp};
    checker.type_input(t, index, types, undecided);
    return t;
  }
  Type on(const Tensor& t, int64_t axis) const {
    std::optional<Type> type = checker.type_of(t, axis);
    REQUIRE(type.has_value());
    return *type;
  }
};

constexpr Type R = Type::Replicate, I = Type::Invariant, V = Type::Varying, P = Type::Partial;

}  // namespace

TEST_CASE("spmd types: node names become op names") {
  CHECK(spmd::op_name_of_node("GeluBackward") == "gelu");
  CHECK(spmd::op_name_of_node("LogSoftmaxBackward") == "log_softmax");
  CHECK(spmd::op_name_of_node("weft::(anonymous namespace)::MmBackward") == "mm");
}

TEST_CASE("spmd types: R, I and V propagate per axis") {
  Body b;
  Tensor rv = b.input(0, R, V), ri = b.input(1, R, I), vi = b.input(2, V, I);
  Tensor y = add(rv, vi.detach());  // vi detached needs no gradient: neutral between R and I on tp
  CHECK(b.on(y, 0) == V);
  CHECK(b.on(y, 1) == V);
  Tensor z = mul(ri, ri);
  CHECK(b.on(z, 0) == R);
  CHECK(b.on(z, 1) == I);
  Tensor w = matmul(vi, ri);  // dp: V with R; tp: I with I
  CHECK(b.on(w, 0) == V);
  CHECK(b.on(w, 1) == I);
  // A constant made in the body is neutral: it takes the other operand's type.
  Tensor c = add(ones({2, 2}), ri);
  CHECK(b.on(c, 0) == R);
  CHECK(b.on(c, 1) == I);
  CHECK_FALSE(b.checker.typed(ones({2, 2})));
}

TEST_CASE("spmd types: Partial flows through linear ops only") {
  Body b;
  Tensor p = b.input(0, P, R), q = b.input(1, P, R), r = b.input(2, R, R), v = b.input(3, V, R);
  CHECK(b.on(add(p, q), 0) == P);
  CHECK(b.on(sub(p, q), 0) == P);
  CHECK(b.on(neg(p), 0) == P);
  CHECK(b.on(mul(p, r), 0) == P);
  CHECK(b.on(mul(r, p), 0) == P);
  CHECK(b.on(mul(p, 3.0), 0) == P);
  CHECK(b.on(div(p, r), 0) == P);
  CHECK(b.on(div(p, 2.0), 0) == P);
  CHECK(b.on(matmul(p, r), 0) == P);
  CHECK(b.on(matmul(r, p), 0) == P);
  CHECK(b.on(linear(p, r), 0) == P);
  CHECK(b.on(sum(p), 0) == P);
  CHECK(b.on(mean(p, {0}), 0) == P);
  CHECK(b.on(transpose(p, 0, 1), 0) == P);
  CHECK(b.on(p.reshape({4}), 0) == P);
  CHECK(b.on(p.narrow(0, 0, 1), 0) == P);
  CHECK(b.on(cat({p, q}, 0), 0) == P);
  CHECK(b.on(p.detach(), 0) == P);  // detaching changes no value across the ranks
  CHECK(b.on(p.contiguous(), 0) == P);
  CHECK(b.on(add(p, q), 1) == R);  // the other axis is untouched
}

TEST_CASE("spmd types: Partial into anything else raises at the op, naming it and the mesh dim") {
  Body b;
  Tensor p = b.input(0, R, P), q = b.input(1, R, P), r = b.input(2, R, R), v = b.input(3, R, V);
  require_error([&] { gelu(p); }, "local_map: gelu on mesh dim \"tp\" got a Partial operand");
  require_error([&] { exp(p); }, "exp on mesh dim \"tp\"");
  require_error([&] { softmax(p, -1); }, "on mesh dim \"tp\" got a Partial operand");
  require_error([&] { mul(p, q); }, "mul on mesh dim \"tp\" multiplies two Partial operands");
  require_error([&] { matmul(p, q); }, "multiplies two Partial operands");
  require_error([&] { mul(p, v); }, "mul on mesh dim \"tp\" multiplies a Partial operand by a Varying one");
  require_error([&] { add(p, r); }, "add on mesh dim \"tp\" adds a Partial operand to a Replicate one");
  require_error([&] { add(p, v); }, "adds a Partial operand to a Varying one");
  require_error([&] { add(p, 1.0); }, "add on mesh dim \"tp\" got a Partial operand");
  require_error([&] { div(r, p); }, "div on mesh dim \"tp\" divides by a Partial operand");
  require_error([&] { linear(p, r, r.select(0, 0)); }, "linear on mesh dim \"tp\" adds a Partial operand");
  require_error([&] { cat({p, r}, 0); }, "cat on mesh dim \"tp\" adds a Partial operand");
  require_error([&] { gt(p, 0.0); }, "gt on mesh dim \"tp\" got a Partial operand");
  require_error([&] { argmax(p); }, "argmax on mesh dim \"tp\"");
  require_error([&] { max(p); }, "on mesh dim \"tp\" got a Partial operand");
  require_error([&] { gelu(p); }, "all_reduce it first");
  // The rules run under no-grad, and when no operand requires grad.
  NoGradGuard no_grad;
  require_error([&] { gelu(p); }, "gelu on mesh dim \"tp\" got a Partial operand");
  require_error([&] { gelu(p.detach()); }, "gelu on mesh dim \"tp\"");
  // Linear ops with a Partial bias in a Partial product are fine.
  CHECK(b.on(linear(p, r, q.select(0, 0)), 1) == P);
}

TEST_CASE("spmd types: Invariant mixes only with Invariant, when it needs a gradient") {
  Body b;
  Tensor i = b.input(1, R, I), v = b.input(2, R, V), r = b.input(3, R, R);
  require_error([&] { matmul(i, v); },
                "mm on mesh dim \"tp\" mixes an Invariant operand (local_map input 1) with a Varying one");
  require_error([&] { add(i, r); }, "mixes an Invariant operand (local_map input 1) with a Replicate one");
  require_error([&] { add(i, v); }, "declare input 1's grad placement Partial on \"tp\"");
  Tensor p = b.input(4, R, P);
  require_error([&] { mul(p, i); }, "mixes an Invariant operand (local_map input 1) with a Partial one");
  // Without a gradient, R and I are the same values: no error.
  CHECK(b.on(matmul(i.detach(), v), 1) == V);
  CHECK(b.on(add(i.detach(), r), 1) == R);
}

TEST_CASE("spmd types: an undecided Replicate input settles at its first mix") {
  Body b;
  const uint8_t tp = 0b10;
  Tensor u = b.input(0, R, R, tp), w = b.input(1, R, R, tp), v = b.input(2, R, V), i = b.input(3, R, I);
  CHECK_FALSE(b.checker.resolution(0, 1).has_value());
  Tensor uw = mul(u.t(), w);  // two undecided inputs mixed: one fate
  CHECK_FALSE(b.checker.resolution(0, 1).has_value());
  CHECK(b.on(matmul(uw, v), 1) == V);
  CHECK(b.checker.resolution(0, 1) == R);
  CHECK(b.checker.resolution(1, 1) == R);
  CHECK_FALSE(b.checker.resolution(0, 0).has_value());  // dp was declared: nothing to settle
  // Used with Invariant values only: Invariant (its gradient stays Replicate).
  Tensor x = b.input(4, R, R, tp);
  CHECK(b.on(add(x, i), 1) == I);
  CHECK(b.checker.resolution(4, 1) == I);
  require_error([&] { mul(x, v); }, "uses local_map input 4 (Replicate, no grad placement given) both as Invariant");
  // A value of an undecided input that needs no gradient settles nothing.
  Tensor y = b.input(5, R, R, tp);
  matmul(y.detach(), v);
  CHECK_FALSE(b.checker.resolution(5, 1).has_value());
}

TEST_CASE("spmd types: index and mask operands that record no gradient still count") {
  Body b;
  Tensor weight = b.input(0, R, R), p = b.input(1, R, P);
  // Per-rank token ids (Varying on dp, no gradient) pick per-rank rows.
  Tensor ids = arange(0, 2, 1, dtype(kInt64));
  Type id_types[2] = {V, R};
  b.checker.type_input(ids, 2, id_types, 0);
  CHECK(b.on(embedding(weight, ids), 0) == V);
  CHECK(b.on(index_select(weight, 0, ids), 0) == V);
  CHECK(b.on(embedding(p, ids), 1) == P);  // the same ids on every tp rank: rows of the pending sum
  Tensor tp_ids = ids.clone();
  Type tp_types[2] = {R, V};
  b.checker.type_input(tp_ids, 3, tp_types, 0);
  require_error([&] { embedding(p, tp_ids); }, "embedding on mesh dim \"tp\" multiplies a Partial operand by a Varying one");
  Tensor mask = gt(weight.detach(), 0.5);
  CHECK(b.on(mask, 0) == R);
  Type mask_types[2] = {V, R};
  b.checker.type_input(mask, 4, mask_types, 0);
  CHECK(b.on(where(mask, weight, weight), 0) == V);
  CHECK(b.on(masked_fill(weight, mask, 0.0), 0) == V);
  CHECK(b.on(where(gt(weight.detach(), 0.5), p, p), 1) == P);
  require_error([&] { where(mask, p, weight); }, "where on mesh dim \"tp\" adds a Partial operand to a Replicate one");
  // Per-rank targets make a per-rank loss even from a Replicate prediction.
  Tensor logits = b.input(5, R, R);
  CHECK(b.on(cross_entropy(logits, ids), 0) == V);
}

TEST_CASE("spmd types: in-place ops follow the same rules") {
  Body b;
  Tensor p = b.input(0, R, P), q = b.input(1, R, P), r = b.input(2, R, R);
  Tensor acc = p.detach().clone();  // a Partial value that needs no gradient
  CHECK(b.on(acc, 1) == P);
  acc.add_(q.detach());
  CHECK(b.on(acc, 1) == P);
  acc.mul_(2.0);
  CHECK(b.on(acc, 1) == P);
  require_error([&] { acc.add_(1.0); }, "add_ on mesh dim \"tp\" got a Partial operand");
  require_error([&] { acc.add_(r.detach()); }, "add_ on mesh dim \"tp\" adds a Partial operand to a Replicate one");
  Tensor buf = zeros({2, 2});
  buf.copy_(q.detach());
  CHECK(b.on(buf, 1) == P);
  buf.fill_(0.0);
  CHECK_FALSE(b.checker.typed(buf));
}

TEST_CASE("spmd types: types live only while their checker runs") {
  Tensor kept;
  {
    Body b;
    kept = b.input(0, R, P);
    CHECK(b.on(neg(kept), 1) == P);
  }
  gelu(kept);  // no checker: nothing is checked
  Body next;
  CHECK_FALSE(next.checker.typed(kept));  // typed by an earlier call: untyped here
  gelu(kept);
  {
    spmd::Suspend off;
    Tensor p = next.input(1, R, P);
    gelu(p);  // a suspended checker checks nothing
  }
}
