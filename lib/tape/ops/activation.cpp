// Activation functions: each is one small struct turned into forward + backward
// by detail::unary_op (see op_util.hpp); f and df are templates, so Float64 runs
// the same formulas and BFloat16 runs them in Float32. tanh, sigmoid, elu and
// selu give large Float32 tensors (≥ kBulkMinimum elements) to oneDNN's JIT
// eltwise through bulk(): their scalar f() calls libm once per element.
#include <algorithm>
#include <cmath>

#include "tape/backend/eltwise.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
/// `above` where v > t, else `below`: the derivative of a two-piece op, in grad().
Tensor above_or(const Tensor& v, double t, double above, const Tensor& below) {
  return where(gt(v, t), scalar_tensor(above, below.dtype()), below);
}

// Forward: y = max(x, 0)                 Backward: dx = g·[x > 0]
struct ReluOp {
  static constexpr const char* kName = "relu";
  static constexpr const char* kBackwardName = "ReluBackward";
  static constexpr bool kSignOnly = true;
  template <class T> T f(T x) const { return !(x <= T(0)) ? x : T(0); }  // NaN stays NaN, like PyTorch
  template <class T> T df_sign(bool positive) const { return positive ? T(1) : T(0); }  // 0 at NaN (x > 0 is false)
};
// Forward: y = x if x > 0 else s·x       Backward: dx = g·(1 or s)
struct LeakyReluOp {
  static constexpr const char* kName = "leaky_relu";
  static constexpr const char* kBackwardName = "LeakyReluBackward";
  static constexpr bool kSignOnly = true;
  float slope;
  template <class T> T f(T x) const { return x > T(0) ? x : T(slope) * x; }
  template <class T> T df_sign(bool positive) const { return positive ? T(1) : T(slope); }
};
// Forward: y = x if x > 0 else α(eˣ − 1)  Backward: dx = g·(1 or y + α)
struct EluOp {
  static constexpr const char* kName = "elu";
  static constexpr const char* kBackwardName = "EluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = true;
  float alpha;
  template <class T> T f(T x) const { return x > T(0) ? x : T(alpha) * std::expm1(x); }
  template <class T> T df(T x, T y) const { return x > T(0) ? T(1) : y + T(alpha); }
  void bulk(const float* x, float* y, int64_t n) const {
    backend::eltwise_forward(backend::Eltwise::Elu, alpha, x, y, n);
  }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor& y) const { return g * above_or(x, 0, 1, y + alpha); }
};
// Forward: y = λ·elu(x, α) with λ≈1.0507, α≈1.6733   Backward: dx = g·λ·(1 or eˣ·α)
struct SeluOp {
  static constexpr const char* kName = "selu";
  static constexpr const char* kBackwardName = "SeluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = true;
  static constexpr double kAlpha = 1.6732632423543772, kScale = 1.0507009873554805;
  template <class T> T f(T x) const { return x > T(0) ? T(kScale) * x : T(kScale) * T(kAlpha) * std::expm1(x); }
  template <class T> T df(T x, T y) const { return x > T(0) ? T(kScale) : y + T(kScale) * T(kAlpha); }
  void bulk(const float* x, float* y, int64_t n) const {  // oneDNN 2.6 has no SELU: elu, then scale
    backend::eltwise_forward(backend::Eltwise::Elu, float(kAlpha), x, y, n);
    parallel_for(n, [&](int64_t i) { y[i] *= float(kScale); });
  }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor& y) const {
    return g * above_or(x, 0, kScale, y + kScale * kAlpha);
  }
};
// Forward: y = tanh x                    Backward: dx = g·(1 − y²)
struct TanhOp {
  static constexpr const char* kName = "tanh";
  static constexpr const char* kBackwardName = "TanhBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  template <class T> T f(T x) const { return std::tanh(x); }
  template <class T> T df(T, T y) const { return T(1) - y * y; }
  void bulk(const float* x, float* y, int64_t n) const {
    backend::eltwise_forward(backend::Eltwise::Tanh, 0.f, x, y, n);
  }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor& y) const { return g * (1.0 - y * y); }
};
/// σ(x), stable for large |x|.
template <class T>
T sigma(T x) {
  return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}
