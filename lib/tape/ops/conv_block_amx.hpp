#pragma once
// Internal (not installed): AMX bf16 kernels for the fused conv block's
// passes under autocast (LeNet's conv2: 6 → 16 channels, 5×5), where
// oneDNN 2.6's AMX kernels are no faster than f32 (conv_block_amx.cpp's note).
// Products of bf16-rounded operands summed in f32, as every autocast product.
// conv_block.cpp calls them when available() and the takes_*() say so, and runs
// oneDNN's passes (and the f32 direct ones) otherwise.
#include <cstdint>

#include "tape/ops/conv_block_direct.hpp"

namespace tape::detail::amx_block {

using direct_block::Geometry;

/// True when this CPU has AMX-BF16 and AVX512-BF16, the kernel granted this
/// process the tile state (arch_prctl, asked once), and the environment variable
/// TAPE_AMX_CONV is not "0" (read on each call).
bool available();

/// True when forward takes g: no padding, at most 16 filters, kernels at most 16
/// wide, a conv output of at least 2 × 2, and small per-image scratch.
bool takes_forward(const Geometry& g);

/// The block's forward as direct_block::pool16c_forward after the convolution:
/// y (NCHW) = max_pool2x2(relu(conv(x, w) + b)) with x and w rounded to bf16 and
/// the products summed in f32 (b may be null), and code (may be null) in
/// pool16c_forward's blocked order. False, with y and code unspecified, when x
/// holds a non-finite value (then the caller runs the composition, as for the
/// other paths, whose pooling would drop NaN where PyTorch propagates it).
bool forward(const Geometry& g, const float* x, const float* w, const float* b, float* y, uint8_t* code);

/// True when backward_data_16c takes g: what direct_block::takes_backward_data
/// takes, with at most 16 filters and kernels at most 16 wide.
bool takes_backward_data(const Geometry& g);

/// dx (n × c × h × w, NCHW; overwritten) = the convolution's backward-data of dc
/// (n × 1 × oh × ow × 16, nChw16c; padding channels 0) for weights w (oc × c ×
/// kh × kw), with dc and w rounded to bf16 and the products summed in f32.
/// False, with dx untouched, when a weight is not finite (the tiles multiply
/// every weight by the zero gradient past the rows' ends; the caller runs f32).
bool backward_data_16c(const Geometry& g, const float* dc, const float* w, float* dx);

/// True when backward_weights_16c takes g: no padding, at most 16 filters, and
/// sizes whose per-image scratch stays small.
bool takes_backward_weights(const Geometry& g);

/// dw (oc × c × kh × kw) += Σ dc ⋆ x and db (oc, may be null) += Σ dc, with x
/// (NCHW) and dc (nChw16c) rounded to bf16 for the products (db sums dc in f32).
/// False, with dw and db untouched, when x holds a non-finite value: the wide
/// positions multiply some x by a zero gradient, which a NaN or an infinity would
/// turn into NaN, so the caller runs the f32 pass instead.
bool backward_weights_16c(const Geometry& g, const float* x, const float* dc, float* dw, float* db);

/// True when backward takes g: what both passes take, with a conv output of at
/// least 2 × 2.
bool takes_backward(const Geometry& g);

/// The block's whole backward after forward (Pooling::Direct16c): per chunk of
/// images, pool16c_backward of gy (NCHW) by code into the conv output's
/// gradient, kept in cache for backward_weights_16c's dw += and db += (dw null:
/// none) and backward_data_16c's dx (null: none). False, with dw and db
/// untouched (dx may be written), when x or w holds a non-finite value.
bool backward(const Geometry& g, const float* x, const float* gy, const uint8_t* code, const float* w, float* dx,
              float* dw, float* db);

/// Calls that ran the kernels (for tests: the path was taken).
int64_t backward_calls();
int64_t forward_calls();
int64_t backward_data_calls();
int64_t backward_weights_calls();

}  // namespace tape::detail::amx_block
