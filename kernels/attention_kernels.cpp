// attention_kernels.cpp: the flash-style attention forward and backward (see Note [Flash attention]):
// tile products on an inlined register-blocked loop (small tiles; in the AVX-512 copy on intrinsics,
// attention_kernels_avx512.h) or dnnl_sgemm (larger float32 tiles), the row loops compiled per ISA; OpenMP over (batch, query block) in forward and
// over batch in backward (each batch element's dq accumulates across key blocks on one thread).
#include "kernels/attention_kernels.h"
#include "kernels/attention_kernels_avx512.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.h>


#include "kernels/cpu_isa.h"
#include "kernels/threads.h"
#include "kernels/toolkit.h"
#include "kernels/vector_math.h"

namespace weft::kernels {
namespace {

// Tile sizes: a 64 x 256 score tile is 64 KiB in float32, so a tile and its operands stay in L2, and a
// query block's causal reach needs no more than one partial key block. Measured (bench_attention),
// 256 keys beat 64 by 1.3-1.9x at T = 256 and 1024: fewer, larger tile products.
constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;
static_assert(kKeyBlock % kQueryBlock == 0, "backward's causal skip starts at the query block holding j0");
// Under causal with all queries in one block (L <= kQueryBlock), blocks of 16 queries: then each block's
// tiles stop at its own last query, so the products skip the keys above the diagonal in steps of 16
// (at T = 32 a quarter of the tile products' work, which a single 32 x 32 tile computes and drops).
constexpr int64_t kSmallCausalBlock = 16;
static_assert(kKeyBlock % kSmallCausalBlock == 0, "backward's causal skip starts at the query block holding j0");

// One [..., R, C] operand read row by row: a base pointer per flattened batch element (any batch
// strides, 0 for a broadcast mask), then rows `row_stride` apart with elements `col_stride` apart.
template <class T>
struct Rows {
  const T* data = nullptr;
  std::vector<int64_t> offset;
  int64_t row_stride = 0, col_stride = 1;
  const T* row(int64_t n, int64_t r) const { return data + offset[n] + r * row_stride; }
  // The same row of an output this kernel made (so never a read-only input).
  T* out_row(int64_t n, int64_t r) const { return const_cast<T*>(row(n, r)); }
};

template <class T>
Rows<T> rows_of(const Tensor& t) {
  Rows<T> r;
  if (!t.defined()) return r;
  r.data = static_cast<const T*>(t.raw_data());
  const int64_t nb = t.dim() - 2;
  Shape batch(t.shape().begin(), t.shape().begin() + nb);
  int64_t count = 1;
  for (int64_t d : batch) count *= d;
  r.offset.resize(static_cast<size_t>(count));
  // The batch coordinate stepped like an odometer, the offset kept alongside (an unravel per element
  // was about 0.4% of the small GPT step).
  Shape coord(static_cast<size_t>(nb), 0);
  int64_t off = 0;
  for (int64_t n = 0; n < count; ++n) {
    r.offset[n] = off;
    for (int64_t d = nb - 1; d >= 0; --d) {
      off += t.stride(d);
      if (++coord[d] < batch[d]) break;
      off -= coord[d] * t.stride(d);
      coord[d] = 0;
    }
  }
  r.row_stride = t.stride(-2);
  r.col_stride = t.stride(-1);
  return r;
}

template <class T, bool kFma>
[[gnu::always_inline]] inline T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>) return vmath::exp<kFma>(x);
  else return std::exp(x);
}

