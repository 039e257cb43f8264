// conv2d → ReLU → max_pool2d as one op (LeNet's conv blocks), on oneDNN's
// convolution (ReLU as a post-op) and pooling primitives, batch slice by batch
// slice so that the blocked intermediates never leave the cache.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "tape/backend/dnnl.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/core/autocast.hpp"
#include "tape/ops/conv_block_amx.hpp"
#include "tape/ops/conv_block_direct.hpp"
#include "tape/ops/conv_impl.hpp"
#include "tape/ops/fused.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {
using dnnl::memory;
using dnnl::prop_kind;
using Tag = memory::format_tag;
using conv_impl::mem_at;
using conv_impl::scratch;

// Note: why a fused op rather than a layout tag on tensors. oneDNN's fast
// convolutions write blocked nChw16c, which pads LeNet's 6 channels to 16: conv1's
// output at batch 2500 is 92 MB blocked (35 MB plain), and ReLU, pooling and their
// backward passes each streamed it through memory, plus a reorder each way. A
// layout tag would drop the reorders but still stream the full-batch blocked
// tensor. Here each slice of the batch runs conv (+ ReLU post-op) → pool while
// the conv's blocked output (a few MB) is in cache; only the pooled output (4×
// smaller) is written in NCHW. Backward needs no ReLU mask tensor: max pooling
// sends each window's gradient to its arg max p, and relu'(conv_p) = [pooled > 0]
// (the pooled value is relu(conv_p)), so a byte per pooled element suffices; with
// an all-negative window the pooled value is 0 and the gradient dies, as relu'(0)
// = 0 does in the composition.

/// Everything that identifies a fused block: input, weight, conv output, pooled
/// output, conv stride and padding, pool kernel and stride, bias.
struct BlockShape {
  Shape x, w, c, y;
  IntPair stride = 1, padding = 0;
  int64_t pool_k = 2, pool_s = 2;
  bool bias = false;
  /// The type the convolution's passes multiply in (src, weights, diff_dst): bf16
  /// when the forward ran under autocast. The conv output, the pooling and every
  /// gradient stay f32.
  memory::data_type dt = memory::data_type::f32;

  memory::dims strides() const { return {stride.h, stride.w}; }
  memory::dims pads() const { return {padding.h, padding.w}; }
  int64_t x_image() const { return x[1] * x[2] * x[3]; }
  int64_t y_image() const { return y[1] * y[2] * y[3]; }
  dn::Key key(dn::OpId op, prop_kind pk) const {
    dn::Key k{int64_t(op), int64_t(pk), stride.h, stride.w, padding.h, padding.w, pool_k, pool_s, bias, int64_t(dt)};
    k.insert(k.end(), x.begin(), x.end());
    k.insert(k.end(), w.begin(), w.end());
    return k;
  }
};

memory::desc f32_md(const Shape& s, Tag t) { return memory::desc(dn::dims(s), memory::data_type::f32, t); }
/// A descriptor of an operand the convolution multiplies (src, weights, diff_dst): in s.dt.
memory::desc op_md(const BlockShape& s, const Shape& shape, Tag t) { return memory::desc(dn::dims(shape), s.dt, t); }
/// The plain (NCHW) layout of such an operand (dn::plain_md in f32).
memory::desc op_plain(const BlockShape& s, const Shape& shape) { return dn::md(shape, contiguous_strides(shape), s.dt); }
/// The conv output's layout c as the gradient diff_dst the backward passes read: in s.dt.
memory::desc op_like(const BlockShape& s, const memory::desc& c) {
  if (s.dt == memory::data_type::f32) return c;
  for (Tag t : {Tag::nChw16c, Tag::nhwc, Tag::nchw})
    if (c == f32_md(s.c, t)) return op_md(s, s.c, t);
  return op_md(s, s.c, Tag::any);
}
using conv_impl::is_nchw16c;

/// The layouts a pass is offered for its activations: the input side (src /
/// diff_src) and the output side (dst / diff_dst).
struct Layouts {
  memory::desc in, out;
};

/// The pd of the best-ranked implementation among make(offer) (conv_impl::best_pd).
template <class Pd, class Make>
Pd best_of(std::initializer_list<Layouts> offers, Make&& make, const BlockShape& s, const char* pass) {
  return conv_impl::best_pd<Pd>(offers, make, "conv2d_relu_max_pool2d", pass, s.x, s.w);
}

/// True when layouts a and b of shape s place every element at the same byte:
/// equal, or nChw16c and NHWC with exactly 16 channels.
bool same_bytes(const memory::desc& a, const memory::desc& b, const Shape& s) {
  if (a == b) return true;
  if (s.size() != 4 || s[1] != 16 || a.data_type() != b.data_type()) return false;
  const auto is = [&](const memory::desc& d, Tag t) { return d == memory::desc(dn::dims(s), a.data_type(), t); };
  return (is(a, Tag::nChw16c) && is(b, Tag::nhwc)) || (is(a, Tag::nhwc) && is(b, Tag::nChw16c));
}

/// A reorder from → to, or none when the layouts coincide.
std::optional<dnnl::reorder> reorder_if(const memory::desc& from, const memory::desc& to) {
  if (from == to) return std::nullopt;
  return dnnl::reorder(dnnl::reorder::primitive_desc(dn::engine(), from, dn::engine(), to, dn::attr()));
}

// --- own layout loops ---------------------------------------------------------
// Note: oneDNN 2.6 reorders nChw16c ↔ NCHW with fewer than 16 real channels at
// about half the speed of a loop reading one 16-float pixel at a time
// (conv_impl::nchw16c_to_nchw, which also produces the ReLU mask on the way);
// the loop below goes the other way and applies the mask.

