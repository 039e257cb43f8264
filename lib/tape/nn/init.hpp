#pragma once
/// \file nn::init — in-place weight initialisers (torch.nn.init). Each one writes
/// the tensor's data directly (not recorded, like PyTorch's no_grad) and draws
/// from tape::default_generator(), so manual_seed() makes models reproducible.
/// Float32 and Float64 tensors (Float64 gets the Float32 draws, widened, as randn does).
#include <cstdint>
#include <utility>

#include "tape/core/tensor.hpp"

namespace tape::nn::init {

/// (fan_in, fan_out) of a weight: [out, in] → (in, out); [out, in, kh, kw] → (in·kh·kw, out·kh·kw).
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape);

/// Which fan the Kaiming initialisers scale by (torch.nn.init's mode='fan_in'/'fan_out').
enum class FanMode { FanIn, FanOut };
/// The non-linearity a Kaiming initialiser's gain is computed for.
enum class Nonlinearity { Linear, Conv, Sigmoid, Tanh, ReLU, LeakyReLU, SELU };
/// torch.nn.init.calculate_gain: 1 (linear, conv, sigmoid), 5/3 (tanh), √2 (relu),
/// √(2 / (1 + param²)) (leaky_relu with negative slope `param`), 3/4 (selu).
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);

/// He-normal: N(0, 2 / fan_in) — for layers followed by ReLU (the report's
/// initialisation; tape's Linear and Conv2d used it before they matched PyTorch).
Tensor& kaiming_normal_(Tensor& t, int64_t fan_in);
/// He-normal with fan_in taken from t's shape (= torch.nn.init.kaiming_normal_(t)).
Tensor& kaiming_normal_(Tensor& t);
/// torch.nn.init.kaiming_normal_(t, a, mode, nonlinearity): N(0, std²),
/// std = gain / √fan, gain = calculate_gain(nonlinearity, a).
Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
/// torch.nn.init.kaiming_uniform_: U(-b, b), b = gain·√(3 / fan), gain =
/// calculate_gain(nonlinearity, a). PyTorch's Linear and Conv2d draw their weight
/// with kaiming_uniform_(w, a = √5), i.e. b = 1/√fan_in.
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                         Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
/// Glorot-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, int64_t fan_in, int64_t fan_out);
/// Glorot-normal: N(0, 2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& t, int64_t fan_in, int64_t fan_out);
/// torch.nn.init.xavier_uniform_(t, gain): fans from t's shape, a = gain·√(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0);
/// torch.nn.init.xavier_normal_(t, gain): std = gain·√(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& t, double gain = 1.0);
/// torch.nn.init.orthogonal_(t, gain): t viewed as [rows = dim 0, cols = the rest]
/// becomes gain·Q, Q with orthonormal rows (rows <= cols) or columns (rows > cols),
/// from the QR decomposition of a standard-normal matrix with R's diagonal made positive.
Tensor& orthogonal_(Tensor& t, double gain = 1.0);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
/// Every element = value.
Tensor& constant_(Tensor& t, double value);
/// N(mean, std²).
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
/// U(lo, hi).
Tensor& uniform_(Tensor& t, double lo = 0.0, double hi = 1.0);

}  // namespace tape::nn::init
