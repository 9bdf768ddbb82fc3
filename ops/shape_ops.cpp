// shape_ops.cpp: views (reshape, transpose, narrow, expand, split, chunk, ...), each forward next
// to its backward. Views share storage through kernels::make_alias; their backward reshapes,
// transposes or pads the gradient back. The ops that copy (cat, triu, clone, ...) live in
// copy_ops.cpp, index_select and gather in indexing.cpp.
#include "ops/shape_ops.h"

#include <algorithm>
#include <optional>

#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/index.h"
#include "kernels/toolkit.h"
#include "ops/copy_ops.h"
#include "ops/reduce.h"
#include "ops/shape_internal.h"

namespace weft {
namespace {

using autograd::variable_list;
using detail::index_add;

// --- geometry helpers ---

// Replaces one -1 with the size that keeps numel; names `op` on a mismatch.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      WEFT_CHECK(infer_at < 0, op, ": only one dim can be -1 but got shape ", shape);
      infer_at = static_cast<int64_t>(i);
    } else {
      WEFT_CHECK(out[i] >= 0, op, ": invalid size ", out[i], " in shape ", shape);
      known = checked_mul(known, out[i], op);
    }
  }
  if (infer_at >= 0) {
    WEFT_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape, " is invalid for an input of ", numel,
               " elements");
    out[infer_at] = numel / known;
  }
  WEFT_CHECK(checked_numel(out, op) == numel, op, ": shape ", shape, " is invalid for an input of ", numel, " elements");
  return out;
}

// Strides that view (shape, strides) as new_shape without copying, or nullopt (PyTorch's
// computeStride): walk both shapes from the back, matching chunks of dims that are contiguous
// among themselves.
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape) {
  Shape out(new_shape.size(), 0);
  if (numel_of(shape) == 0 || shape.empty()) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    // The end of a contiguous chunk: the next dim (if any) does not continue it.
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

// --- views whose backward is a reshape back (reshape, view, flatten, squeeze, unsqueeze) ---

struct ViewBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape input_shape;
  variable_list apply(variable_list&& grads) override { return {reshape(grads[0], input_shape)}; }
  std::string name() const override { return "ViewBackward"; }
};

Tensor alias_with_history(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  Tensor y = kernels::make_alias(x, shape, strides, offset);
  y = autograd::record<ViewBackward>(std::move(y), [&](ViewBackward& n) { n.input_shape = x.shape(); }, x);
  return detail::view_result(std::move(y), x);
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  detail::check_plain(x, "reshape");
  Shape target = infer_shape(shape, x.numel(), "reshape");
  if (auto strides = view_strides(x.shape(), x.strides(), target))
    return alias_with_history(x, target, *strides, x.storage_offset());
  Tensor y = kernels::reshaped(x, target);  // not viewable: a contiguous copy, reshaped
  y = autograd::record<ViewBackward>(std::move(y), [&](ViewBackward& n) { n.input_shape = x.shape(); }, x);
  return detail::view_result(std::move(y), x);
}

Tensor view(const Tensor& x, const Shape& shape) {
  detail::check_plain(x, "view");
  Shape target = infer_shape(shape, x.numel(), "view");
  auto strides = view_strides(x.shape(), x.strides(), target);
  WEFT_CHECK(strides.has_value(), "view: the shape ", shape, " is not compatible with the input's shape ",
             x.shape(), " and strides ", x.strides(), "; use reshape, which copies when it must");
  return alias_with_history(x, target, *strides, x.storage_offset());
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  detail::check_plain(x, "flatten");
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  WEFT_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim, " for shape ",
             x.shape());
  Shape target(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x.size(d);
  target.push_back(merged);
  for (int64_t d = e + 1; d < x.dim(); ++d) target.push_back(x.size(d));
  return reshape(x, target);
}

