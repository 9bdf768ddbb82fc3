// pad.cpp: every output element of a padded block reads one input element (or the constant); the
// per-dim index maps say which. Forward gathers through them, backward adds back through them.
// Leading (unpadded) dims are independent blocks, split across threads.
#include "kernels/pad.h"

#include <algorithm>

#include "kernels/toolkit.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

// For each output index along a dim, the input index it reads, or -1 for the constant.
std::vector<int64_t> index_map(int64_t in, int64_t before, int64_t after, PadMode mode) {
  std::vector<int64_t> map(static_cast<size_t>(std::max<int64_t>(in + before + after, 0)));
  for (int64_t o = 0; o < static_cast<int64_t>(map.size()); ++o) {
    int64_t i = o - before;
    switch (mode) {
      case PadMode::kConstant: i = i >= 0 && i < in ? i : -1; break;
      case PadMode::kReflect: i = i < 0 ? -i : i >= in ? 2 * (in - 1) - i : i; break;
      case PadMode::kReplicate: i = std::clamp<int64_t>(i, 0, in - 1); break;
      case PadMode::kCircular: i = ((i % in) + in) % in; break;
    }
    map[static_cast<size_t>(o)] = i;
  }
  return map;
}

// The geometry of one padded block (the trailing k dims) and its maps, as input offsets.
struct PadPlan {
  int64_t outer = 1, in_block = 1, out_block = 1;
  std::vector<std::vector<int64_t>> offsets;  // per padded dim: input offset of each output index, or -1
  Shape out_dims;
};

PadPlan plan_of(const Shape& x_shape, const PadAmounts& pads, PadMode mode) {
  PadPlan p;
  const size_t k = pads.size(), lead = x_shape.size() - k;
  for (size_t d = 0; d < lead; ++d) p.outer *= x_shape[d];
  int64_t stride = 1;
  p.offsets.resize(k);
  p.out_dims.resize(k);
  for (size_t j = k; j-- > 0;) {
    const int64_t in = x_shape[lead + j];
    p.offsets[j] = index_map(in, pads[j].first, pads[j].second, mode);
    for (int64_t& o : p.offsets[j]) o = o < 0 ? -1 : o * stride;
    p.out_dims[j] = static_cast<int64_t>(p.offsets[j].size());
    stride *= in;
    p.out_block *= p.out_dims[j];
  }
  p.in_block = stride;
  return p;
}

// Calls f(input offset or -1, output offset) for every element of one block, a row at a time.
template <class F>
void for_each_element(const PadPlan& p, F&& f) {
  const size_t k = p.out_dims.size();
  const int64_t row = p.out_dims[k - 1], rows = row == 0 ? 0 : p.out_block / row;
  std::vector<int64_t> at(k, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t base = 0;
    for (size_t j = 0; j + 1 < k; ++j) base = base < 0 || p.offsets[j][at[j]] < 0 ? -1 : base + p.offsets[j][at[j]];
    const std::vector<int64_t>& last = p.offsets[k - 1];
    for (int64_t c = 0; c < row; ++c) f(base < 0 || last[c] < 0 ? -1 : base + last[c], r * row + c);
    for (size_t j = k - 1; j-- > 0;) {  // the next row: an odometer over the leading padded dims
      if (++at[j] < p.out_dims[j]) break;
      at[j] = 0;
    }
  }
}

Shape padded_shape(const Shape& x_shape, const PadPlan& p) {
  Shape out = x_shape;
  for (size_t j = 0; j < p.out_dims.size(); ++j) out[x_shape.size() - p.out_dims.size() + j] = p.out_dims[j];
  return out;
}

}  // namespace

Tensor pad_forward(const Tensor& x, const PadAmounts& pads, PadMode mode, double value) {
  const PadPlan p = plan_of(x.shape(), pads, mode);
  Tensor xd = dense(x), y = make_empty(padded_shape(x.shape(), p), x.dtype());
  visit<kAllDTypes>(x.dtype(), "pad", [&](auto tag) {  // a copy: every dtype
    using T = decltype(tag);
    const T* in = static_cast<const T*>(xd.raw_data());
    T* out = static_cast<T*>(y.raw_data());
    const T fill = static_cast<T>(value);
#pragma omp parallel for schedule(static) if (y.numel() > (1 << 15)) num_threads(get_num_threads())
    for (int64_t o = 0; o < p.outer; ++o)
      for_each_element(p, [&](int64_t src, int64_t dst) {
        out[o * p.out_block + dst] = src < 0 ? fill : in[o * p.in_block + src];
      });
  });
  return y;
}

Tensor pad_backward(const Tensor& dy, const Shape& x_shape, const PadAmounts& pads, PadMode mode) {
  // The 16-bit floats sum the gradients of repeated elements in float32, rounded once.
  if (is_reduced_float(dy.dtype())) return pad_backward(dy.to(kFloat32), x_shape, pads, mode).to(dy.dtype());
  const PadPlan p = plan_of(x_shape, pads, mode);
  Tensor dyd = dense(dy), dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "pad backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = dyd.data_ptr<T>();
    T* out = dx.data_ptr<T>();
    std::fill_n(out, dx.numel(), T(0));
#pragma omp parallel for schedule(static) if (dy.numel() > (1 << 15)) num_threads(get_num_threads())
    for (int64_t o = 0; o < p.outer; ++o)
      for_each_element(p, [&](int64_t src, int64_t dst) {
        if (src >= 0) out[o * p.in_block + src] += g[o * p.out_block + dst];
      });
  });
  return dx;
}

}  // namespace weft::kernels
