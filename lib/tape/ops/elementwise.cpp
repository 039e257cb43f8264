// Elementwise arithmetic with NumPy broadcasting and the unary math ops (the
// in-place methods are core: core/inplace.cpp).
#include <cmath>
#include <cstring>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

/// out = f(a, b) elementwise under broadcasting; a and b share one dtype,
/// Float32, Float64 or Int64 (the callers cast first).
template <class F>
Tensor binary_kernel(const Tensor& a, const Tensor& b, const char* op, F f) {
  const Shape out_shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  visit_number(a.dtype(), op, [&]<class T>() {
    T* po = out.data<T>();
    const int64_t n = out.numel();
    const T* pa = base_ptr<T>(a);
    const T* pb = base_ptr<T>(b);
    const bool ca = a.is_contiguous(), cb = b.is_contiguous();
    if (ca && cb && a.numel() == n && b.numel() == n) {
      parallel_for(n, [&](int64_t i) { po[i] = f(pa[i], pb[i]); });
    } else if (ca && a.numel() == n && b.numel() == 1) {
      const T s = *pb;
      parallel_for(n, [&](int64_t i) { po[i] = f(pa[i], s); });
    } else if (cb && b.numel() == n && a.numel() == 1) {
      const T s = *pa;
      parallel_for(n, [&](int64_t i) { po[i] = f(s, pb[i]); });
    } else {
      const Shape sa = broadcast_strides(a.shape(), a.strides(), out_shape);
      const Shape sb = broadcast_strides(b.shape(), b.strides(), out_shape);
      for_each_strided<2>(out_shape, {&sa, &sb},
                          [&](int64_t i, const std::array<int64_t, 2>& o) { po[i] = f(pa[o[0]], pb[o[1]]); });
    }
  });
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
    if (needs_input_grad(1)) {
      const Tensor gxa = mul(g, a);
      const Tensor q = any_requires_grad({&gxa, &b})  // create_graph: recorded
                           ? neg(gxa) / mul(b, b)
                           : binary_kernel(gxa, b, "div backward", [](auto u, auto bv) { return -u / (bv * bv); });
      gb = reduce_grad(q, b.shape());
    }
    return {ga, gb};
  }
};

/// The share of g that `a` gets in maximum (is_max) or minimum: 1 where a wins
/// (or is NaN), 0 where b wins (or is NaN), ½ on ties — PyTorch's split.
template <class T>
T winner_share(T a, T b, bool is_max) {
  if (a != a) return T(1);
  if (b != b) return T(0);
  if (a == b) return T(0.5);
  return (is_max ? a > b : a < b) ? T(1) : T(0);
}

// Forward: y = max(a, b) / min(a, b)   Backward: da = sum_to(g·w), db = sum_to(g·(1 − w)),
// w = 1 where a wins, ½ on ties, 0 where b wins (NaN wins)
template <bool kMax>
struct MinMaxBackward final : SavingNode<2> {
  const char* name() const override { return kMax ? "MaximumBackward" : "MinimumBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor a = saved(0), b = saved(1);
    Tensor w = binary_kernel(a, b, name(), [](auto x, auto y) { return winner_share(x, y, kMax); });
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = reduce_grad(mul(g, w), a.shape());
    if (needs_input_grad(1)) gb = reduce_grad(mul(g, 1.0 - w), b.shape());
    return {ga, gb};
  }
};

// The binary ops: name, kernel, node, and whether Int64 ÷ Int64 is true division.
struct AddOp {
  static constexpr const char* kName = "add";
  static constexpr bool kTrueDivision = false;
  using Backward = AddBackward;
  static auto f(auto x, auto y) { return x + y; }
};
struct SubOp {
  static constexpr const char* kName = "sub";
  static constexpr bool kTrueDivision = false;
  using Backward = SubBackward;
  static auto f(auto x, auto y) { return x - y; }
};
struct MulOp {
  static constexpr const char* kName = "mul";
  static constexpr bool kTrueDivision = false;
  using Backward = MulBackward;
  static auto f(auto x, auto y) { return x * y; }
};
struct DivOp {
  static constexpr const char* kName = "div";
  static constexpr bool kTrueDivision = true;  // PyTorch: Int64 / Int64 is Float32
  using Backward = DivBackward;
  static auto f(auto x, auto y) { return x / y; }
};
template <bool kMax>
struct MinMaxOp {
  static constexpr const char* kName = kMax ? "maximum" : "minimum";
  static constexpr bool kTrueDivision = false;
  using Backward = MinMaxBackward<kMax>;
  static auto f(auto x, auto z) {
    if (x != x || z != z) return x + z;  // NaN propagates
    return kMax ? (x > z ? x : z) : (x < z ? x : z);
  }
};

