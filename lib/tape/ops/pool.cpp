// max_pool2d, avg_pool2d and adaptive_avg_pool2d on oneDNN's pooling primitive
// for Float32; Float64 (which oneDNN does not pool), NaN-holding inputs (max) and
// windows oneDNN cannot express (avg) take templated reference loops.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "tape/backend/dnnl.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {
using dnnl::memory;
using dnnl::prop_kind;

/// Everything that identifies a oneDNN pooling: shapes, kernel, stride, padding
/// (top/left and bottom/right), algorithm. Max pooling uses square kernels and no padding.
struct PoolShape {
  Shape x, y;
  IntPair kernel = 1, stride = 1, pad_l = 0, pad_r = 0;
  dnnl::algorithm alg = dnnl::algorithm::pooling_max;

  memory::dims kernels() const { return {kernel.h, kernel.w}; }
  memory::dims strides() const { return {stride.h, stride.w}; }
  memory::dims pads_l() const { return {pad_l.h, pad_l.w}; }
  memory::dims pads_r() const { return {pad_r.h, pad_r.w}; }
  dn::Key key(dn::OpId op, prop_kind pk) const {
    dn::Key k{int64_t(op), int64_t(pk), int64_t(alg), kernel.h, kernel.w, stride.h, stride.w, pad_l.h, pad_l.w,
              pad_r.h, pad_r.w};
    k.insert(k.end(), x.begin(), x.end());
    return k;
  }
};

struct PoolFwd {
  dnnl::pooling_forward::primitive_desc pd;
  dnnl::pooling_forward prim;
};

// Note: pooling runs on the plain NCHW tensors directly (oneDNN's jit pooling
// handles nchw), so unlike conv2d no reorders are needed.
PoolFwd pool_fwd(const PoolShape& s, prop_kind pk) {
  return *dn::cached<PoolFwd>(s.key(dn::OpId::PoolFwd, pk), [&] {
    // memory descriptors → primitive descriptor → primitive
    dnnl::pooling_forward::desc desc(pk, s.alg, dn::plain_md(s.x), dn::plain_md(s.y), s.strides(), s.kernels(),
                                     s.pads_l(), s.pads_r());
    dnnl::pooling_forward::primitive_desc pd(desc, dn::attr(), dn::engine());
    return PoolFwd{pd, dnnl::pooling_forward(pd)};
  });
}

struct PoolBwd {
  dnnl::pooling_backward::primitive_desc pd;
  dnnl::pooling_backward prim;
};

PoolBwd pool_bwd(const PoolShape& s) {
  return *dn::cached<PoolBwd>(s.key(dn::OpId::PoolBwd, prop_kind::backward_data), [&] {
    const PoolFwd hint = pool_fwd(s, prop_kind::forward_training);
    dnnl::pooling_backward::desc desc(s.alg, dn::plain_md(s.x), dn::plain_md(s.y), s.strides(), s.kernels(),
                                      s.pads_l(), s.pads_r());
    dnnl::pooling_backward::primitive_desc pd(desc, dn::attr(), dn::engine(), hint.pd);
    return PoolBwd{pd, dnnl::pooling_backward(pd)};
  });
}

// Forward: y[n,c,i,j] = max_{a,b < k} x[n,c, i·s + a, j·s + b]
// Backward: dx[n,c,h,w] = Σ_{(i,j) whose window's arg max is (h,w)} g[n,c,i,j]
// The arg max positions come from the forward's oneDNN workspace, or, after the
// reference forward below, from its Int64 index (a flat offset per H×W plane).
// Under create_graph dx is a recorded scatter_add of g by that index (its
// backward gathers gg at the arg max); the index is constant, so the second
// derivative in x is zero.
// Note: backward reads only the workspace, so the node does not keep x alive
// (at LeNet-5's peak that is conv1's 35 MB activation, which ReLU no longer
// needs either); it only watches x's version, because an in-place change to x
// would make the arg max stale.
class MaxPool2dBackward final : public Node {
 public:
  MaxPool2dBackward(PoolShape s, Tensor workspace, const Tensor& x, bool by_index = false)
      : shape_(std::move(s)), workspace_(std::move(workspace)), x_version_(x), by_index_(by_index) {}
  const char* name() const override { return "MaxPool2dBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    x_version_.check(*this);
    if (any_requires_grad({&g_in})) [[unlikely]] return {recorded_scatter(g_in)};
    if (by_index_) [[unlikely]] return {scatter_by_index(contig(g_in))};
    return dn::translate_errors("max_pool2d backward", {&shape_.x}, [&] { return apply_dnnl(g_in); });
  }
  void release_saved() override {
    workspace_ = Tensor();
    x_version_.reset();
  }

