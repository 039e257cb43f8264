#include "tape/nn/activation.hpp"

#include <cmath>

#include "tape/nn/layers.hpp"
#include "tape/ops/ops.hpp"

namespace tape::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor SELU::forward(const Tensor& x) { return selu(x); }

LeakyReLU::LeakyReLU(double negative_slope) : slope_(negative_slope) {
  TAPE_CHECK(std::isfinite(negative_slope), "LeakyReLU: negative_slope must be finite, got ", negative_slope);
}
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, float(slope_)); }
std::string LeakyReLU::extra_repr() const { return "negative_slope=" + format_float(slope_); }

ELU::ELU(double alpha) : alpha_(alpha) {
  TAPE_CHECK(std::isfinite(alpha), "ELU: alpha must be finite, got ", alpha);
}
Tensor ELU::forward(const Tensor& x) { return elu(x, float(alpha_)); }
std::string ELU::extra_repr() const { return "alpha=" + format_float(alpha_); }

Tensor GELU::forward(const Tensor& x) { return gelu(x); }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }

Softplus::Softplus(double beta, double threshold) : beta_(beta), threshold_(threshold) {
  TAPE_CHECK(std::isfinite(beta) && beta != 0.0, "Softplus: beta must be finite and nonzero, got ", beta);
  TAPE_CHECK(!std::isnan(threshold), "Softplus: threshold must not be NaN");
}
Tensor Softplus::forward(const Tensor& x) { return softplus(x, float(beta_), float(threshold_)); }
std::string Softplus::extra_repr() const {
  return "beta=" + format_float(beta_) + ", threshold=" + format_float(threshold_);
}

Tensor Softmax::forward(const Tensor& x) {
  TAPE_CHECK(dim_ >= -x.dim() && dim_ < x.dim(), "Softmax(dim=", dim_, "): input of shape ", x.shape(),
             " has no dim ", dim_);
  return softmax(x, dim_);
}
std::string Softmax::extra_repr() const { return str_cat("dim=", dim_); }

}  // namespace tape::nn
