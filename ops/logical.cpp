// Logical and bitwise ops: kernels::BinaryOp::BitAnd/BitOr/BitXor and UnaryOp::BitNot on bool or
// integral operands. Nothing here records history: the results are bool or integers (whose local
// SPMD type each op still sets, by the non-linear rule: Note [Local SPMD types]).
#include "ops/logical.h"

#include "autograd/spmd_types.h"
#include "kernels/elementwise.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"

namespace weft {
namespace {

using kernels::BinaryOp;

Tensor truth(const Tensor& x) { return x.dtype() == kBool ? x : kernels::binary_scalar(BinaryOp::Ne, x, 0); }

Tensor logical(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  detail::check_plain(a, name);
  detail::check_plain(b, name);
  broadcast_shapes(a.shape(), b.shape(), name);  // names the op when the shapes do not broadcast
  Tensor y = kernels::binary(op, truth(a), truth(b));
  spmd::note_op(name, y, {&a, &b});
  return y;
}

void check_bits(DType dt, const char* name, const Shape& a, const Shape& b) {
  WEFT_CHECK(!is_floating(dt), name, ": expected bool or integral tensors but got dtype ", dt, " (shapes ", a,
             " and ", b, ")");
}

Tensor bitwise(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  detail::check_plain(a, name);
  detail::check_plain(b, name);
  DType dt = result_type(a, b);
  check_bits(dt, name, a.shape(), b.shape());
  broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = kernels::binary(op, kernels::cast(a, dt), kernels::cast(b, dt));
  spmd::note_op(name, y, {&a, &b});
  return y;
}

Tensor bitwise(BinaryOp op, const Tensor& a, Scalar b, const char* name) {
  detail::check_plain(a, name);
  WEFT_CHECK(!b.is_floating(), name, ": expected a bool or integral number but got ", b.to_double());
  DType dt = result_type(a, b);
  check_bits(dt, name, a.shape(), Shape{});
  Tensor y = kernels::binary_scalar(op, kernels::cast(a, dt), b);
  spmd::note_op(name, y, {&a});
  return y;
}

}  // namespace

Tensor logical_and(const Tensor& a, const Tensor& b) { return logical(BinaryOp::BitAnd, a, b, "logical_and"); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return logical(BinaryOp::BitOr, a, b, "logical_or"); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return logical(BinaryOp::BitXor, a, b, "logical_xor"); }

Tensor logical_not(const Tensor& x) {
  detail::check_plain(x, "logical_not");
  Tensor y = x.dtype() == kBool ? kernels::unary(kernels::UnaryOp::BitNot, x) : kernels::binary_scalar(BinaryOp::Eq, x, 0);
  spmd::note_op("logical_not", y, {&x});
  return y;
}

Tensor bitwise_and(const Tensor& a, const Tensor& b) { return bitwise(BinaryOp::BitAnd, a, b, "bitwise_and"); }
Tensor bitwise_or(const Tensor& a, const Tensor& b) { return bitwise(BinaryOp::BitOr, a, b, "bitwise_or"); }
Tensor bitwise_xor(const Tensor& a, const Tensor& b) { return bitwise(BinaryOp::BitXor, a, b, "bitwise_xor"); }
Tensor bitwise_and(const Tensor& a, Scalar b) { return bitwise(BinaryOp::BitAnd, a, b, "bitwise_and"); }
Tensor bitwise_or(const Tensor& a, Scalar b) { return bitwise(BinaryOp::BitOr, a, b, "bitwise_or"); }
Tensor bitwise_xor(const Tensor& a, Scalar b) { return bitwise(BinaryOp::BitXor, a, b, "bitwise_xor"); }

Tensor bitwise_not(const Tensor& x) {
  detail::check_plain(x, "bitwise_not");
  WEFT_CHECK(!is_floating(x.dtype()), "bitwise_not: expected a bool or integral tensor but got dtype ", x.dtype(),
             " of shape ", x.shape());
  Tensor y = kernels::unary(kernels::UnaryOp::BitNot, x);
  spmd::note_op("bitwise_not", y, {&x});
  return y;
}

}  // namespace weft
