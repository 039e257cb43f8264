#include "tape/nn/init.hpp"

#include <algorithm>
#include <cmath>

#include "tape/core/grad_mode.hpp"
#include "tape/core/generator.hpp"

namespace tape::nn::init {

namespace {

float* writable(Tensor& t, const char* fn) {
  TAPE_CHECK(t.defined(), "init::", fn, ": tensor is undefined");
  TAPE_CHECK(t.dtype() == Dtype::Float32, "init::", fn, ": tensor must be Float32, got ", dtype_name(t.dtype()));
  TAPE_CHECK(t.is_contiguous(), "init::", fn, ": tensor of shape ", t.shape(), " must be contiguous");
  TAPE_CHECK(t.is_leaf(), "init::", fn, ": tensor of shape ", t.shape(), " must be a leaf tensor");
  return t.data<float>();
}

/// fill(p, n) writes the n values of t.
template <class F>
Tensor& fill_with(Tensor& t, const char* fn, F&& fill) {
  NoGradGuard no_grad;
  fill(writable(t, fn), t.numel());
  t.impl()->storage->bump_version();
  return t;
}

}  // namespace

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

}  // namespace tape::nn::init
