// Direct AVX-512 kernels for the fused conv block's passes that oneDNN 2.6 runs
// far from the machine's GEMM rate: the whole conv2d → ReLU → 2×2 max pool
// block on inputs with few channels (LeNet's conv1: 1 → 6 channels, 5×5,
// 28×28 → 24×24 → 12×12), and backward-data from the blocked output gradient
// (LeNet's conv2: 16 → 6 channels; its note is further down).
//
//   Forward:  y = maxpool2x2(relu(conv(x, w) + b)),  code = where each max was
//   Backward: dconv = g routed to the codes' positions (0 where y = 0);
//             dw = Σ dconv ⋆ x,  db = Σ dconv,  dx = conv backward-data(dconv, w)
//
// Note: why our own kernels here. oneDNN 2.6 vectorises its convolutions along
// channels, 16 at a time: with 6 filters every blocked layout pads them to 16,
// and with 1 input channel its kernels run at ~100 GFLOP/s where the machine's
// GEMM reaches ~330 (docs/performance.md has the profile). These kernels
// vectorise along the image instead, so the channel counts do not matter:
//
// The "wide" layout. The input image is copied zero-padded into a plane of
// wp = w + 2·pw columns. Output position (oy, ox) is computed at index
// p = oy·wp + ox for every ox < wp, not only ox < ow; then tap (ky, kx) of every
// position is the plane at p + ky·wp + kx — one unaligned load for 16 positions,
// whatever the row boundaries. The columns ox ≥ ow are garbage and are never
// read (pooling) or are zero (the gradient). At 28 → 24 columns 86 % of the work
// is useful.
//
// Forward per image: tiles of 6 filters × 64 positions (24 accumulators) sweep
// the taps, each an FMA of a 16-position load with a broadcast weight; then
// bias, 2×2 pooling (even/odd lanes split with one permute per row pair), ReLU,
// and a code byte per pooled value: where its window's maximum was, or 4 when the
// value is ≤ 0 and no gradient flows. Backward per image: the pooled gradient is
// routed back to the wide layout by the codes (the reverse permutes), then
// dw[o][c][tap] += Σ_p dconv[o][p] · plane[c][p + off(tap)] in tiles of 6 filters
// × 4 taps, reducing over the image in registers. Each thread takes a contiguous
// range of images with its own scratch (a few tens of KB, in L1/L2) and its own
// partial sums, added up at the end.
#include "tape/ops/conv_block_direct.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tape/backend/parallel.hpp"
#include "tape/ops/conv_block_simd.hpp"


