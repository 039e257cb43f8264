// AMX bf16 kernels for the fused conv2d → ReLU → 2×2 max-pool block under
// autocast (LeNet's conv2: 6 → 16 channels, 5×5, 12×12 → 8×8 → 4×4). x, w and
// the conv output's gradient dc are rounded to bf16, every sum is f32:
//
//   Forward:          c[p][o] = relu(b[o] + Σ_ky Σ_(c,kx) x[c][p + ky·w + kx] · w[o][c][ky][kx]),
//                     y, code = pool16c_forward(c)
//   Backward-weights: dw[o][c][ky][kx] = Σ_(n,p) dc[n][o][p] · x[n][c][p + ky·w + kx],  db = Σ dc
//   Backward-data:    dx[c][iy][ix] = Σ_ky Σ_kx Σ_o w[o][c][ky][kx] · dc[o][iy − ky][ix − kx]
//   with dc = pool16c_backward(gy, code)
//
// Note: why our own AMX kernels. Per 1 250-image slice of LeNet's conv2 on the
// Intel VM, oneDNN 2.6's bf16 passes were no faster than f32 (AMX
// backward-weights 2.5 ms, jit_bf16 2.4 ms, f32 1.6 ms; no bf16 backward-data
// faster than our f32 direct kernel's 2.1 ms), so bf16 LeNet-5 gained only
// 1.11×. A tile product (TDPBF16PS: C 16 × 16 f32 += A 16 × 32 bf16 · B 32 × 16
// bf16, B in pairs [k/2][n][2]) does 8 192 multiply-adds in ~4.9 ns here; what
// limits these kernels is putting the operands in the tiles' layouts, and the
// memory traffic. A tile load whose rows straddle cache lines takes 6× as long
// (LineAllocator), so every layout below makes each operand whole 64-byte rows:
//
// - Forward: the input as im2row over (c, kx) (32 bf16 per position) on "wide"
//   positions p = y·w + x for every x < w, so kernel row ky is the same im2row
//   ky·w rows further; per 16 positions and kernel row one product with the
//   weights in pair layout. C's rows are the conv output in nChw16c.
// - Backward-weights: A = dc transposed to [o][p] (16 filters × 32 positions),
//   B = the input in pair layout [p/2][(c, kx)][2] over an h × ow grid, so
//   kernel row ky is B ky·ow/2 rows further; 10 accumulator tiles (5 kernel rows
//   × 2 tiles of (c, kx) columns), 5 at a time in tile registers over a chunk.
// - Backward-data: colx[(c, ky)][oy][ix] = Σ over pairs of kernel columns of A
//   (the weights, [(c, ky)][(kx, o)]) · B (dc's filter pairs at ix − kx: one
//   shifted copy per kernel column, stored straight from the transpose), then
//   dx[c][iy] = Σ_ky colx[(c, ky)][iy − ky], kh row adds.
// - The whole backward of a slice (backward()) runs the pooling's backward and
//   both passes per chunk of 8 images, the gradient kept in L1/L2.
//
// docs/performance.md has the measurements.
#include "tape/ops/conv_block_amx.hpp"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <vector>

#include "tape/backend/parallel.hpp"
#include "tape/ops/conv_block_simd.hpp"

#define TAPE_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// The tile instructions as inline asm with a memory clobber: GCC 12's
// _tile_loadd/_tile_stored have none, so the compiler could move ordinary loads
// and stores of the same memory across them. Tile numbers are literals.
#define TILE_LOAD(t, base, stride) \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(base), "r"(int64_t(stride)) : "memory")
#define TILE_STORE(t, base, stride) \
  __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(base), "r"(int64_t(stride)) : "memory")
#define TILE_ZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define TILE_DP(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
// OP(t) for the tiles t = 0 .. n − 1 (n ≤ 5), as literals.
#define TILE_RUN(n, OP) \
  do {                  \
    OP(0);              \
    if ((n) > 1) OP(1); \
    if ((n) > 2) OP(2); \
    if ((n) > 3) OP(3); \
    if ((n) > 4) OP(4); \
  } while (0)

namespace tape::detail::amx_block {
namespace {

using namespace block_simd;

std::atomic<int64_t> g_data_calls{0}, g_weights_calls{0}, g_forward_calls{0}, g_backward_calls{0};

int64_t round32(int64_t v) { return (v + 31) / 32 * 32; }

/// The conv output's positions rounded to a tile product's 32: the row length of
/// its gradient transposed to [filter][position] (both backward passes read it).
int64_t positions32(const Geometry& g) { return round32(g.oh() * g.ow()); }

/// std::allocator on 64-byte boundaries: a tile row that crosses a cache line
/// makes TILELOADD ~6× slower (measured: 15.5 against 2.5 ns per 16 × 64-byte
/// tile), so every tile operand starts on a line and its stride is whole lines.
template <class T>
struct LineAllocator {
  using value_type = T;
  LineAllocator() = default;
  template <class U>
  LineAllocator(const LineAllocator<U>&) {}
  T* allocate(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    if (void* p = std::aligned_alloc(64, bytes)) return static_cast<T*>(p);
    throw std::bad_alloc();
  }
  void deallocate(T* p, size_t) { std::free(p); }
  friend bool operator==(const LineAllocator&, const LineAllocator&) { return true; }
};
template <class T>
using Lines = std::vector<T, LineAllocator<T>>;

/// The tiles' shapes (ldtilecfg's 64-byte operand, palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};

