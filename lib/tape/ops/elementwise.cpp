// Elementwise arithmetic with NumPy broadcasting and the unary math ops (the
// in-place methods are core: core/inplace.cpp).
#include <cmath>
#include <cstring>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

/// out = f(a, b) elementwise under broadcasting.
template <class F>
Tensor binary_kernel(const Tensor& a, const Tensor& b, const char* op, F f) {
  check_float(a, op, "first operand");
  check_float(b, op, "second operand");
  const Shape out_shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(out_shape);
  float* po = out.data<float>();
  const int64_t n = out.numel();
  const float* pa = static_cast<const float*>(a.impl()->storage->data()) + a.impl()->offset;
  const float* pb = static_cast<const float*>(b.impl()->storage->data()) + b.impl()->offset;
  const bool ca = a.is_contiguous(), cb = b.is_contiguous();
  if (ca && cb && a.numel() == n && b.numel() == n) {
    parallel_for(n, [&](int64_t i) { po[i] = f(pa[i], pb[i]); });
  } else if (ca && a.numel() == n && b.numel() == 1) {
    const float s = *pb;
    parallel_for(n, [&](int64_t i) { po[i] = f(pa[i], s); });
  } else if (cb && b.numel() == n && a.numel() == 1) {
    const float s = *pa;
    parallel_for(n, [&](int64_t i) { po[i] = f(s, pb[i]); });
  } else {
    const Shape sa = broadcast_strides(a.shape(), a.strides(), out_shape);
    const Shape sb = broadcast_strides(b.shape(), b.strides(), out_shape);
    for_each_strided<2>(out_shape, {&sa, &sb},
                        [&](int64_t i, const std::array<int64_t, 2>& o) { po[i] = f(pa[o[0]], pb[o[1]]); });
  }
  return out;
}

/// The gradient of a broadcast operand: g summed back to `shape`.
Tensor reduce_grad(const Tensor& g, const Shape& shape) { return sum_to(g, shape); }

// Forward: y = a + b          Backward: da = sum_to(g), db = sum_to(g)
struct AddBackward final : Node {
  Shape as, bs;
  const char* name() const override { return "AddBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    return {needs_input_grad(0) ? reduce_grad(g, as) : Tensor(), needs_input_grad(1) ? reduce_grad(g, bs) : Tensor()};
  }
};

// Forward: y = a - b          Backward: da = sum_to(g), db = -sum_to(g)
struct SubBackward final : Node {
  Shape as, bs;
  const char* name() const override { return "SubBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    return {needs_input_grad(0) ? reduce_grad(g, as) : Tensor(),
            needs_input_grad(1) ? neg(reduce_grad(g, bs)) : Tensor()};
  }
};

// Forward: y = a * b          Backward: da = sum_to(g * b), db = sum_to(g * a)
struct MulBackward final : SavingNode<2> {
  const char* name() const override { return "MulBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor a = saved(0), b = saved(1);
    return {needs_input_grad(0) ? reduce_grad(mul(g, b), a.shape()) : Tensor(),
            needs_input_grad(1) ? reduce_grad(mul(g, a), b.shape()) : Tensor()};
  }
};

// Forward: y = a / b          Backward: da = sum_to(g / b), db = sum_to(-g * a / b²)
struct DivBackward final : SavingNode<2> {
  const char* name() const override { return "DivBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor a = saved(0), b = saved(1);
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = reduce_grad(div(g, b), a.shape());
    if (needs_input_grad(1))
      gb = reduce_grad(binary_kernel(mul(g, a), b, "div backward", [](float ga_, float bv) { return -ga_ / (bv * bv); }),
                       b.shape());
    return {ga, gb};
  }
};

