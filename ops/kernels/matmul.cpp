// matmul.cpp: the batched matmul kernels: oneDNN for float32 (strided operands, cached primitives)
// and the reference loop for every numeric dtype.
#include "ops/kernels/matmul.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "framework/copy.h"
#include "ops/kernels/onednn.h"

namespace weft::kernels {
namespace {

Tensor contiguous_copy(const Tensor& t) { return detail::contiguous_or_self(t); }

// `bias` broadcast to [M, N], as a contiguous 2-D tensor of its own (unbroadcast) extent.
Tensor bias_2d(const Tensor& bias, int64_t m, int64_t n) {
  Shape target{m, n};
  WEFT_CHECK(bias.dim() <= 2 && is_broadcastable_to(bias.shape(), target), "matmul: the bias of shape ",
             bias.shape(), " cannot be broadcast to the output's ", target);
  Shape own{1, 1};
  for (int64_t d = 0; d < bias.dim(); ++d) own[2 - bias.dim() + d] = bias.size(d);
  Tensor out = detail::make_empty(own, bias.dtype());
  detail::copy_into(out, bias);
  return out;
}

template <class T>
void reference_loop(const Tensor& a, const Tensor& bm, const Tensor& bias, const Tensor& out) {
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  const T* pa = a.data_ptr<T>();
  const T* pb = bm.data_ptr<T>();  // rows of bm are unit-stride (caller made sure)
  T* po = out.data_ptr<T>();
  const int64_t as0 = a.stride(0), as1 = a.stride(1), as2 = a.stride(2);
  const int64_t bs0 = bm.stride(0), bs1 = bm.stride(1);
  const T* pbias = bias.defined() ? bias.data_ptr<T>() : nullptr;
  const int64_t bias_rs = bias.defined() && bias.size(0) > 1 ? bias.size(1) : 0;
  const int64_t bias_cs = bias.defined() && bias.size(1) > 1 ? 1 : 0;
  constexpr int64_t kBlockK = 128, kBlockN = 512;  // a block of bm stays in L2 across k
  const int64_t rows = batch * m;
  const bool parallel = rows > 1 && rows * n * k > (1 << 15);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / m, i = r % m;
    T* o = po + r * n;
    for (int64_t j = 0; j < n; ++j) o[j] = pbias ? pbias[i * bias_rs + j * bias_cs] : T(0);
    const T* arow = pa + b * as0 + i * as1;
    const T* bmat = pb + b * bs0;
    for (int64_t j0 = 0; j0 < n; j0 += kBlockN) {
      const int64_t j1 = std::min(n, j0 + kBlockN);
      for (int64_t k0 = 0; k0 < k; k0 += kBlockK) {
        const int64_t k1 = std::min(k, k0 + kBlockK);
        for (int64_t kk = k0; kk < k1; ++kk) {
          const T aik = arow[kk * as2];
          const T* brow = bmat + kk * bs1;
          for (int64_t j = j0; j < j1; ++j) o[j] += aik * brow[j];
        }
      }
    }
  }
}

// A strided oneDNN descriptor for a [B, R, C] operand when its matrices are row- or column-major
// (gemm reads either through its leading dimension); nullopt when it must be copied first.
std::optional<dnnl::memory::desc> strided_desc(const Tensor& t) {
  const int64_t b = t.size(0), r = t.size(1), c = t.size(2);
  int64_t sb = t.stride(0), sr = t.stride(1), sc = t.stride(2);
  // Strides of size-1 dims are never used to move; give them values that keep the layout plain.
  if (c == 1) sc = 1;
  if (r == 1) sr = sc == 1 ? c : 1;
  const bool row_major = sc == 1 && sr >= c;
  const bool col_major = sr == 1 && sc >= r;
  if (!row_major && !col_major) return std::nullopt;
  if (b == 1) sb = (r - 1) * sr + (c - 1) * sc + 1;
  if (sb <= 0) return std::nullopt;  // a broadcast batch: oneDNN wants real strides
  return dnnl::memory::desc({b, r, c}, dnnl::memory::data_type::f32, {sb, sr, sc});
}

Tensor onednn_bmm(Tensor a, Tensor bm, const Tensor& bias) {
  const int64_t batch = a.size(0), m = a.size(1), n = bm.size(2);
  auto a_md = strided_desc(a);
  if (!a_md) {
    a = contiguous_copy(a);
    a_md = strided_desc(a);
  }
  auto b_md = strided_desc(bm);
  if (!b_md) {
    bm = contiguous_copy(bm);
    b_md = strided_desc(bm);
  }
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc dst_md({batch, m, n}, dt::f32, {m * n, n, 1});
  Tensor out = detail::make_empty({batch, m, n}, kFloat32);
  Tensor bias2;
  dnnl::memory::desc bias_md;
  if (bias.defined()) {
    bias2 = bias_2d(bias, m, n);
    bias_md = dnnl::memory::desc({1, bias2.size(0), bias2.size(1)}, dt::f32, {bias2.numel(), bias2.size(1), 1});
  }
  onednn::PrimitiveKey key(bias.defined() ? onednn::kMatmulBias : onednn::kMatmul);
  key.add(*a_md).add(*b_md).add(dst_md);
  if (bias.defined()) key.add(bias_md);
  dnnl::primitive prim = onednn::get_primitive(key, [&] {
    auto desc = bias.defined() ? dnnl::matmul::desc(*a_md, *b_md, bias_md, dst_md)
                               : dnnl::matmul::desc(*a_md, *b_md, dst_md);
    return dnnl::primitive(dnnl::matmul(dnnl::matmul::primitive_desc(desc, onednn::engine())));
  });
  dnnl::engine& eng = onednn::engine();
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(*a_md, eng, a.raw_data())},
      {DNNL_ARG_WEIGHTS, dnnl::memory(*b_md, eng, bm.raw_data())},
      {DNNL_ARG_DST, dnnl::memory(dst_md, eng, out.raw_data())}};
  if (bias.defined()) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, eng, bias2.raw_data()));
  prim.execute(onednn::stream(), args);
  onednn::stream().wait();
  return out;
}