  void set(int t, int r, int bytes) { rows[t] = uint8_t(r), colsb[t] = uint16_t(bytes); }
  void load() const { __asm__ volatile("ldtilecfg %0" ::"m"(*this)); }
};
static_assert(sizeof(TileConfig) == 64);

/// Loads cfg on construction and releases the tiles on destruction (each thread).
class Tiles {
 public:
  explicit Tiles(const TileConfig& cfg) { cfg.load(); }
  ~Tiles() { __asm__ volatile("tilerelease" ::); }
  Tiles(const Tiles&) = delete;
  Tiles& operator=(const Tiles&) = delete;
};

/// The tile configuration both backward passes and the forward use: every tile
/// 16 rows × 64 bytes (C: 16 × 16 f32; A and B: 16 × 32 bf16 or 16 pairs × 16 × 2).
TileConfig square_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);
  return cfg;
}

/// True once the kernel has granted the process AMX's tile state (Linux asks
/// for it per process: ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA).
bool tile_state() {
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool avx512 = (b >> 16 & 1) && (b >> 30 & 1) && (b >> 31 & 1);  // F, BW, VL
    const bool amx = (d >> 24 & 1) && (d >> 22 & 1);                        // AMX-TILE, AMX-BF16
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    const bool bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && (a1 >> 5 & 1);  // AVX512-BF16
    if (!avx512 || !amx || !bf16) return false;
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

/// The pair layout of two rows of 16 floats: 16 dwords {bf16(a[i]), bf16(b[i])}.
TAPE_AMX inline __m512i pairs(__m512 a, __m512 b) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, __m512i(_mm512_cvtne2ps_pbh(b, a)));
}

/// planes × n floats to bf16 (round to nearest even, as oneDNN's reorder), plane
/// k at out + k·stride; false when one of them is not finite.
TAPE_AMX bool to_bf16(const float* in, int64_t planes, int64_t n, int64_t stride, uint16_t* out) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 s = zero;  // v·0 is 0 for finite v, NaN otherwise
  for (int64_t k = 0; k < planes; ++k)
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = first(n - i);
      const __m512 v = _mm512_maskz_loadu_ps(m, in + k * n + i);
      s = _mm512_add_ps(s, _mm512_mul_ps(v, zero));
      _mm256_mask_storeu_epi16(out + k * stride + i, m, __m256i(_mm512_cvtneps_pbh(v)));
    }
  return _mm512_reduce_add_ps(s) == 0.f;
}

// --- forward ------------------------------------------------------------------

/// Images whose conv outputs a thread computes before pooling them together.
constexpr int64_t kPoolChunk = 8;

/// The sizes of the forward pass for one geometry. Positions are "wide", q = y·w
/// + x for every x < w (outputs with ox ≥ ow are computed and dropped), so that
/// kernel row ky is a shift by ky·w positions — whole 64-byte rows of the
/// im2row. The tile product per 16 positions and kernel row: C[q][o] +=
/// A[q][(c, kx)] · B[(c, kx)][o], with A the input as im2row over (c, kx) (32
/// bf16 per position) and B the weights in pair layout; C's rows are the conv
/// output in nChw16c.
struct ForwardPlan {
  int64_t ks = 0;     ///< K steps of 32 (c, kx) columns
  int64_t rows = 0;   ///< (c, kx) columns: c · kw
  int64_t qt = 0;     ///< output position tiles: ⌈oh · w / 16⌉
  int64_t qr = 0;     ///< im2row positions (the tiles' reach, in whole 16s)
  int64_t xr = 0;     ///< bf16 per image's im2row: ks × qr × 32
  std::vector<int32_t> from;  ///< per (c, kx) column: its first input value, c·h·w + kx
  std::vector<int32_t> end;   ///< per (c, kx) column: its plane's end, (c + 1)·h·w
  std::vector<uint8_t> scan;  ///< per (c, kx) column: kx = 0 (its loads cover the plane: the finiteness scan)
};

ForwardPlan forward_plan(const Geometry& g) {
  ForwardPlan p;
  p.rows = g.c * g.kw;
  p.ks = (p.rows + 31) / 32;
  p.qt = (g.oh() * g.w + 15) / 16;
  p.qr = round16(p.qt * 16 + (g.kh - 1) * g.w);
  p.xr = p.ks * p.qr * 32;
  for (int64_t n = 0; n < p.rows; ++n) {
    p.from.push_back(int32_t(n / g.kw * g.h * g.w + n % g.kw));
    p.end.push_back(int32_t((n / g.kw + 1) * g.h * g.w));
    p.scan.push_back(uint8_t(n % g.kw == 0));
  }
  return p;
}

