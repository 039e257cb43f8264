#pragma once
// Internal (not installed): oneDNN's JIT eltwise forward over a flat float
// buffer, for the activations whose scalar loop would call libm per element.
#include <cstdint>

namespace tape::backend {

enum class Eltwise { Tanh, Logistic, Elu };

/// y[i] = f(x[i]) for i < n, with f = tanh, 1/(1+e^-x) or elu(x, alpha).
/// x and y may be the same buffer.
void eltwise_forward(Eltwise f, float alpha, const float* x, float* y, int64_t n);

}  // namespace tape::backend
