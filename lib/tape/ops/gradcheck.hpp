#pragma once
/// \file Gradient checking: analytic gradients against central finite differences.
#include <functional>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape {

struct GradcheckOptions {
  float eps = 1e-3f;   ///< finite-difference step
  float rtol = 1e-2f;  ///< pass if |analytic − numeric| ≤ atol + rtol·|numeric| everywhere
  float atol = 1e-3f;
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
};

struct GradcheckResult {
  bool ok = false;
  float max_abs_err = 0.f;  ///< max |analytic − numeric|
  float max_rel_err = 0.f;  ///< max |analytic − numeric| / (|numeric| + atol)
  std::string message;      ///< why it failed (which input, which element), or "ok"
  int64_t checked = 0;      ///< elements compared (over all inputs)
  int64_t kinks = 0;        ///< failing elements counted as kinks (excuse_kinks), not in the errors
};

/// Checks d(sum(f(inputs) ⊙ v))/d(input) for a random v against central
/// differences, for every input with requires_grad. Fails if any element is
/// out of tolerance, and also if the numeric gradient is zero everywhere
/// (a check that cannot see the op is not a pass).
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});


}  // namespace tape