/// The weights as B tiles, per kernel row and K step: [(c, kx) pair][o][2] =
/// w[o][c][ky][kx] (bf16, 0 past the columns and the filters).
TAPE_AMX void forward_weights(const Geometry& g, const ForwardPlan& p, const float* w, Lines<uint16_t>& wb) {
  std::vector<float> wr(size_t(g.kh * p.ks * 512), 0.f);
  for (int64_t o = 0; o < g.oc; ++o)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t n = c * g.kw + kx, k = n % 32;
          wr[size_t((ky * p.ks + n / 32) * 512 + (k / 2) * 32 + o * 2 + k % 2)] = w[((o * g.c + c) * g.kh + ky) * g.kw + kx];
        }
  wb.resize(wr.size());
  to_bf16(wr.data(), 1, int64_t(wr.size()), 0, wb.data());
}

/// One image's im2row: xr[step][q][n] = x[c][q + kx] for column n = (c, kx) of the
/// step (0 past the plane and the columns): per 16 positions, pairs of columns
/// (dword lanes) transposed to positions. nonfinite += v·0 over the image (the
/// kx = 0 columns read every value once: NaN when one is not finite).
TAPE_AMX void im2row(const ForwardPlan& p, const float* x, uint16_t* xr, __m512& nonfinite) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 r[16];
  for (int64_t k = 0; k < p.ks; ++k)
    for (int64_t q0 = 0; q0 < p.qr; q0 += 16) {
      for (int64_t j = 0; j < 16; ++j) {
        __m512 v[2] = {zero, zero};
        for (int64_t e = 0; e < 2; ++e) {
          const int64_t n = k * 32 + 2 * j + e;
          if (n >= p.rows) break;
          const int64_t at = p.from[size_t(n)] + q0, left = p.end[size_t(n)] - at;  // values left in the plane
          if (left > 0) v[e] = _mm512_maskz_loadu_ps(first(left), x + at);
          if (p.scan[size_t(n)]) nonfinite = _mm512_add_ps(nonfinite, _mm512_mul_ps(v[e], zero));
        }
        r[j] = _mm512_castsi512_ps(pairs(v[0], v[1]));
      }
      transpose16(r);  // row l: position q0 + l, dword j: columns 2j, 2j + 1
      uint16_t* out = xr + (k * p.qr + q0) * 32;
      for (int64_t l = 0; l < 16; ++l) _mm512_store_ps(reinterpret_cast<float*>(out + l * 32), r[l]);
    }
}

/// Conv outputs (ReLU'd, nChw16c) of images [begin, end), pooled by
/// direct_block::pool16c_forward kPoolChunk images at a time; false (stop set) at
/// a chunk with a non-finite input.
TAPE_AMX bool forward_range(const Geometry& g, const ForwardPlan& p, int64_t begin, int64_t end, const float* x,
                            const uint16_t* wb, const float* b, float* y, uint8_t* code, std::atomic<bool>& stop) {
  const int64_t oh = g.oh(), ow = g.ow(), c_image = oh * ow * 16;
  const int64_t x_image = g.c * g.h * g.w, y_image = g.oc * (oh / 2) * (ow / 2);
  const int64_t code_image = direct_block::pool16c_codes(1, g.oc, oh, ow);
  Lines<uint16_t> xr(size_t(p.xr), 0);
  Lines<float> tile(size_t(p.qt * 256)), c(size_t(kPoolChunk * c_image));
  const Tiles tiles(square_tiles());  // C: 16 positions × 16 f32, A: 16 × 32 bf16, B: 16 pairs × 16 × 2
  const __m512 bias = b ? _mm512_maskz_loadu_ps(first(g.oc), b) : _mm512_setzero_ps(), zero = _mm512_setzero_ps();
  __m512 nonfinite = zero;
  for (int64_t i0 = begin; i0 < end; i0 += kPoolChunk) {
    const int64_t images = std::min(kPoolChunk, end - i0);
    for (int64_t i = 0; i < images; ++i) {
      im2row(p, x + (i0 + i) * x_image, xr.data(), nonfinite);
      // C(t) = Σ_ky Σ_step A(rows t·16 + ky·w) · B(ky, step), four position tiles at a
      // time: one weight (B) load for four products
      for (int64_t t0 = 0; t0 < p.qt; t0 += 4) {
        const int64_t tn = std::min<int64_t>(4, p.qt - t0);
#define ZERO_C(t) TILE_ZERO(t)
        TILE_RUN(tn, ZERO_C);
#undef ZERO_C
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t k = 0; k < p.ks; ++k) {
            const uint16_t* a = xr.data() + (k * p.qr + t0 * 16 + ky * g.w) * 32;
            TILE_LOAD(7, wb + (ky * p.ks + k) * 512, 64);
            TILE_LOAD(4, a, 64);
            TILE_DP(0, 4, 7);
            if (tn > 1) {
              TILE_LOAD(5, a + 512, 64);
              TILE_DP(1, 5, 7);
            }
            if (tn > 2) {
              TILE_LOAD(6, a + 1024, 64);
              TILE_DP(2, 6, 7);
            }
            if (tn > 3) {
              TILE_LOAD(4, a + 1536, 64);
              TILE_DP(3, 4, 7);
            }
          }
#define STORE_C(t) TILE_STORE(t, tile.data() + (t0 + t) * 256, 64)
        TILE_RUN(tn, STORE_C);
#undef STORE_C
      }
      // the wide rows' first ow positions, + bias, ReLU
      float* ci = c.data() + i * c_image;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          _mm512_store_ps(ci + (oy * ow + ox) * 16,
                          _mm512_max_ps(_mm512_add_ps(_mm512_load_ps(tile.data() + (oy * g.w + ox) * 16), bias), zero));
    }
    if (_mm512_reduce_add_ps(nonfinite) != 0.f || stop.load(std::memory_order_relaxed)) {
      stop.store(true, std::memory_order_relaxed);
      return false;
    }
    direct_block::pool16c_forward(images, g.oc, oh, ow, c.data(), y + i0 * y_image,
                                  code ? code + i0 * code_image : nullptr);
  }
  return true;
}

