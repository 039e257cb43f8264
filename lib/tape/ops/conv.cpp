// conv2d (strides, padding, dilation, groups) and conv_transpose2d on oneDNN's
// convolution primitives: forward, backward-data and backward-weights (which
// also yields the bias gradient). Float64, which oneDNN 2.6 cannot convolve,
// runs a reference im2col + dgemm path. Inside an AutocastGuard, Float32
// convolutions run oneDNN's bf16 kernels (docs/precision.md).
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>

#include "tape/backend/blas.hpp"
#include "tape/backend/dnnl.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/core/autocast.hpp"
#include "tape/ops/conv_impl.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {
using dnnl::memory;
using dnnl::prop_kind;
using conv_impl::mem_at;
using conv_impl::nchw16c_to_nchw;
using conv_impl::scratch;

// Note: tape tensors are always plain (NCHW activations, OIHW weights), but the
// fast convolutions (jit / brgconv avx512) want blocked layouts (nChw16c,
// Acdb16a, ...): on plain layouts oneDNN falls back to gemm, 3–5× slower. So
// weights are always `any`, and each pass (forward, backward-data,
// backward-weights) chooses its own activation layouts. Its cached bundle
// records, per argument, the layout the pd chose and the reorder between it and
// the plain tensor (none when they coincide). Reordered copies live in scratch
// tensors from the caching allocator, so steady-state training allocates
// nothing from the system.
//
// `any` alone is not always the best offer (oneDNN 2.6, measured at LeNet sizes):
// - forward, few input channels: a jit kernel reads plain NCHW directly, while
//   `any` picks brgconv on NHWC for inference (two reorders; conv1 1.3× slower);
// - backward-weights, 6 input channels: `any` gets jit:avx2, NHWC gets
//   jit:avx512 (1.8× faster);
// - backward-data, 1–3 input channels: the avx512 kernel pads the input
//   channels to 16 and is 5× slower than gemm on plain layouts.
// So each pass offers a short list of layout sets and keeps the pd whose
// implementation ranks best (avx512-class jit first, gemm/ref last, the earlier
// offer on ties). The choice depends only on the shapes and the CPU, never on
// timing, so runs stay bit-reproducible.

memory::desc any_md(const Shape& s, memory::data_type dt = memory::data_type::f32) {
  return memory::desc(dn::dims(s), dt, memory::format_tag::any);
}

/// The activation layouts a pass is offered (weights are always `any`).
enum class Offer {
  Any,         ///< oneDNN picks (blocked nChw16c for most shapes)
  PlainInput,  ///< src / diff_src as the plain NCHW tensor, the output side `any`
  Nhwc,        ///< channels-last on both sides
};

/// The descriptor of an activation under an offer; `input_side` is src / diff_src.
memory::desc act_md(const Shape& s, Offer o, bool input_side, memory::data_type dt = memory::data_type::f32) {
  if (o == Offer::Nhwc) return memory::desc(dn::dims(s), dt, memory::format_tag::nhwc);
  return o == Offer::PlainInput && input_side ? dn::md(s, contiguous_strides(s), dt) : any_md(s, dt);
}

/// Everything that identifies a convolution: shapes, stride, padding, dilation,
/// groups, bias, and the data type it multiplies in. w is [O, C/groups, kh, kw]; y = conv(x, w).
struct ConvShape {
  Shape x, w, y;
  IntPair stride = 1, padding = 0, dilation = 1;
  int64_t groups = 1;
  bool bias = false;
  /// The type of each pass's inputs (src, weights, diff_dst): bf16 when the forward
  /// ran under autocast. Outputs (dst, diff_src, diff_weights, biases) are always f32.
  memory::data_type dt = memory::data_type::f32;

  /// The same convolution in exact Float32 (a create_graph backward's recorded ops).
  ConvShape exact() const {
    ConvShape s = *this;
    s.dt = memory::data_type::f32;
    return s;
  }

  memory::dims strides() const { return {stride.h, stride.w}; }
  memory::dims pads() const { return {padding.h, padding.w}; }
  memory::dims dilates() const { return {dilation.h - 1, dilation.w - 1}; }  ///< oneDNN: 0 means none
  /// The weight as oneDNN sees it: [O, C, kh, kw], or goihw [g, O/g, C/g, kh, kw]
  /// with groups (the same buffer: the groups are the outer split of O).
  Shape w_dnnl() const { return groups == 1 ? w : Shape{groups, w[0] / groups, w[1], w[2], w[3]}; }
  Shape bias_shape() const { return {w[0]}; }
  int64_t x_image() const { return x[1] * x[2] * x[3]; }  ///< floats per image of x
  int64_t y_image() const { return y[1] * y[2] * y[3]; }  ///< floats per image of y
  dn::Key key(dn::OpId op, prop_kind pk) const {
    dn::Key k{int64_t(op), int64_t(pk), stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups, bias,
              int64_t(dt)};
    k.insert(k.end(), x.begin(), x.end());
    k.insert(k.end(), w.begin(), w.end());
    return k;
  }
};

/// The pd with the best-ranked implementation over `offers` (the earliest on ties).
template <class Pd, class MakePd>
Pd best_pd(std::initializer_list<Offer> offers, MakePd&& make_pd, const ConvShape& s, const char* pass) {
  return conv_impl::best_pd<Pd>(offers, make_pd, "conv2d", pass, s.x, s.w);
}

