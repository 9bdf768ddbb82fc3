// The scatter family: kernels/scatter.h writes, and each op's backward sits beside it. Gradients
// flow through gather, index_select and the scatter ops themselves, so they are differentiable again.
#include "ops/scatter.h"

#include <algorithm>
#include <map>

#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/lanes.h"
#include "kernels/scatter.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/indexing.h"
#include "ops/logical.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace weft {
namespace {

using autograd::SavedTensor;
using autograd::variable_list;
using kernels::ScatterReduce;

// torch's scatter shape rules: index has x's rank, fits src everywhere and x off `dim`.
int64_t check_scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor* src, const char* op) {
  detail::check_plain(x, op);
  detail::check_plain(index, op);
  WEFT_CHECK(index.dtype() == kInt64, op, ": expected an int64 index but got ", index.dtype());
  int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  WEFT_CHECK(index.dim() == x.dim() || index.numel() == 0, op, ": index (shape ", index.shape(),
             ") must have as many dims as the input (shape ", x.shape(), ")");
  if (src) {
    detail::check_plain(*src, op);
    WEFT_CHECK(src->dtype() == x.dtype(), op, ": expected src of the input's dtype ", x.dtype(), " but got ",
               src->dtype());
    WEFT_CHECK(src->dim() == index.dim() || index.numel() == 0, op, ": src (shape ", src->shape(),
               ") must have as many dims as index (shape ", index.shape(), ")");
  }
  if (index.numel() == 0) return d;
  for (int64_t k = 0; k < index.dim(); ++k) {
    WEFT_CHECK(!src || index.size(k) <= src->size(k), op, ": index (shape ", index.shape(),
               ") must be no larger than src (shape ", src->shape(), ") in every dim");
    WEFT_CHECK(k == d || index.size(k) <= x.size(k), op, ": index (shape ", index.shape(),
               ") must be no larger than the input (shape ", x.shape(), ") outside dim ", d);
  }
  return d;
}

// The gradient of the values taken from src (scatter, scatter_add, the sum of scatter_reduce): the
// incoming gradient gathered at the index, as a tensor of src's shape (zero where index does not reach).
Tensor src_gradient(const Tensor& g, int64_t dim, const Tensor& index, const Shape& src_shape) {
  Tensor picked = gather(g, dim, index);
  if (picked.shape() == src_shape) return picked;
  Tensor full = zeros(src_shape, g.dtype());
  Tensor region = full;
  for (int64_t k = 0; k < index.dim(); ++k) region = narrow(region, k, 0, index.size(k));
  region.copy_(picked);
  return full;
}

struct ScatterBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor index;
  Shape src_shape;
  int64_t dim = 0;
  bool add = false;  // scatter_add keeps the whole gradient for x; scatter overwrote the positions
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor idx = index.unpack(this);
    Tensor gx;
    if (needs_input_grad(0)) gx = add ? g : scatter(g, dim, idx, Scalar(0));
    Tensor gs = needs_input_grad(1) ? src_gradient(g, dim, idx, src_shape) : Tensor();
    return {gx, gs};
  }
  std::string name() const override { return add ? "ScatterAddBackward" : "ScatterBackward"; }
};

Tensor record_scatter(Tensor y, const Tensor& x, int64_t d, const Tensor& index, const Tensor& src, bool add) {
  return autograd::record<ScatterBackward>(std::move(y), [&](ScatterBackward& n) {
    n.save(n.index, index);
    n.src_shape = src.defined() ? src.shape() : Shape{}, n.dim = d, n.add = add;
  }, x, src);
}