Tensor squeeze(const Tensor& x) {
  detail::check_plain(x, "squeeze");
  Shape shape, strides;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.size(d) != 1) shape.push_back(x.size(d)), strides.push_back(x.stride(d));
  return alias_with_history(x, shape, strides, x.storage_offset());
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  detail::check_plain(x, "squeeze");
  Shape shape = x.shape(), strides = x.strides();
  if (x.dim() > 0) {
    int64_t d = wrap_dim(dim, x.dim(), "squeeze");
    if (x.size(d) == 1) shape.erase(shape.begin() + d), strides.erase(strides.begin() + d);
  } else {
    wrap_dim(dim, 1, "squeeze");  // a 0-d tensor accepts dim 0 or -1
  }
  return alias_with_history(x, shape, strides, x.storage_offset());
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  detail::check_plain(x, "unsqueeze");
  int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  int64_t stride = d < x.dim() ? x.stride(d) * x.size(d) : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return alias_with_history(x, shape, strides, x.storage_offset());
}

// --- transpose, permute ---

namespace {
struct PermuteBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape inverse;
  variable_list apply(variable_list&& grads) override { return {permute(grads[0], inverse)}; }
  std::string name() const override { return "PermuteBackward"; }
};
}  // namespace

Tensor permute(const Tensor& x, const Shape& dims) {
  detail::check_plain(x, "permute");
  WEFT_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: expected ", x.dim(),
             " dims for a tensor of shape ", x.shape(), " but got ", dims);
  Shape shape(dims.size(), 0), strides(dims.size(), 0), inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    WEFT_CHECK(inverse[d] < 0, "permute: dim ", d, " repeats in ", dims);
    inverse[d] = static_cast<int64_t>(i);
    shape[i] = x.size(d);
    strides[i] = x.stride(d);
  }
  Tensor y = kernels::make_alias(x, shape, strides, x.storage_offset());
  y = autograd::record<PermuteBackward>(std::move(y), [&](PermuteBackward& n) { n.inverse = inverse; }, x);
  return detail::view_result(std::move(y), x);
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  detail::check_plain(x, "transpose");
  if (x.dim() == 0) {
    wrap_dim(dim0, 1, "transpose"), wrap_dim(dim1, 1, "transpose");
    return permute(x, {});
  }
  int64_t d0 = wrap_dim(dim0, x.dim(), "transpose"), d1 = wrap_dim(dim1, x.dim(), "transpose");
  Shape dims(x.dim(), 0);
  for (int64_t d = 0; d < x.dim(); ++d) dims[d] = d;
  std::swap(dims[d0], dims[d1]);
  return permute(x, dims);
}

// --- expand ---

namespace {
struct ExpandBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape input_shape;
  variable_list apply(variable_list&& grads) override { return {sum_to(grads[0], input_shape)}; }
  std::string name() const override { return "ExpandBackward"; }
};
}  // namespace

Tensor expand(const Tensor& x, const Shape& shape) {
  detail::check_plain(x, "expand");
  WEFT_CHECK(static_cast<int64_t>(shape.size()) >= x.dim(), "expand: the target shape ", shape,
             " has fewer dims than the input's ", x.shape());
  const size_t lead = shape.size() - x.dim();
  Shape out_shape(shape.size(), 0), strides(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      WEFT_CHECK(shape[i] >= 0, "expand: a new leading dim needs a size but got ", shape[i], " in ", shape);
      out_shape[i] = shape[i];
      continue;
    }
    int64_t own = x.size(i - lead), want = shape[i] == -1 ? own : shape[i];
    WEFT_CHECK(own == want || own == 1, "expand: the shape ", x.shape(), " cannot be expanded to ", shape,
               " (dim ", i, " has size ", own, ", not 1)");
    WEFT_CHECK(want >= 0, "expand: invalid size ", want, " in ", shape);
    out_shape[i] = want;
    strides[i] = own == want ? x.stride(i - lead) : 0;
  }
  Tensor y = kernels::make_alias(x, out_shape, strides, x.storage_offset(), "expand");
  y = autograd::record<ExpandBackward>(std::move(y), [&](ExpandBackward& n) { n.input_shape = x.shape(); }, x);
  return detail::view_result(std::move(y), x);
}