/// One argument of a primitive: the layout its pd chose, the plain layout of
/// the tensor and, if they differ, the reorder plain → chosen (inputs) or
/// chosen → plain (outputs).
struct Arg {
  memory::desc chosen, plain;
  std::optional<dnnl::reorder> reorder;
  bool from_nchw16c = false;  ///< an output reordered nChw16c → NCHW by our own loop
};

Arg make_arg(const memory::desc& chosen, const Shape& shape, bool is_input) {
  const memory::desc plain = dn::plain_md(shape);
  if (chosen == plain) return {chosen, plain, std::nullopt};
  const auto& from = is_input ? plain : chosen;
  const auto& to = is_input ? chosen : plain;
  const bool nchw16c = shape.size() == 4 && shape[1] < 16 && conv_impl::is_nchw16c(chosen, shape);
  return {chosen, plain, dnnl::reorder(dnnl::reorder::primitive_desc(dn::engine(), from, dn::engine(), to, dn::attr())),
          !is_input && nchw16c};
}

// nChw16c → NCHW with fewer than 16 real channels: conv_impl::nchw16c_to_nchw (its note).

Arg input_arg(const memory::desc& chosen, const Shape& shape) { return make_arg(chosen, shape, true); }
Arg output_arg(const memory::desc& chosen, const Shape& shape) { return make_arg(chosen, shape, false); }

/// Executions of primitives with their arguments bridged to plain buffers:
/// in() reorders an input into scratch, out() hands the primitive scratch that
/// run() reorders into the plain buffer afterwards. Scratch lives until the end
/// of run(); kept() inputs (weights) are reordered once and reused by every run.
class Exec {
 public:
  memory in(const Arg& a, const float* p) {
    memory user = mem_at(a.plain, p);
    if (!a.reorder) return user;
    memory m = scratch(a.chosen, scratch_);
    dn::execute(*a.reorder, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, m}});
    return m;
  }
  memory kept(const Arg& a, const float* p) {
    for (auto& [desc, ptr, m] : kept_mems_)
      if (ptr == p && desc == a.chosen) return m;
    memory user = mem_at(a.plain, p);
    memory m = user;
    if (a.reorder) {
      m = scratch(a.chosen, kept_);
      dn::execute(*a.reorder, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, m}});
    }
    kept_mems_.emplace_back(a.chosen, p, m);
    return m;
  }
  memory out(const Arg& a, float* p) {
    memory user(a.plain, dn::engine(), p);
    if (!a.reorder) return user;
    memory m = scratch(a.chosen, scratch_);
    pending_.push_back({&a, m, user});
    return m;
  }
  void run(const dnnl::primitive& p, const std::unordered_map<int, memory>& args) {
    dn::execute(p, args);
    for (auto& [a, from, to] : pending_) {
      if (a->from_nchw16c) {
        const memory::dims d = a->plain.dims();
        nchw16c_to_nchw(static_cast<const float*>(from.get_data_handle()), static_cast<float*>(to.get_data_handle()),
                        d[0], d[1], d[2] * d[3]);
      } else {
        dn::execute(*a->reorder, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
      }
    }
    pending_.clear();
    scratch_.clear();
  }

 private:
  std::vector<Tensor> scratch_, kept_;
  std::vector<std::tuple<memory::desc, const float*, memory>> kept_mems_;
  std::vector<std::tuple<const Arg*, memory, memory>> pending_;
};

// Note: the blocked layouts pad channels to 16, so a reordered activation can be
// 2.7× the plain tensor (conv1's output at batch 2500: 92 MB of scratch for a
// 35 MB tensor). Running the primitives on slices of the batch keeps that
// staging small enough to stay in cache — the reorders then read from cache,
// and conv1's forward + backward got 16 % faster — and keeps it out of peak
// memory. Slices are as even as possible, so at most two shapes are built.
constexpr int64_t kStagingBytes = int64_t(16) << 20;

/// Images per primitive call for a batch of `s.x[0]`.
int64_t images_per_call(const ConvShape& s) {
  using conv_impl::padded16;
  const int64_t per_image =
      int64_t(sizeof(float)) * (padded16(s.x[1]) * s.x[2] * s.x[3] + padded16(s.y[1]) * s.y[2] * s.y[3]);
  return conv_impl::images_per_slice(s.x[0], per_image, kStagingBytes);
}

/// Calls f(first image, shape of the slice) for each slice of the batch.
template <class F>
void for_each_slice(const ConvShape& s, F&& f) {
  conv_impl::for_each_slice(s.x[0], images_per_call(s), [&](int64_t n0, int64_t, int64_t count) {
    ConvShape slice = s;
    slice.x[0] = slice.y[0] = count;
    f(n0, slice);
  });
}

struct ConvFwd {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  Arg src, weights, dst;  // bias is always plain [O]
};

