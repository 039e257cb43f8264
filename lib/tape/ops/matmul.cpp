// matmul and linear: Float32 on oneDNN's matmul primitive, Float64 on OpenBLAS's
// dgemm (oneDNN 2.6 has no f64 matmul). Transposed operands are passed as
// strided memory descriptors (oneDNN) or as transposed BLAS operands, so
// backward never copies a transpose. Inside an AutocastGuard, Float32 products
// run on oneDNN's bf16 kernels (docs/precision.md).
#include <algorithm>

#include "tape/backend/blas.hpp"
#include "tape/backend/dnnl.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/core/autocast.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {

/// oneDNN's matmul takes plain layouts where one of the two inner dims is dense.
Tensor as_matmul_operand(const Tensor& t) {
  const auto& st = t.strides();
  const auto nd = size_t(t.dim());
  if (st[nd - 1] == 1 || st[nd - 2] == 1) return t;
  return contig(t);
}

/// c = a·b (+ bias) on oneDNN, no graph. a [..,M,K], b [..,K,N] may be strided
/// views, both Float32 or both BFloat16 (autocast: bf16 products summed in f32);
/// c and the bias are Float32.
Tensor mm_dnnl(const Tensor& a_in, const Tensor& b_in, const Tensor& bias_in) {
  Tensor a = as_matmul_operand(a_in), b = as_matmul_operand(b_in);
  const Tensor bias = bias_in.defined() ? contig(bias_in) : Tensor();  // its descriptor below is dense
  const size_t nd = size_t(a.dim());
  Shape c_shape = a.shape();
  c_shape[nd - 1] = b.shape()[nd - 1];
  Tensor c = Tensor::empty(c_shape);

  struct Prim {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
  };
  dn::Key key{int64_t(dn::OpId::Matmul), int64_t(a.dtype()), int64_t(nd), bias.defined()};
  for (const Tensor* t : {&a, &b}) {
    key.insert(key.end(), t->shape().begin(), t->shape().end());
    key.insert(key.end(), t->strides().begin(), t->strides().end());
  }
  Shape bias_shape(nd, 1);
  bias_shape[nd - 1] = c_shape[nd - 1];
  const auto p = dn::cached<Prim>(key, [&] {
    // memory descriptors → primitive descriptor → primitive
    auto a_md = dn::md(a), b_md = dn::md(b), c_md = dn::md(c);
    auto pd = bias.defined()
                  ? dnnl::matmul::primitive_desc(
                        dnnl::matmul::desc(a_md, b_md, dn::md(bias_shape, contiguous_strides(bias_shape)), c_md),
                        dn::attr(), dn::engine())
                  : dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), dn::attr(), dn::engine());
    return Prim{pd, dnnl::matmul(pd)};
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dn::mem(p->pd.src_desc(), a)},
                                             {DNNL_ARG_WEIGHTS, dn::mem(p->pd.weights_desc(), b)},
                                             {DNNL_ARG_DST, dn::mem(p->pd.dst_desc(), c)}};
  if (bias.defined()) args.emplace(DNNL_ARG_BIAS, dn::mem(dn::md(bias_shape, contiguous_strides(bias_shape)), bias));
  dn::execute(p->prim, std::move(args));
  return c;
}

/// The last two dims of a Float64 tensor as a BLAS operand: its own buffer when
/// one inner stride is 1 (a transposed view is read transposed), else a copy.
struct BlasOperand {
  Tensor t;
  backend::DMatrix m;
};
BlasOperand blas_operand(const Tensor& t_in) {
  const size_t nd = size_t(t_in.dim());
  const int64_t rows = t_in.shape()[nd - 2], cols = t_in.shape()[nd - 1];
  const int64_t s0 = t_in.strides()[nd - 2], s1 = t_in.strides()[nd - 1];
  if (s1 == 1 && s0 >= std::max<int64_t>(cols, 1)) return {t_in, {base_ptr<double>(t_in), s0, false}};
  if (s0 == 1 && s1 >= std::max<int64_t>(rows, 1)) return {t_in, {base_ptr<double>(t_in), s1, true}};
  Tensor t = contig(t_in);
  return {t, {t.data<double>(), std::max<int64_t>(cols, 1), false}};
}