// --- narrow, select: the backward pads the gradient with zeros along the dim ---

Tensor pad_dim(const Tensor& g, int64_t dim, int64_t before, int64_t after) {
  Shape s_before = g.shape(), s_after = g.shape();
  s_before[dim] = before;
  s_after[dim] = after;
  return cat({zeros(s_before, g.dtype()), g, zeros(s_after, g.dtype())}, dim);
}

namespace {
struct NarrowBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  int64_t dim = 0, start = 0, input_size = 0;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    return {pad_dim(g, dim, start, input_size - start - g.size(dim))};
  }
  std::string name() const override { return "NarrowBackward"; }
};
}  // namespace

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  detail::check_plain(x, "narrow");
  WEFT_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "narrow");
  const int64_t size = x.size(d);
  if (start < 0 && start >= -size) start += size;
  WEFT_CHECK(start >= 0 && start <= size && length >= 0 && length <= size - start, "narrow: start ", start,
             " and length ", length, " do not fit dim ", d, " of size ", size, " (shape ", x.shape(), ")");
  Shape shape = x.shape();
  shape[d] = length;
  Tensor y = kernels::make_alias(x, shape, x.strides(), x.storage_offset() + start * x.stride(d));
  y = autograd::record<NarrowBackward>(std::move(y), [&](NarrowBackward& n) {
    n.dim = d, n.start = start, n.input_size = size;
  }, x);
  return detail::view_result(std::move(y), x);
}

namespace {
struct SelectBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  int64_t dim = 0, index = 0, input_size = 0;
  variable_list apply(variable_list&& grads) override {
    return {pad_dim(unsqueeze(grads[0], dim), dim, index, input_size - index - 1)};
  }
  std::string name() const override { return "SelectBackward"; }
};
}  // namespace

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  detail::check_plain(x, "select");
  WEFT_CHECK(x.dim() > 0, "select: cannot select from a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "select");
  const int64_t size = x.size(d);
  WEFT_CHECK(index >= -size && index < size, "select: index ", index, " is out of range for dim ", d,
             " of size ", size);
  if (index < 0) index += size;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  Tensor y = kernels::make_alias(x, shape, strides, x.storage_offset() + index * x.stride(d));
  y = autograd::record<SelectBackward>(std::move(y), [&](SelectBackward& n) {
    n.dim = d, n.index = index, n.input_size = size;
  }, x);
  return detail::view_result(std::move(y), x);
}

// --- as_strided: backward scatters the gradient into a flat buffer over storage positions ---

// An empty tensor reaches no element, however large its other sizes (numel 0 allows any), so
// emptiness is settled before any size is multiplied; the sum itself is checked (Note [Checked
// shape arithmetic]).
int64_t detail::storage_extent(const Shape& shape, const Shape& strides, int64_t offset) {
  for (int64_t size : shape)
    if (size == 0) return 0;
  int64_t last = offset;
  for (size_t d = 0; d < shape.size(); ++d)
    last = checked_add(last, checked_mul(shape[d] - 1, strides[d], "as_strided"), "as_strided");
  return checked_add(last, 1, "as_strided");
}

namespace {
// Assumes the input itself does not overlap in memory (no expanded input), which covers every
// use weft makes of as_strided.
struct AsStridedBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  Shape in_shape, in_strides, out_shape, out_strides;
  int64_t in_offset = 0, out_offset = 0;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    int64_t len = std::max(detail::storage_extent(in_shape, in_strides, in_offset),
                           detail::storage_extent(out_shape, out_strides, out_offset));
    Tensor flat = zeros({len}, g.dtype());
    Tensor pos = kernels::storage_positions(out_shape, out_strides, out_offset);
    flat = index_add(flat, 0, reshape(pos, {-1}), reshape(g, {-1}));
    return {contiguous(as_strided(flat, in_shape, in_strides, in_offset))};
  }
  std::string name() const override { return "AsStridedBackward"; }
};
}  // namespace