/// to (nChw16c, padding channels zero) = from (NCHW) · positive, per element.
void to_16c_masked(const float* from, const uint8_t* positive, float* to, int64_t n, int64_t c, int64_t hw) {
  const int64_t blocks = (c + 15) / 16;
  parallel_for(n, [&](int64_t i) {
    for (int64_t b = 0; b < blocks; ++b) {
      float* dst = to + (i * blocks + b) * hw * 16;
      const int64_t at = (i * c + b * 16) * hw, cs = std::min<int64_t>(16, c - b * 16);
      const float* src = from + at;
      const uint8_t* pos = positive + at;
      for (int64_t p = 0; p < hw; ++p) {
        for (int64_t k = 0; k < cs; ++k) dst[p * 16 + k] = pos[k * hw + p] ? src[k * hw + p] : 0.f;
        for (int64_t k = cs; k < 16; ++k) dst[p * 16 + k] = 0.f;
      }
    }
  }, /*cost=*/blocks * 16 * hw);
}

/// True when every one of p[0, n) is finite: v·0 is 0 for finite v and NaN
/// otherwise, so the sum is 0 exactly then. (A function of its own: inside the
/// parallel lambda GCC 12 left the loop scalar, ~17 ms a LeNet epoch.)
[[gnu::noinline]] bool finite_range(const float* p, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += p[i] * 0.f;
  return s == 0.f;
}

/// True when every one of p[0, n) is finite.
bool all_finite(const float* p, int64_t n) {
  std::atomic<bool> bad{false};
  parallel_ranges(n, [&](int64_t begin, int64_t end) {
    if (!finite_range(p + begin, end - begin)) bad.store(true, std::memory_order_relaxed);
  });
  return !bad.load(std::memory_order_relaxed);
}

// --- primitives -----------------------------------------------------------------

/// Forward of one slice shape: conv (+ ReLU post-op) into a blocked tensor, max
/// pooling on it, and the bridges from / to the plain tensors.
struct Forward {
  dnnl::convolution_forward::primitive_desc conv_pd;
  dnnl::convolution_forward conv;
  dnnl::pooling_forward::primitive_desc pool_pd;
  dnnl::pooling_forward pool;
  std::optional<dnnl::reorder> src_in, weights_in, pooled_out;  ///< plain → chosen, chosen → plain
  /// The conv output's layout as the pooling and the backward passes see it:
  /// conv_pd's dst, except that 16-channel NHWC (what AMX kernels write) is named
  /// nChw16c — the same bytes.
  memory::desc c;
  bool pooled_16c = false;  ///< pooled_out by conv_impl::nchw16c_to_nchw (and the gradient back by to_16c_masked)
};

Forward forward_prims(const BlockShape& s, prop_kind pk) {
  return *dn::cached<Forward>(s.key(dn::OpId::ConvBlockFwd, pk), [&] {
    // memory descriptors → primitive descriptor (ReLU as a post-op) → primitive
    using Pd = dnnl::convolution_forward::primitive_desc;
    dnnl::post_ops relu;
    relu.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr = dn::attr();
    attr.set_post_ops(relu);
    const auto make = [&](const Layouts& l) {
      const auto alg = dnnl::algorithm::convolution_direct;
      const memory::desc w = op_md(s, s.w, Tag::any);
      return Pd(s.bias ? dnnl::convolution_forward::desc(pk, alg, l.in, w, dn::plain_md({s.w[0]}), l.out,
                                                         s.strides(), s.pads(), s.pads())
                       : dnnl::convolution_forward::desc(pk, alg, l.in, w, l.out, s.strides(), s.pads(), s.pads()),
                attr, dn::engine());
    };
    // Note: as in conv.cpp, a jit kernel reads few-channel plain NCHW input
    // directly; the output is blocked for the pooling either way (`any` alone may
    // pick brgconv on NHWC for inference).
    const Pd conv_pd = best_of<Pd>({{op_plain(s, s.x), f32_md(s.c, Tag::nChw16c)},
                                    {op_md(s, s.x, Tag::any), f32_md(s.c, Tag::nChw16c)},
                                    {op_md(s, s.x, Tag::any), f32_md(s.c, Tag::any)}},
                                   make, s, "forward");
    memory::desc c = conv_pd.dst_desc();
    if (same_bytes(c, f32_md(s.c, Tag::nChw16c), s.c)) c = f32_md(s.c, Tag::nChw16c);
    const dnnl::pooling_forward::desc pool_desc(pk, dnnl::algorithm::pooling_max, c, f32_md(s.y, Tag::any),
                                                {s.pool_s, s.pool_s}, {s.pool_k, s.pool_k}, {0, 0}, {0, 0});
    const dnnl::pooling_forward::primitive_desc pool_pd(pool_desc, dn::attr(), dn::engine());
    const memory::desc pooled = pool_pd.dst_desc();
    const bool pooled_16c = is_nchw16c(pooled, s.y);
    return Forward{conv_pd,
                   dnnl::convolution_forward(conv_pd),
                   pool_pd,
                   dnnl::pooling_forward(pool_pd),
                   reorder_if(dn::plain_md(s.x), conv_pd.src_desc()),
                   reorder_if(dn::plain_md(s.w), conv_pd.weights_desc()),
                   pooled_16c ? std::nullopt : reorder_if(pooled, dn::plain_md(s.y)),
                   c,
                   pooled_16c};
  });
}