// c[m, n] = alpha * op(a) @ b + beta * c, row-major, b [k, n] read along its rows: 4 rows of c by one
// 64-byte vector of columns held in registers across k (a tile product's inner loop), the edges
// element by element. Inlined into each ISA's copy, so the vector is whatever that ISA has.
template <class T, bool kTransA>
[[gnu::always_inline]] inline void small_gemm(int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                                              const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  constexpr int64_t W = 64 / sizeof(T);
  auto A = [&](int64_t i, int64_t p) { return kTransA ? a[p * lda + i] : a[i * lda + p]; };
  auto put = [&](T* dst, T v) { *dst = beta == T(0) ? alpha * v : alpha * v + beta * *dst; };
  auto edge = [&](int64_t i, int64_t j) {
    T v = 0;
    for (int64_t p = 0; p < k; ++p) v += A(i, p) * b[p * ldb + j];
    put(c + i * ldc + j, v);
  };
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      T acc0[W] = {}, acc1[W] = {}, acc2[W] = {}, acc3[W] = {};
      for (int64_t p = 0; p < k; ++p) {
        const T* bp = b + p * ldb + j;
        const T a0 = A(i, p), a1 = A(i + 1, p), a2 = A(i + 2, p), a3 = A(i + 3, p);
#pragma omp simd
        for (int64_t x = 0; x < W; ++x) {
          acc0[x] += a0 * bp[x];
          acc1[x] += a1 * bp[x];
          acc2[x] += a2 * bp[x];
          acc3[x] += a3 * bp[x];
        }
      }
      for (int64_t x = 0; x < W; ++x) {
        put(c + i * ldc + j + x, acc0[x]);
        put(c + (i + 1) * ldc + j + x, acc1[x]);
        put(c + (i + 2) * ldc + j + x, acc2[x]);
        put(c + (i + 3) * ldc + j + x, acc3[x]);
      }
    }
    for (int64_t r = i; r < i + 4; ++r)
      for (int64_t jj = j; jj < n; ++jj) edge(r, jj);
  }
  for (; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) edge(i, j);
}


// c[m, n] = alpha * op(a) @ op(b) + beta * c, row-major, op = transpose where the flag says. Small
// products on small_gemm (b^T through a transposed copy in `bt`, k * n elements); float32 products
// past kSgemmWork multiply-adds on oneDNN's sgemm (inside a parallel region it runs on the calling
// thread), which costs a few microseconds per call before any arithmetic.
constexpr int64_t kSgemmWork = int64_t(1) << 16;

