// matmul.cpp: the batched matmul kernels: oneDNN for float32 (strided operands; dnnl_sgemm for a
// single product, cached primitives for batches) and bfloat16 (cached primitives, on AVX-512), and
// the reference loop for every numeric dtype.
#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <tuple>
#include <utility>

#include "kernels/cpu_isa.h"
#include "kernels/elementwise.h"
#include "kernels/onednn.h"
#include "kernels/toolkit.h"

namespace weft::kernels {
namespace {

// `bias` broadcast to [M, N], as a contiguous 2-D tensor of its own (unbroadcast) extent.
Tensor bias_2d(const Tensor& bias, int64_t m, int64_t n) {
  Shape target{m, n};
  WEFT_CHECK(bias.dim() <= 2 && is_broadcastable_to(bias.shape(), target), "matmul: the bias of shape ",
             bias.shape(), " cannot be broadcast to the output's ", target);
  Shape own{1, 1};
  for (int64_t d = 0; d < bias.dim(); ++d) own[2 - bias.dim() + d] = bias.size(d);
  Tensor out = make_empty(own, bias.dtype());
  copy_into(out, bias);
  return out;
}

template <class T>
void reference_loop(const Tensor& a, const Tensor& bm, const Tensor& bias, const Tensor& out, bool dots) {
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  const T* pa = a.data_ptr<T>();
  const T* pb = bm.data_ptr<T>();  // rows of bm unit-stride, or with `dots` its columns and a's rows
  T* po = out.data_ptr<T>();
  const int64_t as0 = a.stride(0), as1 = a.stride(1), as2 = a.stride(2);
  const int64_t bs0 = bm.stride(0), bs1 = bm.stride(1), bs2 = bm.stride(2);
  const T* pbias = bias.defined() ? bias.data_ptr<T>() : nullptr;
  const int64_t bias_rs = bias.defined() && bias.size(0) > 1 ? bias.size(1) : 0;
  const int64_t bias_cs = bias.defined() && bias.size(1) > 1 ? 1 : 0;
  constexpr int64_t kBlockK = 128, kBlockN = 512;  // a block of bm stays in L2 across k
  const int64_t rows = batch * m;
  auto row = [&](int64_t r) {
    const int64_t b = r / m, i = r % m;
    T* o = po + r * n;
    for (int64_t j = 0; j < n; ++j) o[j] = pbias ? pbias[i * bias_rs + j * bias_cs] : T(0);
    const T* arow = pa + b * as0 + i * as1;
    const T* bmat = pb + b * bs0;
    if (dots) {  // out[i, j] += a[i, :] . bm[:, j], both unit-stride (a linear's W^T, read in place)
      for (int64_t j = 0; j < n; ++j) {
        const T* bcol = bmat + j * bs2;
        T acc = o[j];
#pragma omp simd reduction(+ : acc)
        for (int64_t kk = 0; kk < k; ++kk) acc += arow[kk] * bcol[kk];
        o[j] = acc;
      }
      return;
    }
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
  };
  // No parallel region at all for small products: even an if(false) one costs a team setup,
  // several times a tiny product's arithmetic.
  if (rows > 1 && rows * n * k > (1 << 15)) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
    for (int64_t r = 0; r < rows; ++r) row(r);
  } else {
    for (int64_t r = 0; r < rows; ++r) row(r);
  }
}

// A [B, R, C] operand as oneDNN reads it (B = 1 for a 2-D one): its dims and strides when its
// matrices are row- or column-major (gemm reads either through its leading dimension).
struct Layout {
  int64_t dims[3];
  int64_t strides[3];
  dnnl::memory::desc desc(dnnl::memory::data_type type = dnnl::memory::data_type::f32) const {
    return dnnl::memory::desc({dims[0], dims[1], dims[2]}, type, {strides[0], strides[1], strides[2]});
  }
  void add_to(onednn::PrimitiveKey& key) const {
    key.add({dims[0], dims[1], dims[2], strides[0], strides[1], strides[2]});
  }
};

// The layout of a [b, r, c] operand with these strides, or nullopt when oneDNN cannot read it.
// Strides of size-1 dims are never used to move; they get values that keep the layout plain.
std::optional<Layout> plain(int64_t b, int64_t r, int64_t c, int64_t sb, int64_t sr, int64_t sc) {
  if (c == 1) sc = 1;
  if (r == 1) sr = sc == 1 ? c : 1;
  const bool row_major = sc == 1 && sr >= c;
  const bool col_major = sr == 1 && sc >= r;
  if (!row_major && !col_major) return std::nullopt;
  if (b == 1) sb = (r - 1) * sr + (c - 1) * sc + 1;
  if (sb <= 0) return std::nullopt;  // a broadcast batch: oneDNN wants real strides
  return Layout{{b, r, c}, {sb, sr, sc}};
}

// `t`'s layout, or nullopt when it must be copied first.
std::optional<Layout> layout_of(const Tensor& t) {
  const Shape& size = t.shape();  // read once: size(d) and stride(d) each re-check d
  const Shape& stride = t.strides();
  const size_t d = size.size();
  const bool batched = d == 3;
  return plain(batched ? size[0] : 1, size[d - 2], size[d - 1], batched ? stride[0] : 0, stride[d - 2],
               stride[d - 1]);
}

// One operand as oneDNN reads it: its buffer and layout.
struct Operand {
  void* data;
  Layout layout;
};

// `t` as oneDNN reads it: in place, or when oneDNN cannot read its strides, a contiguous copy made
// into `keep`. The copy lives in the caller's handle so that the common case copies no Tensor.
Operand readable(const Tensor& t, Tensor& keep) {
  if (auto layout = layout_of(t)) return {t.raw_data(), *layout};
  keep = dense(t);
  return {keep.raw_data(), *layout_of(keep)};
}

// A [out, in] weight read as W^T [in, out] through its strides (column-major when the weight is
// row-major): no view is made for it, and nothing is copied unless its strides are unreadable.
Operand readable_transposed(const Tensor& weight, Tensor& keep) {
  const Shape& size = weight.shape();
  const Shape& stride = weight.strides();
  if (auto layout = plain(1, size[1], size[0], 0, stride[1], stride[0])) return {weight.raw_data(), *layout};
  keep = dense(weight);
  return {keep.raw_data(), *plain(1, size[1], size[0], 0, 1, size[1])};
}

// The [rows, cols] extent (rows 1 or m, cols 1 or n) at which oneDNN reads `bias` in place, or
// nullopt when it must first be broadcast into a dense copy (bias_2d).
std::optional<std::pair<int64_t, int64_t>> in_place_bias_extent(const Tensor& bias, int64_t m, int64_t n) {
  const Shape& size = bias.shape();
  const Shape& stride = bias.strides();
  if (size.size() == 0) return std::pair<int64_t, int64_t>{1, 1};
  if (size.size() == 1 && (size[0] == n || size[0] == 1) && (size[0] == 1 || stride[0] == 1))
    return std::pair<int64_t, int64_t>{1, size[0]};
  if (size.size() == 2 && (size[0] == m || size[0] == 1) && (size[1] == n || size[1] == 1) && bias.is_contiguous())
    return std::pair<int64_t, int64_t>{size[0], size[1]};
  return std::nullopt;
}

// A oneDNN call costs about a microsecond whatever the size; below ~16x16x16 multiply-adds the
// plain loop is faster (measured: 2x2 0.2 us vs 1.0, 8x8 0.4 vs 1.0, 16x16 equal).
constexpr int64_t kOneDnnMinWork = 4096;

// Below about 400K multiply-adds a batched matmul primitive runs on one thread (Note [Serial
// primitives]). The crossover depends on the host; oneDNN 2.6 matmul primitives, 2 vs 1 thread:
// on the host of 2026-12-01 64^3 2.4x the time, 96^3 1.27x, 128^3 0.84x; on an AMD EPYC host
// (2026-12-02) 64^3 1.38x, 4x32^3 1.28x, but 4x48^3 0.64x, 8x64x16x64 0.85x, 96^3 0.64x. Both
// agree up to 64^3; above it, the second host gained more than the first lost.
constexpr int64_t kSerialMatmulWork = int64_t(3) << 17;

// The bias as oneDNN reads it: a dense [rows, cols] block (rows 1 or M, cols 1 or N) that
// broadcasts over the output, in place when the caller's tensor is one, else a copy made into
// `keep` (the caller's handle, so that the common case copies no Tensor).
struct BiasOperand {
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
};

BiasOperand bias_operand(const Tensor& bias, int64_t m, int64_t n, Tensor& keep) {
  if (auto extent = in_place_bias_extent(bias, m, n))
    return {bias.raw_data(), extent->first, extent->second};
  keep = bias_2d(bias, m, n);
  return {keep.raw_data(), keep.size(0), keep.size(1)};
}

// Note [Single products through sgemm]
// A matmul primitive's execute costs about a microsecond before any arithmetic (an execution
// context, argument maps, the scratchpad); dnnl_sgemm, the same library's BLAS-style entry point,
// skips that, but it does not always pick the primitive's kernels. Measured on oneDNN 2.6, sgemm's
// time over the cached primitive's, 1 thread:
//   AMD EPYC with avx2 only: 64^3 0.88 (0.80 at 2 threads), 128^3 0.96, 256^3 0.99-1.00, but 512^3
//     with a bias 1.03 and 2048^3 1.02 (sgemm has no bias: the output is first filled with it);
//     results bit-identical.
//   AMD EPYC with avx512 (Zen 4): A @ B 64^3 1.10, 128^3 0.99, 256^3 1.00; A @ B^T (linear's
//     weight) 32^3 1.29, 64^3 1.52, 128^3 1.05, 256^3 1.04.
// So on a CPU without AVX-512 a single product of up to 256^3 multiply-adds goes through sgemm, and
// everything else (batches, larger products, any product on an AVX-512 CPU) through the primitive
// cache. The route depends only on the CPU, so a host's results do not change from call to call.
// sgemm picks its thread count by its own rule at each call (nothing is created for a count, so
// nothing needs keying by it); it gains from a second thread even at 64^3 (0.84x the time of a
// forced single thread), so it is left to choose.
constexpr int64_t kSgemmMaxWork = int64_t(1) << 24;

std::atomic<SingleProductRoute> single_product_route{SingleProductRoute::kAuto};

bool single_products_through_sgemm() {
  switch (single_product_route.load(std::memory_order_relaxed)) {
    case SingleProductRoute::kSgemm: return true;
    case SingleProductRoute::kPrimitive: return false;
    case SingleProductRoute::kAuto: break;
  }
  return cpu_isa() == CpuIsa::kAvx2;  // not off x86 either: sgemm was measured on x86 only
}

// A [1, R, C] layout as dnnl_sgemm (row-major) takes it: the transpose flag and leading dimension.
std::pair<char, int64_t> sgemm_form(const Layout& layout) {
  if (layout.strides[2] == 1) return {'N', layout.strides[1]};
  return {'T', layout.strides[2]};
}

// out[M, N] = a @ b (+ bias) for one product (batch 1); see Note [Single products through sgemm].
void sgemm_product(const Operand& a, const Operand& b, const Tensor& bias, float* out) {
  const int64_t m = a.layout.dims[1], n = b.layout.dims[2], k = a.layout.dims[2];
  float beta = 0.0f;
  if (bias.defined()) {  // the output starts as the broadcast bias, and the product adds to it
    Tensor keep;
    const BiasOperand bo = bias_operand(bias, m, n, keep);
    for (int64_t i = 0; i < m; ++i) {
      const float* row = static_cast<const float*>(bo.data) + (bo.rows > 1 ? i * bo.cols : 0);
      if (bo.cols == n) std::copy_n(row, n, out + i * n);
      else std::fill_n(out + i * n, n, row[0]);
    }
    beta = 1.0f;
  }
  const auto [trans_a, lda] = sgemm_form(a.layout);
  const auto [trans_b, ldb] = sgemm_form(b.layout);
  const dnnl_status_t status = dnnl_sgemm(trans_a, trans_b, m, n, k, 1.0f, static_cast<const float*>(a.data),
                                          lda, static_cast<const float*>(b.data), ldb, beta, out, n);
  WEFT_INTERNAL_ASSERT(status == dnnl_success, "matmul: dnnl_sgemm failed (status ", static_cast<int>(status),
                       ") for ", m, "x", k, "x", n, " with ", trans_a, "/lda ", lda, ", ", trans_b, "/ldb ", ldb);
}

// oneDNN's type for float32 or bfloat16 operands.
dnnl::memory::data_type onednn_type(DType dtype) {
  return dtype == kBFloat16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// Note [bfloat16 products on oneDNN]
// bfloat16 operands run on oneDNN's bfloat16 matmul, which accumulates in float32 and rounds the
// result once, as the float32 route over widened operands does (reduced_float_bmm), so the two
// differ only in the order of float32 additions; it reads half the bytes and makes no widened
// copies (the bias, when there is one, is bfloat16 too). oneDNN 2.6 runs bfloat16 matmul natively
// on CPUs with AVX512-BF16 and emulates it on other AVX-512 cores (its gemm:jit path), where it is
// slower than widening: measured on an AVX-512 host without BF16, 1 thread, [512, 256] x [256, 768]
// took 15.7 ms emulated, 4.8 ms widened, 3.7 ms in float32 (4-5x and 1.2-1.3x float32's time across
// the GPT's shapes). So the emulated route is taken only when forced (tests).
std::atomic<Bf16ProductRoute> bf16_product_route{Bf16ProductRoute::kAuto};

// out = a @ b (+ bias) on oneDNN, out [B, M, N] (or [M, N] when `batched_out` is false), with
// float32 or bfloat16 operands and output of `dtype`.
Tensor onednn_bmm(const Operand& a, const Operand& b, const Tensor& bias, bool batched_out, DType dtype = kFloat32) {
  const int64_t batch = a.layout.dims[0], m = a.layout.dims[1], n = b.layout.dims[2], k = a.layout.dims[2];
  const int64_t work = batch * m * n * k;
  Tensor out = batched_out ? make_empty({batch, m, n}, dtype) : make_empty({m, n}, dtype);
  if (dtype == kFloat32 && batch == 1 && work <= kSgemmMaxWork && single_products_through_sgemm()) {
    sgemm_product(a, b, bias, static_cast<float*>(out.raw_data()));
    return out;
  }
  const int threads = onednn::threads_for(work, kSerialMatmulWork);
  // The bias as a [1, R, C] operand of its own (unbroadcast) extent, read in place when it is dense.
  Tensor bias_keep;
  const BiasOperand bo = bias.defined() ? bias_operand(bias, m, n, bias_keep) : BiasOperand{};
  // The destination's layout follows from the operands', and the bias's from its extent, so the
  // key holds neither (and a hit builds neither layout).
  onednn::PrimitiveKey key(bias.defined() ? onednn::kMatmulBias : onednn::kMatmul, threads);
  a.layout.add_to(key);
  b.layout.add_to(key);
  const auto type = onednn_type(dtype);
  const auto bias_type = bias.defined() ? onednn_type(bias.dtype()) : type;
  if (dtype != kFloat32 || bias_type != type) key.add({static_cast<int64_t>(type), static_cast<int64_t>(bias_type)});
  if (bias.defined()) key.add({bo.rows, bo.cols});
  onednn::BoundPrimitive& prim = onednn::get_primitive(key, [&] {
    const Layout dst_layout{{batch, m, n}, {m * n, n, 1}};
    auto a_md = a.layout.desc(type), b_md = b.layout.desc(type), dst_md = dst_layout.desc(type);
    onednn::PrimitiveSpec spec;
    if (bias.defined()) {
      auto bias_md = Layout{{1, bo.rows, bo.cols}, {bo.rows * bo.cols, bo.cols, 1}}.desc(bias_type);
      spec.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, dst_md),
                                                                 onednn::engine()));
      spec.args = {{DNNL_ARG_SRC, a_md}, {DNNL_ARG_WEIGHTS, b_md}, {DNNL_ARG_DST, dst_md}, {DNNL_ARG_BIAS, bias_md}};
    } else {
      spec.primitive =
          dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, dst_md), onednn::engine()));
      spec.args = {{DNNL_ARG_SRC, a_md}, {DNNL_ARG_WEIGHTS, b_md}, {DNNL_ARG_DST, dst_md}};
    }
    return spec;
  });
  if (bias.defined())
    prim.run({a.data, b.data, out.raw_data(), const_cast<void*>(bo.data)});
  else
    prim.run({a.data, b.data, out.raw_data()});
  return out;
}

