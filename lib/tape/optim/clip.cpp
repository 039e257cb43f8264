#include "tape/optim/clip.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape::nn::utils {

namespace {
/// The defined gradients of `params`, contiguous (a non-contiguous one is replaced
/// by a contiguous copy, so that writing it in place reaches the parameter).
std::vector<Tensor> gradients(const std::vector<Tensor>& params, const char* who) {
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    TAPE_CHECK(p.defined(), who, ": parameter ", i, " is an undefined tensor");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    TAPE_CHECK(g.dtype() == Dtype::Float32 || g.dtype() == Dtype::Float64, who, ": gradient of parameter ", i,
               " must be Float32 or Float64, got ", dtype_name(g.dtype()));
    if (!g.is_contiguous()) {
      g = g.detach().contiguous();
      Tensor(p).set_grad(g);
    }
    grads.push_back(g);
  }
  return grads;
}

/// Applies f(T&) to every element of g, in place.
template <class F>
void for_each_element(Tensor& g, const char* who, F f) {
  tape::detail::visit_float(g.dtype(), who, [&]<class T>() {
    T* d = g.data<T>();
    for (int64_t j = 0, n = g.numel(); j < n; ++j) f(d[j]);
  });
  g.impl()->storage->bump_version();
}

/// ‖g‖ in norm_type, in double.
double norm_of(const Tensor& g, double norm_type, const char* who) {
  double acc = 0.0;
  tape::detail::visit_float(g.dtype(), who, [&]<class T>() {
    const T* d = g.data<T>();
    const int64_t n = g.numel();
    if (std::isinf(norm_type)) {
      for (int64_t j = 0; j < n; ++j) acc = std::max(acc, double(std::abs(d[j])));
    } else if (norm_type == 2.0) {
      for (int64_t j = 0; j < n; ++j) acc += double(d[j]) * double(d[j]);
    } else if (norm_type == 1.0) {
      for (int64_t j = 0; j < n; ++j) acc += std::abs(double(d[j]));
    } else {
      for (int64_t j = 0; j < n; ++j) acc += std::pow(std::abs(double(d[j])), norm_type);
    }
  });
  if (std::isinf(norm_type) || norm_type == 1.0) return acc;
  if (norm_type == 2.0) return std::sqrt(acc);
  return std::pow(acc, 1.0 / norm_type);
}
}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  constexpr const char* who = "clip_grad_norm_";
  TAPE_CHECK(std::isfinite(max_norm) && max_norm >= 0.0, who, ": max_norm must be >= 0, got ", max_norm);
  TAPE_CHECK(!std::isnan(norm_type) && norm_type > 0.0, who, ": norm_type must be > 0 (or infinity), got ",
             norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads = gradients(params, who);
  if (grads.empty()) return 0.0;
  std::vector<double> norms;
  for (const Tensor& g : grads) norms.push_back(norm_of(g, norm_type, who));
  double total = 0.0;
  if (std::isinf(norm_type)) {
    total = *std::max_element(norms.begin(), norms.end());
  } else {
    for (double n : norms) total += norm_type == 2.0 ? n * n : std::pow(n, norm_type);
    total = norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
  }
  // PyTorch multiplies by the clamped coefficient whatever its value (1 included).
  const double coef = std::min(max_norm / (total + 1e-6), 1.0);
  for (Tensor& g : grads)
    for_each_element(g, who, [coef](auto& x) { x *= std::remove_reference_t<decltype(x)>(coef); });
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  constexpr const char* who = "clip_grad_value_";
  TAPE_CHECK(!std::isnan(clip_value) && clip_value >= 0.0, who, ": clip_value must be >= 0, got ", clip_value);
  NoGradGuard no_grad;
  for (Tensor& g : gradients(params, who))
    for_each_element(g, who, [clip_value](auto& x) {
      using T = std::remove_reference_t<decltype(x)>;
      x = std::clamp(x, T(-clip_value), T(clip_value));
    });
}

}  // namespace tape::nn::utils