// --- backward-data ------------------------------------------------------------

/// The sizes of the backward-data pass for one geometry. The tile product makes
/// colx[(c, ky)][oy][ix] = Σ_kx Σ_o w[o][c][ky][kx] · dc[o][oy][ix − kx] for ix
/// in tiles of 16 (w16 wide), two kernel columns per product (K = 2 × 16
/// filters); then dx[c][iy][ix] = Σ_ky colx[(c, ky)][iy − ky][ix] adds kh rows.
struct DataPlan {
  int64_t w16 = 0;    ///< dx row width in whole tiles of 16
  int64_t xt = 0;     ///< tiles per dx row: w16 / 16
  int64_t kp = 0;     ///< kernel-column slots: kw rounded up to even (an odd kw's last slot is 0)
  int64_t rt = 0;     ///< tiles of 16 (c, ky) rows
  int64_t rows = 0;   ///< colx rows: rt · 16
};

DataPlan data_plan(const Geometry& g) {
  DataPlan p;
  p.w16 = round16(g.w);
  p.xt = p.w16 / 16;
  p.kp = g.kw + (g.kw & 1);
  p.rt = (g.c * g.kh + 15) / 16;
  p.rows = p.rt * 16;
  return p;
}

/// The weights as A tiles: per pair of kernel columns (2m, 2m + 1) and tile of 16
/// (c, ky) rows, [row][e·16 + o] = w[o][c][ky][2m + e] in bf16 (0 past kw, the
/// rows and the filters); false when a weight is not finite (0 · ∞ would turn
/// the zero gradient past a row's ends into NaN).
TAPE_AMX bool data_weights(const Geometry& g, const DataPlan& p, const float* w, Lines<uint16_t>& wa) {
  std::vector<float> wr(size_t(p.kp / 2 * p.rows * 32), 0.f);
  for (int64_t o = 0; o < g.oc; ++o)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx)
          wr[size_t(((kx / 2) * p.rows + c * g.kh + ky) * 32 + (kx % 2) * 16 + o)] =
              w[((o * g.c + c) * g.kh + ky) * g.kw + kx];
  wa.resize(wr.size());
  return to_bf16(wr.data(), 1, int64_t(wr.size()), 0, wa.data());
}

/// One thread's scratch for the backward-data pass (tile operands on whole lines).
struct DataScratch {
  Lines<float> colx;
  /// B operands, dwords: [oy][kernel-column slot kx][filter pair][w16 positions ix] =
  /// the gradient's pair at (oy, ix − kx), 0 where ix − kx is outside the row (never
  /// written) and in an odd kw's last slot
  Lines<uint32_t> bv;
  DataScratch(const Geometry& g, const DataPlan& p)
      : colx(size_t(p.rows * g.oh() * p.w16)), bv(size_t(g.oh() * p.kp * 8 * p.w16), 0u) {}
};

