// The Tensor methods that run or record the graph. Declared with Tensor in
// core/tensor.hpp; defined here because they need Nodes and the engine.
#include "tape/autograd/node.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape {

namespace {
// Forward: y = copy of x                   Backward: dx = g
struct CloneBackward final : Node {
  const char* name() const override { return "CloneBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g}; }
};
}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  check_defined("backward()");
  run_backward(*this, grad, retain_graph);
}

Tensor Tensor::clone() const {
  check_defined("clone()");
  Tensor out = detail::copy_contiguous(*this);
  if (any_requires_grad({this})) record(out, std::make_shared<CloneBackward>(), {this});
  return out;
}

const char* Tensor::grad_fn_name() const {
  const std::shared_ptr<Node>& fn = grad_fn();
  return fn ? fn->name() : "";
}

}  // namespace tape