// The shape of a @ bm: [B, M, N], or [M, N] for 2-D operands.
Shape product_shape(const Tensor& a, const Tensor& bm) {
  if (a.dim() == 2) return {a.size(0), bm.size(1)};
  return {a.size(0), a.size(1), bm.size(2)};
}

// A 2-D operand as a [1, R, C] alias, for the paths written for batches.
Tensor as_batch(const Tensor& t) {
  if (t.dim() == 3) return t;
  return make_alias(t, {1, t.size(0), t.size(1)}, {0, t.stride(0), t.stride(1)}, t.storage_offset());
}

// Degenerate sizes: an empty result, or K == 0 where the product is all zeros (plus bias).
Tensor degenerate_bmm(const Tensor& a, const Tensor& bm, const Tensor& bias) {
  Tensor out = make_empty(product_shape(a, bm), a.dtype());
  if (out.numel() == 0) return out;
  if (bias.defined()) {
    copy_into(out, bias_2d(bias, a.size(-2), bm.size(-1)));
  } else {
    visit<kAllDTypes>(out.dtype(), "matmul", [&](auto tag) {
      using T = decltype(tag);
      std::fill_n(out.data_ptr<T>(), out.numel(), T(0));
    });
  }
  return out;
}

// bfloat16 and float16 products accumulate in float32 and round once, as PyTorch's CPU matmul does:
// the operands are widened (exactly) and the float32 route runs.
Tensor reduced_float_bmm(const Tensor& a, const Tensor& bm, const Tensor& bias) {
  Tensor bias32 = bias.defined() ? cast(bias, kFloat32) : Tensor();
  return cast(bmm(cast(a, kFloat32), cast(bm, kFloat32), bias32), a.dtype());
}

