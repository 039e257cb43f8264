#include "tape/nn/init.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tape/core/grad_mode.hpp"
#include "tape/core/generator.hpp"

namespace tape::nn::init {

namespace {

void check_writable(const Tensor& t, const char* fn) {
  TAPE_CHECK(t.defined(), "init::", fn, ": tensor is undefined");
  TAPE_CHECK(t.dtype() == Dtype::Float32 || t.dtype() == Dtype::Float64, "init::", fn,
             ": tensor must be Float32 or Float64, got ", dtype_name(t.dtype()));
  TAPE_CHECK(t.is_contiguous(), "init::", fn, ": tensor of shape ", t.shape(), " must be contiguous");
  TAPE_CHECK(t.is_leaf(), "init::", fn, ": tensor of shape ", t.shape(), " must be a leaf tensor");
}

/// fill(p, n) writes n float values; a Float64 tensor gets them widened.
template <class F>
Tensor& fill_with(Tensor& t, const char* fn, F&& fill) {
  check_writable(t, fn);
  NoGradGuard no_grad;
  const int64_t n = t.numel();
  if (t.dtype() == Dtype::Float32) {
    fill(t.data<float>(), n);
  } else {
    std::vector<float> v(static_cast<size_t>(n));
    fill(v.data(), n);
    std::copy(v.begin(), v.end(), t.data<double>());
  }
  t.impl()->storage->bump_version();
  return t;
}

int64_t fan_of(const Tensor& t, FanMode mode, const char* fn) {
  TAPE_CHECK(t.defined(), "init::", fn, ": tensor is undefined");
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  const int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  TAPE_CHECK(fan > 0, "init::", fn, ": tensor of shape ", t.shape(), " has no elements to compute a fan from");
  return fan;
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU:
      TAPE_CHECK(std::isfinite(param), "init::calculate_gain: negative slope must be finite, got ", param);
      return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::SELU: return 0.75;
  }
  return 1.0;
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& s) {
  TAPE_CHECK(s.size() >= 2, "init::fan_in_and_fan_out: needs a tensor with at least 2 dims, got shape ", s);
  int64_t receptive = 1;
  for (size_t i = 2; i < s.size(); ++i) receptive *= s[i];
  return {s[1] * receptive, s[0] * receptive};
}

Tensor& normal_(Tensor& t, double mean, double std) {
  TAPE_CHECK(std >= 0 && std::isfinite(std) && std::isfinite(mean), "init::normal_: std must be finite and >= 0, got ",
             std, " (mean ", mean, ")");
  Generator& g = default_generator();
  const float m = float(mean), s = float(std);
  return fill_with(t, "normal_", [&](float* p, int64_t n) { g.fill_normal(p, n, m, s); });
}

Tensor& uniform_(Tensor& t, double lo, double hi) {
  TAPE_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "init::uniform_: needs finite lo <= hi, got [", lo,
             ", ", hi, ")");
  Generator& g = default_generator();
  const float a = float(lo), w = float(hi - lo);
  return fill_with(t, "uniform_", [&](float* p, int64_t n) { g.fill_uniform(p, n, a, w); });
}

Tensor& kaiming_normal_(Tensor& t, int64_t fan_in) {
  TAPE_CHECK(fan_in > 0, "init::kaiming_normal_: fan_in must be > 0, got ", fan_in);
  return normal_(t, 0.0, std::sqrt(2.0 / double(fan_in)));
}

Tensor& kaiming_normal_(Tensor& t) {
  TAPE_CHECK(t.defined(), "init::kaiming_normal_: tensor is undefined");
  return kaiming_normal_(t, fan_in_and_fan_out(t.shape()).first);
}

// A zero-element tensor has no fan: nothing to draw (PyTorch warns and returns).
Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  if (t.defined() && t.numel() == 0) return t;
  const int64_t fan = fan_of(t, mode, "kaiming_normal_");
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(double(fan)));
}

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  if (t.defined() && t.numel() == 0) return t;
  const int64_t fan = fan_of(t, mode, "kaiming_uniform_");
  const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / double(fan));
  return uniform_(t, -bound, bound);
}

Tensor& xavier_uniform_(Tensor& t, double gain) {
  TAPE_CHECK(t.defined(), "init::xavier_uniform_: tensor is undefined");
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  TAPE_CHECK(fan_in > 0 && fan_out > 0, "init::xavier_uniform_: tensor of shape ", t.shape(), " has an empty fan");
  const double a = gain * std::sqrt(6.0 / double(fan_in + fan_out));
  return uniform_(t, -a, a);
}