/// The dtype Op returns for operands of dtype d (already promoted): Int64 stays
/// Int64 except under true division (Float32, as in PyTorch).
template <class Op>
Dtype result_dtype(Dtype d) {
  return Op::kTrueDivision && d == Dtype::Int64 ? Dtype::Float32 : d;
}

/// y = Op(a, b) of dtype `out`. Both operands are cast with .to() to the dtype
/// the kernel runs in (`out`, or Float32 for BFloat16) — recorded, so each
/// operand's gradient comes back in its own dtype — and y is cast to `out`.
template <class Op>
Tensor binary(const Tensor& a_in, const Tensor& b_in, Dtype out) {
  const Dtype compute = out == Dtype::BFloat16 ? Dtype::Float32 : out;
  // Note: no handle copies when nothing is cast — the common case; each copy is
  // two atomic reference-count updates on the eager path (bench/ops "eager overhead").
  Tensor a_cast, b_cast;
  const Tensor& a = a_in.dtype() == compute ? a_in : (a_cast = a_in.to(compute));
  const Tensor& b = b_in.dtype() == compute ? b_in : (b_cast = b_in.to(compute));
  Tensor y = binary_kernel(a, b, Op::kName, [](auto x, auto z) { return Op::f(x, z); });
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<typename Op::Backward>();
    if constexpr (std::is_base_of_v<SavingNode<2>, typename Op::Backward>) {
      node->save(0, a);
      node->save(1, b);
    } else {
      node->as = a.shape();
      node->bs = b.shape();
    }
    record(y, std::move(node), {&a, &b});
  }
  if (y.dtype() != out) y = y.to(out);
  return y;
}

void check_operand(const Tensor& t, const char* op, const char* arg) {
  TAPE_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
}

/// Tensor ⊙ tensor: the operands promote (promote_types), as in PyTorch.
template <class Op>
Tensor binary(const Tensor& a, const Tensor& b) {
  check_operand(a, Op::kName, "first operand");
  check_operand(b, Op::kName, "second operand");
  const Dtype d = promote_types(a.dtype(), b.dtype());
  TAPE_CHECK(d != Dtype::Bool, Op::kName, ": operands must not both be Bool, got Bool tensors of shapes ",
             a.shape(), " and ", b.shape(), " (convert one with .to(dtype))");
  return binary<Op>(a, b, result_dtype<Op>(d));
}

bool integral(double s) { return std::isfinite(s) && s == std::floor(s) && std::fabs(s) < 0x1p63; }