/// Backward of one slice shape, without backward-data: pooling backward into the
/// conv output's blocked layout, then conv backward-weights (and bias).
struct Backward {
  dnnl::pooling_backward::primitive_desc pool_pd;
  dnnl::pooling_backward pool;
  dnnl::convolution_backward_weights::primitive_desc weights_pd;
  dnnl::convolution_backward_weights weights;
  std::optional<dnnl::reorder> src_in, diff_in, dw_out;
  std::optional<dnnl::reorder> pooled_in;  ///< plain → the pooled layout, unless it is nChw16c
};

Backward backward_prims(const BlockShape& s) {
  return *dn::cached<Backward>(s.key(dn::OpId::ConvBlockBwd, prop_kind::backward), [&] {
    const Forward f = forward_prims(s, prop_kind::forward_training);
    const memory::desc c = f.c, pooled = f.pool_pd.dst_desc();
    // pooling backward on the forward's layouts (its workspace is in them)
    const dnnl::pooling_backward::desc pool_desc(dnnl::algorithm::pooling_max, c, pooled, {s.pool_s, s.pool_s},
                                                 {s.pool_k, s.pool_k}, {0, 0}, {0, 0});
    const dnnl::pooling_backward::primitive_desc pool_pd(pool_desc, dn::attr(), dn::engine(), f.pool_pd);
    // Note: backward-weights is offered the pooling's diff_src layout as its
    // diff_dst first (no reorder at all), and `any` after: conv.cpp measured that
    // with 6 input channels NHWC src gets an avx512 kernel where `any` gets avx2.
    // Note: under autocast on an AMX machine this pass stays f32 (ws below):
    // oneDNN 2.6's AMX backward-weights for LeNet's conv2 (1 250 images) takes
    // 2.5 ms, its jit_bf16 one 2.4 ms, f32 1.6 ms (and needs no bf16 copy of x);
    // on AVX512-BF16 machines without AMX the bf16 kernel was the faster one.
    BlockShape ws = s;
    if (ws.dt == memory::data_type::bf16 && dn::amx()) ws.dt = memory::data_type::f32;
    const Forward fw = ws.dt == s.dt ? f : forward_prims(ws, prop_kind::forward_training);
    using Pd = dnnl::convolution_backward_weights::primitive_desc;
    const auto make = [&](const Layouts& l) {
      const auto alg = dnnl::algorithm::convolution_direct;
      const memory::desc dw = f32_md(s.w, Tag::any);
      return Pd(s.bias ? dnnl::convolution_backward_weights::desc(alg, l.in, dw, dn::plain_md({s.w[0]}), l.out,
                                                                  s.strides(), s.pads(), s.pads())
                       : dnnl::convolution_backward_weights::desc(alg, l.in, dw, l.out, s.strides(), s.pads(),
                                                                  s.pads()),
                dn::attr(), dn::engine(), fw.conv_pd);
    };
    const memory::desc dc = op_like(ws, c);
    const Pd weights_pd = best_of<Pd>({{op_md(ws, s.x, Tag::any), dc}, {op_md(ws, s.x, Tag::nhwc), dc},
                                       {op_plain(ws, s.x), dc}, {op_md(ws, s.x, Tag::any), op_md(ws, s.c, Tag::any)},
                                       {op_md(ws, s.x, Tag::nhwc), op_md(ws, s.c, Tag::nhwc)}},
                                      make, s, "backward-weights");
    return Backward{pool_pd,
                    dnnl::pooling_backward(pool_pd),
                    weights_pd,
                    dnnl::convolution_backward_weights(weights_pd),
                    reorder_if(dn::plain_md(s.x), weights_pd.src_desc()),
                    same_bytes(c, weights_pd.diff_dst_desc(), s.c) ? std::nullopt
                                                                   : reorder_if(c, weights_pd.diff_dst_desc()),
                    reorder_if(weights_pd.diff_weights_desc(), dn::plain_md(s.w)),
                    f.pooled_16c ? std::nullopt : reorder_if(dn::plain_md(s.y), pooled)};
  });
}

/// Conv backward-data of one slice shape, reading the blocked conv-output gradient.
struct BackwardData {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data prim;
  std::optional<dnnl::reorder> diff_in, weights_in, dx_out;
  bool dx_16c = false;  ///< dx_out by conv_impl::nchw16c_to_nchw
};

BackwardData backward_data_prims(const BlockShape& s) {
  return *dn::cached<BackwardData>(s.key(dn::OpId::ConvBlockBwdData, prop_kind::backward_data), [&] {
    const Forward f = forward_prims(s, prop_kind::forward_training);
    const memory::desc c = f.c;
    using Pd = dnnl::convolution_backward_data::primitive_desc;
    const auto make = [&](const Layouts& l) {
      return Pd(dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, l.in,
                                                      op_md(s, s.w, Tag::any), l.out, s.strides(), s.pads(), s.pads()),
                dn::attr(), dn::engine(), f.conv_pd);
    };
    // Note: with 1–3 input channels the avx512 kernel pads them to 16 and loses
    // to gemm on plain layouts (conv.cpp); otherwise blocked or NHWC.
    const memory::desc dc = op_like(s, c);
    const Pd pd = s.x[1] < 4 ? best_of<Pd>({{dn::plain_md(s.x), op_md(s, s.c, Tag::any)}}, make, s, "backward-data")
                             : best_of<Pd>({{f32_md(s.x, Tag::any), dc}, {f32_md(s.x, Tag::nhwc), dc},
                                            {f32_md(s.x, Tag::any), op_md(s, s.c, Tag::any)}},
                                           make, s, "backward-data");
    const bool dx_16c = is_nchw16c(pd.diff_src_desc(), s.x) && s.x[1] < 16;
    return BackwardData{pd,
                        dnnl::convolution_backward_data(pd),
                        same_bytes(c, pd.diff_dst_desc(), s.c) ? std::nullopt : reorder_if(c, pd.diff_dst_desc()),
                        reorder_if(dn::plain_md(s.w), pd.weights_desc()),
                        dx_16c ? std::nullopt : reorder_if(pd.diff_src_desc(), dn::plain_md(s.x)),
                        dx_16c};
  });
}

