#pragma once
// Internal (not installed): helpers shared by the op files.
#include <omp.h>

#include <atomic>

#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/backend/parallel.hpp"
#include "tape/autograd/node.hpp"
#include "tape/core/strided.hpp"
#include "tape/ops/ops.hpp"

namespace tape::detail {

/// Elements from which a unary op with a bulk() kernel uses it.
constexpr int64_t kBulkMinimum = 4096;
// The loop helpers live in the backend (backend/parallel.hpp).
using backend::kParallelGrain;
using backend::parallel_for;
using backend::parallel_ranges;

/// True when any of p[0, n) is NaN (the only value unequal to itself): a
/// vectorised scan, for ops whose fast kernel would drop NaNs.
template <class T>
bool has_nan(const T* p, int64_t n) {
  std::atomic<bool> found{false};
  parallel_ranges(n, [&](int64_t begin, int64_t end) {
    int any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t i = begin; i < end; ++i) any |= p[i] != p[i];
    if (any) found.store(true, std::memory_order_relaxed);
  });
  return found.load(std::memory_order_relaxed);
}

/// t is defined and Float32 or Float64 (the dtypes float kernels are written for).
inline void check_float(const Tensor& t, const char* op, const char* arg = "input") {
  TAPE_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
  TAPE_CHECK(t.dtype() == Dtype::Float32 || t.dtype() == Dtype::Float64, op, ": ", arg,
             " must be Float32 or Float64, got ", dtype_name(t.dtype()), " tensor of shape ", t.shape());
}

/// Two operands of one float op have the same dtype (no silent promotion inside kernels).
inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* what_b = "second operand") {
  TAPE_CHECK(a.dtype() == b.dtype(), op, ": ", what_b, " has dtype ", dtype_name(b.dtype()), " but the input is ",
             dtype_name(a.dtype()), " (convert one with .to(dtype))");
}

/// Pointer to t's first element as T (any strides; no dtype check beyond T's size).
template <class T>
const T* base_ptr(const Tensor& t) {
  return static_cast<const T*>(t.impl()->storage->data()) + t.impl()->offset;
}

/// A view of t's storage (shared, with its version counter) with another
/// geometry; `offset` is in elements from the start of the storage.
inline Tensor make_view(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}
inline Tensor make_view(const Tensor& t, Shape shape, Shape strides) {
  return make_view(t, std::move(shape), std::move(strides), t.impl()->offset);
}

/// A contiguous version of t for a kernel to read (never recorded in the graph).
inline Tensor contig(const Tensor& t) {
  if (t.is_contiguous()) return t;
  NoGradGuard no_grad;
  return t.contiguous();
}

/// A new contiguous tensor holding `t` broadcast to `shape` (not recorded).
inline Tensor expand_copy(const Tensor& t, const Shape& shape) {
  Tensor out = Tensor::empty(shape, t.dtype());
  visit_dtype(t.dtype(), [&]<class T>() {
    T* po = out.data<T>();
    const T* pt = base_ptr<T>(t);
    const Shape st = broadcast_strides(t.shape(), t.strides(), shape);
    for_each_strided<1>(shape, {&st}, [&](int64_t i, const std::array<int64_t, 1>& o) { po[i] = pt[o[0]]; });
  });
  return out;
}

// Note: the engine hands a node the only handle to its incoming gradient. When
// nothing else shares that buffer — no other handle (the caller's root
// gradient, a leaf's .grad, a second consumer), no view of its storage — an
// elementwise backward may write its result over it: at LeNet-5's peak (ReLU
// after conv1, batch 2500) that is one 35 MB buffer less.
inline bool reusable(const Tensor& g) {
  return sole_owner(g) && g.impl()->offset == 0 && g.is_contiguous() && !g.requires_grad();
}

/// An elementwise backward's operands: the incoming gradient made contiguous,
/// and the buffer for dx (that same buffer when reusable).
struct GradientBuffers {
  Tensor g, dx;
};
inline GradientBuffers gradient_buffers(const Tensor& g) {
  const bool reuse = reusable(g);  // before `g.contiguous()` adds a handle
  Tensor gc = g.contiguous();
  return {gc, reuse ? gc : Tensor::empty(g.shape(), g.dtype())};
}