ConvFwd conv_fwd(const ConvShape& s, prop_kind pk) {
  return *dn::cached<ConvFwd>(s.key(dn::OpId::ConvFwd, pk), [&] {
    // memory descriptors → primitive descriptor → primitive
    using Pd = dnnl::convolution_forward::primitive_desc;
    const auto make_pd = [&](Offer o) {
      const auto alg = dnnl::algorithm::convolution_direct;
      const auto src = act_md(s.x, o, true, s.dt), weights = any_md(s.w_dnnl(), s.dt), dst = act_md(s.y, o, false);
      return Pd(s.bias ? dnnl::convolution_forward::desc(pk, alg, src, weights, dn::plain_md(s.bias_shape()), dst,
                                                         s.strides(), s.dilates(), s.pads(), s.pads())
                       : dnnl::convolution_forward::desc(pk, alg, src, weights, dst, s.strides(), s.dilates(), s.pads(),
                                                         s.pads()),
                dn::attr(), dn::engine());
    };
    const Pd pd = best_pd<Pd>({Offer::PlainInput, Offer::Any}, make_pd, s, "forward");
    return ConvFwd{pd, dnnl::convolution_forward(pd), input_arg(pd.src_desc(), s.x),
                   input_arg(pd.weights_desc(), s.w_dnnl()), output_arg(pd.dst_desc(), s.y)};
  });
}

struct ConvBwdData {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data prim;
  Arg diff_dst, weights, diff_src;
};

ConvBwdData conv_bwd_data(const ConvShape& s) {
  return *dn::cached<ConvBwdData>(s.key(dn::OpId::ConvBwdData, prop_kind::backward_data), [&] {
    // memory descriptors → primitive descriptor (forward as hint) → primitive
    using Pd = dnnl::convolution_backward_data::primitive_desc;
    const ConvFwd hint = conv_fwd(s, prop_kind::forward_training);
    const auto make_pd = [&](Offer o) {
      return Pd(dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, act_md(s.x, o, true),
                                                      any_md(s.w_dnnl(), s.dt), act_md(s.y, o, false, s.dt),
                                                      s.strides(), s.dilates(), s.pads(), s.pads()),
                dn::attr(), dn::engine(), hint.pd);
    };
    const bool few_channels = s.x[1] < 4;
    const Pd pd = few_channels ? best_pd<Pd>({Offer::PlainInput}, make_pd, s, "backward-data")
                               : best_pd<Pd>({Offer::Any, Offer::Nhwc}, make_pd, s, "backward-data");
    return ConvBwdData{pd, dnnl::convolution_backward_data(pd), input_arg(pd.diff_dst_desc(), s.y),
                       input_arg(pd.weights_desc(), s.w_dnnl()), output_arg(pd.diff_src_desc(), s.x)};
  });
}

struct ConvBwdWeights {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
  Arg src, diff_dst, diff_weights;  // diff_bias is always plain [O]
};

ConvBwdWeights conv_bwd_weights(const ConvShape& s) {
  return *dn::cached<ConvBwdWeights>(s.key(dn::OpId::ConvBwdWeights, prop_kind::backward_weights), [&] {
    // memory descriptors → primitive descriptor (forward as hint) → primitive
    using Pd = dnnl::convolution_backward_weights::primitive_desc;
    const ConvFwd hint = conv_fwd(s, prop_kind::forward_training);
    const auto make_pd = [&](Offer o) {
      const auto alg = dnnl::algorithm::convolution_direct;
      const auto src = act_md(s.x, o, true, s.dt), diff_weights = any_md(s.w_dnnl()),
                 diff_dst = act_md(s.y, o, false, s.dt);
      return Pd(s.bias ? dnnl::convolution_backward_weights::desc(alg, src, diff_weights, dn::plain_md(s.bias_shape()),
                                                                  diff_dst, s.strides(), s.dilates(), s.pads(),
                                                                  s.pads())
                       : dnnl::convolution_backward_weights::desc(alg, src, diff_weights, diff_dst, s.strides(),
                                                                  s.dilates(), s.pads(), s.pads()),
                dn::attr(), dn::engine(), hint.pd);
    };
    const Pd pd = best_pd<Pd>({Offer::Any, Offer::Nhwc}, make_pd, s, "backward-weights");
    return ConvBwdWeights{pd, dnnl::convolution_backward_weights(pd), input_arg(pd.src_desc(), s.x),
                          input_arg(pd.diff_dst_desc(), s.y), output_arg(pd.diff_weights_desc(), s.w_dnnl())};
  });
}

// Note: a convolution whose input or weight has no elements (an empty batch,
// zero channels) gets no oneDNN call — oneDNN 2.6 divides by zero planning it
// (SIGFPE) — and none is needed: every output is a sum over nothing, so y = b
// (or 0), and backward gives dx = 0, dw = 0, db = Σ_{n,i,j} g, as in PyTorch.
bool is_empty_conv(const ConvShape& s) { return shape_numel(s.x) == 0 || shape_numel(s.w) == 0; }

Tensor empty_conv_forward(const ConvShape& s, const Tensor& b, Dtype dtype) {
  Tensor y = zeros(s.y, dtype);
  if (s.bias && y.numel() > 0) y.add_(reshape(b.detach(), {1, s.w[0], 1, 1}));
  return y;
}

// --- Float64: the reference convolution ----------------------------------------
// Note: oneDNN 2.6 has no f64 convolution. Float64 exists so that gradcheck and
// the Float32-vs-Float64 checks cover conv2d, so this path is plain and exact
// rather than fast: per image and group, cols = im2col(x[n, group]) is
// [C/g·kh·kw, OH·OW], so that y[n, group] = W_group·cols (+ b),
// dW_group += g[n, group]·colsᵀ and dx[n, group] = col2im(W_groupᵀ·g[n, group]);
// the products run on OpenBLAS's dgemm.