// --- slices ---------------------------------------------------------------------

// Note: a slice's staging (the blocked conv output, its gradient, the pooled
// tensors) should stay in cache between the primitives that pass it on; fewer
// images per call cost per-call overhead and thread imbalance. Measured on
// LeNet-5's blocks at batch 2500 (fwd + bwd, 2 threads): 2 MB slices 19 ms for
// conv1, 4 MB 17.5, 8–16 MB 16.4, 32 MB 17.7 (conv2 within noise); 8 MB it is.
constexpr int64_t kSliceBytes = int64_t(8) << 20;

/// Calls f(first image, slice index, shape of the slice) for each slice of the batch.
template <class F>
void for_each_slice(const BlockShape& s, F&& f) {
  const int64_t per_image = int64_t(sizeof(float)) * conv_impl::padded16(s.c[1]) * (s.c[2] * s.c[3] + s.y[2] * s.y[3]);
  conv_impl::for_each_slice(s.x[0], conv_impl::images_per_slice(s.x[0], per_image, kSliceBytes),
                            [&](int64_t n0, int64_t i, int64_t count) {
                              BlockShape slice = s;
                              slice.x[0] = slice.c[0] = slice.y[0] = count;
                              f(n0, i, slice);
                            });
}

/// Runs a reorder from → a new scratch memory of layout `to` (kept in `owner`).
memory reordered(const dnnl::reorder& r, const memory& from, const memory::desc& to, std::vector<Tensor>& owner) {
  owner.push_back(dn::buffer_for(to));
  memory m(to, dn::engine(), owner.back().data<float>());
  dn::execute(r, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, m}});
  return m;
}

/// m's bytes in layout `to`: m itself (r is none: the same bytes), or r's output
/// in a new scratch memory (kept in owner).
memory as_layout(const std::optional<dnnl::reorder>& r, const memory& m, const memory::desc& to,
                 std::vector<Tensor>& owner) {
  return r ? reordered(*r, m, to, owner) : memory(to, dn::engine(), m.get_data_handle());
}

/// The weights in a pd's layout: reordered once per call and layout.
class KeptWeights {
 public:
  KeptWeights(const float* w, const Shape& shape) : w_(w), shape_(shape) {}
  memory get(const std::optional<dnnl::reorder>& r, const memory::desc& chosen) {
    if (!r) return mem_at(chosen, w_);
    for (auto& [d, m] : kept_)
      if (d == chosen) return m;
    kept_.emplace_back(chosen, reordered(*r, mem_at(dn::plain_md(shape_), w_), chosen, owner_));
    return kept_.back().second;
  }

 private:
  const float* w_;
  Shape shape_;
  std::vector<Tensor> owner_;
  std::vector<std::pair<memory::desc, memory>> kept_;
};

/// How a block's forward pooled, and so what its node's byte array holds.
enum class Pooling {
  OneDnn,       ///< oneDNN's pooling (with its workspace per slice)
  DirectBlock,  ///< direct_block::forward ran the whole block
  Direct16c,    ///< oneDNN's convolution, then direct_block::pool16c_forward
};

/// Bytes of pool16c codes per image.
int64_t codes_per_image(const BlockShape& s) { return direct_block::pool16c_codes(1, s.c[1], s.c[2], s.c[3]); }

/// True when slice sl's pooling runs direct_block::pool16c_forward: 2×2 windows
/// with stride 2 over an f32 nChw16c conv output (c, the forward's layout of it).
bool pool16_takes(const BlockShape& sl, const memory::desc& c) {
  return sl.pool_k == 2 && sl.pool_s == 2 && is_nchw16c(c, sl.c) && direct_block::available();
}

/// The block's shape as the direct kernels see it.
direct_block::Geometry direct_geometry(const BlockShape& s) {
  direct_block::Geometry g;
  g.n = s.x[0], g.c = s.x[1], g.h = s.x[2], g.w = s.x[3];
  g.oc = s.w[0], g.kh = s.w[2], g.kw = s.w[3];
  g.ph = s.padding.h, g.pw = s.padding.w;
  return g;
}

/// True when the direct kernels run this block: f32, stride 1, 2×2 pooling with
/// stride 2, few input channels, no input gradient (conv_block_direct.cpp).
bool direct_takes(const BlockShape& s, bool x_needs_grad) {
  return !x_needs_grad && s.dt == memory::data_type::f32 && s.stride == IntPair(1) && s.pool_k == 2 &&
         s.pool_s == 2 && direct_block::takes(direct_geometry(s)) && direct_block::available();
}

/// The unfused composition.
Tensor composition(const Tensor& x, const Tensor& w, const Tensor& b, const BlockShape& s) {
  return max_pool2d(relu(conv2d(x, w, b, s.stride, s.padding)), s.pool_k, s.pool_s);
}

