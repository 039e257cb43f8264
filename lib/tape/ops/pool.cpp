// max_pool2d on oneDNN's pooling primitive (algorithm::pooling_max).
#include <unordered_map>

#include "tape/backend/dnnl.hpp"
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
  return dn::cached<PoolFwd>(s.key(dn::OpId::PoolFwd, pk), [&] {
    // memory descriptors → primitive descriptor → primitive
    dnnl::pooling_forward::desc desc(pk, dnnl::algorithm::pooling_max, dn::plain_md(s.x), dn::plain_md(s.y),
                                     s.strides(), s.kernels(), s.pads(), s.pads());
    dnnl::pooling_forward::primitive_desc pd(desc, dn::engine());
    return PoolFwd{pd, dnnl::pooling_forward(pd)};
  });
}

struct PoolBwd {
  dnnl::pooling_backward::primitive_desc pd;
  dnnl::pooling_backward prim;
};

PoolBwd pool_bwd(const PoolShape& s) {
  return dn::cached<PoolBwd>(s.key(dn::OpId::PoolBwd, prop_kind::backward_data), [&] {
    const PoolFwd hint = pool_fwd(s, prop_kind::forward_training);
    dnnl::pooling_backward::desc desc(dnnl::algorithm::pooling_max, dn::plain_md(s.x), dn::plain_md(s.y), s.strides(),
                                      s.kernels(), s.pads(), s.pads());
    dnnl::pooling_backward::primitive_desc pd(desc, dn::engine(), hint.pd);
    return PoolBwd{pd, dnnl::pooling_backward(pd)};
  });
}

// Forward: y[n,c,i,j] = max_{a,b < k} x[n,c, i·s + a, j·s + b]
// Backward: dx[n,c,h,w] = Σ_{(i,j) whose window's arg max is (h,w)} g[n,c,i,j]
// The arg max positions come from the forward's oneDNN workspace.
// Note: backward reads only the workspace, so the node does not keep x alive
// (at LeNet-5's peak that is conv1's 35 MB activation, which ReLU no longer
// needs either); it only watches x's version, because an in-place change to x
// would make the arg max stale.
class MaxPool2dBackward final : public Node {
 public:
  MaxPool2dBackward(PoolShape s, Tensor workspace, const Tensor& x)
      : shape_(std::move(s)), workspace_(std::move(workspace)), x_version_(x) {}
  const char* name() const override { return "MaxPool2dBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    x_version_.check(*this);
    const Tensor g = contig(g_in);
    const PoolBwd p = pool_bwd(shape_);
    Tensor dx = Tensor::empty(shape_.x);
    p.prim.execute(dn::stream(), {{DNNL_ARG_DIFF_DST, dn::mem(dn::md(g), g)},
                                  {DNNL_ARG_DIFF_SRC, dn::mem(dn::plain_md(shape_.x), dx)},
                                  {DNNL_ARG_WORKSPACE, dn::mem(p.pd.workspace_desc(), workspace_)}});
    dn::stream().wait();
    return {dx};
  }
  void release_saved() override {
    workspace_ = Tensor();
    x_version_.reset();
  }

 private:
  PoolShape shape_;
  Tensor workspace_;
  SavedVersion x_version_;
};

}  // namespace

Tensor max_pool2d(const Tensor& x_in, int64_t kernel, int64_t stride) {
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
  Tensor y = Tensor::empty(s.y);
  const bool recording = any_requires_grad({&x_in});
  // Note: forward_training must fill a workspace (the arg max of each window) for
  // backward; forward_inference skips it and is ~4× faster, so it is used whenever
  // no graph is recorded.
  const PoolFwd p = pool_fwd(s, recording ? prop_kind::forward_training : prop_kind::forward_inference);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dn::mem(dn::plain_md(s.x), x)},
                                       {DNNL_ARG_DST, dn::mem(dn::plain_md(s.y), y)}};
  Tensor workspace;
  if (recording) {
    workspace = dn::buffer_for(p.pd.workspace_desc());
    args.emplace(DNNL_ARG_WORKSPACE, dn::mem(p.pd.workspace_desc(), workspace));
  }
  p.prim.execute(dn::stream(), args);
  dn::stream().wait();
  if (recording) {
    record(y, std::make_shared<MaxPool2dBackward>(s, std::move(workspace), x_in), {&x_in});
  }
  return y;
}

}  // namespace tape
