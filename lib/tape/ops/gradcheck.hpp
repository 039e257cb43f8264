#pragma once
/// \file Gradient checking: analytic gradients against central finite differences.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape {

/// The finite-difference step and tolerances gradcheck uses when GradcheckOptions
/// leaves them unset: by the dtype of the inputs it checks (Float64 when every
/// checked input is Float64, else Float32).
struct GradcheckTolerances {
  double eps, rtol, atol;
};
/// Float32: eps 1e-3, rtol 1e-2, atol 1e-3 (float32 rounding of the output is
/// the numeric gradient's noise, ~1e-7·|f|/eps). Float64: eps 1e-6, rtol 1e-5,
/// atol 1e-8 (noise ~1e-16·|f|/eps ≈ 1e-10·|f|): a backward 0.1 % wrong fails.
GradcheckTolerances gradcheck_defaults(Dtype dtype);

struct GradcheckOptions {
  std::optional<double> eps;   ///< finite-difference step (unset: gradcheck_defaults of the inputs' dtype)
  std::optional<double> rtol;  ///< pass if |analytic − numeric| ≤ atol + rtol·|numeric| everywhere
  std::optional<double> atol;
  uint64_t seed = 0;   ///< for the random upstream gradient (and the element sample)
  /// Check at most this many elements of each input (0 = all), drawn without
  /// replacement from `seed`: whole networks have too many for every one.
  int64_t max_elements_per_input = 0;
  /// Count an element that fails as a kink instead when f visibly bends within ±eps
  /// (ReLU at 0, a max-pool switch): its one-sided slopes, or its slopes over eps/4
  /// segments, differ by more than the tolerance plus their rounding noise. Finite
  /// differences cannot judge such elements; a wrong backward where f is smooth
  /// still fails. For whole networks; single ops' samples avoid kinks.
  bool excuse_kinks = false;
  /// The true gradient is zero everywhere (a product with two zero factors):
  /// then a numeric gradient of zero is no reason to fail, and the check asks
  /// the analytic gradient to be zero within atol.
  bool expect_zero_gradient = false;
};

struct GradcheckResult {
  bool ok = false;
  double max_abs_err = 0;  ///< max |analytic − numeric|
  double max_rel_err = 0;  ///< max |analytic − numeric| / (|numeric| + atol)
  /// max |analytic − numeric| / (atol + rtol·|numeric|): the share of the
  /// tolerance used (> 1 fails); its inverse is the margin of a passing check.
  double max_tol_ratio = 0;
  std::string message;     ///< why it failed (which input, which element), or "ok"
  int64_t checked = 0;     ///< elements compared (over all inputs)
  int64_t kinks = 0;       ///< failing elements counted as kinks (excuse_kinks), not in the errors
  GradcheckTolerances used{0, 0, 0};  ///< the step and tolerances applied
  Dtype dtype = Dtype::Float32;       ///< Float64 when every checked input was Float64
};

/// Checks d(sum(f(inputs) ⊙ v))/d(input) for a random v against central
/// differences, for every input with requires_grad. Fails if any element is
/// out of tolerance, and also if the numeric gradient is zero everywhere
/// (a check that cannot see the op is not a pass) unless expect_zero_gradient.
///
/// Inputs to check are Float32 or Float64 leaves (not necessarily contiguous,
/// but without stride-0 dims: one element must be one memory location); each is
/// perturbed in its own dtype and f's output is read as double. With Float64
/// inputs the defaults are ~1000× tighter than with Float32 (gradcheck_defaults).
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

/// Second derivatives, as PyTorch's gradgradcheck: with a random upstream v
/// (drawn from opt.seed, then itself perturbed), h(inputs, v) = the gradients
/// autograd::grad(f(inputs), inputs, {v}, create_graph) flattened and joined is
/// gradchecked with `opt`. Fails when a backward is not differentiable (recorded
/// nothing under create_graph: h has no graph, or its derivative is zero where
/// it should not be) or when its derivative is wrong: in Float64 a double
/// backward 0.1 % off fails. `f` runs with grad mode on.
GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace tape