std::shared_ptr<autograd::Node> detail::as_strided_history(const Tensor& base, const Tensor& view) {
  auto node = std::allocate_shared<AsStridedBackward>(detail::PoolAllocator<AsStridedBackward>());
  node->supports_double_backward = true;
  node->next_edges.push_back(autograd::gradient_edge(base));
  node->in_shape = base.shape(), node->in_strides = base.strides(), node->in_offset = base.storage_offset();
  node->out_shape = view.shape(), node->out_strides = view.strides(), node->out_offset = view.storage_offset();
  return node;
}

Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  detail::check_plain(x, "as_strided");
  WEFT_CHECK(shape.size() == strides.size(), "as_strided: got ", shape.size(), " sizes ", shape, " but ",
             strides.size(), " strides ", strides);
  WEFT_CHECK(offset >= 0, "as_strided: the offset must be non-negative but got ", offset);
  for (size_t d = 0; d < shape.size(); ++d)
    WEFT_CHECK(shape[d] >= 0 && strides[d] >= 0, "as_strided: sizes and strides must be non-negative but got ",
               shape, " and ", strides);
  // make_alias refuses a geometry reaching outside the storage (Note [Checked shape arithmetic]).
  Tensor y = kernels::make_alias(x, shape, strides, offset, "as_strided");
  y = autograd::record<AsStridedBackward>(std::move(y), [&](AsStridedBackward& n) {
    n.in_shape = x.shape(), n.in_strides = x.strides(), n.in_offset = x.storage_offset();
    n.out_shape = shape, n.out_strides = strides, n.out_offset = offset;
  }, x);
  return detail::view_result(std::move(y), x);
}

// --- split, chunk: one node for all the pieces ---

namespace {

// Note [Split's gradient]
// split's pieces share one backward node, as PyTorch's SplitBackward: its gradient is the pieces'
// gradients written side by side into one buffer, zeros where a piece got none. Narrowing each piece
// separately (as split did) padded each piece's gradient with zeros to the input's full size and then
// summed the padded gradients: for q, k and v split from one projection, three zero-padded copies
// and two full-size adds instead of one write (7% of train_gpt's step). Under a first-order backward
// the buffer takes the input's memory order when the input is a permutation of a dense tensor (heads
// split from a transposed [B, T, 3H, D] view, nn/transformer.cpp), so that the gradient flowing back
// through that transpose and reshape stays a view and is not copied a second time; .grad is made
// dense anyway (AccumulateGrad). Under create_graph it is a cat of the pieces, which records.
struct SplitBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  int64_t dim = 0;
  Shape input_shape, input_strides;
  DType dtype = kFloat32;
  std::vector<int64_t> sizes;

