// copy_ops.cpp: the shape ops that make new tensors rather than views: index_select and gather
// (with the scatter-adds that are their gradients), cat and stack, triu/tril, clone, contiguous
// and to_dtype, each forward next to its backward.
#include <algorithm>
#include <vector>

#include "autograd/node.h"
#include "framework/copy.h"
#include "framework/factories.h"
#include "ops/kernels/index.h"
#include "ops/shape_internal.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

using autograd::variable_list;
using detail::copy_of;
using detail::index_add;
using detail::record;

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
  if (auto node = autograd::make_node<IndexedAccumulateBackward>(base, src)) {
    node->form = form;
    node->dim = dim;
    node->index = index;
    autograd::set_history(y, node);
  }
  return y;
}

}  // namespace

namespace detail {

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  return indexed_accumulate(IndexForm::kSelect, base, dim, index, src);
}

Tensor copy_of(const Tensor& x, DType dtype) {
  Tensor out = make_empty(x.shape(), dtype);
  copy_into(out, x);
  return out;
}

}  // namespace detail

// --- index_select, gather ---

namespace {
void check_index(const Tensor& index, const char* op) {
  detail::check_plain(index, op);
  WEFT_CHECK(index.dtype() == kInt64, op, ": expected an int64 index but got ", dtype_name(index.dtype()));
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_plain(x, "index_select");
  check_index(index, "index_select");
  WEFT_CHECK(x.dim() >= 1, "index_select: expected a tensor with at least 1 dim but got a 0-d tensor");
  WEFT_CHECK(index.dim() <= 1, "index_select: expected a 1-D index but got shape ", index.shape());
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  Tensor flat_index = index.dim() == 0 ? detail::make_alias(index, {1}, {1}, index.storage_offset()) : index;
  return record<IndexedReadBackward>(kernels::index_select(x, d, flat_index), x, [&](IndexedReadBackward& n) {
    n.form = IndexForm::kSelect, n.dim = d, n.index = flat_index, n.input_shape = x.shape();
  });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_plain(x, "gather");
  check_index(index, "gather");
  WEFT_CHECK(index.dim() == x.dim(), "gather: the index (shape ", index.shape(),
             ") must have as many dims as the input (shape ", x.shape(), ")");
  int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "gather");
  for (int64_t i = 0; i < x.dim(); ++i)
    WEFT_CHECK(i == d || index.size(i) <= x.size(i), "gather: the index of shape ", index.shape(),
               " is larger than the input of shape ", x.shape(), " in dim ", i);
  return record<IndexedReadBackward>(kernels::gather(x, d, index), x, [&](IndexedReadBackward& n) {
    n.form = IndexForm::kGather, n.dim = d, n.index = index, n.input_shape = x.shape();
  });
}

// --- cat, stack, split, chunk ---

namespace {
struct CatBackward final : autograd::Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  variable_list apply(variable_list&& grads) override {
    variable_list out(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs_input_grad(i)) out[i] = narrow(grads[0], dim, offset, sizes[i]);
      offset += sizes[i];
    }
    return out;
  }
  std::string name() const override { return "CatBackward"; }
};
}  // namespace

Tensor cat(const TensorList& tensors, int64_t dim) {
  WEFT_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  for (const Tensor& t : tensors) detail::check_plain(t, "cat");
  const Tensor& first = tensors[0];
  WEFT_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated");
  int64_t d = wrap_dim(dim, first.dim(), "cat");
  DType dtype = first.dtype();
  Shape shape = first.shape();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    WEFT_CHECK(t.dim() == first.dim(), "cat: tensor ", i, " has shape ", t.shape(), " but tensor 0 has ",
               first.shape(), " (the ranks differ)");
    for (int64_t k = 0; k < t.dim(); ++k)
      WEFT_CHECK(k == d || t.size(k) == first.size(k), "cat: tensor ", i, " has shape ", t.shape(),
                 " but tensor 0 has ", first.shape(), "; sizes must match except in dim ", d);
    shape[d] = checked_add(shape[d], t.size(d), "cat");
    dtype = promote_types(dtype, t.dtype());
  }
  Tensor y = detail::make_empty(shape, dtype, "cat");
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    Shape part = shape;
    part[d] = t.size(d);
    detail::copy_into(detail::make_alias(y, part, y.strides(), offset * y.stride(d)), t);
    offset += t.size(d);
  }
  if (auto node = autograd::make_node<CatBackward>(tensors)) {
    node->dim = d;
    for (const Tensor& t : tensors) node->sizes.push_back(t.size(d));
    autograd::set_history(y, node);
  }
  return y;
}

Tensor stack(const TensorList& tensors, int64_t dim) {
  WEFT_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  detail::check_plain(tensors[0], "stack");
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  TensorList parts;
  parts.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    detail::check_plain(tensors[i], "stack");
    WEFT_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: expected tensors of one shape but tensor ", i,
               " has ", tensors[i].shape(), " and tensor 0 has ", tensors[0].shape());
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

// --- triu, tril ---

namespace {
struct TriangleBackward final : autograd::Node {
  int64_t diagonal = 0;
  bool upper = true;
  variable_list apply(variable_list&& grads) override {
    return {upper ? triu(grads[0], diagonal) : tril(grads[0], diagonal)};
  }
  std::string name() const override { return "TriangleBackward"; }
};

Tensor triangle(const Tensor& x, int64_t diagonal, bool upper, const char* op) {
  detail::check_plain(x, op);
  WEFT_CHECK(x.dim() >= 2, op, ": expected a tensor with at least 2 dims but got shape ", x.shape());
  return record<TriangleBackward>(kernels::triangle(x, diagonal, upper), x, [&](TriangleBackward& n) {
    n.diagonal = diagonal, n.upper = upper;
  });
}
}  // namespace

Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true, "triu"); }
Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false, "tril"); }

// --- copies: contiguous, clone, to_dtype (the gradient passes through; the engine casts it) ---

namespace {
struct IdentityBackward final : autograd::Node {
  variable_list apply(variable_list&& grads) override { return {grads[0]}; }
  std::string name() const override { return "CloneBackward"; }
};
}  // namespace

Tensor clone(const Tensor& x) {
  detail::check_plain(x, "clone");
  return record<IdentityBackward>(copy_of(x, x.dtype()), x, [](IdentityBackward&) {});
}

Tensor contiguous(const Tensor& x) {
  detail::check_plain(x, "contiguous");
  return x.is_contiguous() ? x : clone(x);
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  detail::check_plain(x, "to");
  if (x.dtype() == dtype) return x;
  Tensor y = copy_of(x, dtype);
  if (!is_floating(dtype)) return y;  // integer results carry no gradient
  return record<IdentityBackward>(y, x, [](IdentityBackward&) {});
}

}  // namespace weft