namespace tape::detail::direct_block {
namespace {

using namespace block_simd;

std::atomic<int64_t> g_calls{0}, g_data_calls{0}, g_pool_calls{0};

/// The wide layout's sizes for one geometry.
struct Plan {
  int64_t wp = 0, oh = 0, ow = 0, ph2 = 0, pw2 = 0, taps = 0;
  int64_t nv = 0;  ///< 16-float vectors covering the wide output (oh rows of wp)
  int64_t xs = 0;  ///< floats per input channel of the padded copy (with the last vector's tap reach)
  int64_t cs = 0;  ///< floats per filter of the wide conv output / its gradient (with pooling's reach)
  std::vector<int32_t> off;  ///< per tap (ky, kx): ky·wp + kx
};

Plan plan_of(const Geometry& g) {
  Plan p;
  p.wp = g.w + 2 * g.pw;
  p.oh = g.oh();
  p.ow = g.ow();
  p.ph2 = g.pooled_h();
  p.pw2 = g.pooled_w();
  p.taps = g.kh * g.kw;
  p.nv = (p.oh * p.wp + 15) / 16;
  p.xs = round16(p.nv * 16 + (g.kh - 1) * p.wp + g.kw);
  p.cs = round16(p.nv * 16 + 32);
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) p.off.push_back(int32_t(ky * p.wp + kx));
  return p;
}

// --- per image -------------------------------------------------------------------

/// The image x into the interior of xs's c planes of p.xs floats. Their padding and
/// tails are never written: they stay zero from the scratch's allocation.
TAPE_AVX512 void load_image(const Geometry& g, const Plan& p, const float* x, float* xs) {
  for (int64_t c = 0; c < g.c; ++c) {
    float* plane = xs + c * p.xs + g.ph * p.wp + g.pw;
    const float* src = x + c * g.h * g.w;
    if (g.pw == 0) {  // the rows are contiguous in both
      std::memcpy(plane, src, sizeof(float) * size_t(g.h * g.w));
      continue;
    }
    for (int64_t iy = 0; iy < g.h; ++iy) std::memcpy(plane + iy * p.wp, src + iy * g.w, sizeof(float) * size_t(g.w));
  }
}

/// out[o0 + o][16·(v0 + q) …] = b + Σ_c,tap w · plane, for OT filters × PT vectors.
template <int OT, int PT>
TAPE_AVX512 void conv_tile(const Geometry& g, const Plan& p, const float* xs, const float* w, const float* b,
                           int64_t o0, int64_t v0, float* out) {
  __m512 acc[OT][PT];
#pragma GCC unroll 8
  for (int o = 0; o < OT; ++o) {
    const __m512 init = b ? _mm512_set1_ps(b[o0 + o]) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int q = 0; q < PT; ++q) acc[o][q] = init;
  }
  const int64_t per_filter = g.c * p.taps;
  const int32_t* off = p.off.data();
  for (int64_t c = 0; c < g.c; ++c) {
    const float* xc = xs + c * p.xs + v0 * 16;
    const float* wc = w + o0 * per_filter + c * p.taps;
    for (int64_t t = 0; t < p.taps; ++t) {
      __m512 xv[PT];
#pragma GCC unroll 8
      for (int q = 0; q < PT; ++q) xv[q] = _mm512_loadu_ps(xc + off[t] + 16 * q);
#pragma GCC unroll 8
      for (int o = 0; o < OT; ++o) {
        const __m512 wv = _mm512_set1_ps(wc[o * per_filter + t]);
#pragma GCC unroll 8
        for (int q = 0; q < PT; ++q) acc[o][q] = _mm512_fmadd_ps(wv, xv[q], acc[o][q]);
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OT; ++o)
#pragma GCC unroll 8
    for (int q = 0; q < PT; ++q) _mm512_storeu_ps(out + (o0 + o) * p.cs + (v0 + q) * 16, acc[o][q]);
}

template <int OT>
TAPE_AVX512 void conv_tile_pt(int pt, const Geometry& g, const Plan& p, const float* xs, const float* w,
                              const float* b, int64_t o0, int64_t v0, float* out) {
  switch (pt) {
    case 4: conv_tile<OT, 4>(g, p, xs, w, b, o0, v0, out); break;
    case 3: conv_tile<OT, 3>(g, p, xs, w, b, o0, v0, out); break;
    case 2: conv_tile<OT, 2>(g, p, xs, w, b, o0, v0, out); break;
    default: conv_tile<OT, 1>(g, p, xs, w, b, o0, v0, out); break;
  }
}

/// The wide conv output of one image, in tiles of ≤ 6 filters × ≤ 4 vectors.
TAPE_AVX512 void conv_image(const Geometry& g, const Plan& p, const float* xs, const float* w, const float* b,
                            float* out) {
  for (int64_t o0 = 0; o0 < g.oc; o0 += 6) {
    const int64_t ot = std::min<int64_t>(6, g.oc - o0);
    for (int64_t v0 = 0; v0 < p.nv; v0 += 4) {
      const int pt = int(std::min<int64_t>(4, p.nv - v0));
      switch (ot) {
        case 6: conv_tile_pt<6>(pt, g, p, xs, w, b, o0, v0, out); break;
        case 5: conv_tile_pt<5>(pt, g, p, xs, w, b, o0, v0, out); break;
        case 4: conv_tile_pt<4>(pt, g, p, xs, w, b, o0, v0, out); break;
        case 3: conv_tile_pt<3>(pt, g, p, xs, w, b, o0, v0, out); break;
        case 2: conv_tile_pt<2>(pt, g, p, xs, w, b, o0, v0, out); break;
        default: conv_tile_pt<1>(pt, g, p, xs, w, b, o0, v0, out); break;
      }
    }
  }
}

/// Where v > best: best = v, at = idx (strictly greater: the first of equal values wins).
TAPE_AVX512 inline void take(__m512& best, __m512i& at, __m512 v, int idx) {
  const __mmask16 k = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
  best = _mm512_mask_mov_ps(best, k, v);
  at = _mm512_mask_mov_epi32(at, k, _mm512_set1_epi32(idx));
}

/// y, code of one image from its wide conv output: 2×2 max, ReLU, window position.
TAPE_AVX512 void pool_image(const Geometry& g, const Plan& p, const float* out, float* y, uint8_t* code) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t o = 0; o < g.oc; ++o)
    for (int64_t py = 0; py < p.ph2; ++py) {
      const float* r0 = out + o * p.cs + 2 * py * p.wp;
      const float* r1 = r0 + p.wp;
      float* yr = y + (o * p.ph2 + py) * p.pw2;
      uint8_t* cr = code ? code + (o * p.ph2 + py) * p.pw2 : nullptr;
      for (int64_t px0 = 0; px0 < p.pw2; px0 += 16) {
        const int64_t n = std::min<int64_t>(16, p.pw2 - px0);
        const __m512 lo0 = _mm512_loadu_ps(r0 + 2 * px0), hi0 = _mm512_loadu_ps(r0 + 2 * px0 + 16);
        const __m512 lo1 = _mm512_loadu_ps(r1 + 2 * px0), hi1 = _mm512_loadu_ps(r1 + 2 * px0 + 16);
        __m512 best = _mm512_permutex2var_ps(lo0, even, hi0);  // (0, 0) of each window
        __m512i at = _mm512_setzero_si512();
        take(best, at, _mm512_permutex2var_ps(lo0, odd, hi0), 1);  // (0, 1)
        take(best, at, _mm512_permutex2var_ps(lo1, even, hi1), 2);  // (1, 0)
        take(best, at, _mm512_permutex2var_ps(lo1, odd, hi1), 3);   // (1, 1)
        _mm512_mask_storeu_ps(yr + px0, first(n), _mm512_max_ps(best, zero));
        if (cr) {
          at = _mm512_mask_mov_epi32(_mm512_set1_epi32(4), _mm512_cmp_ps_mask(best, zero, _CMP_GT_OQ), at);
          _mm_mask_storeu_epi8(cr + px0, first(n), _mm512_cvtepi32_epi8(at));
        }
      }
    }
}