 private:
  std::vector<Tensor> apply_dnnl(const Tensor& g_in) const {
    const Tensor g = contig(g_in);
    const PoolBwd p = pool_bwd(shape_);
    Tensor dx = Tensor::empty(shape_.x);
    dn::execute(p.prim, {{DNNL_ARG_DIFF_DST, dn::mem(dn::md(g), g)},
                         {DNNL_ARG_DIFF_SRC, dn::mem(dn::plain_md(shape_.x), dx)},
                         {DNNL_ARG_WORKSPACE, dn::mem(p.pd.workspace_desc(), workspace_)}});
    return {dx};
  }

  /// dx = scatter_add(0, index, g) on [planes, H·W] views, recorded (create_graph).
  Tensor recorded_scatter(const Tensor& g) {
    if (!by_index_) {  // from now on backward reads the index
      workspace_ = dn::translate_errors("max_pool2d backward", {&shape_.x}, [&] { return index_from_workspace(); });
      by_index_ = true;
    }
    const int64_t planes = shape_.x[0] * shape_.x[1];
    const Tensor index = reshape(workspace_, {planes, shape_.y[2] * shape_.y[3]});
    const Tensor dx = scatter_add(zeros({planes, shape_.x[2] * shape_.x[3]}, g.dtype()), 1, index,
                                  reshape(g, index.shape()));
    return reshape(dx, shape_.x);
  }

  // Note: oneDNN's workspace is opaque, so the index is read back through its
  // backward: with g = 1 on windows that do not overlap (every c-th one in each
  // direction, c = ⌈k / s⌉), the only nonzero of dx inside a window of the set is
  // its arg max. c² backward passes, once per node, and only under create_graph.
  /// The Int64 arg max index (a flat offset per H×W plane) from the workspace.
  Tensor index_from_workspace() const {
    const int64_t w = shape_.x[3], oh = shape_.y[2], ow = shape_.y[3], k = shape_.kernel.h, st = shape_.stride.h;
    const int64_t planes = shape_.x[0] * shape_.x[1], hw = shape_.x[2] * w, c = (k + st - 1) / st;
    Tensor index = Tensor::empty(shape_.y, Dtype::Int64), g = Tensor::empty(shape_.y);
    int64_t* pi = index.data<int64_t>();
    float* pg = g.data<float>();
    for (int64_t a = 0; a < c; ++a)
      for (int64_t b = 0; b < c; ++b) {
        const auto in_set = [&](int64_t i, int64_t j) { return i % c == a && j % c == b; };
        for (int64_t o = 0; o < planes * oh * ow; ++o) pg[o] = in_set(o / ow % oh, o % ow) ? 1.f : 0.f;
        const Tensor dx = apply_dnnl(g)[0];
        const float* pd = dx.data<float>();
        parallel_for(planes, [&](int64_t plane) {
          for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j) {
              if (!in_set(i, j)) continue;
              for (int64_t r = i * st; r < i * st + k; ++r)
                for (int64_t col = j * st; col < j * st + k; ++col)
                  if (pd[plane * hw + r * w + col] != 0.f) pi[(plane * oh + i) * ow + j] = r * w + col;
            }
        }, /*cost=*/oh * ow * k * k / (c * c));
      }
    return index;
  }

  /// dx[plane, index[o]] += g[o]
  Tensor scatter_by_index(const Tensor& g) const {
    Tensor dx = zeros(shape_.x, g.dtype());
    const int64_t hw = shape_.x[2] * shape_.x[3], ohw = shape_.y[2] * shape_.y[3];
    const int64_t* pi = workspace_.data<int64_t>();
    visit_float(g.dtype(), name(), [&]<class T>() {
      const T* pg = g.data<T>();
      T* pd = dx.data<T>();
      parallel_for(shape_.x[0] * shape_.x[1], [&](int64_t plane) {
        for (int64_t o = plane * ohw; o < (plane + 1) * ohw; ++o) pd[plane * hw + pi[o]] += pg[o];
      }, /*cost=*/ohw);
    });
    return dx;
  }

  PoolShape shape_;
  Tensor workspace_;  ///< oneDNN's workspace, or the Int64 index when by_index_
  SavedVersion x_version_;
  bool by_index_;
};

