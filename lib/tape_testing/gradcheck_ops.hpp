#pragma once
/// \file Gradcheck over the op registry (in Float64), the Float32-vs-Float64
/// consistency check, and the self-test that shows the check can fail. Test
/// support: part of tape_testing, not of libtape.
#include "tape/ops/gradcheck.hpp"
#include "tape_testing/registry.hpp"

namespace tape::testing {

/// "[4, 5] ([4])": shapes of a sample's inputs, those without requires_grad in parentheses.
std::string input_shapes(const SampleInput& s);

/// The step and tolerances of op's check in `dtype`: the op's overrides, else
/// gradcheck_defaults(dtype).
GradcheckOptions gradcheck_options(const OpInfo& op, Dtype dtype, uint64_t seed);

/// The check of one sample.
struct SampleCheck {
  std::string sample;   ///< "basic", "non-contiguous", ...
  std::string inputs;   ///< input_shapes
  bool numeric = true;  ///< false: a 0-element sample, only shapes and zeros checked
  GradcheckResult result;
};

/// Gradcheck of a differentiable registry op on every sample drawn in `dtype`
/// (with `seed`). A sample with no element to perturb, or an empty output, is
/// checked for shapes instead: backward runs, and every input that requires
/// grad gets a gradient of its own shape and dtype (zeros when the output is
/// empty). Non-differentiable entries return no checks.
std::vector<SampleCheck> gradcheck_op(const OpInfo& op, uint64_t seed = 0, Dtype dtype = Dtype::Float64);

/// Gradgradcheck of a differentiable registry op on every numeric sample in
/// Float64: with a random upstream v (itself an input that requires grad),
/// h(x..., v) = the gradients autograd::grad(op(x...), x..., v, create_graph)
/// flattened and joined, is gradchecked against central differences. It fails
/// when a backward formula is not differentiable (a fused kernel under
/// create_graph records nothing: the second derivative comes out zero, or h
/// has no graph at all) or its derivative is wrong. 0-element samples are skipped.
std::vector<SampleCheck> gradgradcheck_op(const OpInfo& op, uint64_t seed = 0);

/// y = x (a copy), with a deliberately wrong backward: dx = factor·g. For tests
/// that show a check catches a wrong gradient (Float32 or Float64).
Tensor scaled_identity(const Tensor& x, double factor);

/// Gradcheck of `op`'s first sample in Float64 through a wrong backward: every
/// gradient scaled by `factor` (y = f(x) passes through an identity whose
/// backward multiplies g by factor). factor 1.001 is "0.1 % off".
GradcheckResult gradcheck_op_scaled(const OpInfo& op, double factor, uint64_t seed = 0);

/// The same sample run in Float32 and in Float64 (same drawn values): forward
/// outputs and the gradients of sum(y ⊙ v) (same v) compared.
struct ConsistencyCheck {
  std::string sample;
  double output_err = 0;  ///< max |y32 − y64| / max(max|y64|, tiny)
  double grad_err = 0;    ///< the same over every input's gradient
  double tol = 0;         ///< op.consistency_rtol (0 for Bool/Int64 outputs: exact)
  bool ok = false;
  std::string message;    ///< "ok" or what differs
};
/// Every sample of an op that supports Float32 and Float64 (empty otherwise).
std::vector<ConsistencyCheck> consistency_op(const OpInfo& op, uint64_t seed = 0);

/// The checker's own test on y = x² with backward dx = factor·2x·g (a kernel of
/// its own, not a registry op). In Float64 with the registry's tolerances: the
/// correct backward passes, 0.1 % off, 5 % off and all-zero fail. In Float32
/// with its defaults the same 0.1 % error passes — why the registry checks in Float64.
struct SelfTestResult {
  GradcheckResult correct, tenth_percent_off, five_percent_off, all_zero;  ///< Float64
  GradcheckResult float32_tenth_percent_off;                               ///< Float32
};
SelfTestResult gradcheck_self_test();

}  // namespace tape::testing
