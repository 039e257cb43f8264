#pragma once
// Internal (not installed): direct AVX-512 kernels for a conv2d → ReLU → 2×2 max
// pool block whose input has few channels — LeNet's first block, where oneDNN
// 2.6 pads 6 output channels to 16 in every layout and runs at a third of the
// GEMM rate (conv_block_direct.cpp's note). conv_block.cpp calls them when
// takes() and available() say so, and runs oneDNN otherwise.
#include <cstdint>

namespace tape::detail::direct_block {

/// The block's shapes: n images of c × h × w, oc filters of kh × kw, zero padding
/// (ph, pw), stride 1, dilation 1, no groups, then ReLU and 2×2 max pooling with
/// stride 2.
struct Geometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t oc = 0, kh = 0, kw = 0;
  int64_t ph = 0, pw = 0;

  int64_t oh() const { return h + 2 * ph - kh + 1; }
  int64_t ow() const { return w + 2 * pw - kw + 1; }
  int64_t pooled_h() const { return oh() / 2; }
  int64_t pooled_w() const { return ow() / 2; }
};

/// Input channels up to which the direct kernels are used (the note in the .cpp).
constexpr int64_t kMaxChannels = 3;

/// True when this CPU has AVX-512 (F, BW, VL) and the environment variable
/// TAPE_DIRECT_CONV is not "0" (read on each call).
bool available();

/// True when the kernels take g: 1..kMaxChannels input channels, a pooled output
/// of at least 1 × 1, and sizes whose per-image scratch stays small.
bool takes(const Geometry& g);

/// y (n × oc × pooled_h × pooled_w) = max_pool2x2(relu(conv(x, w) + b)); b may be
/// null. code (may be null): per element of y, the position of its window's
/// maximum (0..3, row-major, the first of equal values as PyTorch's max pooling)
/// when y > 0, else 4 (no gradient flows there). False when x holds a non-finite
/// value: then y is unspecified and the caller runs the composition.
bool forward(const Geometry& g, const float* x, const float* w, const float* b, float* y, uint8_t* code);

/// The weight and bias gradients (dw: oc × c × kh × kw, db: oc, may be null; both
/// overwritten) from the gradient gy of y and forward's code.
void backward_weights(const Geometry& g, const float* x, const float* gy, const uint8_t* code, float* dw, float* db);

/// True when backward_data_16c takes g: no padding, an output of at most 4 096
/// positions, input rows of at most 64 values (any channel counts).
bool takes_backward_data(const Geometry& g);

/// dx (n × c × h × w, NCHW; overwritten) = the convolution's backward-data of dc,
/// the gradient of its output in oneDNN's nChw16c layout (n × ⌈oc/16⌉ × oh × ow ×
/// 16), for weights w (oc × c × kh × kw). The fused block's backward calls it
/// with the pooling backward's blocked output (conv_block_direct.cpp's note).
void backward_data_16c(const Geometry& g, const float* dc, const float* w, float* dx);

/// Elements of the code array pool16c_forward writes for n images of oc channels
/// and an oh × ow conv output: n × ⌈oc/16⌉ × ⌊oh/2⌋·⌊ow/2⌋ × 16 bytes.
int64_t pool16c_codes(int64_t n, int64_t oc, int64_t oh, int64_t ow);

/// 2×2 max pooling with stride 2 of c, a ReLU'd conv output in nChw16c (n ×
/// ⌈oc/16⌉ × oh × ow × 16, padding channels 0): y (NCHW, n × oc × ⌊oh/2⌋ ×
/// ⌊ow/2⌋) and, unless code is null, per pooled value in the blocked order (n ×
/// ⌈oc/16⌉ × ⌊oh/2⌋·⌊ow/2⌋ × 16) its window's position as forward's code (0..3,
/// the first of equal values; 4 where y = 0).
void pool16c_forward(int64_t n, int64_t oc, int64_t oh, int64_t ow, const float* c, float* y, uint8_t* code);

/// dc (nChw16c like c; overwritten, 0 off the windows' maxima and in padding
/// channels) = the gradient gy of pool16c_forward's y (NCHW) routed by its code.
void pool16c_backward(int64_t n, int64_t oc, int64_t oh, int64_t ow, const float* gy, const uint8_t* code, float* dc);

/// to (NCHW, n × c × hw) = from (nChw16c, n × ⌈c/16⌉ × hw × 16); positive (may be
/// null) receives a byte to[i] > 0 per element. conv_impl::nchw16c_to_nchw
/// calls it when available().
void nchw16c_to_nchw(const float* from, float* to, int64_t n, int64_t c, int64_t hw, uint8_t* positive);

/// Forward calls that ran the direct kernels (for tests: the path was taken).
int64_t calls();
/// backward_data_16c calls (for tests).
int64_t backward_data_calls();
/// pool16c_forward calls (for tests).
int64_t pool16c_calls();

}  // namespace tape::detail::direct_block