// Note: oneDNN's max pooling drops NaN (the window {0, 1, 4, NaN} gave 0), while
// PyTorch propagates it: a window holding a NaN gives NaN, and backward sends the
// window's gradient to that NaN (the last one, as PyTorch's CPU kernel does). A
// vectorised scan of x (detail::has_nan: one read, cheaper than the pooling)
// finds NaNs, and only then does this plain loop run instead of oneDNN. It also
// serves inputs with no elements, which oneDNN cannot take, and Float64.
/// Max pooling with PyTorch's NaN rule; `index` (if defined) receives each
/// window's arg max as a flat offset into its H×W plane.
template <class T>
Tensor reference_pool(const Tensor& x, const PoolShape& s, Tensor* index) {
  Tensor y = Tensor::empty(s.y, x.dtype());
  if (index) *index = Tensor::empty(s.y, Dtype::Int64);
  const int64_t h = s.x[2], w = s.x[3], oh = s.y[2], ow = s.y[3], k = s.kernel.h, st = s.stride.h;
  const T* px = x.data<T>();
  T* py = y.data<T>();
  int64_t* pi = index ? index->data<int64_t>() : nullptr;
  parallel_for(s.x[0] * s.x[1], [&](int64_t plane) {
    const T* in = px + plane * h * w;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = i * st * w + j * st;
        for (int64_t a = 0; a < k; ++a)
          for (int64_t b = 0; b < k; ++b) {
            const int64_t at = (i * st + a) * w + j * st + b;
            if (in[at] > best || std::isnan(in[at])) best = in[at], arg = at;
          }
        const int64_t o = (plane * oh + i) * ow + j;
        py[o] = best;
        if (pi) pi[o] = arg;
      }
  }, /*cost=*/oh * ow * k * k);
  return y;
}

Tensor max_pool2d_reference(const Tensor& x_in, const Tensor& x, const PoolShape& s) {
  Tensor index;
  const bool recording = any_requires_grad({&x_in});
  Tensor y = visit_float(x.dtype(), "max_pool2d",
                         [&]<class T>() { return reference_pool<T>(x, s, recording ? &index : nullptr); });
  if (!recording) return y;
  record(y, std::make_shared<MaxPool2dBackward>(s, std::move(index), x_in, /*by_index=*/true), {&x_in});
  return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, int64_t kernel, int64_t stride) {
  if (x_in.defined() && x_in.dtype() == Dtype::BFloat16)
    return via_float32(x_in, [&](const Tensor& x) { return max_pool2d(x, kernel, stride); });
  check_float(x_in, "max_pool2d", "input");
  TAPE_CHECK(x_in.dim() == 4, "max_pool2d: input must be 4-D [N, C, H, W], got shape ", x_in.shape());
  TAPE_CHECK(kernel >= 1, "max_pool2d: kernel must be >= 1, got ", kernel);
  if (stride == -1) stride = kernel;
  TAPE_CHECK(stride >= 1, "max_pool2d: stride must be >= 1 (or -1 for stride = kernel), got ", stride);
  const int64_t h = x_in.size(2), w = x_in.size(3);
  TAPE_CHECK(kernel <= h && kernel <= w, "max_pool2d: kernel ", kernel, "x", kernel, " is larger than the input ", h,
             "x", w, " (input shape ", x_in.shape(), ")");

  Tensor x = contig(x_in);
  PoolShape s{x.shape(), {x.size(0), x.size(1), (h - kernel) / stride + 1, (w - kernel) / stride + 1}, kernel, stride};
  if (x.dtype() == Dtype::Float64 || x.numel() == 0 || has_nan(x.data<float>(), x.numel())) [[unlikely]]
    return max_pool2d_reference(x_in, x, s);
  Tensor y = Tensor::empty(s.y);
  const bool recording = any_requires_grad({&x_in});
  Tensor workspace;
  dn::translate_errors("max_pool2d", {&s.x}, [&] {
    // Note: forward_training must fill a workspace (the arg max of each window) for
    // backward; forward_inference skips it and is ~4× faster, so it is used whenever
    // no graph is recorded.
    const PoolFwd p = pool_fwd(s, recording ? prop_kind::forward_training : prop_kind::forward_inference);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dn::mem(dn::plain_md(s.x), x)},
                                         {DNNL_ARG_DST, dn::mem(dn::plain_md(s.y), y)}};
    if (recording) {
      workspace = dn::buffer_for(p.pd.workspace_desc());
      args.emplace(DNNL_ARG_WORKSPACE, dn::mem(p.pd.workspace_desc(), workspace));
    }
    dn::execute(p.prim, std::move(args));
  });
  if (recording) {
    record(y, std::make_shared<MaxPool2dBackward>(s, std::move(workspace), x_in), {&x_in});
  }
  return y;
}