/// One image's dx from its output gradient dT, transposed to [o][p] (rows of
/// positions32): (1) each 16 positions of a filter pair in pair layout stored once per
/// kernel column kx, shifted by kx, into bv — so that a B tile, 16 pair rows (8
/// filter pairs of kx, then of kx + 1) × 16 positions, is rows of whole cache
/// lines; (2) the tile products into colx (tiles configured by the caller:
/// square_tiles); (3) the sums over ky into dx.
TAPE_AMX void data_image(const Geometry& g, const DataPlan& p, const float* dT, const uint16_t* wa, float* dx,
                         DataScratch& sc) {
  const int64_t oh = g.oh(), ow = g.ow(), npos = oh * ow, q = positions32(g);
  const int64_t per_row = p.kp * 8 * p.w16, c_stride = oh * p.w16 * 4, b_stride = p.w16 * 4;
  // (1) the shifted pair layouts
  for (int64_t k = 0; k < 8; ++k)
    for (int64_t p0 = 0; p0 < npos; p0 += 16) {
      const __m512i v = pairs(_mm512_load_ps(dT + 2 * k * q + p0), _mm512_load_ps(dT + (2 * k + 1) * q + p0));
      for (int64_t oy = p0 / ow; oy < oh && oy * ow < p0 + 16; ++oy) {  // the rows lanes 0..15 reach
        const int64_t lo = std::max<int64_t>(0, oy * ow - p0), hi = std::min<int64_t>(16, oy * ow + ow - p0);
        const __mmask16 m = __mmask16(first(hi) & ~first(lo));
        // lane l (position ox = p0 + l − oy·ow of row oy) goes to ix = ox + kx
        uint32_t* row = sc.bv.data() + oy * per_row + k * p.w16 + p0 - oy * ow;
        for (int64_t kx = 0; kx < g.kw; ++kx) _mm512_mask_storeu_epi32(row + kx * (8 * p.w16 + 1), m, v);
      }
    }
  // (2) colx tiles: per output row and 16 positions, C[rt] += A(m, rt) · B(m) over
  // kernel-column pairs m, up to 4 row tiles at a time sharing each B load
  const int64_t col_rows = 16 * oh * p.w16;  // colx floats per tile of 16 rows
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t xt = 0; xt < p.xt; ++xt) {
      const uint32_t* b = sc.bv.data() + oy * per_row + xt * 16;
      float* c0 = sc.colx.data() + oy * p.w16 + xt * 16;
      for (int64_t r0 = 0; r0 < p.rt; r0 += 4) {
        const int64_t rn = std::min<int64_t>(4, p.rt - r0);
#define ZERO_C(t) TILE_ZERO(t)
        TILE_RUN(rn, ZERO_C);
#undef ZERO_C
        for (int64_t m = 0; m < p.kp / 2; ++m) {
          const uint16_t* a = wa + (m * p.rows + r0 * 16) * 32;
          TILE_LOAD(4, b + m * 16 * p.w16, b_stride);
          TILE_LOAD(5, a, 64);
          TILE_DP(0, 5, 4);
          if (rn > 1) {
            TILE_LOAD(6, a + 512, 64);
            TILE_DP(1, 6, 4);
          }
          if (rn > 2) {
            TILE_LOAD(5, a + 1024, 64);
            TILE_DP(2, 5, 4);
          }
          if (rn > 3) {
            TILE_LOAD(6, a + 1536, 64);
            TILE_DP(3, 6, 4);
          }
        }
#define STORE_C(t) TILE_STORE(t, c0 + (r0 + t) * col_rows, c_stride)
        TILE_RUN(rn, STORE_C);
#undef STORE_C
      }
    }
  // (3) dx rows: the sums over the kernel rows
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t iy = 0; iy < g.h; ++iy) {
      const int64_t ky0 = std::max<int64_t>(0, iy - oh + 1), ky1 = std::min(g.kh, iy + 1);  // 0 <= iy − ky < oh
      float* out = dx + (c * g.h + iy) * g.w;
      for (int64_t x0 = 0; x0 < g.w; x0 += 16) {
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (int64_t ky = ky0; ky < ky1; ++ky) {
          const __m512 v = _mm512_load_ps(sc.colx.data() + ((c * g.kh + ky) * oh + iy - ky) * p.w16 + x0);
          if (ky % 2) s1 = _mm512_add_ps(s1, v);
          else s0 = _mm512_add_ps(s0, v);
        }
        _mm512_mask_storeu_ps(out + x0, first(g.w - x0), _mm512_add_ps(s0, s1));
      }
    }
}

// --- backward-weights ---------------------------------------------------------

/// Images whose copies a thread makes before sweeping its accumulator tiles over them.
constexpr int64_t kChunk = 8;

/// A group of a B tile's columns taken from at most two input planes by one word
/// permute: columns n of the tile whose channel is a or b get, per pair of
/// positions, their two values (words 2n, 2n + 1) from a window of 32 words of
/// plane a (indices 0..31) or plane b (32..63).
struct PermuteGroup {
  int32_t a = 0, b = 0;           ///< the two channels (b = a when one)
  uint32_t mask = 0;              ///< the words of the tile row it writes
  std::array<uint16_t, 32> idx{};  ///< per word: kx + (0 or 1), + 32 for plane b
};

/// The sizes of the weights pass for one geometry. Positions are the output's,
/// p = oy·ow + ox (ow even: a pair of positions never straddles two rows), and
/// the input is laid out over an h × ow grid of the same kind, so that kernel
/// row ky is a shift by ky·ow positions: ky·ow/2 pair rows of 64 bytes, whole
/// cache lines.
struct WeightsPlan {
  int64_t rows = 0;   ///< (c, kx) columns of dw: c · kw
  int64_t rt = 0;     ///< tiles of 16 such columns
  int64_t tiles = 0;  ///< C tiles: kh · rt
  int64_t q = 0;      ///< output positions, rounded to the tile product's 32
  int64_t pj = 0;     ///< pair rows of the input copy per column tile (the grid's, rounded to 16)
  int64_t xv = 0;     ///< bf16 per image's input copy: rt × pj pairs × 16 columns × 2
  int64_t dt = 0;     ///< bf16 per image's transposed gradient: 16 filters × q
  int64_t plane = 0;  ///< bf16 per input plane of the converted image (32 zeros past its end)
  std::vector<std::vector<PermuteGroup>> groups;  ///< per column tile
};

WeightsPlan weights_plan(const Geometry& g) {
  WeightsPlan p;
  const int64_t ow = g.ow();
  p.rows = g.c * g.kw;
  p.rt = (p.rows + 15) / 16;
  p.tiles = g.kh * p.rt;
  p.q = positions32(g);
  p.pj = round16(std::max(g.h * ow, p.q + (g.kh - 1) * ow) / 2);
  p.xv = p.rt * p.pj * 32;
  p.dt = 16 * p.q;
  p.plane = g.h * g.w + 32;
  p.groups.resize(size_t(p.rt));
  for (int64_t n = 0; n < p.rows; ++n) {
    const int32_t c = int32_t(n / g.kw), kx = int32_t(n % g.kw), col = int32_t(n % 16);
    auto& gs = p.groups[size_t(n / 16)];
    if (gs.empty() || (gs.back().b != gs.back().a && gs.back().b != c)) gs.push_back({c, c, 0, {}});
    PermuteGroup& grp = gs.back();
    if (c != grp.a) grp.b = c;
    const uint16_t base = uint16_t(kx + (c == grp.a ? 0 : 32));
    grp.idx[size_t(2 * col)] = base, grp.idx[size_t(2 * col + 1)] = uint16_t(base + 1);
    grp.mask |= 3u << (2 * col);
  }
  return p;
}

