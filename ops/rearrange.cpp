// Rearranging elements through the differentiable ops that already exist: each function here is a
// composition (index_select, narrow and cat, reshape and expand, permute, as_strided), so autograd
// needs no node of its own here and double backward works wherever those ops' backwards do.
#include "ops/rearrange.h"

#include <algorithm>
#include <numeric>

#include "framework/factories.h"
#include "kernels/toolkit.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

// Wraps and checks a list of distinct dims.
Shape wrap_dims(const Shape& dims, int64_t rank, const char* op) {
  Shape out;
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, std::max<int64_t>(rank, 1), op);
    WEFT_CHECK(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", w, " appears more than once in ",
               dims);
    out.push_back(w);
  }
  return out;
}

Tensor arange_index(int64_t n, bool reversed) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), int64_t{0});
  if (reversed) std::reverse(v.begin(), v.end());
  return from_vector<int64_t>(v, {n});
}

}  // namespace

Tensor flip(const Tensor& x, const Shape& dims) {
  detail::check_plain(x, "flip");
  Shape wrapped = wrap_dims(dims, x.dim(), "flip");
  if (x.dim() == 0 || wrapped.empty()) return x.clone();  // a new tensor, as torch gives
  Tensor y = x;
  for (int64_t d : wrapped) y = index_select(y, d, arange_index(x.size(d), true));
  return y;
}

Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims) {
  detail::check_plain(x, "roll");
  if (dims.empty()) {
    WEFT_CHECK(shifts.size() == 1, "roll: without dims, expected one shift but got ", shifts);
    return reshape(roll(reshape(x, {x.numel()}), shifts, {0}), x.shape());
  }
  WEFT_CHECK(shifts.size() == dims.size(), "roll: expected as many shifts as dims but got shifts ", shifts,
             " and dims ", dims);
  WEFT_CHECK(x.dim() > 0, "roll: cannot roll a 0-d tensor along a dim");
  Shape wrapped;  // a dim named twice rolls twice, as torch's
  for (int64_t d : dims) wrapped.push_back(wrap_dim(d, x.dim(), "roll"));
  Tensor y = x;
  for (size_t i = 0; i < wrapped.size(); ++i) {
    int64_t d = wrapped[i], n = x.size(d);
    if (n == 0) continue;
    int64_t s = ((shifts[i] % n) + n) % n;  // a right shift by s: the last s elements come first
    if (s == 0) continue;
    y = cat({narrow(y, d, n - s, s), narrow(y, d, 0, n - s)}, d);
  }
  return y.shares_storage(x) ? x.clone() : y;  // a new tensor even when nothing moved, as torch
}

namespace {
// repeat, naming `op` (repeat or tile) in its errors.
Tensor repeat_as(const Tensor& x, const Shape& repeats, const char* op) {
  detail::check_plain(x, op);
  int64_t k = static_cast<int64_t>(repeats.size());
  WEFT_CHECK(k >= x.dim(), op, ": the number of repeats (", k,
             ") can not be smaller than the number of dims of the tensor (shape ", x.shape(), ")");
  for (int64_t r : repeats)
    WEFT_CHECK(r >= 0, op, ": repeats must be non-negative but got ", repeats);
  // x as [1, s0, 1, s1, ...] expanded to [r0, s0, r1, s1, ...] and merged pairwise.
  Shape padded(k - x.dim(), 1);
  for (int64_t s : x.shape()) padded.push_back(s);
  Shape interleaved, expanded, merged;
  for (int64_t i = 0; i < k; ++i) {
    interleaved.push_back(1), interleaved.push_back(padded[i]);
    expanded.push_back(repeats[i]), expanded.push_back(padded[i]);
    merged.push_back(checked_mul(repeats[i], padded[i], op));
  }
  return reshape(expand(reshape(x, interleaved), expanded), merged);
}
}  // namespace

Tensor repeat(const Tensor& x, const Shape& repeats) { return repeat_as(x, repeats, "repeat"); }

Tensor tile(const Tensor& x, const Shape& repeats) {
  Shape full_repeats(std::max<int64_t>(x.dim() - static_cast<int64_t>(repeats.size()), 0), 1);
  for (int64_t r : repeats) full_repeats.push_back(r);
  return repeat_as(x, full_repeats, "tile");
}