// --- average pooling -------------------------------------------------------------

namespace {

/// The windows of an average pooling along one axis: output i averages input
/// [begin[i], end[i]) and divides by div[i] — the window's extent clipped to the
/// input, or, with count_include_pad, including the padding it covers.
struct Bins {
  std::vector<int64_t> begin, end, div;
};

/// avg_pool2d's windows along an axis of n inputs and o outputs (PyTorch's rule:
/// a window ends at n + padding at the latest; ceil mode may make it shorter).
Bins pool_bins(int64_t n, int64_t o, int64_t k, int64_t stride, int64_t pad, bool count_include_pad) {
  Bins b;
  for (int64_t i = 0; i < o; ++i) {
    const int64_t start = i * stride - pad, stop = std::min(start + k, n + pad);
    b.begin.push_back(std::max<int64_t>(start, 0));
    b.end.push_back(std::min(stop, n));
    b.div.push_back(count_include_pad ? stop - start : b.end.back() - b.begin.back());
  }
  return b;
}

/// adaptive_avg_pool2d's bins: output i covers [⌊i·n/o⌋, ⌈(i+1)·n/o⌉).
Bins adaptive_bins(int64_t n, int64_t o) {
  Bins b;
  for (int64_t i = 0; i < o; ++i) {
    b.begin.push_back(i * n / o);
    b.end.push_back(((i + 1) * n + o - 1) / o);
    b.div.push_back(b.end.back() - b.begin.back());
  }
  return b;
}

/// An average pooling: the windows per axis and, when `dnnl`, the oneDNN pooling
/// with the same windows and divisors (pool.x, pool.y are the shapes either way).
struct AvgShape {
  PoolShape pool;
  Bins rows, cols;
  bool dnnl = false;
  bool adaptive = false;  ///< names the nodes
};

/// y = the window means of x (forward) or dx = the adjoint, g spread back over
/// each window (backward), for one element type.
template <class T>
Tensor avg_loop(const Tensor& in, const AvgShape& s, bool backward) {
  const Shape& out_shape = backward ? s.pool.x : s.pool.y;
  Tensor out = zeros(out_shape, in.dtype());
  const int64_t h = s.pool.x[2], w = s.pool.x[3], oh = s.pool.y[2], ow = s.pool.y[3];
  const T* pi = in.data<T>();
  T* po = out.data<T>();
  parallel_for(s.pool.x[0] * s.pool.x[1], [&](int64_t plane) {
    const T* src = pi + plane * (backward ? oh * ow : h * w);
    T* dst = po + plane * (backward ? h * w : oh * ow);
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const T div = T(s.rows.div[size_t(i)] * s.cols.div[size_t(j)]);
        if (backward) {
          const T v = src[i * ow + j] / div;
          for (int64_t r = s.rows.begin[size_t(i)]; r < s.rows.end[size_t(i)]; ++r)
            for (int64_t c = s.cols.begin[size_t(j)]; c < s.cols.end[size_t(j)]; ++c) dst[r * w + c] += v;
        } else {
          T sum = 0;
          for (int64_t r = s.rows.begin[size_t(i)]; r < s.rows.end[size_t(i)]; ++r)
            for (int64_t c = s.cols.begin[size_t(j)]; c < s.cols.end[size_t(j)]; ++c) sum += src[r * w + c];
          dst[i * ow + j] = sum / div;
        }
      }
  }, /*cost=*/h * w + oh * ow);
  return out;
}