/// f(c, x_at) for every element of the im2col matrix of one group of one image:
/// c indexes the [C/g·kh·kw, OH·OW] matrix, x_at the group's element it reads
/// (−1 in the padding).
template <class F>
void for_each_tap(const ConvShape& s, F&& f) {
  const int64_t h = s.x[2], w = s.x[3], kh = s.w[2], kw = s.w[3], oh = s.y[2], ow = s.y[3];
  const IntPair st = s.stride, pad = s.padding, dil = s.dilation;
  int64_t c = 0;
  for (int64_t ch = 0; ch < s.w[1]; ++ch)
    for (int64_t a = 0; a < kh; ++a)
      for (int64_t b = 0; b < kw; ++b)
        for (int64_t i = 0; i < oh; ++i) {
          const int64_t row = i * st.h + a * dil.h - pad.h;
          for (int64_t j = 0; j < ow; ++j, ++c) {
            const int64_t col = j * st.w + b * dil.w - pad.w;
            f(c, row >= 0 && row < h && col >= 0 && col < w ? (ch * h + row) * w + col : int64_t(-1));
          }
        }
}

/// cols = im2col(x) of one group of one image.
void im2col(const double* x, double* cols, const ConvShape& s) {
  for_each_tap(s, [&](int64_t c, int64_t at) { cols[c] = at < 0 ? 0.0 : x[at]; });
}

/// dx += col2im(cols) for one group of one image (the adjoint of im2col).
void col2im(const double* cols, double* dx, const ConvShape& s) {
  for_each_tap(s, [&](int64_t c, int64_t at) {
    if (at >= 0) dx[at] += cols[c];
  });
}

int64_t taps(const ConvShape& s) { return s.w[1] * s.w[2] * s.w[3]; }    ///< C/g·kh·kw
int64_t pixels(const ConvShape& s) { return s.y[2] * s.y[3]; }            ///< OH·OW
int64_t group_out(const ConvShape& s) { return s.w[0] / s.groups; }       ///< O/g
int64_t group_in(const ConvShape& s) { return s.w[1] * s.x[2] * s.x[3]; }  ///< floats of one group of x[n]

Tensor conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& b, const ConvShape& s) {
  const int64_t o = group_out(s), k = taps(s), p = pixels(s);
  // the bias is broadcast into y first and dgemm adds W·cols to it (beta = 1)
  Tensor y = b.defined() ? expand_copy(reshape(b, {1, s.w[0], 1, 1}), s.y) : Tensor::empty(s.y, Dtype::Float64);
  Tensor cols = Tensor::empty({k, p}, Dtype::Float64);
  for (int64_t n = 0; n < s.x[0]; ++n)
    for (int64_t gr = 0; gr < s.groups; ++gr) {
      im2col(x.data<double>() + n * s.x_image() + gr * group_in(s), cols.data<double>(), s);
      backend::dgemm(o, p, k, {w.data<double>() + gr * o * k, k}, {cols.data<double>(), p}, b.defined() ? 1.0 : 0.0,
                     y.data<double>() + n * s.y_image() + gr * o * p, p);
    }
  return y;
}

/// The backward passes in Float64, per image and group: dx[n] = col2im(Wᵀ·g[n])
/// when w is given, dW += g[n]·im2col(x[n])ᵀ when x is given; {dx, dW}.
std::pair<Tensor, Tensor> conv_backward_reference(const Tensor& g, const Tensor* w, const Tensor* x,
                                                  const ConvShape& s) {
  const int64_t o = group_out(s), k = taps(s), p = pixels(s);
  Tensor dx = w ? zeros(s.x, Dtype::Float64) : Tensor(), dw = x ? zeros(s.w, Dtype::Float64) : Tensor();
  Tensor cols = Tensor::empty({k, p}, Dtype::Float64);
  for (int64_t n = 0; n < s.x[0]; ++n)
    for (int64_t gr = 0; gr < s.groups; ++gr) {
      const double* gn = g.data<double>() + n * s.y_image() + gr * o * p;
      if (x) {
        im2col(x->data<double>() + n * s.x_image() + gr * group_in(s), cols.data<double>(), s);
        backend::dgemm(o, k, p, {gn, p}, {cols.data<double>(), p, /*trans=*/true}, 1.0,
                       dw.data<double>() + gr * o * k, k);
      }
      if (w) {
        backend::dgemm(k, p, o, {w->data<double>() + gr * o * k, k, /*trans=*/true}, {gn, p}, 0.0,
                       cols.data<double>(), p);
        col2im(cols.data<double>(), dx.data<double>() + n * s.x_image() + gr * group_in(s), s);
      }
    }
  return {dx, dw};
}

/// The backward-data pass on oneDNN (Float32, contiguous operands).
Tensor conv_data_dnnl(const Tensor& g, const Tensor& w, const ConvShape& s) {
  Tensor dx = Tensor::empty(s.x);
  Exec e;
  for_each_slice(s, [&](int64_t n0, const ConvShape& slice) {
    const ConvBwdData p = conv_bwd_data(slice);
    e.run(p.prim, {{DNNL_ARG_DIFF_DST, e.in(p.diff_dst, g.data<float>() + n0 * s.y_image())},
                   {DNNL_ARG_WEIGHTS, e.kept(p.weights, w.data<float>())},
                   {DNNL_ARG_DIFF_SRC, e.out(p.diff_src, dx.data<float>() + n0 * s.x_image())}});
  });
  return dx;
}

