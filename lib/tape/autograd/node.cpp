#include "tape/autograd/node.hpp"

#include <atomic>
#include <boost/stacktrace.hpp>
#include <sstream>

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

uint32_t Node::add_output(const Tensor& out) {
  more_outputs_.push_back({out.shape(), out.dtype()});
  return uint32_t(more_outputs_.size());
}

std::shared_ptr<TensorHooks> Node::hooks_for(uint32_t output_nr) {
  std::lock_guard lock(mutex_);
  for (auto& h : hooks_)
    if (h->output_nr == output_nr) return h;
  auto h = std::make_shared<TensorHooks>();
  h->output_nr = output_nr;
  hooks_.push_back(h);
  return h;
}

// --- the node running on this thread ------------------------------------------
namespace detail {
namespace {
thread_local const std::shared_ptr<Node>* g_running = nullptr;
}
const std::shared_ptr<Node>* running_node() { return g_running; }
RunningNodeScope::RunningNodeScope(const std::shared_ptr<Node>& n) : prev_(g_running) { g_running = &n; }
RunningNodeScope::~RunningNodeScope() { g_running = prev_; }
}  // namespace detail

// --- saved tensors -----------------------------------------------------------
SavedTensor::SavedTensor(const Tensor& t, bool is_output, uint32_t output_nr)
    : data_(t.defined() && is_output ? t.detach() : t),
      version_(t.defined() ? t.version() : 0),
      output_nr_(output_nr),
      is_output_(is_output && t.defined()) {}

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
  // create_graph: the output is the owner's output again, so a backward formula
  // that reads it (exp: dx = g·y) is differentiable through it.
  if (is_output_ && grad_enabled() && is_floating(data_.dtype())) {
    const std::shared_ptr<Node>* running = detail::running_node();
    if (running && running->get() == &owner) {
      Tensor alias = data_.detach();
      alias.set_grad_fn(*running, output_nr_);
      return alias;
    }
  }
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

// --- hooks ---------------------------------------------------------------------
Tensor TensorHooks::run(Tensor g) const {
  for (const auto& [handle, hook] : hooks) {
    Tensor r = hook(g);
    if (!r.defined()) continue;
    TAPE_CHECK(r.shape() == g.shape(), "hook ", handle, " returned a gradient of shape ", r.shape(),
               " for a tensor of shape ", g.shape(), " (a hook may replace the gradient, not reshape it)");
    g = r.dtype() == g.dtype() ? r : r.to(g.dtype());
  }
  if (retains_grad) {
    if (auto t = tensor.lock()) {
      AutogradMeta& m = t->meta();
      std::lock_guard lock(m.mutex);
      // PyTorch: the first gradient is kept as a copy, later ones are added
      if (!m.grad) m.grad = g.clone().impl_ptr();
      else m.grad = detail::sum_gradients(Tensor(m.grad), g).impl_ptr();
    }
  }
  return g;
}

