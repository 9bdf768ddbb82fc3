// indexing.cpp: the differentiable indexed reads, index_select and gather, with the
// accumulations that are their gradients (index_add, scatter_add), each forward next to its backward.
#include "ops/indexing.h"

#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/index.h"
#include "kernels/toolkit.h"
#include "ops/shape_internal.h"

namespace weft {
namespace {

using autograd::variable_list;

// --- the differentiable indexed reads and their adjoints ---
//
// index_select and gather read x along `dim` at an index; index_add and scatter_add accumulate src
// into a base at the same positions. Each pair is the other's adjoint, so one node per direction
// serves both forms.

enum class IndexForm { kSelect, kGather };

Tensor indexed_read(IndexForm form, const Tensor& x, int64_t dim, const Tensor& index) {
  return form == IndexForm::kSelect ? index_select(x, dim, index) : gather(x, dim, index);
}

Tensor indexed_accumulate(IndexForm form, const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);

// The gradient of a read: the output's gradient accumulated into zeros at the positions read.
struct IndexedReadBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  IndexForm form = IndexForm::kSelect;
  int64_t dim = 0;
  Tensor index;  // int64, never requires grad
  Shape input_shape;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    return {indexed_accumulate(form, zeros(input_shape, g.dtype()), dim, index, g)};
  }
  std::string name() const override {
    return form == IndexForm::kSelect ? "IndexSelectBackward" : "GatherBackward";
  }
};

// The gradient of an accumulation: the base's is the output's, src's is read at the positions written.
struct IndexedAccumulateBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  IndexForm form = IndexForm::kSelect;
  int64_t dim = 0;
  Tensor index;
  variable_list apply(variable_list&& grads) override {
    Tensor gs = needs_input_grad(1) ? indexed_read(form, grads[0], dim, index) : Tensor();
    return {grads[0], gs};
  }
  std::string name() const override { return form == IndexForm::kSelect ? "IndexAddBackward" : "ScatterAddBackward"; }
};

Tensor indexed_accumulate(IndexForm form, const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor y = form == IndexForm::kSelect ? kernels::index_add(base, dim, index, src)
                                        : kernels::scatter_add(base, dim, index, src);
  return autograd::record<IndexedAccumulateBackward>(std::move(y), [&](IndexedAccumulateBackward& n) {
    n.form = form;
    n.dim = dim;
    n.index = index;
  }, base, src);
}

}  // namespace

namespace detail {

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  return indexed_accumulate(IndexForm::kSelect, base, dim, index, src);
}

}  // namespace detail

namespace {
void check_index(const Tensor& index, const char* op) {
  detail::check_plain(index, op);
  WEFT_CHECK(index.dtype() == kInt64, op, ": expected an int64 index but got ", dtype_name(index.dtype()));
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index_given) {
  detail::check_plain(x, "index_select");
  detail::check_plain(index_given, "index_select");
  WEFT_CHECK(index_given.dtype() == kInt64 || index_given.dtype() == kInt32,
             "index_select: expected an int64 or int32 index but got ", dtype_name(index_given.dtype()));
  const Tensor index = index_given.dtype() == kInt64 ? index_given : index_given.to(kInt64);
  WEFT_CHECK(index.dim() <= 1, "index_select: expected a 1-D index but got shape ", index.shape());
  if (x.dim() == 0) {  // a 0-d tensor is one element along its one (implicit) dim, as torch's
    wrap_dim(dim, 1, "index_select");
    WEFT_CHECK(index.numel() == 1, "index_select: a 0-d input takes one index but got ", index.numel());
    return index_select(x.reshape({1}), 0, index.reshape({1})).reshape({});
  }
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  Tensor flat_index = index.dim() == 0 ? kernels::make_alias(index, {1}, {1}, index.storage_offset()) : index;
  Tensor y = autograd::record<IndexedReadBackward>(kernels::index_select(x, d, flat_index), [&](IndexedReadBackward& n) {
    n.form = IndexForm::kSelect, n.dim = d, n.index = flat_index, n.input_shape = x.shape();
  }, x);
  spmd::check_op(spmd::Linearity::Multilinear, "index_select", y, {&flat_index, &x});  // as embedding's
  return y;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_plain(x, "gather");
  check_index(index, "gather");
  WEFT_CHECK(index.dim() == x.dim(), "gather: the index (shape ", index.shape(),
             ") must have as many dims as the input (shape ", x.shape(), ")");
  if (x.dim() == 0) {  // one element along its one (implicit) dim, as torch's
    wrap_dim(dim, 1, "gather");
    return gather(x.reshape({1}), 0, index.reshape({1})).reshape({});
  }
  int64_t d = wrap_dim(dim, x.dim(), "gather");
  for (int64_t i = 0; i < x.dim(); ++i)
    WEFT_CHECK(i == d || index.size(i) <= x.size(i), "gather: the index of shape ", index.shape(),
               " is larger than the input of shape ", x.shape(), " in dim ", i);
  Tensor y = autograd::record<IndexedReadBackward>(kernels::gather(x, d, index), [&](IndexedReadBackward& n) {
    n.form = IndexForm::kGather, n.dim = d, n.index = index, n.input_shape = x.shape();
  }, x);
  spmd::check_op(spmd::Linearity::Multilinear, "gather", y, {&index, &x});  // as embedding's
  return y;
}

}  // namespace weft
