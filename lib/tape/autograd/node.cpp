#include "tape/autograd/node.hpp"

#include "tape/core/grad_mode.hpp"

namespace tape {

// Note: iterative teardown. Destroying the last handle of a long chain would
// recurse once per node (~Node → ~shared_ptr<Node> → ~Node ...) and overflow the
// stack for ~100 000 nodes. Instead each dying node hands the children it owns
// alone to a thread-local stack, and the outermost destructor drains it.
Node::~Node() {
  thread_local std::vector<std::shared_ptr<Node>> pending;
  thread_local bool draining = false;
  for (auto& e : next_edges_)
    if (e.fn && e.fn.use_count() == 1) pending.push_back(std::move(e.fn));
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    n.reset();  // its destructor may push more
  }
  draining = false;
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output)
    : data_(t.defined() && is_output ? t.detach() : t), version_(t.defined() ? t.version() : 0) {}

namespace {
[[noreturn]] void modified_in_place(const Node& owner, const Shape& shape, uint32_t now, uint32_t expected) {
  throw Error(str_cat("backward of ", owner.name(), ": a tensor of shape ", shape,
                  " saved for the gradient was modified by an in-place operation: it is at version ", now,
                  ", expected version ", expected, " (clone() it before modifying, or modify a copy)"));
}
}  // namespace

Tensor SavedTensor::unpack(const Node& owner) const {
  if (data_.defined() && data_.version() != version_)
    modified_in_place(owner, data_.shape(), data_.version(), version_);
  return data_;
}

SavedVersion::SavedVersion(const Tensor& t)
    : storage_(t.impl()->storage), shape_(t.shape()), version_(t.version()) {}

void SavedVersion::check(const Node& owner) const {
  if (auto s = storage_.lock(); s && s->version() != version_)
    modified_in_place(owner, shape_, s->version(), version_);
}

bool sole_owner(const Tensor& t) {
  return t.defined() && t.impl_ptr().use_count() == 1 && t.impl()->storage.use_count() == 1;
}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& g) {
  AutogradMeta& m = leaf_->meta();
  TAPE_CHECK(g.shape() == leaf_->shape, "AccumulateGrad: gradient of shape ", g.shape(),
             " does not match the leaf's shape ", leaf_->shape);
  std::lock_guard lock(m.mutex);  // backward in another thread may add into the same leaf
  if (!m.grad) {
    // Own the buffer: the same gradient tensor may also flow to another input.
    m.grad = sole_owner(g) && g.is_contiguous() ? g.detach().impl_ptr() : g.clone().detach().impl_ptr();
  } else if (m.grad->dtype == Dtype::BFloat16) {
    m.grad = detail::add_same_shape(Tensor(m.grad), g).impl_ptr();  // no bf16 add_: sum in float
  } else {
    Tensor(m.grad).add_(g);
  }
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.impl()->autograd) return {};
  AutogradMeta& m = *t.impl()->autograd;
  if (m.grad_fn) return {m.grad_fn};
  if (!m.requires_grad) return {};
  std::lock_guard lock(m.mutex);
  std::shared_ptr<Node> acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    acc->set_output(t);
    m.grad_accumulator = acc;
  }
  return {acc};
}

bool any_requires_grad(std::initializer_list<const Tensor*> ts) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : ts)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(gradient_edge(*t));
  node->set_next_edges(std::move(edges));
  node->set_output(out);
  out.set_grad_fn(std::move(node));
}

}  // namespace tape