/// v where at == idx, else 0.
TAPE_AVX512 inline __m512 where(__m512i at, int idx, __m512 v) {
  return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(idx)), v);
}

/// dconv (wide layout) of one image from the pooled gradient gy and the codes;
/// db[o] += the gradient that reaches filter o. Only the positions inside pooling
/// windows are written (all of them, every image); the others stay zero from the
/// scratch's allocation.
TAPE_AVX512 void route_image(const Geometry& g, const Plan& p, const float* gy, const uint8_t* code, float* dconv,
                             float* db) {
  // lanes (a0, b0, a1, b1, …): the two columns of each window, interleaved back
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t o = 0; o < g.oc; ++o) {
    __m512 sum = _mm512_setzero_ps();
    for (int64_t py = 0; py < p.ph2; ++py) {
      float* r0 = dconv + o * p.cs + 2 * py * p.wp;
      float* r1 = r0 + p.wp;
      const float* gr = gy + (o * p.ph2 + py) * p.pw2;
      const uint8_t* cr = code + (o * p.ph2 + py) * p.pw2;
      for (int64_t px0 = 0; px0 < p.pw2; px0 += 16) {
        const int64_t n = std::min<int64_t>(16, p.pw2 - px0);
        const __m512 gv = _mm512_maskz_loadu_ps(first(n), gr + px0);
        const __m512i at = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(first(n), cr + px0));
        const __m512 a = where(at, 0, gv), bb = where(at, 1, gv), c = where(at, 2, gv), d = where(at, 3, gv);
        sum = _mm512_add_ps(sum, _mm512_add_ps(_mm512_add_ps(a, bb), _mm512_add_ps(c, d)));
        const __mmask16 m_lo = first(2 * n), m_hi = first(std::max<int64_t>(0, 2 * n - 16));
        _mm512_mask_storeu_ps(r0 + 2 * px0, m_lo, _mm512_permutex2var_ps(a, lo, bb));
        _mm512_mask_storeu_ps(r0 + 2 * px0 + 16, m_hi, _mm512_permutex2var_ps(a, hi, bb));
        _mm512_mask_storeu_ps(r1 + 2 * px0, m_lo, _mm512_permutex2var_ps(c, lo, d));
        _mm512_mask_storeu_ps(r1 + 2 * px0 + 16, m_hi, _mm512_permutex2var_ps(c, hi, d));
      }
    }
    db[o] += _mm512_reduce_add_ps(sum);
  }
}