Tensor AccumulateGrad::run_hooks(const Tensor& g) const {
  std::shared_ptr<TensorHooks> h;
  if (leaf_->autograd) {
    std::lock_guard lock(leaf_->autograd->mutex);
    h = leaf_->autograd->hooks;
  }
  return h ? h->run(g) : g;
}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& g_in) {
  AutogradMeta& m = leaf_->meta();
  TAPE_CHECK(g_in.shape() == leaf_->shape, "AccumulateGrad: gradient of shape ", g_in.shape(),
             " does not match the leaf's shape ", leaf_->shape);
  Tensor hooked;  // (not a copy of g_in when there are no hooks: sole_owner below counts handles)
  if (m.hooks) hooked = run_hooks(g_in);
  const Tensor& g = m.hooks ? hooked : g_in;
  std::shared_ptr<TensorHooks> hooks;
  {
    std::lock_guard lock(m.mutex);  // backward in another thread may add into the same leaf
    if (grad_enabled()) {
      // create_graph: .grad() keeps its graph (a recorded copy, or a recorded sum), as in PyTorch
      m.grad = (m.grad ? detail::sum_gradients(Tensor(m.grad), g) : g.clone()).impl_ptr();
    } else if (!m.grad) {
      // Own the buffer: the same gradient tensor may also flow to another input.
      m.grad = sole_owner(g) && g.is_contiguous() ? g.detach().impl_ptr() : g.clone().detach().impl_ptr();
    } else if (m.grad->dtype == Dtype::BFloat16 || (m.grad->autograd && m.grad->autograd->grad_fn)) {
      // no bf16 add_; and a .grad() with a graph (from create_graph) is replaced, not modified
      m.grad = detail::add_same_shape(Tensor(m.grad), g).impl_ptr();
    } else {
      Tensor(m.grad).add_(g);
    }
    if (m.hooks && !m.hooks->post_accumulate.empty()) hooks = m.hooks;
  }
  if (hooks)
    for (const auto& [handle, hook] : hooks->post_accumulate) hook(Tensor(leaf_));
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.impl()->autograd) return {};
  AutogradMeta& m = *t.impl()->autograd;
  if (m.grad_fn) return {m.grad_fn, m.output_nr};
  if (!m.requires_grad) return {};
  std::lock_guard lock(m.mutex);
  std::shared_ptr<Node> acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    acc->set_output(t);
    m.grad_accumulator = acc;
  }
  return {acc, 0};
}

bool any_requires_grad(std::initializer_list<const Tensor*> ts) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : ts)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

namespace detail {
namespace {
// Forward: y = a + b (two gradients of one shape and dtype)   Backward: da = g, db = g
struct GradSumBackward final : Node {
  const char* name() const override { return "GradSumBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g, g}; }
};
}  // namespace

Tensor sum_gradients(const Tensor& a, const Tensor& b) {
  Tensor y = add_same_shape(a, b);
  if (any_requires_grad({&a, &b})) record(y, std::make_shared<GradSumBackward>(), {&a, &b});
  return y;
}
}  // namespace detail

// --- recording -------------------------------------------------------------------
namespace autograd {
namespace {
std::atomic<int> g_anomaly{0};
}
DetectAnomalyGuard::DetectAnomalyGuard() { g_anomaly.fetch_add(1); }
DetectAnomalyGuard::~DetectAnomalyGuard() { g_anomaly.fetch_sub(1); }
bool anomaly_mode_enabled() { return g_anomaly.load(std::memory_order_relaxed) > 0; }
}  // namespace autograd

namespace detail {
namespace {
std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return str_cat(t.shape(), " ", dtype_name(t.dtype()));
}
}  // namespace

void note_forward(Node& node, const Tensor& out, const std::vector<const Tensor*>& inputs) {
  auto info = std::make_unique<AnomalyInfo>();
  std::string op = node.name();
  if (const size_t k = op.rfind("Backward"); k != std::string::npos && k > 0) op.erase(k);
  std::string args;
  for (size_t i = 0; i < inputs.size(); ++i) args += (i ? ", " : "") + describe(*inputs[i]);
  info->forward = str_cat(op, "(", args, ") -> ", describe(out));
  std::ostringstream trace;
  trace << boost::stacktrace::stacktrace(2, 24);  // skip note_forward and record
  info->trace = trace.str();
  node.set_anomaly_info(std::move(info));
}
}  // namespace detail

void record(Tensor& out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(gradient_edge(*t));
  node->set_next_edges(std::move(edges));
  node->set_output(out);
  if (autograd::anomaly_mode_enabled()) [[unlikely]]
    detail::note_forward(*node, out, std::vector<const Tensor*>(inputs));
  out.set_grad_fn(std::move(node));
}

void record(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(gradient_edge(t));
  node->set_next_edges(std::move(edges));
  node->set_output(out);
  if (autograd::anomaly_mode_enabled()) [[unlikely]] {
    std::vector<const Tensor*> ptrs;
    for (const Tensor& t : inputs) ptrs.push_back(&t);
    detail::note_forward(*node, out, ptrs);
  }
  out.set_grad_fn(std::move(node));
}

}  // namespace tape
