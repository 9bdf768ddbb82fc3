// copy_ops.cpp: the shape ops that make new tensors rather than views: cat and stack, triu/tril,
// clone, contiguous and to_dtype, each forward next to its backward.
#include <algorithm>
#include <vector>

#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/index.h"
#include "kernels/toolkit.h"
#include "ops/copy_ops.h"
#include "ops/shape_internal.h"
#include "ops/shape_ops.h"

namespace weft {

namespace {
using autograd::variable_list;
}  // namespace

// --- cat, stack, split, chunk ---

namespace {
struct CatBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  variable_list apply(variable_list&& grads) override {
    variable_list out(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0) {  // a skipped 1-D empty input (see cat)
        if (needs_input_grad(i)) out[i] = zeros({0}, weft::dtype(grads[0].dtype()));
        continue;
      }
      if (needs_input_grad(i)) out[i] = narrow(grads[0], dim, offset, sizes[i]);
      offset += sizes[i];
    }
    return out;
  }
  std::string name() const override { return "CatBackward"; }
};
}  // namespace

namespace {
// PyTorch's legacy rule: a 1-D empty tensor (shape [0]) joins any cat whatever the others' shapes,
// adding nothing but its dtype to the promotion; when every input is one, the result is one too.
bool skipped_in_cat(const Tensor& t) { return t.dim() == 1 && t.numel() == 0; }
}  // namespace

Tensor cat(const TensorList& tensors, int64_t dim) {
  WEFT_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  for (const Tensor& t : tensors) detail::check_plain(t, "cat");
  DType dtype = tensors[0].dtype();
  for (const Tensor& t : tensors) dtype = promote_types(dtype, t.dtype());
  const auto first_kept =
      std::find_if(tensors.begin(), tensors.end(), [](const Tensor& t) { return !skipped_in_cat(t); });
  if (first_kept == tensors.end()) return zeros({0}, weft::dtype(dtype));
  const Tensor& first = *first_kept;
  const size_t first_at = static_cast<size_t>(first_kept - tensors.begin());
  WEFT_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated");
  int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_in_cat(t)) continue;
    WEFT_CHECK(t.dim() == first.dim(), "cat: tensor ", i, " has shape ", t.shape(), " but tensor ", first_at,
               " has ", first.shape(), " (the ranks differ)");
    for (int64_t k = 0; k < t.dim(); ++k)
      WEFT_CHECK(k == d || t.size(k) == first.size(k), "cat: tensor ", i, " has shape ", t.shape(),
                 " but tensor ", first_at, " has ", first.shape(), "; sizes must match except in dim ", d);
    shape[d] = checked_add(shape[d], t.size(d), "cat");
  }
  Tensor y = kernels::make_empty(shape, dtype, "cat");
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (skipped_in_cat(t)) continue;
    Shape part = shape;
    part[d] = t.size(d);
    kernels::copy_into(kernels::make_alias(y, part, y.strides(), offset * y.stride(d)), t);
    offset += t.size(d);
  }
  return autograd::record<CatBackward>(std::move(y), [&](CatBackward& n) {
    n.dim = d;
    for (const Tensor& t : tensors) n.sizes.push_back(skipped_in_cat(t) ? -1 : t.size(d));
  }, tensors);
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
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
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
  return autograd::record<TriangleBackward>(kernels::triangle(x, diagonal, upper), [&](TriangleBackward& n) {
    n.diagonal = diagonal, n.upper = upper;
  }, x);
}
}  // namespace

Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true, "triu"); }
Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false, "tril"); }

// --- copies: contiguous, clone, to_dtype (the gradient passes through; the engine casts it) ---

namespace {
struct IdentityBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  variable_list apply(variable_list&& grads) override { return {grads[0]}; }
  std::string name() const override { return "CloneBackward"; }
};
}  // namespace

Tensor clone(const Tensor& x) {
  detail::check_plain(x, "clone");
  return autograd::record<IdentityBackward>(kernels::contiguous_copy(x), x);
}

Tensor contiguous(const Tensor& x) {
  detail::check_plain(x, "contiguous");
  return x.is_contiguous() ? x : clone(x);
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  detail::check_plain(x, "to");
  if (x.dtype() == dtype) return x;
  Tensor y = kernels::contiguous_copy(x, dtype);
  if (!is_floating(dtype)) return y;  // integer results carry no gradient
  return autograd::record<IdentityBackward>(y, x);
}

}  // namespace weft