/// acc[o][t] (16-float partial sums, rows of `stride` floats) += Σ_v dconv[o][v] ·
/// plane[v + off[t]], for OT filters × TT taps of one input channel.
template <int OT, int TT>
TAPE_AVX512 void dw_tile(const Plan& p, const float* plane, const int32_t* off, const float* dconv, float* acc_out,
                         int64_t stride) {
  __m512 acc[OT][TT];
#pragma GCC unroll 8
  for (int o = 0; o < OT; ++o)
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) acc[o][t] = _mm512_setzero_ps();
  for (int64_t v = 0; v < p.nv; ++v) {
    __m512 xv[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xv[t] = _mm512_loadu_ps(plane + v * 16 + off[t]);
#pragma GCC unroll 8
    for (int o = 0; o < OT; ++o) {
      const __m512 dv = _mm512_loadu_ps(dconv + o * p.cs + v * 16);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[o][t] = _mm512_fmadd_ps(dv, xv[t], acc[o][t]);
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OT; ++o)
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
      float* a = acc_out + o * stride + t * 16;
      _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), acc[o][t]));
    }
}

template <int OT>
TAPE_AVX512 void dw_tile_tt(int tt, const Plan& p, const float* plane, const int32_t* off, const float* dconv,
                            float* acc_out, int64_t stride) {
  switch (tt) {
    case 4: dw_tile<OT, 4>(p, plane, off, dconv, acc_out, stride); break;
    case 3: dw_tile<OT, 3>(p, plane, off, dconv, acc_out, stride); break;
    case 2: dw_tile<OT, 2>(p, plane, off, dconv, acc_out, stride); break;
    default: dw_tile<OT, 1>(p, plane, off, dconv, acc_out, stride); break;
  }
}

/// The weight gradient of one image added to acc ([oc][c][tap] × 16 partial sums).
TAPE_AVX512 void dw_image(const Geometry& g, const Plan& p, const float* xs, const float* dconv, float* acc) {
  const int64_t stride = g.c * p.taps * 16;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t o0 = 0; o0 < g.oc; o0 += 6) {
      const int64_t ot = std::min<int64_t>(6, g.oc - o0);
      for (int64_t t0 = 0; t0 < p.taps; t0 += 4) {
        const int tt = int(std::min<int64_t>(4, p.taps - t0));
        const float* plane = xs + c * p.xs;
        const int32_t* off = p.off.data() + t0;
        const float* d = dconv + o0 * p.cs;
        float* a = acc + ((o0 * g.c + c) * p.taps + t0) * 16;
        switch (ot) {
          case 6: dw_tile_tt<6>(tt, p, plane, off, d, a, stride); break;
          case 5: dw_tile_tt<5>(tt, p, plane, off, d, a, stride); break;
          case 4: dw_tile_tt<4>(tt, p, plane, off, d, a, stride); break;
          case 3: dw_tile_tt<3>(tt, p, plane, off, d, a, stride); break;
          case 2: dw_tile_tt<2>(tt, p, plane, off, d, a, stride); break;
          default: dw_tile_tt<1>(tt, p, plane, off, d, a, stride); break;
        }
      }
    }
}

// --- backward-data from the blocked output gradient --------------------------------
// Note: the backward-data of LeNet's conv2 (6 → 16 channels), oneDNN's costliest
// pass (it vectorises along the 6 input channels, padded to 16). Per image:
//   1. transpose the output gradient from nChw16c to planar dT[o][p] (p = oy·ow + ox),
//   2. a GEMM col[(c, tap)][p] = Σ_o wr[(c, tap)][o] · dT[o][p], exact in p (no
//      wide columns), in tiles of 5 rows × 64 positions, one input channel at a time,
//   3. col2im as a gather: each 16-wide piece of a dx row is Σ over its taps of a
//      masked load of a col row (lanes whose ox = ix − kx falls outside [0, ow) are
//      masked off), so every dx value is written once, with no read-modify-write.