// Whether a bfloat16 product (with this bias) runs on oneDNN: Note [bfloat16 products on oneDNN].
bool onednn_bf16(const Tensor& a, const Tensor& bias) {
  if (a.dtype() != kBFloat16 || (bias.defined() && bias.dtype() != kBFloat16)) return false;
  switch (bf16_product_route.load(std::memory_order_relaxed)) {
    case Bf16ProductRoute::kWidened: return false;
    case Bf16ProductRoute::kOneDnn: return cpu_isa() == CpuIsa::kAvx512;
    case Bf16ProductRoute::kAuto: break;
  }
  static const bool native = cpu_isa() == CpuIsa::kAvx512 && __builtin_cpu_supports("avx512bf16");
  return native;
}

void check_operands(const Tensor& a, const Tensor& bm) {
  const Shape& as = a.shape();
  const Shape& bs = bm.shape();
  const bool ok = (as.size() == 3 && bs.size() == 3 && as[0] == bs[0] && as[2] == bs[1]) ||
                  (as.size() == 2 && bs.size() == 2 && as[1] == bs[0]);
  WEFT_INTERNAL_ASSERT(ok, "bmm kernel: bad operand shapes ", a.shape(), " and ", bm.shape());
  WEFT_INTERNAL_ASSERT(a.dtype() == bm.dtype(), "bmm kernel: mixed dtypes");
}

}  // namespace