/// c = a·b (+ bias) in Float64 on dgemm, no graph; a [..,M,K], b [..,K,N] may be strided views.
Tensor mm_blas(const Tensor& a_in, const Tensor& b_in, const Tensor& bias) {
  const BlasOperand a = blas_operand(a_in), b = blas_operand(b_in);
  const int64_t m = a_in.size(-2), k = a_in.size(-1), n = b_in.size(-1);
  Shape c_shape = a_in.shape();
  c_shape.back() = n;
  // the bias is broadcast into C first and dgemm adds A·B to it (beta = 1)
  Tensor c = bias.defined() ? expand_copy(bias, c_shape) : Tensor::empty(c_shape, Dtype::Float64);
  const bool batched = a_in.dim() == 3;
  const int64_t batches = batched ? a_in.size(0) : 1;
  for (int64_t i = 0; i < batches; ++i) {
    backend::DMatrix ai = a.m, bi = b.m;
    if (batched) ai.p += i * a.t.strides()[0], bi.p += i * b.t.strides()[0];
    backend::dgemm(m, n, k, ai, bi, bias.defined() ? 1.0 : 0.0, c.data<double>() + i * m * n, n);
  }
  return c;
}

// Note: oneDNN fails on zero-sized dims (an error, or SIGFPE in its thread
// partitioning), and an empty product needs no kernel: with no output elements
// there is nothing to do, and with K = 0 every output is a sum over nothing (0,
// plus the bias) — PyTorch's results, forward and backward (dA = G·Bᵀ of an empty
// batch is empty, dB = Aᵀ·G is zeros).
/// c = a·b (+ bias), no graph; BFloat16 a and b (autocast) give a Float32 c.
Tensor mm(const Tensor& a, const Tensor& b, const Tensor& bias = {}) {
  if (a.numel() == 0 || b.numel() == 0) [[unlikely]] {
    Shape c_shape = a.shape();
    c_shape.back() = b.shape().back();
    Tensor c = zeros(c_shape, a.dtype() == Dtype::BFloat16 ? Dtype::Float32 : a.dtype());
    if (bias.defined() && c.numel() > 0) c.add_(bias.detach());
    return c;
  }
  if (a.dtype() == Dtype::Float64) return mm_blas(a, b, bias);
  return dn::translate_errors("matmul", {&a.shape(), &b.shape()}, [&] { return mm_dnnl(a, b, bias); });
}

Tensor swap_last(const Tensor& t) {
  NoGradGuard g;
  return transpose(t, -1, -2);
}

/// True when a product of these Float32 operands runs in bf16 (inside an AutocastGuard).
bool autocast_bf16(const Tensor& a) { return a.dtype() == Dtype::Float32 && autocast_enabled(); }

// Note: autocast. Under an AutocastGuard a Float32 product rounds its operands to
// bf16 (a oneDNN reorder) and runs oneDNN's bf16 matmul with a Float32 output, so
// the sums accumulate in f32. The node records that choice: its backward runs in
// bf16 too (whatever the guard says then) and reuses the bf16 copies of the
// operands made in forward; only the incoming gradient is converted. The
// originals are kept as well, for a create_graph backward, which records f32 ops
// on them (exact dtype, differentiable) — under autocast the node therefore holds
// 1.5× the operands' bytes.
/// The bf16 copies of a product's operands, when its forward ran under autocast.
struct Bf16Operands {
  Tensor a, b;
  bool on() const { return a.defined(); }
};
Bf16Operands bf16_operands(const Tensor& a, const Tensor& b) {
  if (!autocast_bf16(a)) return {};
  return {dn::to_bf16(a), dn::to_bf16(b)};
}

/// A product's node: the operands a, b (0, 1) and, under autocast, their bf16 copies (2, 3).
class ProductNode : public SavingNode<4> {
 public:
  void save_operands(const Tensor& a, const Tensor& b, const Bf16Operands& b16) {
    save(0, a);
    save(1, b);
    if (b16.on()) save(2, b16.a), save(3, b16.b);
    bf16_ = b16.on();
  }

 protected:
  bool bf16_ = false;
};

// Forward: C = A·B             Backward: dA = G·Bᵀ, dB = Aᵀ·G
// Note: under autocast A, B and G are rounded to bf16, the products summed in f32.
// Note: under create_graph both are recorded matmuls, so they differentiate again.
struct MatmulBackward final : ProductNode {
  const char* name() const override { return "MatmulBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor a = saved(0), b = saved(1);
    if (any_requires_grad({&g_in, &a, &b}))
      return {needs_input_grad(0) ? matmul(g_in, transpose(b, -1, -2)) : Tensor(),
              needs_input_grad(1) ? matmul(transpose(a, -1, -2), g_in) : Tensor()};
    Tensor g = g_in;
    if (bf16_) a = saved(2), b = saved(3), g = dn::to_bf16(g_in);
    return {needs_input_grad(0) ? mm(g, swap_last(b)) : Tensor(), needs_input_grad(1) ? mm(swap_last(a), g) : Tensor()};
  }
};

