// The Tensor methods that run or record the graph, and tensor hooks. Declared
// with Tensor in core/tensor.hpp; defined here because they need Nodes and the engine.
#include <atomic>

#include "tape/autograd/node.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape {

namespace {
// Forward: y = copy of x                   Backward: dx = g
struct CloneBackward final : Node {
  const char* name() const override { return "CloneBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g}; }
};

std::atomic<int> g_next_hook{1};
}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph, bool create_graph) const {
  check_defined("backward()");
  run_backward(*this, grad, retain_graph, create_graph);
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

namespace {
/// The hooks of tensor t (created on first use): kept in its AutogradMeta, and
/// for a non-leaf also on its grad_fn, which runs them.
TensorHooks& hooks_of(const Tensor& t, const char* what) {
  TAPE_CHECK(t.defined(), what, ": tensor is undefined");
  TAPE_CHECK(t.requires_grad(), what, ": tensor of shape ", t.shape(),
             " does not require grad (its gradient is never computed)");
  AutogradMeta& m = t.impl()->meta();
  if (m.hooks) return *m.hooks;
  std::shared_ptr<TensorHooks> h = m.grad_fn ? m.grad_fn->hooks_for(m.output_nr) : std::make_shared<TensorHooks>();
  h->tensor = t.impl_ptr();
  std::lock_guard lock(m.mutex);
  m.hooks = h;
  return *h;
}
}  // namespace

int Tensor::register_hook(std::function<Tensor(const Tensor& grad)> hook) {
  TAPE_CHECK(hook, "register_hook(): the hook is empty");
  TensorHooks& h = hooks_of(*this, "register_hook()");
  const int handle = g_next_hook.fetch_add(1);
  h.hooks.emplace_back(handle, std::move(hook));
  return handle;
}

int Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor& leaf)> hook) {
  TAPE_CHECK(hook, "register_post_accumulate_grad_hook(): the hook is empty");
  TAPE_CHECK(is_leaf(), "register_post_accumulate_grad_hook(): only leaf tensors accumulate a gradient (this one has "
             "grad_fn ", grad_fn_name(), ")");
  TensorHooks& h = hooks_of(*this, "register_post_accumulate_grad_hook()");
  const int handle = g_next_hook.fetch_add(1);
  h.post_accumulate.emplace_back(handle, std::move(hook));
  return handle;
}

void Tensor::remove_hook(int handle) {
  check_defined("remove_hook()");
  TensorHooks* h = impl_->autograd ? impl_->autograd->hooks.get() : nullptr;
  const auto drop = [&](auto& list) {
    const auto n = list.size();
    std::erase_if(list, [&](const auto& p) { return p.first == handle; });
    return list.size() != n;
  };
  TAPE_CHECK(h && (drop(h->hooks) || drop(h->post_accumulate)), "remove_hook(): no hook with handle ", handle,
             " on this tensor of shape ", shape());
}

void Tensor::retain_grad() {
  check_defined("retain_grad()");
  TAPE_CHECK(requires_grad(), "retain_grad(): tensor of shape ", shape(), " does not require grad");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  hooks_of(*this, "retain_grad()").retains_grad = true;
}

bool Tensor::retains_grad() const {
  check_defined("retains_grad()");
  return !is_leaf() && impl_->autograd->hooks && impl_->autograd->hooks->retains_grad;
}

}  // namespace tape
