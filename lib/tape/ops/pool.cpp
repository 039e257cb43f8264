// max_pool2d on oneDNN's pooling primitive (algorithm::pooling_max) for Float32;
// Float64 (which oneDNN does not pool) and NaN-holding inputs take the reference loop.
#include <cmath>
#include <limits>
#include <unordered_map>

#include "tape/backend/dnnl.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {
using dnnl::memory;
using dnnl::prop_kind;

/// Everything that identifies a pooling: input shape, kernel, stride.
struct PoolShape {
  Shape x, y;
  int64_t kernel = 1, stride = 1;

  memory::dims kernels() const { return {kernel, kernel}; }
  memory::dims strides() const { return {stride, stride}; }
  memory::dims pads() const { return {0, 0}; }
  dn::Key key(dn::OpId op, prop_kind pk) const {
    dn::Key k{int64_t(op), int64_t(pk), kernel, stride};
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
    dnnl::pooling_forward::desc desc(pk, dnnl::algorithm::pooling_max, dn::plain_md(s.x), dn::plain_md(s.y),
                                     s.strides(), s.kernels(), s.pads(), s.pads());
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
    dnnl::pooling_backward::desc desc(dnnl::algorithm::pooling_max, dn::plain_md(s.x), dn::plain_md(s.y), s.strides(),
                                      s.kernels(), s.pads(), s.pads());
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
    const int64_t w = shape_.x[3], oh = shape_.y[2], ow = shape_.y[3], k = shape_.kernel, st = shape_.stride;
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
  const int64_t h = s.x[2], w = s.x[3], oh = s.y[2], ow = s.y[3], k = s.kernel, st = s.stride;
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

}  // namespace tape
