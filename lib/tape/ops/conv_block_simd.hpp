#pragma once
// Internal (not installed): AVX-512 helpers shared by the fused conv block's
// direct f32 kernels (conv_block_direct.cpp) and its AMX bf16 kernels
// (conv_block_amx.cpp): lane masks, the 16 × 16 register transpose, nChw16c →
// planar rows, and the col2im gather of backward-data.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tape/ops/conv_block_direct.hpp"

// GCC 12 warns inside its own avx512fintrin.h (the _mm512_undefined_* operands of
// masked intrinsics, `__m512 __Y = __Y;`); nothing of ours is uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Every function that uses AVX-512 carries the attribute (rather than building the
// files with -mavx512f, which would let the compiler use AVX-512 in the shared
// inline code too); they are called only when the CPU has it.
#define TAPE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

namespace tape::detail::block_simd {

using direct_block::Geometry;

inline int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

/// The mask of the first n of 16 lanes.
inline __mmask16 first(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

/// True when x[0, n) is finite (v·0 is 0 for finite v, NaN otherwise).
TAPE_AVX512 inline bool finite(const float* x, int64_t n) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 s = zero;
  for (int64_t i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_maskz_loadu_ps(first(n - i), x + i), zero));
  return _mm512_reduce_add_ps(s) == 0.f;
}

TAPE_AVX512 inline __m512 unpacklo_64(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
TAPE_AVX512 inline __m512 unpackhi_64(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

/// r (16 rows of 16) transposed in place: pairs of floats, of 64-bit pairs, then
/// of 128-bit quarters (twice) change places.
TAPE_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = unpacklo_64(t[i], t[i + 2]);
    r[i + 1] = unpackhi_64(t[i], t[i + 2]);
    r[i + 2] = unpacklo_64(t[i + 1], t[i + 3]);
    r[i + 3] = unpackhi_64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

/// to[o][p] (rows of `stride` floats) = one image's block of 16 channels
/// from[p][16] (os of them real) for p < npos, 16 positions at a time (the rest
/// of each row is not written); positive (may be null, rows like to) receives a
/// byte to > 0 per element.
TAPE_AVX512 inline void transpose_block(const float* from, int64_t npos, int64_t os, int64_t stride, float* to,
                                 uint8_t* positive = nullptr) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 r[16];
  for (int64_t p0 = 0; p0 < npos; p0 += 16) {
    const int64_t ps = std::min<int64_t>(16, npos - p0);
    for (int64_t k = 0; k < 16; ++k) r[k] = k < ps ? _mm512_loadu_ps(from + (p0 + k) * 16) : zero;
    transpose16(r);
    for (int64_t o = 0; o < os; ++o) {
      _mm512_mask_storeu_ps(to + o * stride + p0, first(ps), r[o]);
      if (positive)
        _mm_mask_storeu_epi8(positive + o * stride + p0, first(ps),
                             _mm_maskz_set1_epi8(_mm512_cmp_ps_mask(r[o], zero, _CMP_GT_OQ), 1));
    }
  }
}

/// One input channel's dx plane (h × w) gathered from col, its taps' rows:
/// masks[k·kw + kx] are the lanes of piece k that tap kx reaches. KW is the
/// kernel width when known at compile time (its masks are then held in mask
/// registers across the rows: reloading one per load cost a third of the pass),
/// 0 for any width.
template <int KW>
TAPE_AVX512 void col2im(const Geometry& g, int64_t np, const float* col, const __mmask16* masks, float* dxc) {
  const int64_t kw = KW > 0 ? KW : g.kw, oh = g.oh(), ow = g.ow(), pieces = (g.w + 15) / 16;
  for (int64_t k = 0; k < pieces; ++k) {
    __mmask16 held[KW > 0 ? KW : 1];
    const __mmask16* m = masks + k * kw;
    if constexpr (KW > 0) {
      for (int kx = 0; kx < KW; ++kx) held[kx] = m[kx];
      m = held;
    }
    const __mmask16 store = first(g.w - k * 16);
    for (int64_t iy = 0; iy < g.h; ++iy) {
      const int64_t ky0 = std::max<int64_t>(0, iy - oh + 1), ky1 = std::min(g.kh, iy + 1);  // 0 <= iy − ky < oh
      // four partial sums: one chain of dependent adds would wait on the add
      // latency at every tap
      __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int64_t ky = ky0; ky < ky1; ++ky) {
        // lane l of tap kx reads col[ky, kx][(iy − ky)·ow + ix0 + l − kx]
        const float* row = col + ky * kw * np + (iy - ky) * ow + k * 16;
#pragma GCC unroll 8
        for (int64_t kx = 0; kx < kw; ++kx)
          a[kx % 4] = _mm512_add_ps(a[kx % 4], _mm512_maskz_loadu_ps(m[kx], row + kx * np - kx));
      }
      _mm512_mask_storeu_ps(dxc + iy * g.w + k * 16, store, _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
    }
  }
}

/// The gather's masks for g, per 16-wide piece k of a dx row and tap column kx
/// (index k·kw + kx): the lanes l with 0 <= 16·k + l − kx < ow and 16·k + l < w.
inline std::vector<__mmask16> col2im_masks(const Geometry& g) {
  const int64_t pieces = (g.w + 15) / 16, ow = g.ow();
  std::vector<__mmask16> masks(size_t(pieces * g.kw));
  for (int64_t k = 0; k < pieces; ++k)
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t ix0 = k * 16, lo = std::max<int64_t>(0, kx - ix0);
      const int64_t hi = std::max(lo, std::min({int64_t(16), kx + ow - ix0, g.w - ix0}));
      masks[size_t(k * g.kw + kx)] = __mmask16(first(hi) & ~first(lo));
    }
  return masks;
}

/// col2im for one input channel, with the kernel width a constant when it is 3 or 5.
TAPE_AVX512 inline void gather_channel(const Geometry& g, int64_t np, const float* col, const __mmask16* masks,
                                       float* dxc) {
  switch (g.kw) {  // the masks stay in mask registers when the width is a constant
    case 3: col2im<3>(g, np, col, masks, dxc); break;
    case 5: col2im<5>(g, np, col, masks, dxc); break;
    default: col2im<0>(g, np, col, masks, dxc); break;
  }
}

}  // namespace tape::detail::block_simd