/// One image's operands. xv: per tile of 16 (c, kx) columns, the input in pair
/// layout [pair j][n][2] = x[c][y·w + x + kx], x[c][y·w + x + 1 + kx] for grid
/// position 2j = y·ow + x — per pair row one or a few word permutes of 32-word
/// windows of the converted planes xb (0 past the grid: rows never written).
/// dt: the transposed gradient dT in bf16. db += Σ dc. False when x holds a
/// non-finite value.
TAPE_AMX bool prepare_image(const Geometry& g, const WeightsPlan& p, const float* x, const float* dc, const float* dT,
                            uint16_t* xb, uint16_t* xv, uint16_t* dt, __m512& db) {
  const int64_t hw = g.h * g.w, oh = g.oh(), ow = g.ow(), npos = oh * ow;
  if (!to_bf16(x, g.c, hw, p.plane, xb)) return false;
  for (int64_t j = 0, y = 0, at = 0; y < g.h; ++j) {  // at: the pair's first input, y·w + x
    for (int64_t rt = 0; rt < p.rt; ++rt) {
      __m512i row = _mm512_setzero_si512();
      for (const PermuteGroup& grp : p.groups[size_t(rt)]) {
        const __m512i a = _mm512_loadu_si512(xb + grp.a * p.plane + at), b = _mm512_loadu_si512(xb + grp.b * p.plane + at);
        const __m512i v = _mm512_permutex2var_epi16(a, _mm512_loadu_si512(grp.idx.data()), b);
        row = _mm512_mask_mov_epi16(row, grp.mask, v);
      }
      _mm512_store_si512(xv + (rt * p.pj + j) * 32, row);
    }
    at += 2;
    if (at - y * g.w == ow) ++y, at = y * g.w;
  }
  for (int64_t i = 0; i < 16 * p.q; i += 16)
    _mm256_store_si256(reinterpret_cast<__m256i*>(dt + i), __m256i(_mm512_cvtneps_pbh(_mm512_load_ps(dT + i))));
  __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t i = 0; i < npos; ++i) s[i % 4] = _mm512_add_ps(s[i % 4], _mm512_loadu_ps(dc + i * 16));
  db = _mm512_add_ps(db, _mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
  return true;
}

/// C tiles [t0, t0 + tn) (tn ≤ 5, in tmm0..4; tile t = (ky, rt) = (t / rt, t % rt)
/// holds dw[o][(c, kx) of rt] for kernel row ky) += the chunk's products: per 32
/// positions, A = dt (16 filters × 32 positions, tmm5), and per tile B = the
/// input's pairs shifted by ky·ow positions (tmm6/7 in turn). Every operand
/// starts on a cache line (the pair rows are 64 bytes).
TAPE_AMX void sweep(const Geometry& g, const WeightsPlan& p, int64_t t0, int64_t tn, int64_t images,
                    const uint16_t* xv, const uint16_t* dt, float* acc) {
  int64_t b_at[5] = {};  // per tile: its pair rows' first (elements), before k0
  for (int64_t s = 0; s < tn; ++s) {
    const int64_t t = t0 + s, ky = t / p.rt, rt = t % p.rt;
    b_at[s] = (rt * p.pj + ky * g.ow() / 2) * 32;
  }
#define LOAD_C(t) TILE_LOAD(t, acc + (t0 + t) * 256, 64)
  TILE_RUN(tn, LOAD_C);
#undef LOAD_C
  const int64_t a_stride = p.q * 2;
  for (int64_t i = 0; i < images; ++i) {
    const uint16_t* b = xv + i * p.xv;
    for (int64_t k0 = 0; k0 < p.q; k0 += 32) {
      TILE_LOAD(5, dt + i * p.dt + k0, a_stride);
      const int64_t kb = k0 / 2 * 32;
      TILE_LOAD(6, b + b_at[0] + kb, 64);
      TILE_DP(0, 5, 6);
      if (tn > 1) {
        TILE_LOAD(7, b + b_at[1] + kb, 64);
        TILE_DP(1, 5, 7);
      }
      if (tn > 2) {
        TILE_LOAD(6, b + b_at[2] + kb, 64);
        TILE_DP(2, 5, 6);
      }
      if (tn > 3) {
        TILE_LOAD(7, b + b_at[3] + kb, 64);
        TILE_DP(3, 5, 7);
      }
      if (tn > 4) {
        TILE_LOAD(6, b + b_at[4] + kb, 64);
        TILE_DP(4, 5, 6);
      }
    }
  }
#define STORE_C(t) TILE_STORE(t, acc + (t0 + t) * 256, 64)
  TILE_RUN(tn, STORE_C);
#undef STORE_C
}

