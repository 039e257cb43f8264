#pragma once
/// \file The op registry: one entry per differentiable op. The gradcheck test
/// loop, tools/tape-gradcheck and docs/ops.md all iterate over it.
#include <functional>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::testing {

struct OpInfo {
  std::string name;       ///< "mul"
  std::string group;      ///< "elementwise", "activation", ...
  std::string signature;  ///< "mul(a, b)"
  std::string formula;    ///< "y = a·b; da = g·b, db = g·a"
  /// Sample inputs (those to check have requires_grad set), drawn from g.
  std::function<std::vector<Tensor>(Generator& g)> make_inputs;
  /// Runs the op on the sample inputs.
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  float rtol = 1e-2f;  ///< gradcheck tolerance: |a − n| ≤ atol + rtol·|n|
  float atol = 1e-3f;
};

/// Every registered op, in documentation order.
const std::vector<OpInfo>& op_registry();
/// The entry called `name`, or nullptr.
const OpInfo* find_op(const std::string& name);
/// docs/ops.md: a markdown table of every registered op (group, name, signature,
/// formula), grouped by group in registry order. tools/tape-ops-doc prints it and
/// a test checks that docs/ops.md matches it.
std::string ops_markdown();

}  // namespace tape::testing