/// Tensor ⊙ scalar (scalar_first: scalar ⊙ tensor). A floating tensor keeps its
/// dtype; an Int64 (or Bool) one stays Int64 for an integral scalar and becomes
/// Float32 otherwise (PyTorch: int_tensor * 2 is Int64, * 2.5 is Float32).
template <class Op>
Tensor binary(const Tensor& t, double s, bool scalar_first) {
  check_operand(t, Op::kName, "tensor operand");
  const Dtype d = is_floating(t.dtype()) ? t.dtype() : integral(s) ? Dtype::Int64 : Dtype::Float32;
  const Tensor st = scalar_tensor(s, d == Dtype::BFloat16 ? Dtype::Float32 : d);
  return scalar_first ? binary<Op>(st, t, result_dtype<Op>(d)) : binary<Op>(t, st, result_dtype<Op>(d));
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary<AddOp>(a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary<SubOp>(a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary<MulOp>(a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary<DivOp>(a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary<MinMaxOp<true>>(a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary<MinMaxOp<false>>(a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return binary<AddOp>(a, s, false); }
Tensor operator-(const Tensor& a, double s) { return binary<SubOp>(a, s, false); }
Tensor operator*(const Tensor& a, double s) { return binary<MulOp>(a, s, false); }
Tensor operator/(const Tensor& a, double s) { return binary<DivOp>(a, s, false); }
Tensor operator+(double s, const Tensor& a) { return binary<AddOp>(a, s, true); }
Tensor operator-(double s, const Tensor& a) { return binary<SubOp>(a, s, true); }
Tensor operator*(double s, const Tensor& a) { return binary<MulOp>(a, s, true); }
Tensor operator/(double s, const Tensor& a) { return binary<DivOp>(a, s, true); }

// --- sum_to: the reverse of broadcasting ----------------------------------------
namespace {
// Forward: y = sum_to(x, shape)   Backward: dx = broadcast g back to x's shape
struct SumToBackward final : Node {
  Shape in_shape;
  const char* name() const override { return "SumToBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    if (any_requires_grad({&g})) return {expand(g, in_shape).contiguous()};  // create_graph: recorded
    return {expand_copy(g, in_shape)};
  }
};
}  // namespace

Tensor sum_to(const Tensor& t, const Shape& shape) {
  TAPE_CHECK(t.defined(), "sum_to: input is an undefined tensor");
  if (t.shape() == shape) return t;
  TAPE_CHECK(broadcast_shapes(shape, t.shape(), "sum_to") == t.shape(), "sum_to: shape ", shape,
             " does not broadcast to ", t.shape());
  if (t.dtype() == Dtype::BFloat16) return via_float32(t, [&](const Tensor& tf) { return sum_to(tf, shape); });
  Tensor out = zeros(shape, t.dtype());
  visit_number(t.dtype(), "sum_to", [&]<class T>() {
    T* po = out.data<T>();
    const T* pt = base_ptr<T>(t);
    const Shape so = broadcast_strides(shape, contiguous_strides(shape), t.shape());
    for_each_strided<2>(t.shape(), {&t.strides(), &so},
                        [&](int64_t, const std::array<int64_t, 2>& o) { po[o[1]] += pt[o[0]]; });
  });
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
  static constexpr bool kNeedsX = false, kNeedsY = false, kInteger = true;
  template <class T> T f(T x) const { return -x; }
  template <class T> T df(T, T) const { return T(-1); }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor&) const { return neg(g); }
};
// Forward: y = eˣ             Backward: dx = g·y
struct ExpOp {
  static constexpr const char* kName = "exp";
  static constexpr const char* kBackwardName = "ExpBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  template <class T> T f(T x) const { return std::exp(x); }
  template <class T> T df(T, T y) const { return y; }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor& y) const { return g * y; }
};
// Forward: y = ln x           Backward: dx = g / x
struct LogOp {
  static constexpr const char* kName = "log";
  static constexpr const char* kBackwardName = "LogBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return std::log(x); }
  template <class T> T df(T x, T) const { return T(1) / x; }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return g / x; }
};
// Forward: y = √x             Backward: dx = g / (2y)
struct SqrtOp {
  static constexpr const char* kName = "sqrt";
  static constexpr const char* kBackwardName = "SqrtBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  template <class T> T f(T x) const { return std::sqrt(x); }
  template <class T> T df(T, T y) const { return T(0.5) / y; }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor& y) const { return g / (y * 2.0); }
};
// Forward: y = |x|            Backward: dx = g·sign(x)
struct AbsOp {
  static constexpr const char* kName = "abs";
  static constexpr const char* kBackwardName = "AbsBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false, kInteger = true;
  template <class T> T f(T x) const { return std::abs(x); }
  template <class T> T df(T x, T) const { return T((x > 0) - (x < 0)); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return g * sign(x); }
};
// Forward: y = xᵉ             Backward: dx = g·e·xᵉ⁻¹
struct PowOp {
  static constexpr const char* kName = "pow";
  static constexpr const char* kBackwardName = "PowBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  double e;
  template <class T> T f(T x) const { return std::pow(x, T(e)); }
  template <class T> T df(T x, T) const { return e == 0 ? T(0) : T(e) * std::pow(x, T(e) - T(1)); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const {
    return e == 0 ? g * 0.0 : g * (pow(x, e - 1) * e);
  }
};
// Forward: y = ln(1 + x)       Backward: dx = g / (1 + x)
struct Log1pOp {
  static constexpr const char* kName = "log1p";
  static constexpr const char* kBackwardName = "Log1pBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return std::log1p(x); }
  template <class T> T df(T x, T) const { return T(1) / (T(1) + x); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return g / (x + 1.0); }
};
// Forward: y = eˣ − 1          Backward: dx = g·(y + 1)
struct Expm1Op {
  static constexpr const char* kName = "expm1";
  static constexpr const char* kBackwardName = "Expm1Backward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  template <class T> T f(T x) const { return std::expm1(x); }
  template <class T> T df(T, T y) const { return y + T(1); }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor& y) const { return g * (y + 1.0); }
};
// Forward: y = sin x           Backward: dx = g·cos x
struct SinOp {
  static constexpr const char* kName = "sin";
  static constexpr const char* kBackwardName = "SinBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return std::sin(x); }
  template <class T> T df(T x, T) const { return std::cos(x); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return g * cos(x); }
};
// Forward: y = cos x           Backward: dx = −g·sin x
struct CosOp {
  static constexpr const char* kName = "cos";
  static constexpr const char* kBackwardName = "CosBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return std::cos(x); }
  template <class T> T df(T x, T) const { return -std::sin(x); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return neg(g * sin(x)); }
};
// Forward: y = 1/√x            Backward: dx = −g·y³/2
struct RsqrtOp {
  static constexpr const char* kName = "rsqrt";
  static constexpr const char* kBackwardName = "RsqrtBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  template <class T> T f(T x) const { return T(1) / std::sqrt(x); }
  template <class T> T df(T, T y) const { return T(-0.5) * y * y * y; }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor& y) const { return g * (y * y * y * -0.5); }
};
// Forward: y = x²              Backward: dx = 2g·x
struct SquareOp {
  static constexpr const char* kName = "square";
  static constexpr const char* kBackwardName = "SquareBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false, kInteger = true;
  template <class T> T f(T x) const { return x * x; }
  template <class T> T df(T x, T) const { return T(2) * x; }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return g * (x * 2.0); }
};
// Forward: y = sign(x) (NaN stays NaN)   Backward: dx = 0
struct SignOp {
  static constexpr const char* kName = "sign";
  static constexpr const char* kBackwardName = "SignBackward";
  static constexpr bool kNeedsX = false, kNeedsY = false, kInteger = true;
  template <class T> T f(T x) const { return x != x ? x : T((x > 0) - (x < 0)); }
  template <class T> T df(T, T) const { return T(0); }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor&) const { return g * 0.0; }
};
// Forward: y = min(max(x, lo), hi) (NaN stays NaN)   Backward: dx = g·[lo ≤ x ≤ hi]
struct ClampOp {
  static constexpr const char* kName = "clamp";
  static constexpr const char* kBackwardName = "ClampBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false, kInteger = true;
  double lo, hi;
  template <class T> T f(T x) const { return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x); }
  template <class T> T df(T x, T) const { return x >= T(lo) && x <= T(hi) ? T(1) : T(0); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const {
    return g * logical_and(ge(x, lo), le(x, hi)).to(g.dtype());
  }
};
}  // namespace