/// Node that remembers a list of saved tensors and frees them after backward.
/// Subclasses name themselves and implement apply().
template <size_t K>
class SavingNode : public Node {
 public:
  /// Saves t for backward; pass is_output = true for the op's own output.
  void save(size_t i, const Tensor& t, bool is_output = false) { saved_[i] = SavedTensor(t, is_output); }
  Tensor saved(size_t i) const { return saved_[i].unpack(*this); }
  void release_saved() override {
    for (auto& s : saved_) s.reset();
  }

 private:
  std::array<SavedTensor, K> saved_;
};

// --- unary elementwise ops --------------------------------------------------
// An op is a small struct: name, forward f(x), derivative df(x, y) (dy/dx given
// input and output) and which of x / y backward needs. f and df are templates
// over T (float, double), so one definition serves Float32 and Float64; one
// template turns the struct into a forward loop plus a Node, so no kernel is
// written twice. An op that also runs on Int64 (abs, neg, sign, clamp, square:
// no gradient there) sets kInteger.
//
// grad(g, x, y) is the same backward formula (g·df) written with the public ops
// (x / y undefined when not needed): the node runs it instead of the fused loop
// when backward records a graph (create_graph), so the gradient is itself
// differentiable — through y too, which then leads back to the node.
//
// Note: an op whose derivative depends only on whether x > 0 (ReLU, leaky ReLU)
// sets kSignOnly and gives the two slopes df_sign<T>(true / false) instead. Its
// node keeps one byte per element rather than a float tensor, so the output can
// be freed as soon as its consumers are done with it — after a max pool, which
// keeps only its arg max, right away (35 MB at LeNet-5's batch 2500).
template <class Op>
constexpr bool sign_only = requires { requires Op::kSignOnly; };
template <class Op>
constexpr bool integer_op = requires { requires Op::kInteger; };

/// f(x converted to Float32) converted back to BFloat16: the one place BFloat16
/// inputs of elementwise ops compute in Float32. Both casts are recorded, so a
/// gradient reaches x in BFloat16.
template <class F>
Tensor via_float32(const Tensor& x, F f) {
  return f(x.to(Dtype::Float32)).to(Dtype::BFloat16);
}

/// True when the defined tensors among `ts` are all BFloat16 (and there is one):
/// the multi-input ops (matmul, linear, conv2d, losses) then compute in Float32.
inline bool all_bfloat16(std::initializer_list<const Tensor*> ts) {
  bool any = false;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    if (t->dtype() != Dtype::BFloat16) return false;
    any = true;
  }
  return any;
}
/// t converted to Float32 when it is BFloat16 (recorded), else t itself.
inline Tensor float32_if_bfloat16(const Tensor& t) {
  return t.defined() && t.dtype() == Dtype::BFloat16 ? t.to(Dtype::Float32) : t;
}

/// Saves x (0), y (1) and, for a non-contiguous x, the contiguous copy of it the
/// forward loop read (2): the fused loop reads that copy, grad() the input itself.
template <class Op, class T>
class UnaryBackward final : public SavingNode<3> {
 public:
  explicit UnaryBackward(Op op) : op_(op) {}
  const char* name() const override { return Op::kBackwardName; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor x = Op::kNeedsX ? saved(0) : Tensor();
    Tensor y = Op::kNeedsY ? saved(1) : Tensor();
    if (any_requires_grad({&g, &x, &y})) return {op_.grad(g, x, y)};  // create_graph: recorded
    if (Op::kNeedsX && !x.is_contiguous()) x = saved(2);
    auto [gc, dx] = gradient_buffers(g);
    const T* pg = gc.data<T>();
    const T* px = Op::kNeedsX ? x.data<T>() : nullptr;
    const T* py = Op::kNeedsY ? y.data<T>() : nullptr;
    T* pd = dx.data<T>();
    const Op op = op_;
    // which of x / y is read is decided at compile time, so the loop vectorises
    parallel_for(g.numel(), [&](int64_t i) {
      T xv = 0, yv = 0;
      if constexpr (Op::kNeedsX) xv = px[i];
      if constexpr (Op::kNeedsY) yv = py[i];
      pd[i] = pg[i] * op.df(xv, yv);
    });
    return {dx};
  }

 private:
  Op op_;
};

template <class Op, class T>
class SignBackward final : public Node {
 public:
  SignBackward(Op op, std::shared_ptr<Storage> positive) : op_(op), positive_(std::move(positive)) {}
  const char* name() const override { return Op::kBackwardName; }
  std::vector<Tensor> apply(const Tensor& g) override {
    // create_graph: g times the slopes (a constant: the second derivative in x
    // is zero off the kink), recorded, so the result is differentiable in g
    if (any_requires_grad({&g})) return {mul(g, scaled(ones_like(g)))};
    return {scaled(g)};
  }
  void release_saved() override { positive_.reset(); }

