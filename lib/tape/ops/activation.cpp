// Activation functions: each is one small struct turned into forward + backward
// by detail::unary_op (see op_util.hpp). tanh, sigmoid, elu and selu give large
// tensors (≥ kBulkMinimum elements) to oneDNN's JIT eltwise through bulk():
// their scalar f() calls libm once per element.
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
}  // namespace

Tensor relu(const Tensor& x) { return unary_op<ReluOp>(x); }
Tensor leaky_relu(const Tensor& x, float slope) { return unary_op<LeakyReluOp>(x, LeakyReluOp{slope}); }
Tensor elu(const Tensor& x, float alpha) { return unary_op<EluOp>(x, EluOp{alpha}); }
Tensor selu(const Tensor& x) { return unary_op<SeluOp>(x); }
Tensor tanh(const Tensor& x) { return unary_op<TanhOp>(x); }
Tensor sigmoid(const Tensor& x) { return unary_op<SigmoidOp>(x); }

}  // namespace tape