// Forward: y = x·Wᵀ + b        Backward: dx = G·W, dW = Gᵀ·x, db = Σ_rows G
// Note: under autocast x, W and G are rounded to bf16, the products summed in f32
// (b and db stay f32). G is converted once: dW reads it transposed through a
// strided descriptor (370×1000 · 1000×784: 1.7–1.8 ms, 1 thread), which costs
// less than a transposing conversion into a contiguous Gᵀ (0.15 ms, a strided
// gather) plus the product on it (1.54 ms), and far less for the small layers.
// Note: under create_graph all three are recorded ops, so they differentiate again.
struct LinearBackward final : ProductNode {
  const char* name() const override { return "LinearBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor x = saved(0), w = saved(1);
    Tensor db = needs_input_grad(2) ? sum(g_in, 0) : Tensor();  // recorded under create_graph
    if (any_requires_grad({&g_in, &x, &w}))
      return {needs_input_grad(0) ? matmul(g_in, w) : Tensor(), needs_input_grad(1) ? matmul(g_in.t(), x) : Tensor(),
              db};
    if (!bf16_)
      return {needs_input_grad(0) ? mm(g_in, w) : Tensor(), needs_input_grad(1) ? mm(swap_last(g_in), x) : Tensor(),
              db};
    x = saved(2), w = saved(3);
    const Tensor g = dn::to_bf16(g_in);
    return {needs_input_grad(0) ? mm(g, w) : Tensor(), needs_input_grad(1) ? mm(swap_last(g), x) : Tensor(), db};
  }
};

}  // namespace

// BFloat16 operands compute in Float32 (oneDNN's bf16 kernels are issue 15's).
Tensor matmul(const Tensor& a, const Tensor& b) {
  if (all_bfloat16({&a, &b})) return matmul(a.to(Dtype::Float32), b.to(Dtype::Float32)).to(Dtype::BFloat16);
  check_float(a, "matmul", "first operand");
  check_float(b, "matmul", "second operand");
  check_same_dtype(a, b, "matmul", "second operand");  // PyTorch does not promote here either
  const bool ok2 = a.dim() == 2 && b.dim() == 2, ok3 = a.dim() == 3 && b.dim() == 3;
  TAPE_CHECK(ok2 || ok3, "matmul: expects two 2-D or two 3-D tensors, got shapes ", a.shape(), " and ", b.shape());
  TAPE_CHECK(a.size(-1) == b.size(-2), "matmul: shapes ", a.shape(), " and ", b.shape(),
             " cannot be multiplied (", a.size(-1), " != ", b.size(-2), ")");
  TAPE_CHECK(ok2 || a.size(0) == b.size(0), "matmul: batch sizes differ in shapes ", a.shape(), " and ", b.shape());
  const Bf16Operands b16 = bf16_operands(a, b);
  Tensor c = b16.on() ? mm(b16.a, b16.b) : mm(a, b);
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MatmulBackward>();
    node->save_operands(a, b, b16);
    record(c, std::move(node), {&a, &b});
  }
  return c;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (all_bfloat16({&x, &w, &b}))
    return linear(x.to(Dtype::Float32), w.to(Dtype::Float32), float32_if_bfloat16(b)).to(Dtype::BFloat16);
  check_float(x, "linear", "input");
  check_float(w, "linear", "weight");
  check_same_dtype(x, w, "linear", "weight");
  TAPE_CHECK(w.dim() == 2, "linear: weight must be 2-D [out, in], got shape ", w.shape());
  TAPE_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: input of shape ", x.shape(),
             " does not match weight of shape ", w.shape(), " (expected last dim ", w.size(1), ")");
  if (b.defined()) {
    check_float(b, "linear", "bias");
    check_same_dtype(x, b, "linear", "bias");
    TAPE_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: bias of shape ", b.shape(),
               " does not match weight of shape ", w.shape(), " (expected [", w.size(0), "])");
  }
  if (x.dim() != 2) {  // [*, in] → [N, in] → [*, out]
    Shape out = x.shape();
    out.back() = w.size(0);
    const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));  // not -1: in may be 0
    return reshape(linear(reshape(x, {rows, w.size(1)}), w, b), out);
  }
  const Bf16Operands b16 = bf16_operands(x, w);
  Tensor y = b16.on() ? mm(b16.a, swap_last(b16.b), b) : mm(x, swap_last(w), b);
  if (any_requires_grad({&x, &w, &b})) {
    auto node = std::make_shared<LinearBackward>();
    node->save_operands(x, w, b16);
    record(y, std::move(node), {&x, &w, &b});
  }
  return y;
}

}  // namespace tape