/// A backward-weights pass's results: dw, and db when the geometry has a bias.
struct WeightGrads {
  Tensor dw, db;
};

/// The backward-weights pass on oneDNN (Float32, contiguous operands); it also
/// yields db when s.bias.
WeightGrads conv_weight_dnnl(const Tensor& x, const Tensor& g, const ConvShape& s) {
  // each slice's weight (and bias) gradient lands in dw_s / db_s and is summed
  Tensor dw = zeros(s.w), db = s.bias ? zeros(s.bias_shape()) : Tensor();
  Tensor dw_s = Tensor::empty(s.w), db_s = s.bias ? Tensor::empty(s.bias_shape()) : Tensor();
  Exec e;
  for_each_slice(s, [&](int64_t n0, const ConvShape& slice) {
    const ConvBwdWeights p = conv_bwd_weights(slice);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e.in(p.src, x.data<float>() + n0 * s.x_image())},
                                         {DNNL_ARG_DIFF_DST, e.in(p.diff_dst, g.data<float>() + n0 * s.y_image())},
                                         {DNNL_ARG_DIFF_WEIGHTS, e.out(p.diff_weights, dw_s.data<float>())}};
    if (s.bias) args.emplace(DNNL_ARG_DIFF_BIAS, dn::mem(dn::plain_md(s.bias_shape()), db_s));
    e.run(p.prim, args);
    dw.add_(dw_s);
    if (s.bias) db.add_(db_s);
  });
  return {dw, db};
}

/// dx[n,c] = Σ_o g[n,o] ⋆ᵀ w[o,c] for a convolution of geometry s (shape s.x); no graph.
Tensor conv_data_kernel(const Tensor& g_in, const Tensor& w_in, const ConvShape& s, const char* op) {
  if (is_empty_conv(s)) [[unlikely]] return zeros(s.x, g_in.dtype());
  const Tensor g = contig(g_in), w = contig(w_in);
  if (g.dtype() == Dtype::Float64) return conv_backward_reference(g, &w, nullptr, s).first;
  return dn::translate_errors(op, {&s.x, &s.w}, [&] { return conv_data_dnnl(g, w, s); });
}

/// dw[o,c] = Σ_n x[n,c] ⋆ g[n,o] for a convolution of geometry s (shape s.w),
/// and from oneDNN also db when s.bias; no graph.
WeightGrads conv_weight_kernel(const Tensor& x_in, const Tensor& g_in, const ConvShape& s, const char* op) {
  if (is_empty_conv(s)) [[unlikely]] return {zeros(s.w, g_in.dtype()), Tensor()};
  const Tensor x = contig(x_in), g = contig(g_in);
  if (g.dtype() == Dtype::Float64) return {conv_backward_reference(g, nullptr, &x, s).second, Tensor()};
  return dn::translate_errors(op, {&s.x, &s.w}, [&] { return conv_weight_dnnl(x, g, s); });
}

/// db[o] = Σ_{n,i,j} g[n,o,i,j] (recorded when g has a graph)
Tensor bias_sum(const Tensor& g) { return sum(sum(sum(g, 3), 2), 0); }

// Note: conv2d's two backward passes are ops of their own, so that a backward
// run with create_graph is recorded: conv, conv_transpose (backward-data) and
// conv_weight (backward-weights) are bilinear, and the backward of each is made
// of the other two, so gradients of any order stay within these three.
// conv_transpose is conv_transpose2d (PyTorch's, weight [in, out/g, kh, kw], with
// the output size that of conv2d's input), which the public conv_transpose2d
// below calls after checking its arguments.
Tensor conv_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, ConvShape s);
Tensor conv_transpose(const Tensor& g, const Tensor& w, ConvShape s);
Tensor conv_weight(const Tensor& x, const Tensor& g, ConvShape s);

// Note: autocast. The data type is part of the geometry a node keeps, so a
// backward runs in bf16 when its forward did, whatever the guard says then;
// a create_graph backward records its ops in exact Float32 (shape_.exact()).
// No bf16 copies are saved: each pass reorders its f32 operands into the
// blocked layouts it wants anyway, and that reorder converts to bf16 too.
/// A node of one of the three ops: the geometry, and the two operands a, b of
/// z = op(a, b), each kept only for the other's gradient.
class ConvNode : public SavingNode<2> {
 public:
  explicit ConvNode(ConvShape s) : shape_(std::move(s)) {}

 protected:
  /// {a if b needs a gradient, b if a needs one} (undefined otherwise)
  std::pair<Tensor, Tensor> operands() const {
    return {needs_input_grad(1) ? saved(0) : Tensor(), needs_input_grad(0) ? saved(1) : Tensor()};
  }
  /// The geometry of the backward ops: the forward's, or exact Float32 when they are recorded.
  ConvShape backward_shape(std::initializer_list<const Tensor*> ts) const {
    return any_requires_grad(ts) ? shape_.exact() : shape_;
  }
  ConvShape shape_;
};