// kIsa: 0 baseline, 1 avx2 + fma, 2 avx512: which copy the caller is (the AVX-512 copy of float32
// takes small_gemm_512 and transpose_512).
template <class T, int kIsa>
[[gnu::always_inline]] inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                        int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, T* bt) {
  if constexpr (std::is_same_v<T, float>) {
    if (m * n * k > kSgemmWork) {
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
#ifdef WEFT_ATTN_X86
  if constexpr (std::is_same_v<T, float> && kIsa == 2) {
    gemm_f32_avx512(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bt);
    return;
  }
#endif
  if (tb) {
    // Row by row of bt: its stores are contiguous (vectorised), the loads stride through b, which
    // is a small tile already in cache. (Row by row of b stored one float at a time: about 16% of
    // attention's backward.)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) bt[p * n + j] = b[j * ldb + p];
    b = bt;
    ldb = n;
  }
  if (ta) small_gemm<T, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else small_gemm<T, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Everything one call reads, with its sizes.
template <class T>
struct Problem {
  Rows<T> q, k, v;
  Rows<bool> keep;  // a bool mask
  Rows<T> add;      // a float mask
  bool causal = false;
  T scale = 1;
  int64_t batch = 0, L = 0, S = 0, E = 0, Ev = 0;
  int64_t qb = kQueryBlock;  // queries per block, at most kQueryBlock
  T* probs = nullptr;        // kept probabilities [batch, L, S] (Note [Kept probabilities]), or none

  Problem(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& mask, bool causal_, double scale_)
      : q(rows_of<T>(q_)), k(rows_of<T>(k_)), v(rows_of<T>(v_)), causal(causal_), scale(static_cast<T>(scale_)) {
    if (mask.defined()) {
      if (mask.dtype() == kBool) keep = rows_of<bool>(mask);
      else add = rows_of<T>(mask);
    }
    batch = static_cast<int64_t>(q.offset.size());
    L = q_.size(-2), S = k_.size(-2), E = q_.size(-1), Ev = v_.size(-1);
    if (causal && L <= kQueryBlock) qb = kSmallCausalBlock;
  }

  // The keys a query block [i0, i0 + rows) may attend: all of them, or under causal those up to its
  // last query (later key blocks are skipped outright).
  int64_t key_end(int64_t i0, int64_t rows) const { return causal ? std::min(S, i0 + rows) : S; }

  // How far into a key block's `cols` keys from j0 the row loops of query i go: under causal the keys
  // up to i rounded up to a multiple of 16 (so that the vectorised loops take no scalar epilogue;
  // the keys past i within that are set to -inf, and past the bound the loops write 0, where the
  // composed form has exp(-inf) = 0), else all.
  int64_t row_cols(int64_t i, int64_t j0, int64_t cols, T* sr) const {
    if (!causal) return cols;
    const int64_t keys = std::clamp<int64_t>(i - j0 + 1, 0, cols), bound = std::min(cols, (keys + 15) / 16 * 16);
    for (int64_t c = keys; c < bound; ++c) sr[c] = -std::numeric_limits<T>::infinity();
    return bound;
  }

  // s[r, c] = scale * q[i0 + r] . k[j0 + c], then a mask's effect on those positions (causal is
  // row_cols's, not written here).
  template <int kIsa>
  [[gnu::always_inline]] void scores(int64_t n, int64_t i0, int64_t rows, int64_t j0, int64_t cols, T* s, T* bt) const {
    gemm<T, kIsa>(false, true, rows, cols, E, scale, q.row(n, i0), q.row_stride, k.row(n, j0), k.row_stride, T(0), s,
                  kKeyBlock, bt);
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    if (!keep.data && !add.data) return;
    for (int64_t r = 0; r < rows; ++r) {
      T* sr = s + r * kKeyBlock;
      if (keep.data) {
        const bool* m = keep.row(n, i0 + r) + j0 * keep.col_stride;
        for (int64_t c = 0; c < cols; ++c)
          if (!m[c * keep.col_stride]) sr[c] = kNegInf;
      } else {
        const T* m = add.row(n, i0 + r) + j0 * add.col_stride;
        for (int64_t c = 0; c < cols; ++c) sr[c] += m[c * add.col_stride];
      }
    }
  }

  // ds = 0 where the bool mask or causal dropped the score, as masked_fill's gradient is in the
  // composed form: a fully masked row (p = NaN) then gives dq = 0 and leaves dk alone, as there.
  [[gnu::always_inline]] void zero_dropped(int64_t n, int64_t i0, int64_t rows, int64_t j0, int64_t cols, T* ds) const {
    for (int64_t r = 0; r < rows; ++r) {
      T* dr = ds + r * kKeyBlock;
      if (keep.data) {
        const bool* m = keep.row(n, i0 + r) + j0 * keep.col_stride;
        for (int64_t c = 0; c < cols; ++c)
          if (!m[c * keep.col_stride]) dr[c] = T(0);
      } else {
        std::fill(dr + std::clamp<int64_t>(i0 + r - j0 + 1, 0, cols), dr + cols, T(0));
      }
    }
  }
};

// One query block of the forward: the online softmax over its key blocks, the output written to its
// rows of `out` (any layout; see output_like). Inlined into one copy per instruction set (see the
// dispatch below), as are the kernels' other elementwise loops.
template <class T, int kIsa>
[[gnu::always_inline]] inline void forward_block(const Problem<T>& p, const Rows<T>& out, int64_t n, int64_t i0, T* lse,
                                                 T* work) {
  constexpr bool kFma = kIsa > 0;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t rows = std::min(p.qb, p.L - i0), Ev = p.Ev;
  T* s = work;
  T* acc = s + kQueryBlock * kKeyBlock;
  T* m = acc + kQueryBlock * Ev;
  T* l = m + kQueryBlock;
  T* bt = l + kQueryBlock;  // k's tile transposed, E x kKeyBlock
  std::fill_n(acc, rows * Ev, T(0));
  std::fill_n(m, rows, kNegInf);
  std::fill_n(l, rows, T(0));
  const int64_t end = p.key_end(i0, rows);
  for (int64_t j0 = 0; j0 < end; j0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, end - j0);
    p.template scores<kIsa>(n, i0, rows, j0, cols, s, bt);
#ifdef WEFT_ATTN_X86
    if constexpr (std::is_same_v<T, float> && kIsa == 2) {
      forward_rows_f32_avx512(p.causal, i0, rows, j0, cols, s, kKeyBlock, m, l, acc, Ev);
      gemm<T, kIsa>(false, false, rows, Ev, cols, T(1), s, kKeyBlock, p.v.row(n, j0), p.v.row_stride, T(1), acc, Ev,
                    bt);
      continue;
    }
#endif
    for (int64_t r = 0; r < rows; ++r) {
      T* sr = s + r * kKeyBlock;
      const int64_t cr = p.row_cols(i0 + r, j0, cols, sr);
      T mx = kNegInf;
#pragma omp simd reduction(max : mx)
      for (int64_t c = 0; c < cr; ++c) mx = sr[c] > mx ? sr[c] : mx;
      const T m_new = std::max(m[r], mx);
      if (m_new == kNegInf) {  // nothing attended yet: p = 0, and exp(-inf - -inf) would be NaN
        std::fill_n(sr, cols, T(0));
        continue;
      }
      const T alpha = exp_of<T, kFma>(m[r] - m_new), shift = m_new;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < cr; ++c) {
        sr[c] = exp_of<T, kFma>(sr[c] - shift);
        sum += sr[c];
      }
      std::fill(sr + cr, sr + cols, T(0));
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
      if (alpha != T(1))
        for (int64_t e = 0; e < Ev; ++e) acc[r * Ev + e] *= alpha;
    }
    gemm<T, kIsa>(false, false, rows, Ev, cols, T(1), s, kKeyBlock, p.v.row(n, j0), p.v.row_stride, T(1), acc, Ev, bt);
  }
  for (int64_t r = 0; r < rows; ++r) {
    T* o = out.out_row(n, i0 + r);
    const T inv = T(1) / l[r];  // l = 0: 0 * inf = NaN, as softmax's 0 / 0
#pragma omp simd
    for (int64_t e = 0; e < Ev; ++e) o[e] = acc[r * Ev + e] * inv;
    lse[n * p.L + i0 + r] = m[r] + std::log(l[r]);
    if (p.probs) {  // one key block (attention_keeps_probs), so s holds the row's exp(s - m) over [0, end)
      T* pr = p.probs + (n * p.L + i0 + r) * p.S;
      const T* sr = s + r * kKeyBlock;
#pragma omp simd
      for (int64_t c = 0; c < end; ++c) pr[c] = sr[c] * inv;
      std::fill(pr + end, pr + p.S, T(0));
    }
  }
}

// The gradients of one batch element: key blocks outside, query blocks inside, so dk and dv of a
// key block are finished before the next and dq accumulates across key blocks (one thread owns n).
// dq, dk, dv are written to their rows in any layout (output_like).
template <class T, int kIsa>
[[gnu::always_inline]] inline void backward_one(const Problem<T>& p, const Rows<T>& dout, const Rows<T>& out,
                                                const T* lse, int64_t n, const Rows<T>& dq, const Rows<T>& dk,
                                                const Rows<T>& dv, T* work) {
  constexpr bool kFma = kIsa > 0;
  const int64_t L = p.L, S = p.S, E = p.E, Ev = p.Ev;
  T* s = work;
  T* ds = s + kQueryBlock * kKeyBlock;
  T* D = ds + kQueryBlock * kKeyBlock;
  T* bt = D + L;  // k's or v's tile transposed, max(E, Ev) x kKeyBlock
  // Rows of one batch element are a fixed stride apart in every layout output_like makes.
  T* dqn = dq.out_row(n, 0);
  T* dkn = dk.out_row(n, 0);
  T* dvn = dv.out_row(n, 0);
  const int64_t ldq = dq.row_stride, ldk = dk.row_stride, ldv = dv.row_stride;
  bool vectorised = false;  // the AVX-512 copy's row loops (Note [Attention's softmax rows on intrinsics])
#ifdef WEFT_ATTN_X86
  if constexpr (std::is_same_v<T, float> && kIsa == 2) {
    rows_dot_f32_avx512(L, Ev, dout.row(n, 0), dout.row_stride, out.row(n, 0), out.row_stride, D);
    zero_rows_f32_avx512(L, E, dqn, ldq);
    zero_rows_f32_avx512(S, E, dkn, ldk);
    zero_rows_f32_avx512(S, Ev, dvn, ldv);
    vectorised = true;
  }
#endif
  if (!vectorised) {
    for (int64_t i = 0; i < L; ++i) {
      const T* g = dout.row(n, i);
      const T* o = out.row(n, i);
      T d = 0;
#pragma omp simd reduction(+ : d)
      for (int64_t e = 0; e < Ev; ++e) d += g[e] * o[e];
      D[i] = d;
    }
    for (int64_t i = 0; i < L; ++i) std::fill_n(dqn + i * ldq, E, T(0));
    for (int64_t j = 0; j < S; ++j) std::fill_n(dkn + j * ldk, E, T(0));
    for (int64_t j = 0; j < S; ++j) std::fill_n(dvn + j * ldv, Ev, T(0));
  }
  const T* lsen = lse + n * L;
  for (int64_t j0 = 0; j0 < S; j0 += kKeyBlock) {
    const int64_t key_cols = std::min(kKeyBlock, S - j0);
    // Under causal, queries before j0 attend none of these keys.
    for (int64_t i0 = p.causal ? j0 / p.qb * p.qb : 0; i0 < L; i0 += p.qb) {
      const int64_t rows = std::min(p.qb, L - i0);
      // Under causal, keys after this block's last query are dropped for all of its rows.
      const int64_t cols = p.causal ? std::min(key_cols, i0 + rows - j0) : key_cols;
      // The tile's probabilities: kept by the forward (Note [Kept probabilities]; S is one key block
      // there), or recomputed into s.
      const bool kept = p.probs != nullptr;
      const T* ps = kept ? p.probs + (n * L + i0) * S + j0 : s;
      const int64_t ldp = kept ? S : kKeyBlock;
      if (!kept) p.template scores<kIsa>(n, i0, rows, j0, cols, s, bt);
#ifdef WEFT_ATTN_X86
      if constexpr (std::is_same_v<T, float> && kIsa == 2)
        if (!kept) backward_probs_f32_avx512(p.causal, i0, rows, j0, cols, s, kKeyBlock, lsen);
#endif
      for (int64_t r = 0; r < rows && !vectorised && !kept; ++r) {
        T* sr = s + r * kKeyBlock;
        const int64_t cr = p.row_cols(i0 + r, j0, cols, sr);
        const T shift = lsen[i0 + r];
#pragma omp simd
        for (int64_t c = 0; c < cr; ++c) sr[c] = exp_of<T, kFma>(sr[c] - shift);
        std::fill(sr + cr, sr + cols, T(0));
      }
      // dv += p^T dout; dp = dout v^T; ds = p (dp - D); dq += scale ds k; dk += scale ds^T q.
      gemm<T, kIsa>(true, false, cols, Ev, rows, T(1), ps, ldp, dout.row(n, i0), dout.row_stride, T(1),
                    dvn + j0 * ldv, ldv, bt);
      gemm<T, kIsa>(false, true, rows, cols, Ev, T(1), dout.row(n, i0), dout.row_stride, p.v.row(n, j0),
                    p.v.row_stride, T(0), ds, kKeyBlock, bt);
#ifdef WEFT_ATTN_X86
      if constexpr (std::is_same_v<T, float> && kIsa == 2) {
        backward_ds_f32_avx512(p.causal, i0, rows, j0, cols, ps, ldp, ds, kKeyBlock, D + i0);
        if (p.keep.data) p.zero_dropped(n, i0, rows, j0, cols, ds);
      }
#endif
      for (int64_t r = 0; r < rows && !vectorised; ++r) {
        T* dr = ds + r * kKeyBlock;
        const T* pr = ps + r * ldp;
        const T Dr = D[i0 + r];
#pragma omp simd
        for (int64_t c = 0; c < cols; ++c) dr[c] = pr[c] * (dr[c] - Dr);
      }
      if (!vectorised && (p.keep.data || p.causal)) p.zero_dropped(n, i0, rows, j0, cols, ds);
      gemm<T, kIsa>(false, false, rows, E, cols, p.scale, ds, kKeyBlock, p.k.row(n, j0), p.k.row_stride, T(1),
                    dqn + i0 * ldq, ldq, bt);
      gemm<T, kIsa>(true, false, cols, E, rows, p.scale, ds, kKeyBlock, p.q.row(n, i0), p.q.row_stride, T(1),
                    dkn + j0 * ldk, ldk, bt);
    }
  }
}

// The float32 block functions compiled for baseline x86-64, avx2+fma and avx512 and picked at run
// time (as kernels/cross_entropy_rows.cpp): the exp and the row loops are most of the time outside
// the tile products, and the AVX-512 copy runs its tile products on intrinsics (small_gemm_512).
// float64 (tests, gradcheck) runs the baseline copy.
template <class T>
using ForwardFn = void (*)(const Problem<T>&, const Rows<T>&, int64_t, int64_t, T*, T*);
template <class T>
using BackwardFn = void (*)(const Problem<T>&, const Rows<T>&, const Rows<T>&, const T*, int64_t, const Rows<T>&,
                            const Rows<T>&, const Rows<T>&, T*);

#define WEFT_ATTN_COPIES(T, suffix, attr, isa)                                                                      \
  attr void forward_##suffix(const Problem<T>& p, const Rows<T>& o, int64_t n, int64_t i0, T* l, T* w) { \
    forward_block<T, isa>(p, o, n, i0, l, w);                                                                       \
  }                                                                                                                 \
  attr void backward_##suffix(const Problem<T>& p, const Rows<T>& g, const Rows<T>& o, const T* lse, int64_t n,      \
                              const Rows<T>& dq, const Rows<T>& dk, const Rows<T>& dv, T* w) {         \
    backward_one<T, isa>(p, g, o, lse, n, dq, dk, dv, w);                                                           \
  }
