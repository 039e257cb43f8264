#pragma once
/// \file nn::init — in-place weight initialisers (torch.nn.init). Each one writes
/// the tensor's data directly (not recorded, like PyTorch's no_grad) and draws
/// from tape::default_generator(), so manual_seed() makes models reproducible.
#include <cstdint>
#include <utility>

#include "tape/core/tensor.hpp"

namespace tape::nn::init {

/// (fan_in, fan_out) of a weight: [out, in] → (in, out); [out, in, kh, kw] → (in·kh·kw, out·kh·kw).
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape);

/// He-normal: N(0, 2 / fan_in) — for layers followed by ReLU.
Tensor& kaiming_normal_(Tensor& t, int64_t fan_in);
/// He-normal with fan_in taken from t's shape.
Tensor& kaiming_normal_(Tensor& t);
/// Glorot-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, int64_t fan_in, int64_t fan_out);
/// Glorot-normal: N(0, 2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& t, int64_t fan_in, int64_t fan_out);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
/// N(mean, std²).
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
/// U(lo, hi).
Tensor& uniform_(Tensor& t, double lo = 0.0, double hi = 1.0);

}  // namespace tape::nn::init