/// The forward (x → y) or backward (g → dx) pass on oneDNN's pooling (Float32).
Tensor avg_dnnl(const Tensor& in, const AvgShape& s, bool backward) {
  const PoolShape& p = s.pool;
  Tensor out = Tensor::empty(backward ? p.x : p.y);
  if (backward) {
    const PoolBwd b = pool_bwd(p);
    dn::execute(b.prim, {{DNNL_ARG_DIFF_DST, dn::mem(dn::plain_md(p.y), in)},
                         {DNNL_ARG_DIFF_SRC, dn::mem(dn::plain_md(p.x), out)}});
  } else {
    const PoolFwd f = pool_fwd(p, prop_kind::forward_training);  // avg pooling keeps no workspace
    dn::execute(f.prim, {{DNNL_ARG_SRC, dn::mem(dn::plain_md(p.x), in)}, {DNNL_ARG_DST, dn::mem(dn::plain_md(p.y), out)}});
  }
  return out;
}

Tensor avg_forward(const Tensor& x, const AvgShape& s);
Tensor avg_backward(const Tensor& g, const AvgShape& s);

// Forward: y[n,c,i,j] = Σ_{(h,w) in window (i,j)} x[n,c,h,w] / div(i,j)
//          (div: the window's size, with or without the padding it covers; adaptive bins likewise)
// Backward: dx[n,c,h,w] = Σ_{windows (i,j) holding (h,w)} g[n,c,i,j] / div(i,j)
// The backward is linear in g: it is the recorded avg_pool2d_backward op, whose
// own backward is avg_pool2d again, so gradients of any order stay in the pair.
class AvgPool2dBackward final : public Node {
 public:
  explicit AvgPool2dBackward(AvgShape s) : shape_(std::move(s)) {}
  const char* name() const override { return shape_.adaptive ? "AdaptiveAvgPool2dBackward" : "AvgPool2dBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {avg_backward(g, shape_)}; }

 private:
  AvgShape shape_;
};

// Forward: dx = avg_pool2d_backward(g)   (the adjoint of avg_pool2d: g spread over each window / div)
// Backward: dg = avg_pool2d(G)   (the adjoint of the adjoint)
class AvgPool2dBackwardBackward final : public Node {
 public:
  explicit AvgPool2dBackwardBackward(AvgShape s) : shape_(std::move(s)) {}
  const char* name() const override {
    return shape_.adaptive ? "AdaptiveAvgPool2dBackwardBackward" : "AvgPool2dBackwardBackward";
  }
  std::vector<Tensor> apply(const Tensor& g) override { return {avg_forward(g, shape_)}; }

 private:
  AvgShape shape_;
};

/// One pass, forward or backward, on oneDNN when the shape allows it, else the loop.
Tensor avg_pass(const Tensor& in_, const AvgShape& s, bool backward, const char* op) {
  const Tensor in = contig(in_);
  if (s.dnnl && in.dtype() == Dtype::Float32 && in.numel() > 0)
    return dn::translate_errors(op, {&s.pool.x}, [&] { return avg_dnnl(in, s, backward); });
  return visit_float(in.dtype(), op, [&]<class T>() { return avg_loop<T>(in, s, backward); });
}

Tensor avg_forward(const Tensor& x, const AvgShape& s) {
  Tensor y = avg_pass(x, s, false, s.adaptive ? "adaptive_avg_pool2d" : "avg_pool2d");
  if (any_requires_grad({&x})) record(y, std::make_shared<AvgPool2dBackward>(s), {&x});
  return y;
}

Tensor avg_backward(const Tensor& g, const AvgShape& s) {
  Tensor dx = avg_pass(g, s, true, s.adaptive ? "adaptive_avg_pool2d backward" : "avg_pool2d backward");
  if (any_requires_grad({&g})) record(dx, std::make_shared<AvgPool2dBackwardBackward>(s), {&g});
  return dx;
}

/// "3" for (3, 3), "(3, 5)" otherwise, for messages.

/// PyTorch's pooling_output_shape: floor or ceil, and in ceil mode the last
/// window must start inside the input or its left padding.
int64_t pool_out(int64_t n, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t o = (n + 2 * pad - k + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (o - 1) * stride >= n + pad) --o;
  return o;
}

}  // namespace