// --- 2×2 max pooling on the blocked conv output ------------------------------------
// Note: the fused block's oneDNN path (conv2 of LeNet: 6 → 16 channels) ran
// oneDNN's pooling on the cache-hot nChw16c conv output and then our loops to
// NCHW and back (nchw16c_to_nchw with the ReLU mask; to_16c_masked before the
// pooling backward). These two kernels do each direction in one pass, vectorised
// along the block's 16 channels: a pooled pixel is the max of its window's four
// 16-channel vectors, its code vector (the window position, as pool_image's)
// is kept in the blocked order, and 16 pooled pixels at a time are transposed to
// NCHW in registers. Backward transposes the NCHW gradient back and writes each
// window's four conv pixels once (the code's gets the gradient, the others 0).

/// y (NCHW) and code (blocked order) of one image's block b of 16 channels.
TAPE_AVX512 void pool16c_block(const float* c, int64_t oh, int64_t ow, int64_t os, float* y, uint8_t* code,
                               int64_t plane_y) {
  const int64_t ph = oh / 2, pw = ow / 2, np = ph * pw;
  const __m512 zero = _mm512_setzero_ps();
  __m512 r[16];
  for (int64_t p0 = 0; p0 < np; p0 += 16) {
    const int64_t ps = std::min<int64_t>(16, np - p0);
    for (int64_t k = 0; k < 16; ++k) {
      if (k >= ps) {
        r[k] = zero;
        continue;
      }
      const int64_t p = p0 + k, py = p / pw, px = p % pw;
      const float* q = c + (2 * py * ow + 2 * px) * 16;
      __m512 best = _mm512_loadu_ps(q);
      __m512i at = _mm512_setzero_si512();
      take(best, at, _mm512_loadu_ps(q + 16), 1);
      take(best, at, _mm512_loadu_ps(q + ow * 16), 2);
      take(best, at, _mm512_loadu_ps(q + ow * 16 + 16), 3);
      if (code) {
        at = _mm512_mask_mov_epi32(_mm512_set1_epi32(4), _mm512_cmp_ps_mask(best, zero, _CMP_GT_OQ), at);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(code + p * 16), _mm512_cvtepi32_epi8(at));
      }
      r[k] = _mm512_max_ps(best, zero);
    }
    transpose16(r);
    for (int64_t o = 0; o < os; ++o) _mm512_mask_storeu_ps(y + o * plane_y + p0, first(ps), r[o]);
  }
}

/// dc (one image's block of 16 channels, [oh·ow][16]) from gy (NCHW) and code.
TAPE_AVX512 void unpool16c_block(const float* gy, const uint8_t* code, int64_t oh, int64_t ow, int64_t os,
                                 int64_t plane_y, float* dc) {
  const int64_t ph = oh / 2, pw = ow / 2, np = ph * pw;
  const __m512 zero = _mm512_setzero_ps();
  // pixels outside every window (an odd last row or column)
  if (oh % 2)
    for (int64_t x = 0; x < ow; ++x) _mm512_storeu_ps(dc + ((oh - 1) * ow + x) * 16, zero);
  if (ow % 2)
    for (int64_t y = 0; y < 2 * ph; ++y) _mm512_storeu_ps(dc + (y * ow + ow - 1) * 16, zero);
  __m512 r[16];
  for (int64_t p0 = 0; p0 < np; p0 += 16) {
    const int64_t ps = std::min<int64_t>(16, np - p0);
    for (int64_t o = 0; o < 16; ++o)
      r[o] = o < os ? _mm512_maskz_loadu_ps(first(ps), gy + o * plane_y + p0) : zero;
    transpose16(r);
    for (int64_t k = 0; k < ps; ++k) {
      const int64_t p = p0 + k, py = p / pw, px = p % pw;
      const __m512i at = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + p * 16)));
      float* q = dc + (2 * py * ow + 2 * px) * 16;
      _mm512_storeu_ps(q, where(at, 0, r[k]));
      _mm512_storeu_ps(q + 16, where(at, 1, r[k]));
      _mm512_storeu_ps(q + ow * 16, where(at, 2, r[k]));
      _mm512_storeu_ps(q + ow * 16 + 16, where(at, 3, r[k]));
    }
  }
}