// Forward: y = max_pool(relu(conv(x, w) + b))
// Backward: with p(n,o,i,j) the arg max of window (i,j) and m = [y > 0] (= relu'(conv) at p):
//   dconv = Σ_windows g·m routed to p;  dx = conv backward-data(dconv),
//   dw, db = conv backward-weights(x, dconv)
// Under create_graph the composition is recomputed from the saved inputs and
// differentiated (recorded), so higher derivatives are those of the composition.
class ConvReluMaxPoolBackward final : public SavingNode<3> {
 public:
  ConvReluMaxPoolBackward(BlockShape s, std::vector<Tensor> workspaces, std::shared_ptr<Storage> positive,
                          Pooling pooling)
      : shape_(std::move(s)), workspaces_(std::move(workspaces)), positive_(std::move(positive)), pooling_(pooling) {}
  const char* name() const override { return "ConvReluMaxPool2dBackward"; }

  std::vector<Tensor> apply(const Tensor& g_in) override {
    const Tensor x = saved(0), w = saved(1), b = shape_.bias ? saved(2) : Tensor();
    if (any_requires_grad({&g_in, &x, &w, &b})) [[unlikely]] return recorded(g_in, x, w, b);
    const Tensor g = contig(g_in);
    return dn::translate_errors("conv2d_relu_max_pool2d backward", {&shape_.x, &shape_.w},
                                [&] { return fused(g, contig(x), contig(w)); });
  }
  void release_saved() override {
    SavingNode<3>::release_saved();
    workspaces_.clear();
    positive_.reset();
  }

 private:
  std::vector<Tensor> recorded(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& b) const {
    const Tensor y = composition(x, w, b, shape_);
    std::vector<Tensor> inputs;
    std::vector<size_t> at;
    for (size_t i = 0; i < 3; ++i) {
      const Tensor& t = i == 0 ? x : i == 1 ? w : b;
      if (needs_input_grad(i) && t.defined() && t.requires_grad()) inputs.push_back(t), at.push_back(i);
    }
    std::vector<Tensor> out(3);
    if (inputs.empty()) return out;
    const std::vector<Tensor> gs = autograd::grad({y}, inputs, {g}, /*retain_graph=*/false, /*create_graph=*/true,
                                                  /*allow_unused=*/true);
    for (size_t k = 0; k < at.size(); ++k) out[at[k]] = gs[k];
    return out;
  }