WEFT_ATTN_COPIES(float, f32_base, , 0)
WEFT_ATTN_COPIES(float, f32_avx2, [[WEFT_AVX2]], 1)
WEFT_ATTN_COPIES(float, f32_avx512, [[WEFT_AVX512]], 2)
WEFT_ATTN_COPIES(double, f64, , 0)
#undef WEFT_ATTN_COPIES

template <class T>
ForwardFn<T> forward_fn() {
  if constexpr (std::is_same_v<T, double>) return forward_f64;
  else return widest<ForwardFn<T>>(forward_f32_base, forward_f32_avx2, forward_f32_avx512);
}
template <class T>
BackwardFn<T> backward_fn() {
  if constexpr (std::is_same_v<T, double>) return backward_f64;
  else return widest<BackwardFn<T>>(backward_f32_base, backward_f32_avx2, backward_f32_avx512);
}

// A new tensor of `shape` (like's shape with the last dim `last`) whose dims before the last are laid
// out in the order of like's strides, outermost first: for heads split from a [B, T, H, D] view
// (strides making it [B, H, T, D]) the result is a [B, H, T, last] view of a contiguous
// [B, T, H, last] buffer, so merging the heads back (transpose, reshape) is a view, not a copy.
Tensor output_like(const Tensor& like, int64_t last) {
  const int64_t nd = like.dim();
  std::vector<int64_t> order(static_cast<size_t>(nd - 1));
  for (int64_t d = 0; d < nd - 1; ++d) order[d] = d;
  // Outermost (largest stride) first; size-1 dims and ties keep their logical order.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const int64_t sa = like.size(a) == 1 ? 0 : like.stride(a), sb = like.size(b) == 1 ? 0 : like.stride(b);
    return sa > sb;
  });
  Shape shape = like.shape();
  shape.back() = last;
  Shape physical;
  for (int64_t d : order) physical.push_back(shape[d]);
  physical.push_back(last);
  Tensor buffer = make_empty(physical, like.dtype());
  Shape strides(shape.size(), 0);
  int64_t stride = last;
  strides.back() = 1;
  for (int64_t x = nd - 2; x >= 0; --x) {
    strides[order[x]] = stride;
    stride *= shape[order[x]];
  }
  return make_alias(buffer, shape, strides, 0, "scaled_dot_product_attention");
}

