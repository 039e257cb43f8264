#pragma once
/// \file Internal (not installed): the pieces conv.cpp (conv2d, conv_transpose2d)
/// and conv_block.cpp (the fused conv2d → ReLU → max_pool2d) share — how a pass
/// picks among its oneDNN offers, how a batch is cut into slices, scratch memory,
/// and the nChw16c → NCHW loop.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "tape/backend/dnnl.hpp"
#include "tape/ops/conv_block_direct.hpp"
#include "tape/ops/op_util.hpp"

namespace tape::detail::conv_impl {

/// 3 for AMX kernels, 2 for other avx512-class kernels, 1 for narrower-ISA jit, 0
/// for gemm and reference. (AMX's bf16 tiles multiply ~2× faster than AVX-512's
/// vdpbf16ps: conv2 of LeNet, 1 250 images, forward 0.70 ms on brgconv AMX vs
/// 3.1 ms on jit_bf16 and 1.2 ms in f32.)
inline int impl_rank(const std::string& impl) {
  if (impl.rfind("ref", 0) == 0 || impl.find("gemm:") != std::string::npos) return 0;
  if (impl.find("amx") != std::string::npos) return 3;
  return impl.find("avx512") != std::string::npos ? 2 : 1;
}

/// The pd with the best-ranked implementation among make_pd(o) for the offers o
/// (the earliest on ties); offers oneDNN has no implementation for are skipped.
/// `op` and `pass` name the failure when no offer has one.
template <class Pd, class O, class MakePd>
Pd best_pd(std::initializer_list<O> offers, MakePd&& make_pd, const char* op, const char* pass, const Shape& x,
           const Shape& w) {
  std::optional<Pd> best;
  int best_rank = -1;
  for (const O& o : offers) {
    try {
      Pd pd = make_pd(o);
      const int r = impl_rank(pd.impl_info_str());
      if (r > best_rank) best = pd, best_rank = r;
    } catch (const dnnl::error&) {  // no implementation for this layout set: try the next
    }
  }
  TAPE_CHECK(best, op, ": oneDNN has no ", pass, " implementation for input ", x, " and weight ", w);
  return *best;
}

/// c rounded up to whole blocks of 16 channels (the nChw16c padding).
inline int64_t padded16(int64_t c) { return (c + 15) / 16 * 16; }

/// Images per call when a batch of n images, `per_image` bytes of staging each,
/// is cut into slices of at most `budget` bytes (at least one image a call); the
/// slices are as even as possible, so at most two slice shapes are built.
inline int64_t images_per_slice(int64_t n, int64_t per_image, int64_t budget) {
  const int64_t most = std::clamp<int64_t>(budget / per_image, 1, n);
  const int64_t calls = (n + most - 1) / most;
  return (n + calls - 1) / calls;
}

/// Calls f(first image, slice index, images in the slice) for each slice of a
/// batch of n images, `per` images a slice.
template <class F>
void for_each_slice(int64_t n, int64_t per, F&& f) {
  int64_t i = 0;
  for (int64_t n0 = 0; n0 < n; n0 += per, ++i) f(n0, i, std::min(per, n - n0));
}

/// True when d is the f32 nChw16c layout of the 4-D shape s.
inline bool is_nchw16c(const dnnl::memory::desc& d, const Shape& s) {
  return s.size() == 4 &&
         d == dnnl::memory::desc(backend::dims(s), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nChw16c);
}

/// A oneDNN memory over p (oneDNN only reads inputs).
inline dnnl::memory mem_at(const dnnl::memory::desc& d, const float* p) {
  return dnnl::memory(d, backend::engine(), const_cast<float*>(p));
}

/// A scratch memory of layout d from the caching allocator (kept in `owner`).
inline dnnl::memory scratch(const dnnl::memory::desc& d, std::vector<Tensor>& owner) {
  owner.push_back(backend::buffer_for(d));
  return dnnl::memory(d, backend::engine(), owner.back().data<float>());
}

// Note: oneDNN 2.6's reorder nChw16c → NCHW runs `jit:uni` at half the speed of
// this loop when fewer than 16 channels are real (conv1: 6 of 16; a slice of
// 167 images takes 0.19 vs 0.09 ms cache-hot, and conv1's forward + backward
// went from ~8.2 to ~6.5 ms with it). Reading one 16-float pixel at a time and
// scattering its channels keeps the reads sequential. With all 16 channels real
// oneDNN's `jit:blk` is faster, and the other direction (which must also zero
// the padding) is faster in oneDNN too: both stay there. The fused block also
// derives its ReLU mask on the way (`positive`).
// On a CPU with AVX-512 the direct kernels' version runs instead: 16 pixels at a
// time through a register transpose, contiguous stores (the unfused conv1
// forward + backward at batch 1000: this loop was a fifth of its time).
/// to (NCHW) = from (nChw16c) for n images of c channels and hw pixels; when
/// `positive` is given, it receives to[i] > 0 per element.
inline void nchw16c_to_nchw(const float* from, float* to, int64_t n, int64_t c, int64_t hw,
                            uint8_t* positive = nullptr) {
  if (direct_block::available()) return direct_block::nchw16c_to_nchw(from, to, n, c, hw, positive);
  const int64_t blocks = (c + 15) / 16;
  parallel_for(n, [&](int64_t i) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = from + (i * blocks + b) * hw * 16;
      const int64_t at = (i * c + b * 16) * hw, cs = std::min<int64_t>(16, c - b * 16);
      float* dst = to + at;
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t k = 0; k < cs; ++k) dst[k * hw + p] = src[p * 16 + k];
      if (positive)
        for (int64_t e = 0; e < cs * hw; ++e) positive[at + e] = dst[e] > 0.f;
    }
  }, /*cost=*/blocks * 16 * hw);
}

}  // namespace tape::detail::conv_impl
