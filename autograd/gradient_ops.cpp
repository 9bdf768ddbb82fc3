// The recording gradient arithmetic: four nodes whose backward is made of each other.
#include "autograd/gradient_ops.h"

#include "autograd/engine.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/toolkit.h"

namespace weft::autograd {
namespace {

// Makes `y` the result of `node` when one was recorded.
template <class NodeT>
Tensor finish(Tensor y, std::shared_ptr<NodeT> node) {
  if (node) set_history(y, std::move(node));
  return y;
}

struct RecordedAddBackward final : Node {
  static constexpr bool kSupportsDoubleBackward = true;
  DType a_dtype = kFloat32, b_dtype = kFloat32;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    return {needs_input_grad(0) ? recorded_cast(g, a_dtype) : Tensor(),
            needs_input_grad(1) ? recorded_cast(g, b_dtype) : Tensor()};
  }
  std::string name() const override { return "AccumulateGradientsBackward"; }
};

struct RecordedSumToBackward final : Node {
  static constexpr bool kSupportsDoubleBackward = true;
  Shape in_shape;
  variable_list apply(variable_list&& grads) override { return {recorded_expand(grads[0], in_shape)}; }
  std::string name() const override { return "SumToBackward"; }
};

struct RecordedExpandBackward final : Node {
  static constexpr bool kSupportsDoubleBackward = true;
  Shape in_shape;
  variable_list apply(variable_list&& grads) override { return {recorded_sum_to(grads[0], in_shape)}; }
  std::string name() const override { return "ExpandBackward"; }
};

struct RecordedCastBackward final : Node {
  static constexpr bool kSupportsDoubleBackward = true;
  DType in_dtype = kFloat32;
  variable_list apply(variable_list&& grads) override { return {recorded_cast(grads[0], in_dtype)}; }
  std::string name() const override { return "ToCopyBackward"; }
};

struct RecordedCloneBackward final : Node {
  static constexpr bool kSupportsDoubleBackward = true;
  variable_list apply(variable_list&& grads) override { return {grads[0]}; }
  std::string name() const override { return "CloneBackward"; }
};

}  // namespace

Tensor recorded_add(const Tensor& a, const Tensor& b) {
  Tensor y = accumulate_gradients(a, b);
  auto node = make_node<RecordedAddBackward>(a, b);
  if (node) node->a_dtype = a.dtype(), node->b_dtype = b.dtype();
  return finish(std::move(y), std::move(node));
}

Tensor recorded_sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  auto node = make_node<RecordedSumToBackward>(x);
  if (node) node->in_shape = x.shape();
  return finish(kernels::sum_to(x, shape), std::move(node));
}

Tensor recorded_expand(const Tensor& x, const Shape& shape) {
  Tensor y = kernels::make_empty(shape, x.dtype());
  kernels::copy_into(y, x);
  auto node = make_node<RecordedExpandBackward>(x);
  if (node) node->in_shape = x.shape();
  return finish(std::move(y), std::move(node));
}

Tensor recorded_cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  auto node = make_node<RecordedCastBackward>(x);
  if (node) node->in_dtype = x.dtype();
  return finish(kernels::cast(x, dtype), std::move(node));
}

Tensor recorded_clone(const Tensor& x) {
  return finish(kernels::contiguous_copy(x), make_node<RecordedCloneBackward>(x));
}

}  // namespace weft::autograd