// body(t, work) for t in [0, tasks) on the thread setting (kernels/threads.h), or fewer threads when
// there are fewer tasks, each thread with its own work buffer of `size` elements (zeroed: the blocks
// write what they read, but dnnl_sgemm's beta = 0 is not promised not to read). At one thread no
// OpenMP region is entered: at train_gpt's T = 32 a call is about 0.1 ms.
template <class T, class F>
void for_tasks(int64_t tasks, size_t size, const F& body) {
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), tasks));
  if (threads <= 1) {
    const std::unique_ptr<T[]> work(new T[size]());
    for (int64_t t = 0; t < tasks; ++t) body(t, work.get());
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const std::unique_ptr<T[]> work(new T[size]());
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) body(t, work.get());
  }
}

template <class T>
AttentionForward forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
                              double scale, bool keep_probs) {
  Problem<T> p(q, k, v, mask, causal, scale);
  Shape lse_shape(q.shape().begin(), q.shape().end() - 1);
  AttentionForward r{output_like(q, p.Ev), make_empty(lse_shape, q.dtype()), Tensor()};
  if (keep_probs && attention_keeps_probs(p.S)) {
    Shape probs_shape = lse_shape;
    probs_shape.push_back(p.S);
    r.probs = make_empty(probs_shape, q.dtype());
    p.probs = static_cast<T*>(r.probs.raw_data());
  }
  const Rows<T> out = rows_of<T>(r.out);
  T* lse = static_cast<T*>(r.logsumexp.raw_data());
  const int64_t blocks = (p.L + p.qb - 1) / p.qb, tasks = p.batch * blocks;
  const ForwardFn<T> block = forward_fn<T>();
  const size_t work = kQueryBlock * kKeyBlock + kQueryBlock * p.Ev + 2 * kQueryBlock + p.E * kKeyBlock;
  for_tasks<T>(tasks, work, [&](int64_t t, T* w) { block(p, out, t / blocks, (t % blocks) * p.qb, lse, w); });
  return r;
}