/// One thread's scratch for the backward-weights pass: kChunk images' operands.
struct WeightsScratch {
  // the pair rows past the grid and xb's plane tails stay 0
  Lines<uint16_t> xv, dt, xb;
  WeightsScratch(const Geometry& g, const WeightsPlan& p)
      : xv(size_t(kChunk * p.xv), 0), dt(size_t(kChunk * p.dt)), xb(size_t(g.c * p.plane + 32), 0) {}
};

/// A chunk of up to kChunk images (x: their inputs, dc: their gradients, dT the
/// same transposed) into the partial sums acc (tiles × 16 × 16) and db; false at
/// a non-finite input.
TAPE_AMX bool weights_chunk(const Geometry& g, const WeightsPlan& p, int64_t images, const float* x, const float* dc,
                            const float* dT, float* acc, __m512& db, WeightsScratch& sc) {
  const int64_t x_image = g.c * g.h * g.w, dc_image = g.oh() * g.ow() * 16;
  for (int64_t i = 0; i < images; ++i)
    if (!prepare_image(g, p, x + i * x_image, dc + i * dc_image, dT + i * 16 * p.q, sc.xb.data(),
                       sc.xv.data() + i * p.xv, sc.dt.data() + i * p.dt, db))
      return false;
  for (int64_t t0 = 0; t0 < p.tiles; t0 += 5)
    sweep(g, p, t0, std::min<int64_t>(5, p.tiles - t0), images, sc.xv.data(), sc.dt.data(), acc);
  return true;
}

/// Adds the threads' partial sums (acc: per thread tiles × 16 × 16 in [o][(c, kx)]
/// order; dbs: per thread 16) to dw (OIHW) and db (may be null).
void add_partials(const Geometry& g, const WeightsPlan& p, int64_t threads, const float* acc, const float* dbs,
                  float* dw, float* db) {
  const int64_t per = p.tiles * 256;
  for (int64_t t = 0; t < p.tiles; ++t) {
    const int64_t ky = t / p.rt, r0 = (t % p.rt) * 16;
    for (int64_t r = 0; r < 16 && r0 + r < p.rows; ++r) {
      const int64_t c = (r0 + r) / g.kw, kx = (r0 + r) % g.kw;
      for (int64_t o = 0; o < g.oc; ++o) {
        double s = 0;
        for (int64_t th = 0; th < threads; ++th) s += acc[size_t(th * per + t * 256 + o * 16 + r)];
        dw[((o * g.c + c) * g.kh + ky) * g.kw + kx] += float(s);
      }
    }
  }
  if (db)
    for (int64_t o = 0; o < g.oc; ++o) {
      double s = 0;
      for (int64_t th = 0; th < threads; ++th) s += dbs[size_t(th * 16 + o)];
      db[o] += float(s);
    }
}

/// Where the conv output's gradient comes from: given (dc, nChw16c), or the
/// pooling's backward of gy (NCHW) by code, computed per chunk.
struct Gradient {
  const float* dc = nullptr;
  const float* gy = nullptr;
  const uint8_t* code = nullptr;
};

/// Images [begin, end) of a backward on one thread, kChunk at a time: the
/// chunk's gradient (from `from`) transposed once to [o][p], kept in L1/L2 for
/// the weights pass (wp null: none; partial sums into acc and db) and the data
/// pass (dp null: none; dx); false (stop set) at a non-finite input.
TAPE_AMX void backward_thread(const Geometry& g, const DataPlan* dp, const WeightsPlan* wp, int64_t begin, int64_t end,
                              const float* x, const Gradient& from, const uint16_t* wa, float* dx, float* acc,
                              float* db, std::atomic<bool>& stop) {
  const int64_t oh = g.oh(), ow = g.ow(), npos = oh * ow, q = positions32(g);
  const int64_t x_image = g.c * g.h * g.w, dc_image = npos * 16;
  const int64_t y_image = g.oc * (oh / 2) * (ow / 2), code_image = direct_block::pool16c_codes(1, g.oc, oh, ow);
  Lines<float> pooled(size_t(from.dc ? 0 : kChunk * dc_image)), dT(size_t(kChunk * 16 * q), 0.f);  // past npos: 0
  std::optional<WeightsScratch> ws;
  std::optional<DataScratch> ds;
  if (wp) ws.emplace(g, *wp);
  if (dp) ds.emplace(g, *dp);
  const Tiles tiles(square_tiles());
  __m512 dbv = _mm512_setzero_ps();
  for (int64_t i0 = begin; i0 < end && !stop.load(std::memory_order_relaxed); i0 += kChunk) {
    const int64_t images = std::min(kChunk, end - i0);
    const float* dc = from.dc ? from.dc + i0 * dc_image : pooled.data();
    if (!from.dc)
      direct_block::pool16c_backward(images, g.oc, oh, ow, from.gy + i0 * y_image, from.code + i0 * code_image,
                                     pooled.data());
    for (int64_t i = 0; i < images; ++i) transpose_block(dc + i * dc_image, npos, 16, q, dT.data() + i * 16 * q);
    if (wp && !weights_chunk(g, *wp, images, x + i0 * x_image, dc, dT.data(), acc, dbv, *ws)) {
      stop.store(true, std::memory_order_relaxed);
      break;
    }
    if (dp)
      for (int64_t i = 0; i < images; ++i)
        data_image(g, *dp, dT.data() + i * 16 * q, wa, dx + (i0 + i) * x_image, *ds);
  }
  _mm512_storeu_ps(db, dbv);
}