template <class N>
Tensor record_binary(Tensor y, const Tensor& a, const Tensor& b) {
  if (!any_requires_grad({&a, &b})) return y;
  auto node = std::make_shared<N>();
  if constexpr (std::is_base_of_v<SavingNode<2>, N>) {
    node->save(0, a);
    node->save(1, b);
  } else {
    node->as = a.shape();
    node->bs = b.shape();
  }
  record(y, std::move(node), {&a, &b});
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return record_binary<AddBackward>(binary_kernel(a, b, "add", [](float x, float y) { return x + y; }), a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return record_binary<SubBackward>(binary_kernel(a, b, "sub", [](float x, float y) { return x - y; }), a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return record_binary<MulBackward>(binary_kernel(a, b, "mul", [](float x, float y) { return x * y; }), a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return record_binary<DivBackward>(binary_kernel(a, b, "div", [](float x, float y) { return x / y; }), a, b);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, float s) { return add(a, scalar_tensor(s)); }
Tensor operator-(const Tensor& a, float s) { return sub(a, scalar_tensor(s)); }
Tensor operator*(const Tensor& a, float s) { return mul(a, scalar_tensor(s)); }
Tensor operator/(const Tensor& a, float s) { return div(a, scalar_tensor(s)); }
Tensor operator+(float s, const Tensor& a) { return add(scalar_tensor(s), a); }
Tensor operator-(float s, const Tensor& a) { return sub(scalar_tensor(s), a); }
Tensor operator*(float s, const Tensor& a) { return mul(scalar_tensor(s), a); }
Tensor operator/(float s, const Tensor& a) { return div(scalar_tensor(s), a); }

// --- sum_to: the reverse of broadcasting ----------------------------------------
namespace {
// Forward: y = sum_to(x, shape)   Backward: dx = broadcast g back to x's shape
struct SumToBackward final : Node {
  Shape in_shape;
  const char* name() const override { return "SumToBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {expand_copy(g, in_shape)}; }
};
}  // namespace

Tensor sum_to(const Tensor& t, const Shape& shape) {
  check_float(t, "sum_to");
  if (t.shape() == shape) return t;
  TAPE_CHECK(broadcast_shapes(shape, t.shape(), "sum_to") == t.shape(), "sum_to: shape ", shape,
             " does not broadcast to ", t.shape());
  Tensor out = zeros(shape);
  float* po = out.data<float>();
  const float* pt = static_cast<const float*>(t.impl()->storage->data()) + t.impl()->offset;
  const Shape so = broadcast_strides(shape, contiguous_strides(shape), t.shape());
  for_each_strided<2>(t.shape(), {&t.strides(), &so},
                      [&](int64_t, const std::array<int64_t, 2>& o) { po[o[1]] += pt[o[0]]; });
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<SumToBackward>();
    node->in_shape = t.shape();
    record(out, std::move(node), {&t});
  }
  return out;
}

// --- unary math ----------------------------------------------------------------
namespace {
// Forward: y = -x             Backward: dx = -g
struct NegOp {
  static constexpr const char* kName = "neg";
  static constexpr const char* kBackwardName = "NegBackward";
  static constexpr bool kNeedsX = false, kNeedsY = false;
  float f(float x) const { return -x; }
  float df(float, float) const { return -1.f; }
};
// Forward: y = eˣ             Backward: dx = g·y
struct ExpOp {
  static constexpr const char* kName = "exp";
  static constexpr const char* kBackwardName = "ExpBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  float f(float x) const { return std::exp(x); }
  float df(float, float y) const { return y; }
};
// Forward: y = ln x           Backward: dx = g / x
struct LogOp {
  static constexpr const char* kName = "log";
  static constexpr const char* kBackwardName = "LogBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return std::log(x); }
  float df(float x, float) const { return 1.f / x; }
};
// Forward: y = √x             Backward: dx = g / (2y)
struct SqrtOp {
  static constexpr const char* kName = "sqrt";
  static constexpr const char* kBackwardName = "SqrtBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  float f(float x) const { return std::sqrt(x); }
  float df(float, float y) const { return 0.5f / y; }
};
// Forward: y = |x|            Backward: dx = g·sign(x)
struct AbsOp {
  static constexpr const char* kName = "abs";
  static constexpr const char* kBackwardName = "AbsBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return std::fabs(x); }
  float df(float x, float) const { return float((x > 0) - (x < 0)); }
};
// Forward: y = xᵉ             Backward: dx = g·e·xᵉ⁻¹
struct PowOp {
  static constexpr const char* kName = "pow";
  static constexpr const char* kBackwardName = "PowBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float e;
  float f(float x) const { return std::pow(x, e); }
  float df(float x, float) const { return e == 0.f ? 0.f : e * std::pow(x, e - 1.f); }
};
// Forward: y = ln(1 + x)       Backward: dx = g / (1 + x)
struct Log1pOp {
  static constexpr const char* kName = "log1p";
  static constexpr const char* kBackwardName = "Log1pBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return std::log1p(x); }
  float df(float x, float) const { return 1.f / (1.f + x); }
};
// Forward: y = eˣ − 1          Backward: dx = g·(y + 1)
struct Expm1Op {
  static constexpr const char* kName = "expm1";
  static constexpr const char* kBackwardName = "Expm1Backward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  float f(float x) const { return std::expm1(x); }
  float df(float, float y) const { return y + 1.f; }
};
// Forward: y = sin x           Backward: dx = g·cos x
struct SinOp {
  static constexpr const char* kName = "sin";
  static constexpr const char* kBackwardName = "SinBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return std::sin(x); }
  float df(float x, float) const { return std::cos(x); }
};
// Forward: y = cos x           Backward: dx = −g·sin x
struct CosOp {
  static constexpr const char* kName = "cos";
  static constexpr const char* kBackwardName = "CosBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return std::cos(x); }
  float df(float x, float) const { return -std::sin(x); }
};
// Forward: y = 1/√x            Backward: dx = −g·y³/2
struct RsqrtOp {
  static constexpr const char* kName = "rsqrt";
  static constexpr const char* kBackwardName = "RsqrtBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  float f(float x) const { return 1.f / std::sqrt(x); }
  float df(float, float y) const { return -0.5f * y * y * y; }
};
// Forward: y = x²              Backward: dx = 2g·x
struct SquareOp {
  static constexpr const char* kName = "square";
  static constexpr const char* kBackwardName = "SquareBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return x * x; }
  float df(float x, float) const { return 2.f * x; }
};
// Forward: y = sign(x) (NaN stays NaN)   Backward: dx = 0
struct SignOp {
  static constexpr const char* kName = "sign";
  static constexpr const char* kBackwardName = "SignBackward";
  static constexpr bool kNeedsX = false, kNeedsY = false;
  float f(float x) const { return x != x ? x : float((x > 0.f) - (x < 0.f)); }
  float df(float, float) const { return 0.f; }
};
// Forward: y = min(max(x, lo), hi) (NaN stays NaN)   Backward: dx = g·[lo ≤ x ≤ hi]
struct ClampOp {
  static constexpr const char* kName = "clamp";
  static constexpr const char* kBackwardName = "ClampBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float lo, hi;
  float f(float x) const { return x < lo ? lo : (x > hi ? hi : x); }
  float df(float x, float) const { return x >= lo && x <= hi ? 1.f : 0.f; }
};
}  // namespace

Tensor neg(const Tensor& x) { return unary_op<NegOp>(x); }
Tensor exp(const Tensor& x) { return unary_op<ExpOp>(x); }
Tensor log(const Tensor& x) { return unary_op<LogOp>(x); }
Tensor sqrt(const Tensor& x) { return unary_op<SqrtOp>(x); }
Tensor abs(const Tensor& x) { return unary_op<AbsOp>(x); }
Tensor pow(const Tensor& x, float e) { return unary_op<PowOp>(x, PowOp{e}); }
Tensor log1p(const Tensor& x) { return unary_op<Log1pOp>(x); }
Tensor expm1(const Tensor& x) { return unary_op<Expm1Op>(x); }
Tensor sin(const Tensor& x) { return unary_op<SinOp>(x); }
Tensor cos(const Tensor& x) { return unary_op<CosOp>(x); }
Tensor rsqrt(const Tensor& x) { return unary_op<RsqrtOp>(x); }
Tensor square(const Tensor& x) { return unary_op<SquareOp>(x); }
Tensor sign(const Tensor& x) { return unary_op<SignOp>(x); }
Tensor clamp(const Tensor& x, float lo, float hi) {
  TAPE_CHECK(!(lo > hi), "clamp: lo (", lo, ") must not exceed hi (", hi, ")");
  return unary_op<ClampOp>(x, ClampOp{lo, hi});
}

// --- minimum / maximum -----------------------------------------------------------
namespace {
/// The share of g that `a` gets in maximum (is_max) or minimum: 1 where a wins
/// (or is NaN), 0 where b wins (or is NaN), ½ on ties — PyTorch's split.
float winner_share(float a, float b, bool is_max) {
  if (a != a) return 1.f;
  if (b != b) return 0.f;
  if (a == b) return 0.5f;
  return (is_max ? a > b : a < b) ? 1.f : 0.f;
}

// Forward: y = max(a, b) / min(a, b)   Backward: da = sum_to(g·w), db = sum_to(g·(1 − w)),
// w = 1 where a wins, ½ on ties, 0 where b wins (NaN wins)
struct MinMaxBackward final : SavingNode<2> {
  bool is_max = true;
  const char* name() const override { return is_max ? "MaximumBackward" : "MinimumBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor a = saved(0), b = saved(1);
    const bool mx = is_max;
    Tensor w = binary_kernel(a, b, name(), [mx](float x, float y) { return winner_share(x, y, mx); });
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = reduce_grad(mul(g, w), a.shape());
    if (needs_input_grad(1)) gb = reduce_grad(mul(g, 1.f - w), b.shape());
    return {ga, gb};
  }
};

Tensor min_max(const Tensor& a, const Tensor& b, bool is_max) {
  const char* op = is_max ? "maximum" : "minimum";
  Tensor y = binary_kernel(a, b, op, [is_max](float x, float z) {
    if (x != x || z != z) return x + z;  // NaN propagates
    return is_max ? (x > z ? x : z) : (x < z ? x : z);
  });
  if (!any_requires_grad({&a, &b})) return y;
  auto node = std::make_shared<MinMaxBackward>();
  node->is_max = is_max;
  node->save(0, a);
  node->save(1, b);
  record(y, std::move(node), {&a, &b});
  return y;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return min_max(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return min_max(a, b, false); }

}  // namespace tape