template <class T>
AttentionGrads backward_impl(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                             const Tensor& logsumexp, const Tensor& mask, bool causal, double scale,
                             const Tensor& probs) {
  Problem<T> p(q, k, v, mask, causal, scale);
  if (probs.defined()) {
    WEFT_INTERNAL_ASSERT(attention_keeps_probs(p.S) && probs.is_contiguous() && probs.numel() == p.batch * p.L * p.S,
                         "attention_backward: kept probabilities of the wrong shape ", probs.shape());
    p.probs = const_cast<T*>(static_cast<const T*>(probs.raw_data()));  // read only
  }
  const Rows<T> g = rows_of<T>(dout), o = rows_of<T>(out);
  AttentionGrads r{output_like(q, p.E), output_like(k, p.E), output_like(v, p.Ev)};
  const Rows<T> dq = rows_of<T>(r.dq), dk = rows_of<T>(r.dk), dv = rows_of<T>(r.dv);
  const T* lse = static_cast<const T*>(logsumexp.raw_data());
  const BackwardFn<T> one = backward_fn<T>();
  const size_t work = 2 * kQueryBlock * kKeyBlock + p.L + std::max(p.E, p.Ev) * kKeyBlock;
  for_tasks<T>(p.batch, work, [&](int64_t n, T* w) { one(p, g, o, lse, n, dq, dk, dv, w); });
  return r;
}

}  // namespace

bool attention_keeps_probs(int64_t S) { return S <= 64; }

AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
                                   double scale, bool keep_probs) {
  if (q.dtype() == kFloat32) return forward_impl<float>(q, k, v, mask, causal, scale, keep_probs);
  WEFT_INTERNAL_ASSERT(q.dtype() == kFloat64, "attention_forward: float32 or float64, got ", q.dtype());
  return forward_impl<double>(q, k, v, mask, causal, scale, keep_probs);
}

AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& logsumexp, const Tensor& mask, bool causal,
                                  double scale, const Tensor& probs) {
  if (q.dtype() == kFloat32) return backward_impl<float>(dout, q, k, v, out, logsumexp, mask, causal, scale, probs);
  WEFT_INTERNAL_ASSERT(q.dtype() == kFloat64, "attention_backward: float32 or float64, got ", q.dtype());
  return backward_impl<double>(dout, q, k, v, out, logsumexp, mask, causal, scale, probs);
}

}  // namespace weft::kernels