/// Records node N for z = op(a, b) (and conv2d's bias): it keeps a for b's
/// gradient and b for a's, the inputs themselves rather than contiguous copies,
/// so a create_graph backward reaches them. Only call when recording.
template <class N>
void record_conv(Tensor& z, const ConvShape& s, const Tensor& a, const Tensor& b, const Tensor* bias = nullptr) {
  auto node = std::make_shared<N>(s);
  if (b.requires_grad()) node->save(0, a);
  if (a.requires_grad()) node->save(1, b);
  if (bias) record(z, std::move(node), {&a, &b, bias});
  else record(z, std::move(node), {&a, &b});
}

// Forward: y[n,o] = Σ_c x[n,c] ⋆ w[o,c] + b[o]   (cross-correlation: stride s, zero padding p, dilation d;
//          with groups, c runs over o's group and w[o] holds C/g channels)
// Backward: dx[n,c] = Σ_o g[n,o] ⋆ᵀ w[o,c],  dw[o,c] = Σ_n x[n,c] ⋆ g[n,o],  db[o] = Σ_{n,i,j} g[n,o,i,j]
// Note: under create_graph dx and dw are the recorded conv_transpose(g, w) and
// conv_weight(x, g), and db a recorded sum.
class Conv2dBackward final : public ConvNode {
 public:
  using ConvNode::ConvNode;
  const char* name() const override { return "Conv2dBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    const auto [x, w] = operands();
    if (any_requires_grad({&g_in, &x, &w}))
      return {w.defined() ? conv_transpose(g_in, w, shape_.exact()) : Tensor(),
              x.defined() ? conv_weight(x, g_in, shape_.exact()) : Tensor(),
              needs_input_grad(2) ? bias_sum(g_in) : Tensor()};
    // Note: backward-data is the slowest pass of a first layer, whose input never
    // needs a gradient, so it only runs when x requires grad.
    const Tensor g = contig(g_in);
    Tensor dx = w.defined() ? conv_data_kernel(g, w, shape_, "conv2d backward") : Tensor();
    // oneDNN's backward-weights pass yields db as well; otherwise it is summed here
    WeightGrads wg = x.defined() ? conv_weight_kernel(x, g, shape_, "conv2d backward") : WeightGrads{};
    if (needs_input_grad(2) && !wg.db.defined()) wg.db = bias_sum(g);
    return {dx, wg.dw, needs_input_grad(2) ? wg.db : Tensor()};
  }
};

// Forward: z[n,c] = Σ_o g[n,o] ⋆ᵀ w[o,c]   (conv2d's backward-data pass, conv_transpose2d; z has x's shape)
// Backward: dg = conv2d(G, w),  dw[o,c] = Σ_n G[n,c] ⋆ g[n,o]   (conv2d's backward-weights pass of G and g)
class ConvTranspose2dBackward final : public ConvNode {
 public:
  using ConvNode::ConvNode;
  const char* name() const override { return "ConvTranspose2dBackward"; }
  std::vector<Tensor> apply(const Tensor& gz) override {
    const auto [g, w] = operands();
    const ConvShape s = backward_shape({&gz, &g, &w});
    return {w.defined() ? conv_forward(gz, w, {}, s) : Tensor(), g.defined() ? conv_weight(gz, g, s) : Tensor()};
  }
};

// Forward: z[o,c] = Σ_n x[n,c] ⋆ g[n,o]   (conv2d's backward-weights pass: z has conv2d's weight shape)
// Backward: dx = conv_transpose2d(g, G) (conv2d's backward-data pass with G as the weight),  dg = conv2d(x, G)
class Conv2dWeightBackward final : public ConvNode {
 public:
  using ConvNode::ConvNode;
  const char* name() const override { return "Conv2dWeightBackward"; }
  std::vector<Tensor> apply(const Tensor& gz) override {
    const auto [x, g] = operands();
    const ConvShape s = backward_shape({&gz, &x, &g});
    return {g.defined() ? conv_transpose(g, gz, s) : Tensor(), x.defined() ? conv_forward(x, gz, {}, s) : Tensor()};
  }
};

/// y = conv(x, w) + b for the geometry s (x, w of s's shapes; s.bias follows b),
/// recorded when an operand requires grad.
Tensor conv_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, ConvShape s) {
  s.bias = b_in.defined();
  const Tensor x = contig(x_in), w = contig(w_in), b = s.bias ? contig(b_in) : Tensor();
  const bool empty = is_empty_conv(s), f64 = x.dtype() == Dtype::Float64;
  Tensor y = empty ? empty_conv_forward(s, b, x.dtype()) : f64 ? conv2d_reference(x, w, b, s) : Tensor::empty(s.y);
  const bool recording = any_requires_grad({&x_in, &w_in, &b_in});
  if (!empty && !f64) dn::translate_errors("conv2d", {&s.x, &s.w}, [&] {
    Exec e;
    for_each_slice(s, [&](int64_t n0, const ConvShape& slice) {
      const ConvFwd p = conv_fwd(slice, recording ? prop_kind::forward_training : prop_kind::forward_inference);
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e.in(p.src, x.data<float>() + n0 * s.x_image())},
                                           {DNNL_ARG_WEIGHTS, e.kept(p.weights, w.data<float>())},
                                           {DNNL_ARG_DST, e.out(p.dst, y.data<float>() + n0 * s.y_image())}};
      if (b.defined()) args.emplace(DNNL_ARG_BIAS, dn::mem(dn::plain_md(s.bias_shape()), b));
      e.run(p.prim, args);
    });
  });
  if (recording) record_conv<Conv2dBackward>(y, s, x_in, w_in, &b_in);
  return y;
}

