// Activation functions: each is one small struct turned into forward + backward
// by detail::unary_op (see op_util.hpp). tanh, sigmoid, elu and selu give large
// tensors (≥ kBulkMinimum elements) to oneDNN's JIT eltwise through bulk():
// their scalar f() calls libm once per element.
#include <algorithm>
#include <cmath>

#include "tape/backend/eltwise.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
// Forward: y = max(x, 0)                 Backward: dx = g·[x > 0]
struct ReluOp {
  static constexpr const char* kName = "relu";
  static constexpr const char* kBackwardName = "ReluBackward";
  static constexpr bool kSignOnly = true;
  float f(float x) const { return !(x <= 0.f) ? x : 0.f; }  // NaN stays NaN, like PyTorch
  float df_sign(bool positive) const { return positive ? 1.f : 0.f; }  // 0 at NaN (x > 0 is false), like PyTorch
};
// Forward: y = x if x > 0 else s·x       Backward: dx = g·(1 or s)
struct LeakyReluOp {
  static constexpr const char* kName = "leaky_relu";
  static constexpr const char* kBackwardName = "LeakyReluBackward";
  static constexpr bool kSignOnly = true;
  float slope;
  float f(float x) const { return x > 0.f ? x : slope * x; }
  float df_sign(bool positive) const { return positive ? 1.f : slope; }
};
// Forward: y = x if x > 0 else α(eˣ − 1)  Backward: dx = g·(1 or y + α)
struct EluOp {
  static constexpr const char* kName = "elu";
  static constexpr const char* kBackwardName = "EluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = true;
  float alpha;
  float f(float x) const { return x > 0.f ? x : alpha * std::expm1(x); }
  float df(float x, float y) const { return x > 0.f ? 1.f : y + alpha; }
  void bulk(const float* x, float* y, int64_t n) const {
    backend::eltwise_forward(backend::Eltwise::Elu, alpha, x, y, n);
  }
};
// Forward: y = λ·elu(x, α) with λ≈1.0507, α≈1.6733   Backward: dx = g·λ·(1 or eˣ·α)
struct SeluOp {
  static constexpr const char* kName = "selu";
  static constexpr const char* kBackwardName = "SeluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = true;
  static constexpr float kAlpha = 1.6732632423543772f, kScale = 1.0507009873554805f;
  float f(float x) const { return x > 0.f ? kScale * x : kScale * kAlpha * std::expm1(x); }
  float df(float x, float y) const { return x > 0.f ? kScale : y + kScale * kAlpha; }
  void bulk(const float* x, float* y, int64_t n) const {  // oneDNN 2.6 has no SELU: elu, then scale
    backend::eltwise_forward(backend::Eltwise::Elu, kAlpha, x, y, n);
    parallel_for(n, [&](int64_t i) { y[i] *= kScale; });
  }
};
// Forward: y = tanh x                    Backward: dx = g·(1 − y²)
struct TanhOp {
  static constexpr const char* kName = "tanh";
  static constexpr const char* kBackwardName = "TanhBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  float f(float x) const { return std::tanh(x); }
  float df(float, float y) const { return 1.f - y * y; }
  void bulk(const float* x, float* y, int64_t n) const {
    backend::eltwise_forward(backend::Eltwise::Tanh, 0.f, x, y, n);
  }
};
// Forward: y = 1 / (1 + e⁻ˣ)             Backward: dx = g·y(1 − y)
struct SigmoidOp {
  static constexpr const char* kName = "sigmoid";
  static constexpr const char* kBackwardName = "SigmoidBackward";
  static constexpr bool kNeedsX = false, kNeedsY = true;
  float f(float x) const { return x >= 0.f ? 1.f / (1.f + std::exp(-x)) : std::exp(x) / (1.f + std::exp(x)); }
  float df(float, float y) const { return y * (1.f - y); }
  void bulk(const float* x, float* y, int64_t n) const {
    backend::eltwise_forward(backend::Eltwise::Logistic, 0.f, x, y, n);
  }
};
// Forward: y = x·Φ(x) = ½x(1 + erf(x/√2))   Backward: dx = g·(Φ(x) + x·φ(x))
struct GeluOp {
  static constexpr const char* kName = "gelu";
  static constexpr const char* kBackwardName = "GeluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f)); }
  float df(float x, float) const {
    const float cdf = 0.5f * (1.f + std::erf(x * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * std::exp(-0.5f * x * x);
    return cdf + x * pdf;
  }
};
/// σ(x), stable for large |x|.
inline float sigma(float x) { return x >= 0.f ? 1.f / (1.f + std::exp(-x)) : std::exp(x) / (1.f + std::exp(x)); }
// Forward: y = x·σ(x)                    Backward: dx = g·σ(x)(1 + x(1 − σ(x)))
struct SiluOp {
  static constexpr const char* kName = "silu";
  static constexpr const char* kBackwardName = "SiluBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float f(float x) const { return x * sigma(x); }
  float df(float x, float) const {
    const float s = sigma(x);
    return s * (1.f + x * (1.f - s));
  }
};
// Forward: y = ln(1 + e^(βx))/β, or x where βx > threshold   Backward: dx = g·σ(βx), or g
struct SoftplusOp {
  static constexpr const char* kName = "softplus";
  static constexpr const char* kBackwardName = "SoftplusBackward";
  static constexpr bool kNeedsX = true, kNeedsY = false;
  float beta, threshold;
  float f(float x) const {
    const float bx = beta * x;
    return bx > threshold ? x : (std::max(bx, 0.f) + std::log1p(std::exp(-std::fabs(bx)))) / beta;
  }
  float df(float x, float) const { return beta * x > threshold ? 1.f : sigma(beta * x); }
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
