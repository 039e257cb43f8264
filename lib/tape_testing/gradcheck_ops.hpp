#pragma once
/// \file Gradcheck over the op registry, and the self-test that shows the check
/// can fail. Test support: part of tape_testing, not of libtape.
#include "tape/ops/gradcheck.hpp"
#include "tape_testing/registry.hpp"

namespace tape::testing {

/// Gradcheck of a registry op on its sample inputs (drawn with `seed`).
GradcheckResult gradcheck_op(const OpInfo& op, uint64_t seed = 0);

/// The checker's own test: results for (correct backward, backward 5 % off,
/// all-zero backward) on the same function. A working checker returns {pass, fail, fail}.
struct SelfTestResult {
  GradcheckResult correct, five_percent_off, all_zero;
};
SelfTestResult gradcheck_self_test();

}  // namespace tape::testing
