#pragma once
/// \file The op registry, after PyTorch's OpInfo: one entry per public op (or
/// per variant of one), with the dtypes its forward supports and a generator of
/// named sample inputs in any of them. The gradcheck test loop (in Float64), the
/// Float32-vs-Float64 consistency test, tools/tape-gradcheck and docs/ops.md all
/// iterate over it.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::testing {

/// One sample: the inputs an entry's fn takes, made in one dtype.
struct SampleInput {
  std::string name;            ///< "basic", "broadcast", "non-contiguous", "empty", ...
  std::vector<Tensor> inputs;  ///< leaves; the floating ones gradcheck perturbs require grad
  /// The true gradient is zero everywhere (GradcheckOptions::expect_zero_gradient).
  bool zero_gradient = false;
};

/// Where an op's formula lives: the `// Forward: ... Backward: ...` comment in
/// lib/tape/ops/<file> directly above the first line that contains `anchor`
/// (a struct or function definition). When that comment has several
/// `Forward:` lines, `label` picks the one that starts with it ("log_softmax:").
struct FormulaSource {
  std::string file;    ///< "elementwise.cpp"
  std::string anchor;  ///< "struct MulBackward"
  std::string label = "";  ///< optional
  /// The formula when that code has no such comment yet ("y = ...  Backward: ...").
  /// A test fails when both exist, so the formula is never written twice.
  std::string fallback = "";
};

using Inputs = std::vector<Tensor>;
using SampleFn = std::function<std::vector<SampleInput>(Generator& g, Dtype dtype)>;

struct OpInfo {
  std::string name;       ///< "mul", "sum_dim" (unique)
  std::string group;      ///< "elementwise", "activation", ...
  std::string signature;  ///< the call the entry makes: "mul(a, b)"
  FormulaSource formula;  ///< the one place the formula is written (see op_formula)
  /// Samples in `dtype`, drawn from g. The first is the basic one. Values are
  /// drawn in Float32 and converted, so every dtype sees the same numbers (up to
  /// its rounding). A non-contiguous copy of the basic sample is added by
  /// op_samples() unless `auto_noncontiguous` is false.
  SampleFn samples;
  /// Runs the op on a sample's inputs.
  std::function<Tensor(const Inputs&)> fn;
  /// The dtypes the forward supports (the sample generator's dtype argument).
  std::vector<Dtype> dtypes = {Dtype::Float32, Dtype::Float64, Dtype::BFloat16};  ///< BFloat16 computes in Float32
  /// false: the output is Bool or Int64 (comparisons, argmax, ...): forward only.
  bool differentiable = true;
  /// The public functions of ops.hpp this entry calls (empty: just `name`).
  std::vector<std::string> functions;
  /// What this entry adds over another of the same function ("strided operand").
  std::string note;
  /// Add a stride-2 copy of the basic sample's inputs as sample "non-contiguous".
  bool auto_noncontiguous = true;
  /// Float64 gradcheck overrides (unset: tape::gradcheck_defaults(Float64)).
  std::optional<double> eps, rtol, atol;
  /// Float32 vs Float64 on the same sample: |y32 − y64| ≤ consistency_rtol ·
  /// max|y64| for the output and every gradient (Bool and Int64 outputs exactly).
  /// Float32 rounding gives ≤ 4e-7 on every sample (docs/gradcheck.md).
  double consistency_rtol = 1e-5;
  std::string consistency_note;  ///< why, when it is looser than 1e-5

  bool supports(Dtype d) const;
  /// functions, or {name} when empty.
  std::vector<std::string> covered_functions() const;
};

/// Every registered op, in documentation order.
const std::vector<OpInfo>& op_registry();
/// The entry called `name`, or nullptr.
const OpInfo* find_op(const std::string& name);

/// The samples of `op` in `dtype` (its `samples` plus the automatic
/// "non-contiguous" one), drawn from a generator seeded with `seed`.
std::vector<SampleInput> op_samples(const OpInfo& op, Dtype dtype, uint64_t seed = 0);
/// A copy of t with the same values in a non-contiguous layout (stride 2 along
/// the last dim, like PyTorch's noncontiguous samples) and the same requires_grad.
/// 0-D tensors are returned as copies (they have no dim to stride).
Tensor noncontiguous_copy(const Tensor& t);

/// The formula of `op`: its FormulaSource comment, read from the sources under
/// `source_dir` (default: the source tree tape_testing was built from), with
/// the `//` markers and line breaks removed. Throws a tape::Error naming the
/// file and anchor when the anchor or the comment is missing.
std::string op_formula(const OpInfo& op, const std::string& source_dir = "");
/// The comment-block parser behind op_formula, on the text of one source file.
std::string formula_in(const std::string& source_text, const FormulaSource& where);

/// Public function names declared in a header's text (lines `Tensor name(`,
/// `std::vector<Tensor> name(` or `SomethingOutput name(`, not operators), in
/// order, without duplicates.
std::vector<std::string> declared_ops(const std::string& header_text);
/// Functions of ops.hpp that need no entry of their own, and why.
struct Exemption {
  std::string function, reason;
};
const std::vector<Exemption>& registry_exemptions();

/// docs/ops.md: a markdown table of every registered op (group, name, signature,
/// dtypes, formula from the source comment), grouped by group in registry order.
/// tools/tape-ops-doc prints it and a test checks that docs/ops.md matches it.
std::string ops_markdown();

/// "Float32, Float64".
std::string dtypes_str(const std::vector<Dtype>& dtypes);

}  // namespace tape::testing