/// One image of nChw16c (c channels, hw pixels) to NCHW, a block of 16 channels
/// at a time; positive (may be null) gets a byte to > 0 per element.
TAPE_AVX512 void unblock_image(const float* from, float* to, int64_t c, int64_t hw, uint8_t* positive) {
  for (int64_t b = 0; b * 16 < c; ++b)
    transpose_block(from + b * hw * 16, hw, std::min<int64_t>(16, c - b * 16), hw, to + b * 16 * hw,
                    positive ? positive + b * 16 * hw : nullptr);
}

/// Positions of the conv output rounded up to whole vectors.
int64_t padded_positions(const Geometry& g) { return round16(g.oh() * g.ow()); }

/// col[j0 + m][16·(v0 + q) …] = Σ_o wr[j0 + m][o] · dT[o][16·(v0 + q) …], MT rows × PT vectors.
template <int MT, int PT>
TAPE_AVX512 void col_tile(int64_t oc, int64_t np, const float* dT, const float* wr, int64_t j0, int64_t v0,
                          float* col) {
  __m512 acc[MT][PT];
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < PT; ++q) acc[m][q] = _mm512_setzero_ps();
  for (int64_t o = 0; o < oc; ++o) {
    __m512 xv[PT];
#pragma GCC unroll 8
    for (int q = 0; q < PT; ++q) xv[q] = _mm512_loadu_ps(dT + o * np + (v0 + q) * 16);
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) {
      const __m512 wv = _mm512_set1_ps(wr[(j0 + m) * oc + o]);
#pragma GCC unroll 8
      for (int q = 0; q < PT; ++q) acc[m][q] = _mm512_fmadd_ps(wv, xv[q], acc[m][q]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < PT; ++q) _mm512_storeu_ps(col + (j0 + m) * np + (v0 + q) * 16, acc[m][q]);
}

template <int MT>
TAPE_AVX512 void col_tile_pt(int pt, int64_t oc, int64_t np, const float* dT, const float* wr, int64_t j0, int64_t v0,
                             float* col) {
  switch (pt) {
    case 4: col_tile<MT, 4>(oc, np, dT, wr, j0, v0, col); break;
    case 3: col_tile<MT, 3>(oc, np, dT, wr, j0, v0, col); break;
    case 2: col_tile<MT, 2>(oc, np, dT, wr, j0, v0, col); break;
    default: col_tile<MT, 1>(oc, np, dT, wr, j0, v0, col); break;
  }
}

/// dx of images [begin, end): per image the transpose, then per input channel
/// the GEMM into col (its kh·kw rows) and the gather into dx.
TAPE_AVX512 void backward_data_range(const Geometry& g, int64_t begin, int64_t end, const float* dc, const float* wr,
                                     float* dx) {
  const int64_t oh = g.oh(), ow = g.ow(), npos = oh * ow, np = padded_positions(g), nv = np / 16;
  const int64_t taps = g.kh * g.kw, blocks = (g.oc + 15) / 16;
  // dT's lanes past npos stay 0 from here (transpose_block writes only p < npos)
  std::vector<float> dT(size_t(g.oc * np)), col(size_t(taps * np));
  const std::vector<__mmask16> masks = col2im_masks(g);
  for (int64_t i = begin; i < end; ++i) {
    const float* d = dc + i * blocks * npos * 16;
    for (int64_t b = 0; b < blocks; ++b)
      transpose_block(d + b * npos * 16, npos, std::min<int64_t>(16, g.oc - b * 16), np, dT.data() + b * 16 * np);
    for (int64_t c = 0; c < g.c; ++c) {
      const float* wc = wr + c * taps * g.oc;
      for (int64_t j0 = 0; j0 < taps; j0 += 5) {
        const int64_t mt = std::min<int64_t>(5, taps - j0);
        for (int64_t v0 = 0; v0 < nv; v0 += 4) {
          const int pt = int(std::min<int64_t>(4, nv - v0));
          switch (mt) {
            case 5: col_tile_pt<5>(pt, g.oc, np, dT.data(), wc, j0, v0, col.data()); break;
            case 4: col_tile_pt<4>(pt, g.oc, np, dT.data(), wc, j0, v0, col.data()); break;
            case 3: col_tile_pt<3>(pt, g.oc, np, dT.data(), wc, j0, v0, col.data()); break;
            case 2: col_tile_pt<2>(pt, g.oc, np, dT.data(), wc, j0, v0, col.data()); break;
            default: col_tile_pt<1>(pt, g.oc, np, dT.data(), wc, j0, v0, col.data()); break;
          }
        }
      }
      float* dxc = dx + (i * g.c + c) * g.h * g.w;
      gather_channel(g, np, col.data(), masks.data(), dxc);
    }
  }
}