/// z = conv_transpose(g, w) of shape s.x (conv2d's backward-data pass for the
/// geometry s), recorded when g or w requires grad.
Tensor conv_transpose(const Tensor& g, const Tensor& w, ConvShape s) {
  s.bias = false;
  Tensor z = conv_data_kernel(g, w, s, "conv_transpose2d");
  if (any_requires_grad({&g, &w})) record_conv<ConvTranspose2dBackward>(z, s, g, w);
  return z;
}

/// z = conv_weight(x, g) of shape s.w (conv2d's backward-weights pass for the
/// geometry s), recorded when x or g requires grad.
Tensor conv_weight(const Tensor& x, const Tensor& g, ConvShape s) {
  s.bias = false;
  Tensor z = conv_weight_kernel(x, g, s, "conv2d weight gradient").dw;
  if (any_requires_grad({&x, &g})) record_conv<Conv2dWeightBackward>(z, s, x, g);
  return z;
}

/// The type a convolution of this input multiplies in: bf16 for Float32 inside an AutocastGuard.
memory::data_type autocast_type(const Tensor& x) {
  return x.dtype() == Dtype::Float32 && autocast_enabled() ? memory::data_type::bf16 : memory::data_type::f32;
}

/// "3" for (3, 3), "(3, 5)" otherwise: messages print a pair the way it was most likely given.

/// stride ≥ 1, padding ≥ 0, dilation ≥ 1, groups ≥ 1 (PyTorch's rules), with the op's name.
void check_geometry(const char* op, IntPair stride, IntPair padding, IntPair dilation, int64_t groups) {
  TAPE_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be >= 1, got ", stride.brief());
  TAPE_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be >= 0, got ", padding.brief());
  TAPE_CHECK(dilation.h >= 1 && dilation.w >= 1, op, ": dilation must be >= 1, got ", dilation.brief());
  TAPE_CHECK(groups >= 1, op, ": groups must be >= 1, got ", groups);
}

/// The dtype and rank checks shared by conv2d and conv_transpose2d; `w_layout` names w's dims.
void check_operands(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, const char* w_layout) {
  check_float(x, op, "input");
  check_float(w, op, "weight");
  check_same_dtype(x, w, op, "weight");
  TAPE_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got shape ", x.shape());
  TAPE_CHECK(w.dim() == 4, op, ": weight must be 4-D ", w_layout, ", got shape ", w.shape());
  if (b.defined()) {
    check_float(b, op, "bias");
    check_same_dtype(x, b, op, "bias");
  }
}

}  // namespace

IntPair::IntPair(const Shape& s) : h(s.empty() ? 0 : s[0]), w(s.empty() ? 0 : s.back()) {
  TAPE_CHECK(s.size() == 1 || s.size() == 2, "IntPair: expected 1 or 2 values (h, w), got ", s);
}

std::string IntPair::str() const { return str_cat("(", h, ", ", w, ")"); }
std::string IntPair::brief() const { return h == w ? std::to_string(h) : str(); }

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, IntPair stride, IntPair padding,
              IntPair dilation, int64_t groups) {
  if (all_bfloat16({&x_in, &w_in, &b_in}))  // computes in Float32
    return conv2d(x_in.to(Dtype::Float32), w_in.to(Dtype::Float32), float32_if_bfloat16(b_in), stride, padding,
                  dilation, groups)
        .to(Dtype::BFloat16);
  check_operands("conv2d", x_in, w_in, b_in, "[O, C, kh, kw]");  // C: channels per group
  check_geometry("conv2d", stride, padding, dilation, groups);
  TAPE_CHECK(w_in.size(0) % groups == 0, "conv2d: weight of shape ", w_in.shape(), " has ", w_in.size(0),
             " output channels, not divisible by groups ", groups);
  TAPE_CHECK(x_in.size(1) == w_in.size(1) * groups, "conv2d: input has ", x_in.size(1),
             " channels but weight of shape ", w_in.shape(), " expects ", w_in.size(1) * groups,
             groups > 1 ? str_cat(" (", groups, " groups of ", w_in.size(1), ")") : std::string());
  TAPE_CHECK(!b_in.defined() || (b_in.dim() == 1 && b_in.size(0) == w_in.size(0)), "conv2d: bias of shape ",
             b_in.shape(), " does not match weight of shape ", w_in.shape(), " (expected [", w_in.size(0), "])");
  const int64_t h = x_in.size(2), w = x_in.size(3);
  TAPE_CHECK(std::max(padding.h, padding.w) <= (std::numeric_limits<int64_t>::max() - std::max(h, w)) / 2,
             "conv2d: padding ", padding.brief(), " overflows the padded size of input shape ", x_in.shape());
  const int64_t hp = h + 2 * padding.h, wp = w + 2 * padding.w, kh = w_in.size(2), kw = w_in.size(3);
  const int64_t ekh = dilation.h * (kh - 1) + 1, ekw = dilation.w * (kw - 1) + 1;  // the dilated kernel's span
  TAPE_CHECK(ekh <= hp && ekw <= wp, "conv2d: kernel ", kh, "x", kw,
             dilation == IntPair(1) ? std::string() : str_cat(" with dilation ", dilation.brief(), " (spanning ", ekh, "x", ekw, ")"),
             " is larger than the padded input ", hp, "x", wp, " (input shape ", x_in.shape(), ", padding ",
             padding.brief(), ")");

  const Shape y_shape{x_in.size(0), w_in.size(0), (hp - ekh) / stride.h + 1, (wp - ekw) / stride.w + 1};
  return conv_forward(x_in, w_in, b_in,
                      ConvShape{x_in.shape(), w_in.shape(), y_shape, stride, padding, dilation, groups, false,
                                autocast_type(x_in)});
}