/// The backward passes asked for (dx null: no data pass; dw null: no weights
/// pass) over g.n images on the thread team; `calls` counts it when it runs.
/// False, with dw and db untouched, at a non-finite weight (data pass) or input
/// (weights pass).
bool run_backward(const Geometry& g, const float* x, const Gradient& from, const float* w, float* dx, float* dw,
                  float* db, std::atomic<int64_t>& calls) {
  const DataPlan dp = data_plan(g);
  const WeightsPlan wp = weights_plan(g);
  Lines<uint16_t> wa;
  if (dx && !data_weights(g, dp, w, wa)) return false;
  calls.fetch_add(1, std::memory_order_relaxed);
  backend::sync_num_threads();
  const int64_t threads = std::max(1, omp_get_max_threads()), per = wp.tiles * 256;
  Lines<float> acc(size_t(dw ? threads * per : 0), 0.f);
  std::vector<float> dbs(size_t(threads * 16), 0.f);
  std::atomic<bool> stop{false};
  backend::parallel_ranges(g.n, [&](int64_t begin, int64_t end) {
    const int64_t t = omp_get_thread_num();  // its own partial sums
    backward_thread(g, dx ? &dp : nullptr, dw ? &wp : nullptr, begin, end, x, from, wa.data(), dx,
                    dw ? acc.data() + t * per : nullptr, dbs.data() + t * 16, stop);
  }, 16 * g.c * g.kh * g.kw * g.oh() * g.ow());
  if (stop.load()) return false;
  if (dw) add_partials(g, wp, threads, acc.data(), dbs.data(), dw, db);
  return true;
}

}  // namespace

bool available() {
  const char* e = std::getenv("TAPE_AMX_CONV");
  return !(e && std::strcmp(e, "0") == 0) && tile_state();
}

bool takes_forward(const Geometry& g) {
  if (g.n < 1 || g.c < 1 || g.oc < 1 || g.oc > 16 || g.h < 1 || g.w < 1 || g.kh < 1 || g.kw < 1) return false;
  if (g.ph != 0 || g.pw != 0 || g.oh() < 2 || g.ow() < 2 || g.kw > 16) return false;
  const ForwardPlan p = forward_plan(g);
  return p.ks <= 4 && p.xr * 2 <= (int64_t(1) << 20);
}

bool forward(const Geometry& g, const float* x, const float* w, const float* b, float* y, uint8_t* code) {
  g_forward_calls.fetch_add(1, std::memory_order_relaxed);
  const ForwardPlan p = forward_plan(g);
  Lines<uint16_t> wb;
  forward_weights(g, p, w, wb);
  std::atomic<bool> stop{false};
  backend::parallel_ranges(g.n, [&](int64_t begin, int64_t end) {
    forward_range(g, p, begin, end, x, wb.data(), b, y, code, stop);
  }, 16 * g.c * g.kh * g.kw * g.oh() * g.ow());
  return !stop.load();
}

bool takes_backward_data(const Geometry& g) {
  return g.oc <= 16 && g.kw <= 16 && direct_block::takes_backward_data(g);
}

bool backward_data_16c(const Geometry& g, const float* dc, const float* w, float* dx) {
  return run_backward(g, nullptr, Gradient{dc}, w, dx, nullptr, nullptr, g_data_calls);
}

bool takes_backward_weights(const Geometry& g) {
  if (g.n < 1 || g.c < 1 || g.oc < 1 || g.oc > 16 || g.h < 1 || g.w < 1 || g.kh < 1 || g.kw < 1) return false;
  if (g.ph != 0 || g.pw != 0 || g.oh() < 1 || g.ow() < 1 || g.ow() % 2 != 0 || g.kw > 31) return false;
  const WeightsPlan p = weights_plan(g);
  return p.tiles <= 64 && kChunk * (p.xv + p.dt) * 2 <= (int64_t(1) << 20);
}

bool backward_weights_16c(const Geometry& g, const float* x, const float* dc, float* dw, float* db) {
  return run_backward(g, x, Gradient{dc}, nullptr, nullptr, dw, db, g_weights_calls);
}

bool takes_backward(const Geometry& g) {
  return amx_block::takes_backward_data(g) && amx_block::takes_backward_weights(g) && g.oh() >= 2 && g.ow() >= 2;
}

bool backward(const Geometry& g, const float* x, const float* gy, const uint8_t* code, const float* w, float* dx,
              float* dw, float* db) {
  return run_backward(g, x, Gradient{nullptr, gy, code}, w, dx, dw, db, g_backward_calls);
}

int64_t backward_calls() { return g_backward_calls.load(std::memory_order_relaxed); }
int64_t forward_calls() { return g_forward_calls.load(std::memory_order_relaxed); }
int64_t backward_data_calls() { return g_data_calls.load(std::memory_order_relaxed); }
int64_t backward_weights_calls() { return g_weights_calls.load(std::memory_order_relaxed); }

}  // namespace tape::detail::amx_block