 private:
  /// g times the slope at each element (written over g when reusable).
  Tensor scaled(const Tensor& g) const {
    auto [gc, dx] = gradient_buffers(g);
    const T* pg = gc.data<T>();
    const auto* pos = static_cast<const uint8_t*>(positive_->data());
    T* pd = dx.data<T>();
    const T up = op_.template df_sign<T>(true), down = op_.template df_sign<T>(false);
    parallel_ranges(g.numel(), [=](int64_t begin, int64_t end) {
      const T* __restrict g_ = pg;
      const uint8_t* __restrict p_ = pos;
      T* __restrict d_ = pd;
      for (int64_t i = begin; i < end; ++i) d_[i] = g_[i] * (p_[i] ? up : down);
    });
    return dx;
  }

  Op op_;
  std::shared_ptr<Storage> positive_;  // one byte per element: x > 0
};

/// y = op(x) for x of dtype T (float, double or, for integer ops, int64_t),
/// recording the backward node when x requires grad.
template <class Op, class T>
Tensor unary_kernel(const Tensor& x_in, const Op& op) {
  Tensor x = contig(x_in);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  const int64_t n = x.numel();
  constexpr bool differentiable = std::is_floating_point_v<T>;  // Int64 tensors never require grad
  const bool recording = differentiable && any_requires_grad({&x_in});
  if constexpr (differentiable && sign_only<Op>) {
    if (recording) {  // the forward loop also records where x > 0
      auto positive = std::make_shared<Storage>(size_t(std::max<int64_t>(n, 1)));
      auto* pos = static_cast<uint8_t*>(positive->data());
      parallel_ranges(n, [=](int64_t begin, int64_t end) {
        const T* __restrict x_ = px;
        T* __restrict y_ = py;
        uint8_t* __restrict p_ = pos;
        for (int64_t i = begin; i < end; ++i) {
          p_[i] = x_[i] > T(0);
          y_[i] = op.f(x_[i]);
        }
      });
      record(y, std::make_shared<SignBackward<Op, T>>(op, std::move(positive)), {&x_in});
      return y;
    }
  }
  // an op may hand large Float32 tensors to a vectorised kernel (oneDNN
  // eltwise) instead of calling a libm function per element
  bool done = false;
  if constexpr (std::is_same_v<T, float> && requires { op.bulk(px, py, n); })
    if (n >= kBulkMinimum) {
      backend::translate_errors(Op::kName, {&x.shape()}, [&] { op.bulk(px, py, n); });
      done = true;
    }
  if (!done) parallel_for(n, [&](int64_t i) { py[i] = op.f(px[i]); });
  if constexpr (differentiable && !sign_only<Op>) {
    if (recording) {
      auto node = std::make_shared<UnaryBackward<Op, T>>(op);
      if (Op::kNeedsX) {
        node->save(0, x_in);
        if (!x_in.is_contiguous()) node->save(2, x);
      }
      if (Op::kNeedsY) node->save(1, y, /*is_output=*/true);
      record(y, std::move(node), {&x_in});
    }
  }
  return y;
}

/// Forward of a unary op on Float32 or Float64 (and Int64 for integer ops);
/// BFloat16 computes in Float32 and rounds back.
template <class Op>
Tensor unary_op(const Tensor& x, Op op = {}) {
  TAPE_CHECK(x.defined(), Op::kName, ": input is an undefined tensor");
  const Dtype d = x.dtype();
  const bool ok = is_floating(d) || (integer_op<Op> && d == Dtype::Int64);
  TAPE_CHECK(ok, Op::kName, ": input must be Float32, Float64", integer_op<Op> ? ", BFloat16 or Int64" : " or BFloat16",
             ", got ", dtype_name(d), " tensor of shape ", x.shape());
  if (d == Dtype::BFloat16) return via_float32(x, [&](const Tensor& xf) { return unary_op(xf, op); });
  const auto run = [&]<class T>() { return unary_kernel<Op, T>(x, op); };
  if constexpr (integer_op<Op>) return visit_number(d, Op::kName, run);
  else return visit_float(d, Op::kName, run);
}

}  // namespace tape::detail