Tensor neg(const Tensor& x) { return unary_op<NegOp>(x); }
Tensor exp(const Tensor& x) { return unary_op<ExpOp>(x); }
Tensor log(const Tensor& x) { return unary_op<LogOp>(x); }
Tensor sqrt(const Tensor& x) { return unary_op<SqrtOp>(x); }
Tensor abs(const Tensor& x) { return unary_op<AbsOp>(x); }
Tensor pow(const Tensor& x, double e) { return unary_op<PowOp>(x, PowOp{e}); }
Tensor log1p(const Tensor& x) { return unary_op<Log1pOp>(x); }
Tensor expm1(const Tensor& x) { return unary_op<Expm1Op>(x); }
Tensor sin(const Tensor& x) { return unary_op<SinOp>(x); }
Tensor cos(const Tensor& x) { return unary_op<CosOp>(x); }
Tensor rsqrt(const Tensor& x) { return unary_op<RsqrtOp>(x); }
Tensor square(const Tensor& x) { return unary_op<SquareOp>(x); }
Tensor sign(const Tensor& x) { return unary_op<SignOp>(x); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  TAPE_CHECK(!(lo > hi), "clamp: lo (", lo, ") must not exceed hi (", hi, ")");
  // PyTorch: an Int64 tensor clamped to non-integral bounds gives Float32
  if (x.defined() && x.dtype() == Dtype::Int64 && !(integral(lo) && integral(hi)))
    return unary_op<ClampOp>(x.to(Dtype::Float32), ClampOp{lo, hi});
  return unary_op<ClampOp>(x, ClampOp{lo, hi});
}

}  // namespace tape