  std::vector<Tensor> fused(const Tensor& g, const Tensor& x, const Tensor& w) const {
    const BlockShape& s = shape_;
    if (pooling_ == Pooling::DirectBlock) return direct(g, x);
    const bool need_dx = needs_input_grad(0), need_w = needs_input_grad(1) || needs_input_grad(2);
    Tensor dx = need_dx ? Tensor::empty(s.x) : Tensor();
    Tensor dw = need_w ? zeros(s.w) : Tensor(), db = need_w && s.bias ? zeros({s.w[0]}) : Tensor();
    Tensor db_s = db.defined() ? Tensor::empty({s.w[0]}) : Tensor();
    // Note: each slice's weight gradient is added up in the layout the pass
    // writes (blocked), and reordered to OIHW once at the end.
    std::optional<memory::desc> acc_desc;
    std::optional<dnnl::reorder> acc_out;
    Tensor acc, dw_s;
    const auto* positive = static_cast<const uint8_t*>(positive_->data());
    KeptWeights kept(w.data<float>(), s.w);
    // backward-data on the direct kernel (conv_block_direct.cpp), from the
    // pooling backward's blocked output as it is
    const bool direct_dx = need_dx && s.stride == IntPair(1) && direct_block::available() &&
                           direct_block::takes_backward_data(direct_geometry(s));
    // under autocast on AMX machines the whole backward of a slice on tiles, the
    // conv output's gradient kept in cache between the passes (conv_block_amx.cpp)
    const bool amx_all = pooling_ == Pooling::Direct16c && s.dt == memory::data_type::bf16 &&
                         s.stride == IntPair(1) && amx_block::available() &&
                         amx_block::takes_backward(direct_geometry(s));
    for_each_slice(s, [&](int64_t n0, int64_t i, const BlockShape& sl) {
      if (amx_all && amx_block::backward(direct_geometry(sl), x.data<float>() + n0 * s.x_image(),
                                         g.data<float>() + n0 * s.y_image(), positive + n0 * codes_per_image(s),
                                         w.data<float>(), need_dx ? dx.data<float>() + n0 * s.x_image() : nullptr,
                                         need_w ? dw.data<float>() : nullptr,
                                         need_w && s.bias ? db.data<float>() : nullptr))
        return;  // else (a non-finite x or w) the passes below
      std::vector<Tensor> owner;
      const Backward p = backward_prims(sl);
      const Forward f = forward_prims(sl, prop_kind::forward_training);
      const memory::desc c = f.c;
      const float* g0 = g.data<float>() + n0 * s.y_image();
      memory diff_c = scratch(c, owner);
      if (pooling_ == Pooling::Direct16c) {  // the blocked gradient of the conv output in one pass
        direct_block::pool16c_backward(sl.c[0], s.c[1], s.c[2], s.c[3], g0, positive + n0 * codes_per_image(s),
                                       static_cast<float*>(diff_c.get_data_handle()));
      } else {
        pool_backward(p, f, sl, i, g0, positive + n0 * s.y_image(), diff_c, owner);
      }

      const float* x0 = x.data<float>() + n0 * s.x_image();
      const bool amx = s.dt == memory::data_type::bf16 && is_nchw16c(c, sl.c) && amx_block::available();
      // under autocast on AMX machines: backward-weights on tiles (conv_block_amx.cpp),
      // unless x holds a non-finite value (then the f32 pass below)
      const bool amx_w = need_w && amx && amx_block::takes_backward_weights(direct_geometry(sl)) &&
                         amx_block::backward_weights_16c(direct_geometry(sl), x0,
                                                         static_cast<const float*>(diff_c.get_data_handle()),
                                                         dw.data<float>(), s.bias ? db.data<float>() : nullptr);
      if (need_w && !amx_w) {
        const memory xm = as_layout(p.src_in, mem_at(dn::plain_md(sl.x), x0), p.weights_pd.src_desc(), owner);
        const memory dm = as_layout(p.diff_in, diff_c, p.weights_pd.diff_dst_desc(), owner);
        const memory::desc dwd = p.weights_pd.diff_weights_desc();
        if (!acc_desc) {
          acc_desc = dwd, acc_out = p.dw_out;
          acc = zeros({int64_t(dwd.get_size() / sizeof(float))}), dw_s = Tensor::empty(acc.shape());
        }
        const bool same = *acc_desc == dwd;
        Tensor dw_slice = same ? dw_s : dn::buffer_for(dwd);
        const memory dwm = mem_at(dwd, dw_slice.data<float>());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dm}, {DNNL_ARG_DIFF_WEIGHTS, dwm}};
        if (s.bias) args.emplace(DNNL_ARG_DIFF_BIAS, dn::mem(dn::plain_md({s.w[0]}), db_s));
        dn::execute(p.weights, args);
        if (same) {
          acc.add_(dw_s);
        } else {  // a second slice shape whose pass chose another layout
          Tensor plain = Tensor::empty(s.w);
          dn::execute(*reorder_if(dwd, dn::plain_md(s.w)),
                      {{DNNL_ARG_FROM, dwm}, {DNNL_ARG_TO, dn::mem(dn::plain_md(s.w), plain)}});
          dw.add_(plain);
        }
        if (s.bias) db.add_(db_s);
      }
      // under autocast on AMX machines backward-data on tiles too, unless a weight is not finite
      const bool amx_dx = need_dx && amx && amx_block::takes_backward_data(direct_geometry(sl)) &&
                          amx_block::backward_data_16c(direct_geometry(sl),
                                                       static_cast<const float*>(diff_c.get_data_handle()),
                                                       w.data<float>(), dx.data<float>() + n0 * s.x_image());
      if (need_dx && !amx_dx) {
        if (direct_dx && is_nchw16c(c, sl.c)) {
          direct_block::backward_data_16c(direct_geometry(sl), static_cast<const float*>(diff_c.get_data_handle()),
                                          w.data<float>(), dx.data<float>() + n0 * s.x_image());
        } else {
          const BackwardData d = backward_data_prims(sl);
          float* dx0 = dx.data<float>() + n0 * s.x_image();
          const memory dm = as_layout(d.diff_in, diff_c, d.pd.diff_dst_desc(), owner);
          const bool to_plain = d.dx_16c || d.dx_out;
          const memory dxm = to_plain ? scratch(d.pd.diff_src_desc(), owner) : mem_at(d.pd.diff_src_desc(), dx0);
          dn::execute(d.prim, {{DNNL_ARG_DIFF_DST, dm},
                               {DNNL_ARG_WEIGHTS, kept.get(d.weights_in, d.pd.weights_desc())},
                               {DNNL_ARG_DIFF_SRC, dxm}});
          if (d.dx_16c)
            conv_impl::nchw16c_to_nchw(static_cast<const float*>(dxm.get_data_handle()), dx0, sl.x[0], s.x[1],
                                       s.x[2] * s.x[3]);
          else if (d.dx_out)
            dn::execute(*d.dx_out, {{DNNL_ARG_FROM, dxm}, {DNNL_ARG_TO, mem_at(dn::plain_md(sl.x), dx0)}});
        }
      }
    });
    if (acc_desc) {
      Tensor plain = Tensor::empty(s.w);
      const memory from = mem_at(*acc_desc, acc.data<float>()), to = dn::mem(dn::plain_md(s.w), plain);
      if (acc_out) dn::execute(*acc_out, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
      else plain = acc;
      dw.add_(reshape(plain, s.w));
    }
    return {dx, needs_input_grad(1) ? dw : Tensor(), needs_input_grad(2) ? db : Tensor()};
  }

  /// diff_c = oneDNN's pooling backward of g0 · [y > 0] (pos0), from slice i's workspace.
  void pool_backward(const Backward& p, const Forward& f, const BlockShape& sl, int64_t i, const float* g0,
                     const uint8_t* pos0, const memory& diff_c, std::vector<Tensor>& owner) const {
    const BlockShape& s = shape_;
    // g · [y > 0] in the pooled layout
    memory diff_pooled = scratch(f.pool_pd.dst_desc(), owner);
    const int64_t count = sl.y[0] * s.y_image();
    if (f.pooled_16c) {
      to_16c_masked(g0, pos0, static_cast<float*>(diff_pooled.get_data_handle()), sl.y[0], s.y[1], s.y[2] * s.y[3]);
    } else {
      Tensor masked = Tensor::empty(sl.y);
      float* pm = masked.data<float>();
      parallel_for(count, [&](int64_t e) { pm[e] = pos0[e] ? g0[e] : 0.f; });
      owner.push_back(masked);
      if (p.pooled_in)
        dn::execute(*p.pooled_in, {{DNNL_ARG_FROM, mem_at(dn::plain_md(sl.y), pm)}, {DNNL_ARG_TO, diff_pooled}});
      else
        std::memcpy(diff_pooled.get_data_handle(), pm, size_t(count) * sizeof(float));
    }
    // pooling backward: the blocked gradient of the conv output, in cache
    dn::execute(p.pool, {{DNNL_ARG_DIFF_DST, diff_pooled},
                         {DNNL_ARG_DIFF_SRC, diff_c},
                         {DNNL_ARG_WORKSPACE, dn::mem(p.pool_pd.workspace_desc(), workspaces_[size_t(i)])}});
  }

  /// The direct kernels' backward (the input needs no gradient there).
  std::vector<Tensor> direct(const Tensor& g, const Tensor& x) const {
    if (needs_input_grad(0)) throw std::logic_error("conv2d_relu_max_pool2d: direct kernels have no input gradient");
    const BlockShape& s = shape_;
    Tensor dw = Tensor::empty(s.w), db = s.bias ? Tensor::empty({s.w[0]}) : Tensor();
    direct_block::backward_weights(direct_geometry(s), x.data<float>(), g.data<float>(),
                                   static_cast<const uint8_t*>(positive_->data()), dw.data<float>(),
                                   s.bias ? db.data<float>() : nullptr);
    return {Tensor(), needs_input_grad(1) ? dw : Tensor(), needs_input_grad(2) ? db : Tensor()};
  }

  BlockShape shape_;
  std::vector<Tensor> workspaces_;        ///< the pooling's, one per slice
  /// What the forward kept per pooled value, by pooling_: OneDnn, y > 0 (a byte
  /// per element of y, NCHW); DirectBlock, the window position of each y's
  /// maximum, 4 where y = 0 (direct_block::forward); Direct16c, the same codes in
  /// the blocked order (direct_block::pool16c_forward).
  std::shared_ptr<Storage> positive_;
  Pooling pooling_ = Pooling::OneDnn;
};

