// attention_kernels_avx512.h: the AVX-512 tile products and transposes of the float32 attention
// kernels (attention_kernels.cpp's AVX-512 copy calls gemm_f32_avx512). Included by that file only.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cpu_isa.h"
#include "kernels/vector_math.h"
// GCC 12 reports the undefined pass-through operand inside avx512fintrin.h's unmasked intrinsics as
// maybe-uninitialized once they are inlined (as fast_spans.cpp notes); it is not.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/vector_math_avx512.h"

#define WEFT_ATTN_X86 1

namespace weft::kernels {
namespace {

#define WEFT_ATTN_AVX512_INLINE gnu::always_inline, gnu::target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")

// Lanes [0, count) of a 16-float vector, count clamped to [0, 16].
[[WEFT_ATTN_AVX512_INLINE]] inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// small_gemm's AVX-512 form for float32: R (up to 8) rows of c by V (1 or 2) vectors of 16 columns in registers
// across k, the last vector masked, so a tile of any width takes no element-by-element edge (the
// generic form kept its accumulators in arrays that GCC spilled, and ran T = 32 tiles' edges
// scalar). Masked loads do not touch the lanes they leave out.
template <int R, int V, bool kTransA>
[[WEFT_ATTN_AVX512_INLINE]] inline void tile_512(int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                                                 int64_t ldb, float beta, float* c, int64_t ldc, __mmask16 m0,
                                                 __mmask16 m1) {
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    __m512 bv[V];
    bv[0] = _mm512_maskz_loadu_ps(m0, bp);
    if constexpr (V == 2) bv[1] = _mm512_maskz_loadu_ps(m1, bp + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(kTransA ? a[p * lda + r] : a[r * lda + p]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      float* cr = c + r * ldc + 16 * v;
      const __mmask16 m = v == 0 ? m0 : m1;
      __m512 out = _mm512_mul_ps(va, acc[r][v]);
      if (beta != 0.0f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, cr), out);
      _mm512_mask_storeu_ps(cr, m, out);
    }
}

template <int R, bool kTransA>
[[WEFT_ATTN_AVX512_INLINE]] inline void row_block_512(int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                                                      const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t j = 0; j < n; j += 32) {
    const __mmask16 m0 = first_lanes(n - j), m1 = first_lanes(n - j - 16);
    if (n - j > 16) tile_512<R, 2, kTransA>(k, alpha, a, lda, b + j, ldb, beta, c + j, ldc, m0, m1);
    else tile_512<R, 1, kTransA>(k, alpha, a, lda, b + j, ldb, beta, c + j, ldc, m0, m1);
  }
}

// c[m, n] = alpha * op(a) @ b + beta * c (b read along its rows), as small_gemm.
template <bool kTransA>
[[WEFT_ATTN_AVX512_INLINE]] inline void small_gemm_512(int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                                       int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                                                       int64_t ldc) {
  // Row i of op(a) starts at a + i (transposed: a column) or a + i * lda. Blocks of 8 rows: with 16
  // columns (a T x D product at D = 16) 4 rows were 4 accumulator chains, half of what two FMA ports
  // with a 4-cycle latency need; 8 rows by 32 columns are 16 accumulators of the 32 registers.
  const int64_t step = kTransA ? 1 : lda;
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) row_block_512<8, kTransA>(n, k, alpha, a + i * step, lda, b, ldb, beta, c + i * ldc, ldc);
  const float* ai = a + i * step;
  float* ci = c + i * ldc;
  switch (m - i) {
    case 7: row_block_512<7, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    case 6: row_block_512<6, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    case 5: row_block_512<5, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    case 4: row_block_512<4, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    case 3: row_block_512<3, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    case 2: row_block_512<2, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    case 1: row_block_512<1, kTransA>(n, k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
    default: break;
  }
}

// 64-bit halves interleaved, low or high pairs.
[[WEFT_ATTN_AVX512_INLINE]] inline __m512 lo(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
[[WEFT_ATTN_AVX512_INLINE]] inline __m512 hi(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

// r[c] = column c of the 16 x 16 block whose rows are r[0..15], in registers: pairs of rows
// interleaved (unpack ps, then pd), then 128-bit lanes gathered (two rounds of shuffle_f32x4).
[[WEFT_ATTN_AVX512_INLINE]] inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Now r[4 i + c], in 128-bit lane L, holds rows 4i..4i+3 of column 4 L + c.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = lo(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = hi(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = lo(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = hi(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xDD);
  }
}

// bt [k, n] = b^T for b [n, k] with rows ldb apart, 16 x 16 blocks at a time through registers (the
// element-by-element copy was about a fifth of the T = 32 kernels' instructions; gathers are slow
// on CPUs with the Gather Data Sampling mitigation). Edge blocks are read and written masked.
[[WEFT_ATTN_AVX512_INLINE]] inline void transpose_512(int64_t n, int64_t k, const float* b, int64_t ldb, float* bt) {
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t nj = std::min<int64_t>(16, n - j);
    const __mmask16 mj = first_lanes(nj);
    for (int64_t p = 0; p < k; p += 16) {
      const int64_t kp = std::min<int64_t>(16, k - p);
      const __mmask16 mp = first_lanes(kp);
      __m512 r[16];
      for (int x = 0; x < 16; ++x)
        r[x] = x < nj ? _mm512_maskz_loadu_ps(mp, b + (j + x) * ldb + p) : _mm512_setzero_ps();
      transpose16(r);
      for (int x = 0; x < kp; ++x) _mm512_mask_storeu_ps(bt + (p + x) * n + j, mj, r[x]);
    }
  }
}
#undef WEFT_ATTN_AVX512_INLINE

// gemm's float32 form in the AVX-512 copy, out of line: an always_inline function cannot take another
// target's intrinsics, and a tile product is long enough that the call costs nothing.
[[WEFT_AVX512]] void gemm_f32_avx512(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                                     float* bt) {
  if (tb) {
    transpose_512(n, k, b, ldb, bt);
    b = bt;
    ldb = n;
  }
  if (ta) small_gemm_512<true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else small_gemm_512<false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Note [Attention's softmax rows on intrinsics]
// At train_gpt's T = 32 a tile is 32 x 32 scores, and the row loops around the tile products were as
// long as the products: GCC's vectorisation of the generic loops kept their max and sum reductions in
// memory, ran the 16-key remainder and each row's rescale factor on the scalar exp formula, and
// needed the keys past a row's causal reach set to -inf first. These are the same loops with the
// reductions in registers, exp on vmath512's vscalefps form, and the keys past a row's reach left
// out under a lane mask (their probabilities written as 0, which exp(-inf) gives the generic loops).

// The keys of a key block (from j0, `cols` of them) that query i attends: under causal those up to i.
[[gnu::always_inline]] inline int64_t attended(bool causal, int64_t i, int64_t j0, int64_t cols) {
  return causal ? std::clamp<int64_t>(i - j0 + 1, 0, cols) : cols;
}

// Forward: fold a key block's scores s [rows, cols] (rows lds apart) of queries i0... into each row's
// running max m, sum l and output accumulator acc [rows, Ev] (the online softmax), leaving s holding
// the block's exp(s - m). As forward_block's generic row loop.
[[WEFT_AVX512]] void forward_rows_f32_avx512(bool causal, int64_t i0, int64_t rows, int64_t j0, int64_t cols, float* s,
                                             int64_t lds, float* m, float* l, float* acc, int64_t Ev) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    const int64_t cr = attended(causal, i0 + r, j0, cols);
    __m512 vmax = _mm512_set1_ps(kNegInf);
    // max returns its second operand when either is NaN: NaN scores are skipped, as the generic loop's.
    for (int64_t c = 0; c < cr; c += 16)
      vmax = _mm512_max_ps(_mm512_mask_loadu_ps(vmax, first_lanes(cr - c), sr + c), vmax);
    const float m_new = std::max(m[r], _mm512_reduce_max_ps(vmax));
    if (m_new == kNegInf) {  // nothing attended yet: p = 0, and exp(-inf - -inf) would be NaN
      std::fill_n(sr, cols, 0.0f);
      continue;
    }
    // The rescale factor of what the row has so far: none before its first attended key (l and acc
    // are 0, and the generic loop's alpha = exp(-inf) = 0 leaves them so), which at T <= 256 (one key
    // block) is every row, so the scalar exp is skipped there.
    const float alpha = m[r] == kNegInf ? 0.0f : vmath::exp<true>(m[r] - m_new);
    const __m512 shift = _mm512_set1_ps(m_new);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 in = first_lanes(cr - c);
      const __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(in, sr + c), shift);
      const __m512 e = _mm512_maskz_mov_ps(in, vmath512::exp_nonpositive(x));
      sum = _mm512_add_ps(sum, e);
      _mm512_mask_storeu_ps(sr + c, first_lanes(cols - c), e);
    }
    l[r] = l[r] * alpha + _mm512_reduce_add_ps(sum);
    const bool first = m[r] == kNegInf;
    m[r] = m_new;
    if (!first && alpha != 1.0f) {
      const __m512 va = _mm512_set1_ps(alpha);
      float* ar = acc + r * Ev;
      for (int64_t e = 0; e < Ev; e += 16) {
        const __mmask16 in = first_lanes(Ev - e);
        _mm512_mask_storeu_ps(ar + e, in, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(in, ar + e)));
      }
    }
  }
}