// Forward: y = 1 / (1 + e⁻ˣ)             Backward: dx = g·y(1 − y)
struct SigmoidOp {
  static constexpr const char* kName = "sigmoid";
  static constexpr const char* kBackwardName = "SigmoidBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  template <class T> T f(T x) const { return sigma(x); }
  template <class T> T df(T, T y) const { return y * (T(1) - y); }
  void bulk(const float* x, float* y, int64_t n) const {
    backend::eltwise_forward(backend::Eltwise::Logistic, 0.f, x, y, n);
  }
  Tensor grad(const Tensor& g, const Tensor&, const Tensor& y) const { return g * (y * (1.0 - y)); }
};
/// Φ(x), the standard normal CDF, and φ(x), its density.
constexpr double kSqrtHalf = 0.70710678118654752, kInvSqrt2Pi = 0.39894228040143268;
template <class T>
T normal_cdf(T x) {
  return T(0.5) * (T(1) + std::erf(x * T(kSqrtHalf)));
}
template <class T>
T normal_pdf(T x) {
  return T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
}
Tensor normal_pdf(const Tensor& x) { return exp(square(x) * -0.5) * kInvSqrt2Pi; }
// Forward: y = Φ(x)                      Backward: dx = g·φ(x)
// (inside gelu's grad(), so that its gradient is differentiable again)
struct NormalCdfOp {
  static constexpr const char* kName = "normal_cdf";
  static constexpr const char* kBackwardName = "NormalCdfBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return normal_cdf(x); }
  template <class T> T df(T x, T) const { return normal_pdf(x); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const { return g * normal_pdf(x); }
};
// Forward: y = x·Φ(x) = ½x(1 + erf(x/√2))   Backward: dx = g·(Φ(x) + x·φ(x))
struct GeluOp {
  static constexpr const char* kName = "gelu";
  static constexpr const char* kBackwardName = "GeluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return x * normal_cdf(x); }
  template <class T> T df(T x, T) const { return normal_cdf(x) + x * normal_pdf(x); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const {
    return g * (unary_op<NormalCdfOp>(x) + x * normal_pdf(x));
  }
};
// Forward: y = x·σ(x)                    Backward: dx = g·σ(x)(1 + x(1 − σ(x)))
struct SiluOp {
  static constexpr const char* kName = "silu";
  static constexpr const char* kBackwardName = "SiluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  template <class T> T f(T x) const { return x * sigma(x); }
  template <class T> T df(T x, T) const {
    const T s = sigma(x);
    return s * (T(1) + x * (T(1) - s));
  }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const {
    const Tensor s = sigmoid(x);
    return g * (s * (x * (1.0 - s) + 1.0));
  }
};
// Forward: y = ln(1 + e^(βx))/β, or x where βx > threshold   Backward: dx = g·σ(βx), or g
struct SoftplusOp {
  static constexpr const char* kName = "softplus";
  static constexpr const char* kBackwardName = "SoftplusBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float beta, threshold;
  template <class T> T f(T x) const {
    const T bx = T(beta) * x;
    return bx > T(threshold) ? x : (std::max(bx, T(0)) + std::log1p(std::exp(-std::fabs(bx)))) / T(beta);
  }
  template <class T> T df(T x, T) const { return T(beta) * x > T(threshold) ? T(1) : sigma(T(beta) * x); }
  Tensor grad(const Tensor& g, const Tensor& x, const Tensor&) const {
    const Tensor bx = x * double(beta);
    return g * above_or(bx, threshold, 1, sigmoid(bx));
  }
};
}  // namespace

Tensor relu(const Tensor& x) { return unary_op<ReluOp>(x); }
Tensor leaky_relu(const Tensor& x, float slope) { return unary_op<LeakyReluOp>(x, LeakyReluOp{slope}); }
Tensor elu(const Tensor& x, float alpha) { return unary_op<EluOp>(x, EluOp{alpha}); }
Tensor selu(const Tensor& x) { return unary_op<SeluOp>(x); }
Tensor tanh(const Tensor& x) { return unary_op<TanhOp>(x); }
Tensor sigmoid(const Tensor& x) { return unary_op<SigmoidOp>(x); }
Tensor gelu(const Tensor& x) { return unary_op<GeluOp>(x); }
Tensor silu(const Tensor& x) { return unary_op<SiluOp>(x); }
Tensor softplus(const Tensor& x, float beta, float threshold) {
  TAPE_CHECK(beta != 0.f && std::isfinite(beta), "softplus: beta must be finite and nonzero, got ", beta);
  return unary_op<SoftplusOp>(x, SoftplusOp{beta, threshold});
}

}  // namespace tape