/// Records y's node: it saves x, w and b (when there is one) and what the forward kept.
void record_block(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const BlockShape& s,
                  std::vector<Tensor> workspaces, std::shared_ptr<Storage> positive, Pooling pooling) {
  auto node = std::make_shared<ConvReluMaxPoolBackward>(s, std::move(workspaces), std::move(positive), pooling);
  node->save(0, x);
  node->save(1, w);
  if (s.bias) node->save(2, b);
  record(y, std::move(node), {&x, &w, &b});
}

/// The fused forward (Float32, contiguous operands, checked shapes); std::nullopt
/// when an input is not finite (then the composition runs: oneDNN's max pooling
/// drops NaN where PyTorch propagates it).
std::optional<Tensor> fused_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const BlockShape& s) {
  const Tensor x = contig(x_in), w = contig(w_in), b = s.bias ? contig(b_in) : Tensor();
  if (!all_finite(w.data<float>(), w.numel()) || (s.bias && !all_finite(b.data<float>(), b.numel())))
    return std::nullopt;
  const bool recording = any_requires_grad({&x_in, &w_in, &b_in});
  const prop_kind pk = recording ? prop_kind::forward_training : prop_kind::forward_inference;
  Tensor y = Tensor::empty(s.y);
  // a byte per element of y (the direct block's codes or y > 0), or pool16c's
  // codes in the blocked order when the slices may pool directly
  const int64_t kept_bytes = direct_block::available() ? std::max(y.numel(), s.x[0] * codes_per_image(s)) : y.numel();
  std::shared_ptr<Storage> positive =
      recording ? std::make_shared<Storage>(size_t(std::max<int64_t>(kept_bytes, 1))) : nullptr;
  if (direct_takes(s, recording && x_in.requires_grad())) {
    auto* code = recording ? static_cast<uint8_t*>(positive->data()) : nullptr;
    if (!direct_block::forward(direct_geometry(s), x.data<float>(), w.data<float>(),
                               s.bias ? b.data<float>() : nullptr, y.data<float>(), code))
      return std::nullopt;
    if (recording) record_block(y, x_in, w_in, b_in, s, {}, std::move(positive), Pooling::DirectBlock);
    return y;
  }
  std::vector<Tensor> workspaces;
  bool finite = true;
  bool pool16 = false;  // the slices' pooling runs direct_block::pool16c_forward
  KeptWeights kept(w.data<float>(), s.w);
  dn::translate_errors("conv2d_relu_max_pool2d", {&s.x, &s.w}, [&] {
    for_each_slice(s, [&](int64_t n0, int64_t i, const BlockShape& sl) {
      if (!finite) return;
      const float* x0 = x.data<float>() + n0 * s.x_image();
      const Forward f = forward_prims(sl, pk);
      if (i == 0) pool16 = pool16_takes(sl, f.c);
      TAPE_CHECK(pool16 == pool16_takes(sl, f.c), "conv2d_relu_max_pool2d: internal error: slices chose different layouts");
      float* y0 = y.data<float>() + n0 * s.y_image();
      uint8_t* code0 = recording ? static_cast<uint8_t*>(positive->data()) + n0 * codes_per_image(s) : nullptr;
      if (pool16 && s.dt == memory::data_type::bf16 && s.stride == IntPair(1) && amx_block::available() &&
          amx_block::takes_forward(direct_geometry(sl))) {  // under autocast on AMX: conv and pooling on our kernels,
        // which check the input's finiteness as they convert it
        finite = amx_block::forward(direct_geometry(sl), x0, w.data<float>(), s.bias ? b.data<float>() : nullptr, y0,
                                    code0);
        return;
      }
      // the scan brings the slice into cache for the convolution
      if (!all_finite(x0, sl.x[0] * s.x_image())) {
        finite = false;
        return;
      }
      std::vector<Tensor> owner;
      const memory src = as_layout(f.src_in, mem_at(dn::plain_md(sl.x), x0), f.conv_pd.src_desc(), owner);
      const memory c = scratch(f.c, owner);
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                           {DNNL_ARG_WEIGHTS, kept.get(f.weights_in, f.conv_pd.weights_desc())},
                                           {DNNL_ARG_DST, memory(f.conv_pd.dst_desc(), dn::engine(), c.get_data_handle())}};
      if (s.bias) args.emplace(DNNL_ARG_BIAS, dn::mem(dn::plain_md({s.w[0]}), b));
      dn::execute(f.conv, args);
      if (pool16) {  // the direct pooling on the blocked output, straight to NCHW
        direct_block::pool16c_forward(sl.c[0], s.c[1], s.c[2], s.c[3], static_cast<const float*>(c.get_data_handle()),
                                      y0, code0);
        return;
      }
      const bool to_plain = f.pooled_16c || f.pooled_out;
      const memory pooled = to_plain ? scratch(f.pool_pd.dst_desc(), owner) : mem_at(f.pool_pd.dst_desc(), y0);
      std::unordered_map<int, memory> pool_args{{DNNL_ARG_SRC, c}, {DNNL_ARG_DST, pooled}};
      if (recording) {
        workspaces.push_back(dn::buffer_for(f.pool_pd.workspace_desc()));
        pool_args.emplace(DNNL_ARG_WORKSPACE, dn::mem(f.pool_pd.workspace_desc(), workspaces.back()));
      }
      dn::execute(f.pool, pool_args);
      uint8_t* pos0 = recording ? static_cast<uint8_t*>(positive->data()) + n0 * s.y_image() : nullptr;
      if (f.pooled_16c) {
        conv_impl::nchw16c_to_nchw(static_cast<const float*>(pooled.get_data_handle()), y0, sl.y[0], s.y[1],
                                   s.y[2] * s.y[3], pos0);
      } else {
        if (f.pooled_out)
          dn::execute(*f.pooled_out, {{DNNL_ARG_FROM, pooled}, {DNNL_ARG_TO, mem_at(dn::plain_md(sl.y), y0)}});
        if (pos0) parallel_for(sl.y[0] * s.y_image(), [&](int64_t e) { pos0[e] = y0[e] > 0.f; });
      }
    });
  });
  if (!finite) return std::nullopt;
  if (recording)
    record_block(y, x_in, w_in, b_in, s, std::move(workspaces), std::move(positive),
                 pool16 ? Pooling::Direct16c : Pooling::OneDnn);
  return y;
}

}  // namespace