// Backward: a key block's scores s [rows, cols] of queries i0... turned into their probabilities
// exp(s - logsumexp), 0 past each row's reach. As backward_one's generic row loop.
[[WEFT_AVX512]] void backward_probs_f32_avx512(bool causal, int64_t i0, int64_t rows, int64_t j0, int64_t cols,
                                               float* s, int64_t lds, const float* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    const int64_t cr = attended(causal, i0 + r, j0, cols);
    const __m512 shift = _mm512_set1_ps(lse[i0 + r]);
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 in = first_lanes(cr - c);
      const __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(in, sr + c), shift);
      _mm512_mask_storeu_ps(sr + c, first_lanes(cols - c), _mm512_maskz_mov_ps(in, vmath512::exp_nonpositive(x)));
    }
  }
}

// Backward: ds = p (dp - D) for a key block's rows, ds [rows, cols] (rows lds apart) holding dp on entry,
// p [rows, cols] (rows ldp apart), D the rows' rowsum(dout * out); 0 past each row's causal reach, as
// zero_dropped writes there. As backward_one's generic loops.
[[WEFT_AVX512]] void backward_ds_f32_avx512(bool causal, int64_t i0, int64_t rows, int64_t j0, int64_t cols,
                                            const float* p, int64_t ldp, float* ds, int64_t lds, const float* D) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * ldp;
    float* dr = ds + r * lds;
    const int64_t cr = attended(causal, i0 + r, j0, cols);
    const __m512 d = _mm512_set1_ps(D[r]);
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 in = first_lanes(cr - c);
      const __m512 dp = _mm512_sub_ps(_mm512_maskz_loadu_ps(in, dr + c), d);
      const __m512 ds_c = _mm512_maskz_mul_ps(in, _mm512_maskz_loadu_ps(in, pr + c), dp);
      _mm512_mask_storeu_ps(dr + c, first_lanes(cols - c), ds_c);
    }
  }
}

// D[i] = a_i . b_i over `rows` rows of `width` floats (rows lda and ldb apart): backward's rowsum(dout * out).
[[WEFT_AVX512]] void rows_dot_f32_avx512(int64_t rows, int64_t width, const float* a, int64_t lda, const float* b,
                                         int64_t ldb, float* D) {
  for (int64_t i = 0; i < rows; ++i) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t e = 0; e < width; e += 16) {
      const __mmask16 in = first_lanes(width - e);
      const __m512 ae = _mm512_maskz_loadu_ps(in, a + i * lda + e), be = _mm512_maskz_loadu_ps(in, b + i * ldb + e);
      acc = _mm512_fmadd_ps(ae, be, acc);
    }
    D[i] = _mm512_reduce_add_ps(acc);
  }
}

// `rows` rows of `width` floats, ld apart, set to 0 (a memset call per 16-float row was about a tenth of
// backward's own time at T = 32).
[[WEFT_AVX512]] void zero_rows_f32_avx512(int64_t rows, int64_t width, float* c, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t e = 0; e < width; e += 16)
      _mm512_mask_storeu_ps(c + i * ld + e, first_lanes(width - e), _mm512_setzero_ps());
}

}  // namespace
}  // namespace weft::kernels
#endif