void set_bf16_product_route(Bf16ProductRoute route) {
  bf16_product_route.store(route, std::memory_order_relaxed);
}

void set_single_product_route(SingleProductRoute route) {
  single_product_route.store(route, std::memory_order_relaxed);
}

Tensor bmm_reference(const Tensor& a_in, const Tensor& bm_in, const Tensor& bias) {
  check_operands(a_in, bm_in);
  if (a_in.numel() == 0 || bm_in.numel() == 0) return degenerate_bmm(a_in, bm_in, bias);
  Tensor a = as_batch(a_in), bm = as_batch(bm_in);
  // The inner loop walks rows of bm, or, when bm's columns and a's rows are unit-stride (a column-major
  // bm, such as linear's W^T), takes dot products of them; otherwise bm's rows are made unit-stride.
  const bool dots = bm.stride(1) == 1 && bm.size(2) > 1 && bm.stride(2) != 1 && a.stride(2) == 1;
  Tensor b = dots || bm.stride(2) == 1 || bm.size(2) == 1 ? bm : dense(bm);
  Tensor bias2 = bias.defined() ? bias_2d(bias, a.size(1), bm.size(2)) : Tensor();
  Tensor out = make_empty({a.size(0), a.size(1), bm.size(2)}, a.dtype());
  visit<kStdNumeric>(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    Tensor bias_t = bias2.defined() && bias2.dtype() != a.dtype() ? Tensor() : bias2;
    if (bias2.defined() && !bias_t.defined()) {  // a bias of another dtype: convert once
      bias_t = contiguous_copy(bias2, a.dtype());
    }
    reference_loop<T>(a, b, bias_t, out, dots);
  });
  if (a_in.dim() == 2) return make_alias(out, {out.size(1), out.size(2)}, {out.size(2), 1}, 0);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& bm, const Tensor& bias) {
  check_operands(a, bm);
  const Shape& as = a.shape();  // check_operands made sure of the ranks
  const int64_t rows = as.size() == 3 ? as[0] * as[1] : as[0];
  // 128-bit: operands that are expanded views can have products of sizes past int64.
  const __int128 work = static_cast<__int128>(rows) * bm.shape().back() * as.back();
  if (work == 0) return degenerate_bmm(a, bm, bias);  // an empty result, or K == 0
  const bool tiny = work < kOneDnnMinWork;
  if (!tiny && onednn_bf16(a, bias)) {
    Tensor keep_a, keep_b;
    return onednn_bmm(readable(a, keep_a), readable(bm, keep_b), bias, a.dim() == 3, kBFloat16);
  }
  if (is_reduced_float(a.dtype())) return reduced_float_bmm(a, bm, bias);
  if (a.dtype() == kFloat32 && (!bias.defined() || bias.dtype() == kFloat32) && !tiny) {
    Tensor keep_a, keep_b;
    return onednn_bmm(readable(a, keep_a), readable(bm, keep_b), bias, a.dim() == 3);
  }
  return bmm_reference(a, bm, bias);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  WEFT_INTERNAL_ASSERT(xs.size() == 2 && ws.size() == 2 && xs[1] == ws[1] && x.dtype() == weight.dtype(),
                       "linear kernel: bad operands ", xs, " and ", ws);
  const int64_t rows = xs[0], in = xs[1], out = ws[0];
  const bool tiny_or_empty = static_cast<__int128>(rows) * in * out < kOneDnnMinWork;  // bmm handles both
  const bool bf16 = onednn_bf16(x, bias);
  if (tiny_or_empty || (x.dtype() != kFloat32 && !bf16) ||
      (!bf16 && bias.defined() && bias.dtype() != kFloat32)) {
    // W^T as a view for the generic paths; only the oneDNN one below needs to avoid making it.
    Tensor wt = make_alias(weight, {in, out}, {weight.stride(1), weight.stride(0)}, weight.storage_offset());
    return bmm(x, wt, bias);
  }
  Tensor keep_x, keep_w;
  return onednn_bmm(readable(x, keep_x), readable_transposed(weight, keep_w), bias, false, x.dtype());
}

}  // namespace weft::kernels