// Note: conv_transpose2d(x, w) is conv2d's backward-data pass: the convolution
// whose input is the transposed conv's output [N, O, OH, OW] and whose output is
// x [N, C, H, W], with w [C, O/g, kh, kw] as that convolution's weight. So it is
// the internal conv_transpose op (oneDNN backward-data in Float32, col2im in
// Float64), recorded as ConvTranspose2dBackward; the bias is a recorded add.
// output_padding adds rows at the bottom/right: they are rows that padding
// would crop. With output_padding < stride the convolution of OH rows has exactly
// H output rows; PyTorch also allows output_padding < dilation, where it has
// more: x is then extended with zero rows (a recorded cat) to that count.
Tensor conv_transpose2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, IntPair stride, IntPair padding,
                        IntPair output_padding, int64_t groups, IntPair dilation) {
  if (all_bfloat16({&x_in, &w_in, &b_in}))  // computes in Float32
    return conv_transpose2d(x_in.to(Dtype::Float32), w_in.to(Dtype::Float32), float32_if_bfloat16(b_in), stride,
                            padding, output_padding, groups, dilation)
        .to(Dtype::BFloat16);
  const char* op = "conv_transpose2d";
  check_operands(op, x_in, w_in, b_in, "[C, O/groups, kh, kw]");
  check_geometry(op, stride, padding, dilation, groups);
  TAPE_CHECK(output_padding.h >= 0 && output_padding.w >= 0, "conv_transpose2d: output_padding must be >= 0, got ",
             output_padding.brief());
  TAPE_CHECK((output_padding.h < stride.h || output_padding.h < dilation.h) &&
                 (output_padding.w < stride.w || output_padding.w < dilation.w),
             "conv_transpose2d: output_padding ", output_padding.brief(), " must be smaller than either stride ",
             stride.brief(), " or dilation ", dilation.brief());
  TAPE_CHECK(w_in.size(0) % groups == 0, "conv_transpose2d: weight of shape ", w_in.shape(), " has ", w_in.size(0),
             " input channels, not divisible by groups ", groups);
  TAPE_CHECK(x_in.size(1) == w_in.size(0), "conv_transpose2d: input has ", x_in.size(1),
             " channels but weight of shape ", w_in.shape(), " expects ", w_in.size(0));
  const int64_t out_channels = w_in.size(1) * groups;
  TAPE_CHECK(!b_in.defined() || (b_in.dim() == 1 && b_in.size(0) == out_channels), "conv_transpose2d: bias of shape ",
             b_in.shape(), " does not match weight of shape ", w_in.shape(), " and groups ", groups, " (expected [",
             out_channels, "])");
  const int64_t kh = w_in.size(2), kw = w_in.size(3);
  const int64_t ekh = dilation.h * (kh - 1) + 1, ekw = dilation.w * (kw - 1) + 1;
  const int64_t oh = (x_in.size(2) - 1) * stride.h - 2 * padding.h + ekh + output_padding.h;
  const int64_t ow = (x_in.size(3) - 1) * stride.w - 2 * padding.w + ekw + output_padding.w;
  TAPE_CHECK(oh > 0 && ow > 0, "conv_transpose2d: output size ", oh, "x", ow, " is too small (input shape ",
             x_in.shape(), ", weight ", w_in.shape(), ", stride ", stride.brief(), ", padding ", padding.brief(), ")");

  // the convolution from [N, O, oh, ow] whose backward-data this is
  const Shape y{x_in.size(0), x_in.size(1), (oh + 2 * padding.h - ekh) / stride.h + 1,
                (ow + 2 * padding.w - ekw) / stride.w + 1};
  Tensor x = x_in;
  for (int64_t dim : {2, 3})  // output_padding ≥ stride: zero rows / columns up to the convolution's size
    if (y[size_t(dim)] > x.size(dim)) {
      Shape pad = x.shape();
      pad[size_t(dim)] = y[size_t(dim)] - x.size(dim);
      x = cat({x, zeros(pad, x.dtype())}, dim);
    }
  const ConvShape s{{x_in.size(0), out_channels, oh, ow}, w_in.shape(), y, stride, padding, dilation, groups, false,
                    autocast_type(x_in)};
  Tensor z = conv_transpose(x, w_in, s);
  return b_in.defined() ? add(z, reshape(b_in, {1, out_channels, 1, 1})) : z;
}

}  // namespace tape