// scatter_reduce's gradient for "sum", "mean", "amax" and "amin": each contribution (x's own value
// where it counts, and every src value) gets the output's gradient times its share: 1 for sum, 1/count
// for mean, and for amax/amin 1/ties among the contributions equal to the result (torch's rule).
struct ScatterReduceBackward final : autograd::Node {
  SavedTensor x, index, src, y;
  ScatterReduce op = ScatterReduce::Sum;
  int64_t dim = 0;
  bool include_self = true;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor idx = index.unpack(this), xv = x.unpack(this), sv = src.unpack(this), yv = y.unpack(this);
    if (op == ScatterReduce::Prod) return prod_gradients(g, xv, idx, sv, yv);
    // x's own value counts where include_self, and, without it, where no index reached (it stayed).
    Tensor self_share = include_self ? ones_like(xv) : scatter(ones_like(xv), dim, idx, Scalar(0));
    Tensor src_share = ones_like(sv);
    if (op == ScatterReduce::Max || op == ScatterReduce::Min) {
      self_share = mul(self_share, kernels::cast(eq(xv, yv), xv.dtype()));
      src_share = kernels::cast(eq(sv, gather(yv, dim, idx)), sv.dtype());
    }
    if (op != ScatterReduce::Sum) {  // divide by the number of contributions sharing each output
      Tensor total = scatter_add(self_share, dim, idx, src_share);
      Tensor safe = masked_fill(total, eq(total, 0), 1);
      self_share = div(self_share, safe), src_share = mul(src_share, gather(reciprocal(safe), dim, idx));
    }
    Tensor gx = needs_input_grad(0) ? mul(g, self_share) : Tensor();
    Tensor gs = needs_input_grad(1) ? mul(gather(g, dim, idx), src_share) : Tensor();
    return {gx, gs};
  }
  std::string name() const override { return "ScatterReduceBackward"; }

  // The product's: each factor gets the output's gradient times the product of the other factors,
  // computed with zeros masked to one so that a lone zero still passes the product of the rest
  // (torch's formula; two zeros meeting at one output give each other a zero gradient).
  variable_list prod_gradients(const Tensor& g, const Tensor& xv, const Tensor& idx, const Tensor& sv,
                               const Tensor& yv) {
    auto product = [&](const Tensor& base, const Tensor& values) {
      return kernels::scatter(base, dim, idx, values, ScatterReduce::Prod, include_self, "scatter_reduce");
    };
    Tensor gx, gs;
    if (needs_input_grad(0)) {
      Tensor masked_x = masked_fill(xv, eq(xv, 0), 1);
      gx = div(mul(g, product(masked_x, sv)), masked_x);
      if (!include_self) gx = scatter(gx, dim, idx, Scalar(0));  // x's own value took no part there
    }
    if (needs_input_grad(1)) {
      Tensor src_zero = eq(sv, 0);
      Tensor zero_counts = scatter_add(zeros_like(xv), dim, idx, kernels::cast(src_zero, xv.dtype()));
      Tensor zeros_met = gather(zero_counts, dim, idx);
      Tensor lone_zero = logical_and(src_zero, eq(zeros_met, 1));
      Tensor rest = product(xv, masked_fill(sv, lone_zero, 1));
      gs = where(lone_zero, gather(mul(g, rest), dim, idx),
                 div(gather(mul(g, yv), dim, idx), masked_fill(sv, src_zero, 1)));
    }
    return {gx, gs};
  }
};

ScatterReduce parse_reduce(const std::string& reduce) {
  if (reduce == "sum") return ScatterReduce::Sum;
  if (reduce == "prod") return ScatterReduce::Prod;
  if (reduce == "mean") return ScatterReduce::Mean;
  if (reduce == "amax") return ScatterReduce::Max;
  if (reduce == "amin") return ScatterReduce::Min;
  WEFT_ERROR("scatter_reduce: reduce must be \"sum\", \"prod\", \"mean\", \"amax\" or \"amin\" but got \"", reduce,
             "\"");
}

struct IndexCopyBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor index;
  int64_t dim = 0;
  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    Tensor idx = index.unpack(this);
    Tensor gx = needs_input_grad(0) ? index_fill(g, dim, idx, Scalar(0)) : Tensor();
    Tensor gs = needs_input_grad(1) ? index_select(g, dim, idx) : Tensor();
    return {gx, gs};
  }
  std::string name() const override { return "IndexCopyBackward"; }
};

struct IndexFillBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  SavedTensor index;
  int64_t dim = 0;
  variable_list apply(variable_list&& grads) override { return {index_fill(grads[0], dim, index.unpack(this), 0)}; }
  std::string name() const override { return "IndexFillBackward"; }
};