Tensor& xavier_normal_(Tensor& t, double gain) {
  TAPE_CHECK(t.defined(), "init::xavier_normal_: tensor is undefined");
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  TAPE_CHECK(fan_in > 0 && fan_out > 0, "init::xavier_normal_: tensor of shape ", t.shape(), " has an empty fan");
  return normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in + fan_out)));
}

// Forward: t = gain·Q (rows = dim 0, cols = the product of the rest); Q from
// modified Gram–Schmidt on the rows of a normal matrix (on its columns, i.e. the
// rows of its transpose, when rows > cols) — the QR factor with diag(R) > 0,
// which is what PyTorch's q·sign(diag(r)) makes of its LAPACK QR.
Tensor& orthogonal_(Tensor& t, double gain) {
  check_writable(t, "orthogonal_");
  TAPE_CHECK(t.dim() >= 2, "init::orthogonal_: needs a tensor with at least 2 dims, got shape ", t.shape());
  TAPE_CHECK(std::isfinite(gain), "init::orthogonal_: gain must be finite, got ", gain);
  const int64_t rows = t.shape()[0], cols = t.numel() / std::max<int64_t>(rows, 1);
  if (t.numel() == 0) return t;
  // k vectors of length m, orthonormalised in double
  const bool transpose = rows > cols;
  const int64_t k = transpose ? cols : rows, m = transpose ? rows : cols;
  std::vector<float> draws(size_t(rows * cols));
  default_generator().fill_normal(draws.data(), int64_t(draws.size()), 0.f, 1.f);
  std::vector<double> q(size_t(k * m));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      q[size_t(transpose ? c * m + r : r * m + c)] = draws[size_t(r * cols + c)];
  for (int64_t i = 0; i < k; ++i) {
    double* qi = q.data() + i * m;
    for (int64_t j = 0; j < i; ++j) {
      const double* qj = q.data() + j * m;
      double dot = 0;
      for (int64_t e = 0; e < m; ++e) dot += qi[e] * qj[e];
      for (int64_t e = 0; e < m; ++e) qi[e] -= dot * qj[e];
    }
    double norm = 0;
    for (int64_t e = 0; e < m; ++e) norm += qi[e] * qi[e];
    norm = std::sqrt(norm);
    TAPE_CHECK(norm > 0, "init::orthogonal_: the random matrix was rank-deficient (try again)");
    for (int64_t e = 0; e < m; ++e) qi[e] /= norm;
  }
  NoGradGuard no_grad;
  auto write = [&](auto* out) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        out[r * cols + c] = decltype(+*out)(gain * q[size_t(transpose ? c * m + r : r * m + c)]);
  };
  if (t.dtype() == Dtype::Float32)
    write(t.data<float>());
  else
    write(t.data<double>());
  t.impl()->storage->bump_version();
  return t;
}

Tensor& xavier_uniform_(Tensor& t, int64_t fan_in, int64_t fan_out) {
  TAPE_CHECK(fan_in > 0 && fan_out > 0, "init::xavier_uniform_: fan_in and fan_out must be > 0, got ", fan_in, " and ",
             fan_out);
  const double a = std::sqrt(6.0 / double(fan_in + fan_out));
  return uniform_(t, -a, a);
}

Tensor& xavier_normal_(Tensor& t, int64_t fan_in, int64_t fan_out) {
  TAPE_CHECK(fan_in > 0 && fan_out > 0, "init::xavier_normal_: fan_in and fan_out must be > 0, got ", fan_in, " and ",
             fan_out);
  return normal_(t, 0.0, std::sqrt(2.0 / double(fan_in + fan_out)));
}

Tensor& zeros_(Tensor& t) {
  return fill_with(t, "zeros_", [](float* p, int64_t n) { std::fill_n(p, n, 0.f); });
}

Tensor& ones_(Tensor& t) {
  return fill_with(t, "ones_", [](float* p, int64_t n) { std::fill_n(p, n, 1.f); });
}

Tensor& constant_(Tensor& t, double value) {
  check_writable(t, "constant_");
  NoGradGuard no_grad;
  if (t.dtype() == Dtype::Float32)
    std::fill_n(t.data<float>(), t.numel(), float(value));
  else
    std::fill_n(t.data<double>(), t.numel(), value);
  t.impl()->storage->bump_version();
  return t;
}

}  // namespace tape::nn::init