Tensor repeat_interleave(const Tensor& x, int64_t repeats, std::optional<int64_t> dim) {
  detail::check_plain(x, "repeat_interleave");
  WEFT_CHECK(repeats >= 0, "repeat_interleave: repeats must be non-negative but got ", repeats);
  if (!dim) return repeat_interleave(reshape(x, {x.numel()}), repeats, 0);
  Tensor y = x.dim() == 0 ? reshape(x, {1}) : x;
  int64_t d = wrap_dim(*dim, y.dim(), "repeat_interleave");
  Shape wide = y.shape(), merged = y.shape();
  wide.insert(wide.begin() + d + 1, repeats);
  merged[d] = checked_mul(merged[d], repeats, "repeat_interleave");
  return reshape(expand(unsqueeze(y, d + 1), wide), merged);
}

Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, std::optional<int64_t> dim) {
  detail::check_plain(x, "repeat_interleave");
  detail::check_plain(repeats, "repeat_interleave");
  WEFT_CHECK(repeats.dtype() == kInt64 && repeats.dim() <= 1, "repeat_interleave: repeats must be a 0-d or 1-D "
             "int64 tensor but got ", repeats.dtype(), " of shape ", repeats.shape());
  // One count repeats every element, as a number would (torch's broadcast of a one-element repeats).
  if (repeats.numel() == 1) return repeat_interleave(x, repeats.reshape({}).item<int64_t>(), dim);
  if (!dim) return repeat_interleave(reshape(x, {x.numel()}), repeats, 0);
  int64_t d = wrap_dim(*dim, std::max<int64_t>(x.dim(), 1), "repeat_interleave");
  int64_t n = x.dim() == 0 ? 1 : x.size(d);
  WEFT_CHECK(repeats.numel() == n, "repeat_interleave: repeats must have one count per element of dim ", d,
             " (", n, ") but got ", repeats.numel());
  std::vector<int64_t> index;
  auto counts = repeats.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    WEFT_CHECK(counts[i] >= 0, "repeat_interleave: repeats must be non-negative but got ", counts[i], " at ", i);
    index.insert(index.end(), counts[i], i);
  }
  return index_select(x.dim() == 0 ? reshape(x, {1}) : x, d,
                      from_vector<int64_t>(index, {static_cast<int64_t>(index.size())}));
}

Tensor movedim(const Tensor& x, int64_t source, int64_t destination) {
  return movedim(x, Shape{source}, Shape{destination});
}

Tensor movedim(const Tensor& x, const Shape& source, const Shape& destination) {
  detail::check_plain(x, "movedim");
  WEFT_CHECK(source.size() == destination.size(), "movedim: expected as many source dims as destination dims "
             "but got ", source, " and ", destination);
  Shape src = wrap_dims(source, x.dim(), "movedim"), dst = wrap_dims(destination, x.dim(), "movedim");
  if (x.dim() == 0) return permute(x, {});
  // Destinations take their sources; the other dims fill the free places in their order.
  Shape order(x.dim(), -1);
  std::vector<bool> used(x.dim(), false);
  for (size_t i = 0; i < src.size(); ++i) order[dst[i]] = src[i], used[src[i]] = true;
  int64_t next = 0;
  for (int64_t& o : order) {
    if (o >= 0) continue;
    while (used[next]) ++next;
    o = next++;
  }
  return permute(x, order);
}

TensorList unbind(const Tensor& x, int64_t dim) {
  detail::check_plain(x, "unbind");
  WEFT_CHECK(x.dim() > 0, "unbind: cannot unbind a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "unbind");
  TensorList out;
  for (int64_t i = 0; i < x.size(d); ++i) out.push_back(select(x, d, i));
  return out;
}

Tensor diagonal(const Tensor& x, int64_t offset, int64_t dim1, int64_t dim2) {
  detail::check_plain(x, "diagonal");
  WEFT_CHECK(x.dim() >= 2, "diagonal: expected a tensor of at least 2 dims but got shape ", x.shape());
  int64_t d1 = wrap_dim(dim1, x.dim(), "diagonal"), d2 = wrap_dim(dim2, x.dim(), "diagonal");
  WEFT_CHECK(d1 != d2, "diagonal: dim1 and dim2 must differ but both are ", d1);
  int64_t rows = x.size(d1), cols = x.size(d2);
  int64_t length = offset >= 0 ? std::min(rows, cols - offset) : std::min(rows + offset, cols);
  length = std::max<int64_t>(length, 0);
  int64_t start = length == 0 ? 0 : (offset >= 0 ? offset * x.stride(d2) : -offset * x.stride(d1));
  Shape shape, strides;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != d1 && d != d2) shape.push_back(x.size(d)), strides.push_back(x.stride(d));
  shape.push_back(length), strides.push_back(x.stride(d1) + x.stride(d2));
  return as_strided(x, shape, strides, x.storage_offset() + start);
}

Tensor diag(const Tensor& x, int64_t offset) {
  detail::check_plain(x, "diag");
  WEFT_CHECK(x.dim() == 1 || x.dim() == 2, "diag: expected a 1-D or 2-D tensor but got shape ", x.shape());
  if (x.dim() == 2) return diagonal(x, offset).clone();  // a copy, as torch.diag gives
  // 1-D: x copied into the diagonal view of a zero matrix; autograd records the copy into the view.
  int64_t m = checked_add(x.size(0), std::abs(offset), "diag");
  Tensor out = zeros({m, m}, x.dtype());
  diagonal(out, offset).copy_(x);
  return out;
}

Tensor trace(const Tensor& x) {
  detail::check_plain(x, "trace");
  WEFT_CHECK(x.dim() == 2, "trace: expected a matrix but got shape ", x.shape());
  return sum(diagonal(x));
}

}  // namespace weft