int64_t check_index_1d(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  detail::check_plain(x, op);
  detail::check_plain(index, op);
  WEFT_CHECK(index.dtype() == kInt64 && index.dim() <= 1, op, ": expected a 0-d or 1-D int64 index but got ",
             index.dtype(), " of shape ", index.shape());
  return wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
}

// The row-major positions of the true elements of a bool tensor, as a 1-D int64 tensor.
Tensor true_positions(const Tensor& mask) {
  auto v = kernels::dense(mask).to_vector<bool>();
  std::vector<int64_t> pos;
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i]) pos.push_back(static_cast<int64_t>(i));
  return from_vector<int64_t>(pos, {static_cast<int64_t>(pos.size())});
}

}  // namespace

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  int64_t d = check_scatter(x, dim, index, &src, "scatter");
  Tensor y = kernels::scatter(x, d, index, src, ScatterReduce::Assign, true, "scatter");
  return record_scatter(std::move(y), x, d, index, src, false);
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value) {
  int64_t d = check_scatter(x, dim, index, nullptr, "scatter");
  Tensor src = kernels::make_empty(index.shape(), x.dtype());
  kernels::fill_out(src, value);
  Tensor y = kernels::scatter(x, d, index, src, ScatterReduce::Assign, true, "scatter");
  return record_scatter(std::move(y), x, d, index, Tensor(), false);
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  int64_t d = check_scatter(x, dim, index, &src, "scatter_add");
  Tensor y = kernels::scatter(x, d, index, src, ScatterReduce::Sum, true, "scatter_add");
  return record_scatter(std::move(y), x, d, index, src, true);
}

Tensor scatter_reduce(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, const std::string& reduce,
                      bool include_self) {
  ScatterReduce op = parse_reduce(reduce);
  int64_t d = check_scatter(x, dim, index, &src, "scatter_reduce");
  WEFT_CHECK(!(op == ScatterReduce::Mean && x.dtype() == kBool),
             "scatter_reduce: reduce=\"mean\" does not take bool tensors (as torch's)");
  Tensor y = kernels::scatter(x, d, index, src, op, include_self, "scatter_reduce");
  return autograd::record<ScatterReduceBackward>(y, [&](ScatterReduceBackward& n) {
    Tensor src_part = src;
    for (int64_t k = 0; k < index.dim(); ++k) src_part = narrow(src_part, k, 0, index.size(k));
    n.save(n.x, x), n.save(n.index, index), n.save(n.src, src_part), n.save(n.y, y, /*is_output=*/true);
    n.op = op, n.dim = d, n.include_self = include_self;
  }, x, src);
}

Tensor index_fill(const Tensor& x, int64_t dim, const Tensor& index, Scalar value) {
  int64_t d = check_index_1d(x, dim, index, "index_fill");
  Tensor y = kernels::index_fill(x, d, index, value, "index_fill");
  return autograd::record<IndexFillBackward>(std::move(y), [&](IndexFillBackward& n) {
    n.save(n.index, index), n.dim = d;
  }, x);
}

Tensor index_copy(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  int64_t d = check_index_1d(x, dim, index, "index_copy");
  detail::check_plain(src, "index_copy");
  WEFT_CHECK(src.dtype() == x.dtype(), "index_copy: expected src of the input's dtype ", x.dtype(), " but got ",
             src.dtype());
  Shape expected = x.shape();
  if (x.dim() > 0) expected[d] = index.numel();
  WEFT_CHECK(src.shape() == expected || (x.dim() == 0 && src.numel() == index.numel()), "index_copy: for an input "
             "of shape ", x.shape(), " and ", index.numel(), " indices along dim ", d, ", src must have shape ",
             expected, " but got ", src.shape());
  Tensor y = kernels::index_copy(x, d, index, src, "index_copy");
  return autograd::record<IndexCopyBackward>(std::move(y), [&](IndexCopyBackward& n) {
    n.save(n.index, index), n.dim = d;
  }, x, src);
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  detail::check_plain(x, "masked_select");
  detail::check_plain(mask, "masked_select");
  WEFT_CHECK(mask.dtype() == kBool, "masked_select: expected a bool mask but got ", mask.dtype());
  Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_select");
  Tensor flat = reshape(expand(x, shape), {numel_of(shape)});
  Tensor positions = true_positions(kernels::contiguous_copy(expand(mask, shape)));
  return index_select(flat, 0, positions);
}