// Degenerate sizes: an empty result, or K == 0 where the product is all zeros (plus bias).
Tensor degenerate_bmm(const Tensor& a, const Tensor& bm, const Tensor& bias) {
  Tensor out = detail::make_empty({a.size(0), a.size(1), bm.size(2)}, a.dtype());
  if (out.numel() == 0) return out;
  if (bias.defined()) {
    detail::copy_into(out, bias_2d(bias, a.size(1), bm.size(2)));
  } else {
    visit_dtype(out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::fill_n(out.data_ptr<T>(), out.numel(), T(0));
    });
  }
  return out;
}

void check_operands(const Tensor& a, const Tensor& bm) {
  WEFT_INTERNAL_ASSERT(a.dim() == 3 && bm.dim() == 3 && a.size(0) == bm.size(0) && a.size(2) == bm.size(1),
                       "bmm kernel: bad operand shapes ", a.shape(), " and ", bm.shape());
  WEFT_INTERNAL_ASSERT(a.dtype() == bm.dtype(), "bmm kernel: mixed dtypes");
}

}  // namespace

Tensor bmm_reference(const Tensor& a, const Tensor& bm, const Tensor& bias) {
  check_operands(a, bm);
  if (a.numel() == 0 || bm.numel() == 0) return degenerate_bmm(a, bm, bias);
  // The inner loop walks rows of bm: make them unit-stride unless they already are.
  Tensor b = bm.stride(2) == 1 || bm.size(2) == 1 ? bm : contiguous_copy(bm);
  Tensor bias2 = bias.defined() ? bias_2d(bias, a.size(1), bm.size(2)) : Tensor();
  Tensor out = detail::make_empty({a.size(0), a.size(1), bm.size(2)}, a.dtype());
  visit_numeric(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    Tensor bias_t = bias2.defined() && bias2.dtype() != a.dtype() ? Tensor() : bias2;
    if (bias2.defined() && !bias_t.defined()) {  // a bias of another dtype: convert once
      bias_t = detail::make_empty(bias2.shape(), a.dtype());
      detail::copy_into(bias_t, bias2);
    }
    reference_loop<T>(a, b, bias_t, out);
  });
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& bm, const Tensor& bias) {
  check_operands(a, bm);
  if (a.numel() == 0 || bm.numel() == 0) return degenerate_bmm(a, bm, bias);
  if (a.dtype() == kFloat32 && (!bias.defined() || bias.dtype() == kFloat32)) return onednn_bmm(a, bm, bias);
  return bmm_reference(a, bm, bias);
}

}  // namespace weft::kernels