// --- per range of images ---------------------------------------------------------

/// Forward of images [begin, end); false at the first with a non-finite value.
TAPE_AVX512 bool forward_range(const Geometry& g, const Plan& p, int64_t begin, int64_t end, const float* x,
                               const float* w, const float* b, float* y, uint8_t* code, const std::atomic<bool>& stop) {
  std::vector<float> xs(size_t(g.c * p.xs)), out(size_t(g.oc * p.cs));
  const int64_t x_image = g.c * g.h * g.w, y_image = g.oc * p.ph2 * p.pw2;
  for (int64_t i = begin; i < end; ++i) {
    if (stop.load(std::memory_order_relaxed)) return false;
    if (!finite(x + i * x_image, x_image)) return false;
    load_image(g, p, x + i * x_image, xs.data());
    conv_image(g, p, xs.data(), w, b, out.data());
    pool_image(g, p, out.data(), y + i * y_image, code ? code + i * y_image : nullptr);
  }
  return true;
}

/// Backward of images [begin, end) into one thread's partial sums.
TAPE_AVX512 void backward_range(const Geometry& g, const Plan& p, int64_t begin, int64_t end, const float* x,
                                const float* gy, const uint8_t* code, float* acc, float* db) {
  std::vector<float> xs(size_t(g.c * p.xs)), dconv(size_t(g.oc * p.cs));
  const int64_t x_image = g.c * g.h * g.w, y_image = g.oc * p.ph2 * p.pw2;
  for (int64_t i = begin; i < end; ++i) {
    load_image(g, p, x + i * x_image, xs.data());
    route_image(g, p, gy + i * y_image, code + i * y_image, dconv.data(), db);
    dw_image(g, p, xs.data(), dconv.data(), acc);
  }
}

/// Multiply-adds per image of a forward or backward-weights pass (the cost
/// backend::parallel_ranges weighs against its grain).
int64_t work_of(const Geometry& g, const Plan& p) { return g.oc * g.c * p.taps * p.nv * 16; }

}  // namespace

bool available() {
  static const bool cpu =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const char* e = std::getenv("TAPE_DIRECT_CONV");
  return cpu && !(e && std::strcmp(e, "0") == 0);
}

bool takes(const Geometry& g) {
  if (g.n < 1 || g.c < 1 || g.c > kMaxChannels || g.oc < 1 || g.h < 1 || g.w < 1) return false;
  if (g.kh < 1 || g.kw < 1 || g.ph < 0 || g.pw < 0 || g.oh() < 2 || g.ow() < 2) return false;
  const int64_t plane = (g.h + 2 * g.ph) * (g.w + 2 * g.pw);
  // per-thread scratch ≤ ~4 MB, and offsets within int32
  return plane <= (int64_t(1) << 18) && g.kh * g.kw <= 1024 && (g.oc + g.c) * plane <= (int64_t(1) << 20);
}

bool forward(const Geometry& g, const float* x, const float* w, const float* b, float* y, uint8_t* code) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  const Plan p = plan_of(g);
  std::atomic<bool> stop{false};
  backend::parallel_ranges(g.n, [&](int64_t begin, int64_t end) {
    if (!forward_range(g, p, begin, end, x, w, b, y, code, stop)) stop.store(true, std::memory_order_relaxed);
  }, work_of(g, p));
  return !stop.load(std::memory_order_relaxed);
}