// Note: oneDNN's pooling_avg_include_padding divides every window by kh·kw,
// including a ceil-mode window that runs past the padding, where PyTorch divides
// by the part up to the padding's end. Those shapes (ceil mode, count_include_pad,
// a last window past the padding) run the loop; everything else in Float32 runs
// oneDNN (its bottom/right padding is whatever the last window needs).
Tensor avg_pool2d(const Tensor& x_in, IntPair kernel, IntPair stride, IntPair padding, bool ceil_mode,
                  bool count_include_pad) {
  if (x_in.defined() && x_in.dtype() == Dtype::BFloat16)
    return via_float32(x_in, [&](const Tensor& x) {
      return avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad);
    });
  check_float(x_in, "avg_pool2d", "input");
  TAPE_CHECK(x_in.dim() == 4, "avg_pool2d: input must be 4-D [N, C, H, W], got shape ", x_in.shape());
  TAPE_CHECK(kernel.h >= 1 && kernel.w >= 1, "avg_pool2d: kernel must be >= 1, got ", kernel.brief());
  if (stride == IntPair(-1)) stride = kernel;
  TAPE_CHECK(stride.h >= 1 && stride.w >= 1, "avg_pool2d: stride must be >= 1 (or -1 for stride = kernel), got ",
             stride.brief());
  TAPE_CHECK(padding.h >= 0 && padding.w >= 0, "avg_pool2d: padding must be >= 0, got ", padding.brief());
  TAPE_CHECK(2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, "avg_pool2d: padding ", padding.brief(),
             " must be at most half of kernel ", kernel.brief());
  const int64_t h = x_in.size(2), w = x_in.size(3);
  TAPE_CHECK(kernel.h <= h + 2 * padding.h && kernel.w <= w + 2 * padding.w, "avg_pool2d: kernel ", kernel.brief(),
             " is larger than the padded input ", h + 2 * padding.h, "x", w + 2 * padding.w, " (input shape ",
             x_in.shape(), ", padding ", padding.brief(), ")");
  const int64_t oh = pool_out(h, kernel.h, stride.h, padding.h, ceil_mode);
  const int64_t ow = pool_out(w, kernel.w, stride.w, padding.w, ceil_mode);

  AvgShape s;
  s.rows = pool_bins(h, oh, kernel.h, stride.h, padding.h, count_include_pad);
  s.cols = pool_bins(w, ow, kernel.w, stride.w, padding.w, count_include_pad);
  // the bottom/right padding oneDNN needs for exactly oh x ow windows (at least `padding`)
  const IntPair pad_r{std::max(padding.h, (oh - 1) * stride.h + kernel.h - h - padding.h),
                      std::max(padding.w, (ow - 1) * stride.w + kernel.w - w - padding.w)};
  s.pool = PoolShape{x_in.shape(), {x_in.size(0), x_in.size(1), oh, ow}, kernel, stride, padding, pad_r,
                     count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                       : dnnl::algorithm::pooling_avg_exclude_padding};
  s.dnnl = !count_include_pad || (pad_r.h == padding.h && pad_r.w == padding.w);
  return avg_forward(x_in, s);
}

// Note: when the bins tile the input evenly (H % oh = W % ow = 0) they are a
// plain pooling with kernel = stride = H/oh, which Float32 runs on oneDNN.
Tensor adaptive_avg_pool2d(const Tensor& x_in, IntPair output_size) {
  if (x_in.defined() && x_in.dtype() == Dtype::BFloat16)
    return via_float32(x_in, [&](const Tensor& x) { return adaptive_avg_pool2d(x, output_size); });
  check_float(x_in, "adaptive_avg_pool2d", "input");
  TAPE_CHECK(x_in.dim() == 4, "adaptive_avg_pool2d: input must be 4-D [N, C, H, W], got shape ", x_in.shape());
  TAPE_CHECK(x_in.size(1) > 0 && x_in.size(2) > 0 && x_in.size(3) > 0,
             "adaptive_avg_pool2d: input must have non-zero C, H, W, got shape ", x_in.shape());
  const int64_t oh = output_size.h, ow = output_size.w, h = x_in.size(2), w = x_in.size(3);
  TAPE_CHECK(oh >= 1 && ow >= 1, "adaptive_avg_pool2d: output_size must be >= 1, got ", output_size.brief());
  AvgShape s;
  s.adaptive = true;
  s.rows = adaptive_bins(h, oh);
  s.cols = adaptive_bins(w, ow);
  s.pool.x = x_in.shape();
  s.pool.y = {x_in.size(0), x_in.size(1), oh, ow};
  if (h % oh == 0 && w % ow == 0) {
    s.dnnl = true;
    s.pool.kernel = s.pool.stride = IntPair(h / oh, w / ow);
    s.pool.alg = dnnl::algorithm::pooling_avg_include_padding;  // no padding: both divide by kh·kw
  }
  return avg_forward(x_in, s);
}

}  // namespace tape