bool fusion_enabled() {
  const char* e = std::getenv("TAPE_FUSE");
  return !(e && std::strcmp(e, "0") == 0);
}

// Note: the fused path takes only what it was written and tested for; anything
// else — including invalid arguments, whose messages conv2d and max_pool2d give —
// runs the composition.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t pool_kernel,
                              int64_t pool_stride, IntPair stride, IntPair padding, IntPair dilation, int64_t groups) {
  if (pool_stride == -1) pool_stride = pool_kernel;
  const auto unfused = [&] {
    return max_pool2d(relu(conv2d(x, w, b, stride, padding, dilation, groups)), pool_kernel, pool_stride);
  };
  const auto f32 = [](const Tensor& t) { return t.defined() && t.dtype() == Dtype::Float32; };
  if (!fusion_enabled() || !f32(x) || !f32(w) || (b.defined() && !f32(b))) return unfused();
  if (x.dim() != 4 || w.dim() != 4 || groups != 1 || dilation != IntPair(1) || x.size(1) != w.size(1))
    return unfused();
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))) return unfused();
  if (stride.h < 1 || stride.w < 1 || padding.h < 0 || padding.w < 0 || pool_kernel < 1 || pool_stride < 1)
    return unfused();
  const int64_t hp = x.size(2) + 2 * padding.h, wp = x.size(3) + 2 * padding.w;
  if (x.numel() == 0 || w.numel() == 0 || w.size(2) > hp || w.size(3) > wp) return unfused();
  const int64_t oh = (hp - w.size(2)) / stride.h + 1, ow = (wp - w.size(3)) / stride.w + 1;
  if (pool_kernel > oh || pool_kernel > ow) return unfused();
  BlockShape s;
  s.x = x.shape();
  s.w = w.shape();
  s.c = {x.size(0), w.size(0), oh, ow};
  s.y = {x.size(0), w.size(0), (oh - pool_kernel) / pool_stride + 1, (ow - pool_kernel) / pool_stride + 1};
  s.stride = stride;
  s.padding = padding;
  s.pool_k = pool_kernel;
  s.pool_s = pool_stride;
  s.bias = b.defined();
  // Note: autocast. The decision is taken here and kept in the node's shape, so
  // the backward passes follow the forward whatever the guard says then. Measured
  // on LeNet-5's blocks at batch 2500 (2 threads, best of 12, fused op forward /
  // backward): conv2 (6 → 16 channels) f32 3.5 / 13.2 ms, bf16 3.7 / 9.2 ms, so it
  // runs in bf16 (forward within noise, backward-weights and -data faster); conv1
  // (1 → 6) f32 7.5 / 10.0 ms, bf16 8.4 / 14.6 ms: with one input channel the
  // kernels gain nothing, and the input's conversion to bf16 (in both passes) and
  // the gradient's to the NHWC bf16 layout backward-weights then needs cost more.
  // So blocks with fewer than 4 input channels stay in f32 (as backward-data's
  // few-channel rule; 2–3 channels were not measured).
  if (autocast_enabled() && x.size(1) >= 4) s.dt = memory::data_type::bf16;
  if (std::optional<Tensor> y = fused_forward(x, w, b, s)) return *y;
  return unfused();
}

}  // namespace tape