Tensor masked_scatter(const Tensor& x, const Tensor& mask, const Tensor& source) {
  detail::check_plain(x, "masked_scatter");
  detail::check_plain(mask, "masked_scatter");
  detail::check_plain(source, "masked_scatter");
  WEFT_CHECK(mask.dtype() == kBool, "masked_scatter: expected a bool mask but got ", mask.dtype());
  WEFT_CHECK(source.dtype() == x.dtype(), "masked_scatter: expected source of the input's dtype ", x.dtype(),
             " but got ", source.dtype());
  Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_scatter");
  Tensor positions = true_positions(kernels::contiguous_copy(expand(mask, shape)));
  int64_t k = positions.numel();
  WEFT_CHECK(source.numel() >= k, "masked_scatter: the mask has ", k, " true elements but source (shape ",
             source.shape(), ") holds only ", source.numel());
  Tensor values = narrow(reshape(source, {source.numel()}), 0, 0, k);
  Tensor flat = reshape(expand(x, shape), {numel_of(shape)});
  return reshape(index_copy(flat, 0, positions, values), shape);
}

Tensor nonzero(const Tensor& x) {
  detail::check_plain(x, "nonzero");
  Tensor truth = x.dtype() == kBool ? x : kernels::binary_scalar(kernels::BinaryOp::Ne, x, 0);
  auto positions = true_positions(kernels::contiguous_copy(truth)).to_vector<int64_t>();
  int64_t n = static_cast<int64_t>(positions.size()), rank = x.dim();
  std::vector<int64_t> coords;
  coords.reserve(n * rank);
  for (int64_t p : positions)
    for (int64_t c : kernels::unravel(p, x.shape())) coords.push_back(c);
  return from_vector<int64_t>(coords, {n, rank});
}

UniqueResult unique(const Tensor& x, bool return_inverse, bool return_counts) {
  detail::check_plain(x, "unique");
  // The sort beneath takes bool, int64, float32 and float64; the other dtypes widen exactly to one.
  if (x.dtype() != kBool && x.dtype() != kInt64 && x.dtype() != kFloat32 && x.dtype() != kFloat64) {
    UniqueResult r = unique(x.to(is_floating(x.dtype()) ? kFloat32 : kInt64), return_inverse, return_counts);
    r.values = r.values.to(x.dtype());
    return r;
  }
  Tensor flat = kernels::reshaped(kernels::dense(x), {x.numel()});
  if (x.numel() == 0) {
    UniqueResult empty{kernels::contiguous_copy(flat), Tensor(), Tensor()};
    if (return_inverse) empty.inverse = zeros(x.shape(), kInt64);
    if (return_counts) empty.counts = zeros({0}, kInt64);
    return empty;
  }
  auto [sorted, order] = kernels::sort(flat, 0, false);
  auto order_v = order.to_vector<int64_t>();
  auto differs = ne(narrow(sorted, 0, 1, x.numel() - 1), narrow(sorted, 0, 0, x.numel() - 1)).to_vector<bool>();
  // Group starts: the first sorted element and every element unlike its predecessor (NaNs are each
  // their own value, as torch's sorted unique gives them).
  std::vector<int64_t> starts{0};
  for (size_t i = 0; i < differs.size(); ++i)
    if (differs[i]) starts.push_back(static_cast<int64_t>(i) + 1);
  int64_t groups = static_cast<int64_t>(starts.size());
  UniqueResult r;
  r.values = index_select(sorted, 0, from_vector<int64_t>(starts, {groups}));
  if (return_inverse || return_counts) {
    std::vector<int64_t> inverse(x.numel()), counts(groups);
    for (int64_t gi = 0; gi < groups; ++gi) {
      int64_t end = gi + 1 < groups ? starts[gi + 1] : x.numel();
      counts[gi] = end - starts[gi];
      for (int64_t s = starts[gi]; s < end; ++s) inverse[order_v[s]] = gi;
    }
    if (return_inverse) r.inverse = from_vector<int64_t>(inverse, x.shape());
    if (return_counts) r.counts = from_vector<int64_t>(counts, {groups});
  }
  return r;
}

}  // namespace weft
