#pragma once
/// \file Graph export: the autograd graph behind a tensor as Graphviz DOT text.
#include <string>
#include <utility>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape {

/// What to_dot() draws besides the graph itself.
struct DotOptions {
  /// Annotate each leaf with the L2 norm of its current gradient, coloured pale
  /// when vanishing (< 1e-6) and red when exploding (> 1e3).
  bool show_grad_norms = false;
  /// Names for the leaves, e.g. `module.named_parameters()`: a leaf found here is
  /// labelled "fc1.weight" instead of "leaf".
  using Names = std::vector<std::pair<std::string, Tensor>>;
  Names names;
};

/// Graphviz DOT text of the graph that produced `root`: one box per recorded op
/// (its name without "Backward", e.g. "Linear", and its output shape), one ellipse
/// per leaf (its parameter name, e.g. "fc1.weight", or "leaf", and its shape),
/// edges from inputs to the ops that consume them (labelled with the input
/// position when an op has several inputs), and the root drawn with a double
/// border. Leaves are named from `options.names` (pass
/// `{.names = model.named_parameters()}`). Walks the graph iteratively, so arbitrarily long chains are fine.
/// Render with `dot -Tpng graph.dot -o graph.png`.
std::string to_dot(const Tensor& root, const DotOptions& options = {});

}  // namespace tape