  variable_list apply(variable_list&& grads) override {
    auto piece_shape = [&](size_t i) {
      Shape s = input_shape;
      s[dim] = sizes[i];
      return s;
    };
    auto grad_of = [&](size_t i) { return i < grads.size() ? grads[i] : Tensor(); };
    if (GradMode::is_enabled()) {  // create_graph: the same values through recording ops
      TensorList parts;
      for (size_t i = 0; i < sizes.size(); ++i) {
        Tensor g = grad_of(i);
        parts.push_back(g.defined() ? g : zeros(piece_shape(i), dtype));
      }
      return {cat(parts, dim)};
    }
    Tensor out = empty_in_layout_of(input_shape, input_strides, dtype);
    int64_t start = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      Tensor slice = kernels::make_alias(out, piece_shape(i), out.strides(), start * out.stride(dim));
      Tensor g = grad_of(i);
      kernels::copy_into(slice, g.defined() ? g : zeros(Shape{}, dtype));
      start += sizes[i];
    }
    return {out};
  }
  std::string name() const override { return "SplitBackward"; }

  // An uninitialised tensor of `shape` laid out in memory as `strides` order it when they are a
  // permutation of dense strides (no gaps, no overlap), else contiguous.
  static Tensor empty_in_layout_of(const Shape& shape, const Shape& strides, DType dtype) {
    const size_t n = shape.size();
    Shape order(n, 0);
    for (size_t d = 0; d < n; ++d) order[d] = static_cast<int64_t>(d);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return strides[a] > strides[b]; });
    int64_t expect = 1;
    bool identity = true;
    for (size_t k = n; k-- > 0;) {
      const int64_t d = order[k];
      identity = identity && d == static_cast<int64_t>(k);
      if (shape[d] == 1) continue;
      if (shape[d] == 0 || strides[d] != expect) return kernels::make_empty(shape, dtype);
      expect *= shape[d];
    }
    if (identity) return kernels::make_empty(shape, dtype);
    Shape sorted_shape(n, 0), out_strides(n, 0);
    for (size_t k = 0; k < n; ++k) sorted_shape[k] = shape[order[k]];
    Tensor base = kernels::make_empty(sorted_shape, dtype);
    for (size_t k = 0; k < n; ++k) out_strides[order[k]] = base.stride(static_cast<int64_t>(k));
    return kernels::make_alias(base, shape, out_strides, 0);
  }
};

// The pieces of x along dim d, of the given sizes (which sum to x.size(d)), as views sharing one
// SplitBackward (its output i is piece i).
TensorList split_into(const Tensor& x, int64_t d, const std::vector<int64_t>& sizes) {
  auto init = [&](SplitBackward& n) {
    n.dim = d, n.input_shape = x.shape(), n.input_strides = x.strides(), n.dtype = x.dtype(), n.sizes = sizes;
  };
  auto node = autograd::make_node<SplitBackward>(x);
  if (node) init(*node);
  spmd::Checker* checker = spmd::active();
  TensorList out;
  out.reserve(sizes.size());
  int64_t start = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Shape shape = x.shape();
    shape[d] = sizes[i];
    Tensor y = kernels::make_alias(x, shape, x.strides(), x.storage_offset() + start * x.stride(d));
    if (checker) [[unlikely]]
      spmd::detail::check_node<SplitBackward>(*checker, node.get(), y, init, x);
    if (node) autograd::set_history(y, node, static_cast<uint32_t>(i));
    out.push_back(detail::view_result(std::move(y), x));
    start += sizes[i];
  }
  return out;
}

}  // namespace

TensorList split(const Tensor& x, int64_t split_size, int64_t dim) {
  detail::check_plain(x, "split");
  WEFT_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "split");
  const int64_t size = x.size(d);
  WEFT_CHECK(split_size > 0 || (split_size == 0 && size == 0), "split: expected a positive split_size but got ",
             split_size, " for dim ", d, " of size ", size);
  const int64_t pieces = split_size == 0 ? 1 : std::max<int64_t>((size + split_size - 1) / split_size, 1);
  std::vector<int64_t> sizes;
  for (int64_t i = 0; i < pieces; ++i) sizes.push_back(std::min(split_size, size - i * split_size));
  return split_into(x, d, sizes);
}

TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  detail::check_plain(x, "split");
  WEFT_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    WEFT_CHECK(s >= 0, "split: sizes must be non-negative but got ", s);
    total += s;
  }
  WEFT_CHECK(total == x.size(d), "split: the sizes sum to ", total, " but dim ", d, " has size ", x.size(d));
  return split_into(x, d, sizes);
}

TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  detail::check_plain(x, "chunk");
  WEFT_CHECK(chunks > 0, "chunk: expected a positive number of chunks but got ", chunks);
  WEFT_CHECK(x.dim() > 0, "chunk: cannot chunk a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "chunk");
  // A size-0 dim gives `chunks` empty pieces, as in torch; split(x, 0) would give only one.
  if (x.size(d) == 0) return split(x, std::vector<int64_t>(chunks, 0), d);
  return split(x, (x.size(d) + chunks - 1) / chunks, d);
}

}  // namespace weft