void backward_weights(const Geometry& g, const float* x, const float* gy, const uint8_t* code, float* dw, float* db) {
  const Plan p = plan_of(g);
  backend::sync_num_threads();
  const int64_t threads = std::max(1, omp_get_max_threads());
  const int64_t k = g.oc * g.c * p.taps;  // weights
  std::vector<float> acc(size_t(threads * k * 16), 0.f), dbs(size_t(threads * g.oc), 0.f);
  backend::parallel_ranges(g.n, [&](int64_t begin, int64_t end) {
    const int64_t t = omp_get_thread_num();  // its own partial sums
    backward_range(g, p, begin, end, x, gy, code, acc.data() + t * k * 16, dbs.data() + t * g.oc);
  }, work_of(g, p));
  for (int64_t j = 0; j < k; ++j) {
    double s = 0;
    for (int64_t t = 0; t < threads; ++t)
      for (int64_t l = 0; l < 16; ++l) s += acc[size_t((t * k + j) * 16 + l)];
    dw[j] = float(s);
  }
  if (db)
    for (int64_t o = 0; o < g.oc; ++o) {
      double s = 0;
      for (int64_t t = 0; t < threads; ++t) s += dbs[size_t(t * g.oc + o)];
      db[o] = float(s);
    }
}

bool takes_backward_data(const Geometry& g) {
  if (g.n < 1 || g.c < 1 || g.oc < 1 || g.h < 1 || g.w < 1 || g.w > 64 || g.kh < 1 || g.kw < 1) return false;
  if (g.ph != 0 || g.pw != 0 || g.oh() < 1 || g.ow() < 1) return false;
  return g.oh() * g.ow() <= 4096 && g.kh * g.kw <= 1024 && g.oc <= 1024;
}

void backward_data_16c(const Geometry& g, const float* dc, const float* w, float* dx) {
  g_data_calls.fetch_add(1, std::memory_order_relaxed);
  const int64_t taps = g.kh * g.kw, rows = g.c * taps;
  std::vector<float> wr(size_t(rows * g.oc));  // wr[(c, tap)][o] = w[o][c][tap]
  for (int64_t o = 0; o < g.oc; ++o)
    for (int64_t j = 0; j < rows; ++j) wr[size_t(j * g.oc + o)] = w[o * rows + j];
  backend::parallel_ranges(g.n, [&](int64_t begin, int64_t end) { backward_data_range(g, begin, end, dc, wr.data(), dx); },
                           g.oc * rows * padded_positions(g));
}

int64_t pool16c_codes(int64_t n, int64_t oc, int64_t oh, int64_t ow) {
  return n * ((oc + 15) / 16) * (oh / 2) * (ow / 2) * 16;
}

void pool16c_forward(int64_t n, int64_t oc, int64_t oh, int64_t ow, const float* c, float* y, uint8_t* code) {
  g_pool_calls.fetch_add(1, std::memory_order_relaxed);
  const int64_t blocks = (oc + 15) / 16, np = (oh / 2) * (ow / 2);
  backend::parallel_for(n * blocks, [&](int64_t ib) {
    const int64_t i = ib / blocks, b = ib % blocks;
    pool16c_block(c + ib * oh * ow * 16, oh, ow, std::min<int64_t>(16, oc - b * 16), y + (i * oc + b * 16) * np,
                  code ? code + ib * np * 16 : nullptr, np);
  }, /*cost=*/oh * ow * 16);
}

void pool16c_backward(int64_t n, int64_t oc, int64_t oh, int64_t ow, const float* gy, const uint8_t* code, float* dc) {
  const int64_t blocks = (oc + 15) / 16, np = (oh / 2) * (ow / 2);
  backend::parallel_for(n * blocks, [&](int64_t ib) {
    const int64_t i = ib / blocks, b = ib % blocks;
    unpool16c_block(gy + (i * oc + b * 16) * np, code + ib * np * 16, oh, ow, std::min<int64_t>(16, oc - b * 16), np,
                    dc + ib * oh * ow * 16);
  }, /*cost=*/oh * ow * 16);
}

void nchw16c_to_nchw(const float* from, float* to, int64_t n, int64_t c, int64_t hw, uint8_t* positive) {
  const int64_t image = (c + 15) / 16 * 16 * hw;
  backend::parallel_for(n, [&](int64_t i) {
    unblock_image(from + i * image, to + i * c * hw, c, hw, positive ? positive + i * c * hw : nullptr);
  }, /*cost=*/image);
}

int64_t calls() { return g_calls.load(std::memory_order_relaxed); }
int64_t backward_data_calls() { return g_data_calls.load(std::memory_order_relaxed); }
int64_t pool16c_calls() { return g_pool_calls.load(std::memory_order_relaxed); }

}  // namespace tape::detail::direct_block
