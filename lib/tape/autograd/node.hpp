#pragma once
/// \file The autograd graph: a Node per recorded op, Edges to the nodes that
/// produced its inputs, SavedTensors guarded by version counters, tensor hooks.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape {

class Node;

/// Where an input's gradient goes: output `input_nr` of the node that produced
/// it (or a leaf's AccumulateGrad). An empty edge means "this input needs no gradient".
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  explicit operator bool() const { return fn != nullptr; }
};

/// A tensor kept for backward, with the version it had when saved.
/// unpack() throws if an in-place op modified it since.
/// Note: an op's own output is saved as a detached alias (keeping the handle
/// would make output → grad_fn → node → output a reference cycle); inputs are
/// kept as they are, which saves an allocation per saved tensor. When backward
/// runs with create_graph, unpack() gives the output back its grad_fn (the
/// owner node), so the backward formula can be differentiated through it.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t, bool is_output = false, uint32_t output_nr = 0);
  Tensor unpack(const Node& owner) const;
  bool defined() const { return data_.defined(); }
  void reset() { data_ = Tensor(); }

 private:
  Tensor data_;          // the input itself, or a detached alias of an output
  uint32_t version_ = 0;
  uint32_t output_nr_ = 0;
  bool is_output_ = false;
};

/// The version a tensor had when an op read it, without keeping its data alive:
/// for ops whose backward reads something derived from an input (max pooling's
/// arg max) rather than the input. check() throws, like SavedTensor::unpack, if
/// an in-place op has changed the tensor since; a tensor that is gone can no
/// longer change.
class SavedVersion {
 public:
  SavedVersion() = default;
  explicit SavedVersion(const Tensor& t);
  void check(const Node& owner) const;
  void reset() { storage_.reset(); }

 private:
  std::weak_ptr<Storage> storage_;
  Shape shape_;
  uint32_t version_ = 0;
};

/// True when `t` is the only handle to its TensorImpl and no other TensorImpl
/// shares its storage: whoever holds `t` may reuse the buffer.
bool sole_owner(const Tensor& t);

/// A tensor's hooks (Tensor::register_hook, retain_grad,
/// register_post_accumulate_grad_hook). Shared by the tensor's AutogradMeta and,
/// for a non-leaf, its grad_fn node, which runs them on the gradient of that
/// output before using it.
struct TensorHooks {
  using Hook = std::function<Tensor(const Tensor& grad)>;
  uint32_t output_nr = 0;
  std::vector<std::pair<int, Hook>> hooks;  ///< (handle, hook), in registration order
  std::vector<std::pair<int, std::function<void(const Tensor& leaf)>>> post_accumulate;
  bool retains_grad = false;                ///< a non-leaf that keeps its .grad()
  std::weak_ptr<TensorImpl> tensor;         ///< where retain_grad stores the gradient
  /// Runs the hooks in order on g (a hook returning an undefined tensor keeps
  /// g), then stores g for retain_grad. Throws naming the hook if one returns a
  /// gradient of another shape.
  Tensor run(Tensor g) const;
};

/// Set by the engine when DetectAnomalyGuard is on: the forward op that recorded
/// a node, for the error raised when its backward produces NaN or Inf.
struct AnomalyInfo {
  std::string forward;  ///< "mul(a: [4, 5] Float64, b: [5] Float64) -> [4, 5]"
  std::string trace;    ///< the C++ stack of the forward call (Boost.Stacktrace)
};

/// One recorded op. apply() maps the gradient of its output to one gradient per
/// next edge (undefined where that input needs none). A node with several
/// outputs (a custom Function returning several tensors) overrides apply_all.
class Node {
 public:
  Node() = default;
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// "MulBackward", "AccumulateGrad", ...
  virtual const char* name() const = 0;
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  /// The gradients of every output (undefined where none arrived; at least one
  /// is defined). Single-output nodes need not override it.
  virtual std::vector<Tensor> apply_all(std::vector<Tensor>& grad_outputs) { return apply(grad_outputs[0]); }
  /// Drops saved tensors after backward (unless retain_graph).
  virtual void release_saved() {}
  /// False for nodes that outlive one graph (a leaf's AccumulateGrad is reused by
  /// every graph that leaf enters, so backward never marks it released).
  virtual bool single_use() const { return true; }

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  void set_next_edges(std::vector<Edge> e) { next_edges_ = std::move(e); }
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].fn; }

  /// Shape and dtype of each output (for graphs and checks): the engine casts an
  /// incoming gradient of another dtype to this one, as PyTorch does.
  size_t num_outputs() const { return 1 + more_outputs_.size(); }
  const Shape& output_shape(size_t i = 0) const { return i == 0 ? out0_.shape : more_outputs_[i - 1].shape; }
  Dtype output_dtype(size_t i = 0) const { return i == 0 ? out0_.dtype : more_outputs_[i - 1].dtype; }
  /// Records `out` as output 0.
  void set_output(const Tensor& out) {
    out0_.shape = out.shape();
    out0_.dtype = out.dtype();
  }
  /// Records `out` as the next output (1, 2, ...) and returns its number.
  uint32_t add_output(const Tensor& out);

  bool released() const {
    std::lock_guard lock(mutex_);
    return released_;
  }
  /// The hooks of output `output_nr` (created on first use; for non-leaf tensors).
  std::shared_ptr<TensorHooks> hooks_for(uint32_t output_nr);
  const AnomalyInfo* anomaly_info() const { return anomaly_.get(); }
  void set_anomaly_info(std::unique_ptr<AnomalyInfo> info) { anomaly_ = std::move(info); }

 private:
  friend class Engine;
  struct OutputInfo {
    Shape shape;
    Dtype dtype = Dtype::Float32;
  };
  std::vector<Edge> next_edges_;
  OutputInfo out0_;
  std::vector<OutputInfo> more_outputs_;
  std::vector<std::shared_ptr<TensorHooks>> hooks_;  // empty unless a hook is registered
  std::unique_ptr<AnomalyInfo> anomaly_;             // null unless recorded under DetectAnomalyGuard
  // Note: a node keeps no state of a backward pass (dependency counts and
  // gradient buffers live in the engine's per-call GraphTask), so two threads
  // may run backward through graphs that share nodes. The mutex serialises
  // apply() and the release of saved tensors on one node.
  mutable std::mutex mutex_;
  bool released_ = false;
  /// Why a backward that released this node's saved tensors failed (the retry's
  /// error names the real cause rather than "saved tensors were freed").
  std::shared_ptr<const std::string> failure_;
};

/// The sink of a leaf tensor: adds incoming gradients into leaf.grad(), after
/// the leaf's hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  const char* name() const override { return "AccumulateGrad"; }
  bool single_use() const override { return false; }
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  Tensor variable() const { return Tensor(leaf_); }
  /// The leaf's hooks applied to g (what apply() accumulates; autograd::grad
  /// returns it for a leaf input).
  Tensor run_hooks(const Tensor& g) const;

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

/// The edge an op should record for input `t` (empty if t needs no gradient).
Edge gradient_edge(const Tensor& t);

/// True if grad mode is on and any of the tensors requires grad. Inside a node's
/// apply() it is true only when backward runs with create_graph and the operands
/// need a graph: then the backward formula must be written with differentiable
/// ops (ops.hpp), and the fused kernel used otherwise.
bool any_requires_grad(std::initializer_list<const Tensor*> ts);

/// Attaches `node` to `out` with edges to `inputs` (only call when recording).
void record(Tensor& out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs);
void record(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

/// Runs backward from `root` (see engine.cpp).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph, bool create_graph = false);

namespace detail {
/// The node whose apply() the engine is running on this thread (null outside
/// backward): SavedTensor::unpack links a saved output to it under create_graph.
const std::shared_ptr<Node>* running_node();
/// Sets running_node() for its scope.
class RunningNodeScope {
 public:
  explicit RunningNodeScope(const std::shared_ptr<Node>& n);
  ~RunningNodeScope();
  RunningNodeScope(const RunningNodeScope&) = delete;
  RunningNodeScope& operator=(const RunningNodeScope&) = delete;

 private:
  const std::shared_ptr<Node>* prev_;
};
/// Fills node.anomaly_info() from the forward call (inputs' shapes, output,
/// stack) when anomaly mode is on; record() calls it.
void note_forward(Node& node, const Tensor& out, const std::vector<const Tensor*>& inputs);
/// a + b for two gradients of one shape and dtype; recorded when either has a
/// graph (under create_graph), so summed gradients stay differentiable.
Tensor sum_gradients(const Tensor& a, const Tensor& b);
}  // namespace detail

namespace autograd {

/// The gradients of `outputs` (weighted by grad_outputs; empty: ones for
/// one-element outputs) with respect to `inputs`, without touching any .grad().
/// create_graph records the backward itself, so the gradients can be
/// differentiated again; retain_graph defaults to keeping the graph when
/// create_graph is set (as PyTorch's retain_graph=None). An input the outputs
/// do not depend on is an error unless allow_unused (then its gradient is undefined).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool create_graph = false, bool allow_unused = false);

/// RAII: while alive (on any thread), backward checks every gradient a node
/// produces and throws a tape::Error on NaN or Inf, naming the node and the
/// forward op that recorded it (its input shapes and the C++ stack of the
/// forward call, captured when the op ran inside the guard). Off by default;
/// when off it costs one load per recorded op and per node run.
struct DetectAnomalyGuard {
  DetectAnomalyGuard();
  ~DetectAnomalyGuard();
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;
};
/// True while a DetectAnomalyGuard is alive.
bool anomaly_mode_enabled();

/// Runs `callback` on this thread when the backward pass in progress on it has
/// run its last node, before backward() or grad() returns (PyTorch's
/// Engine::queue_callback). Callable only from inside a backward pass (a
/// tensor hook, a Function's backward); callbacks run in the order queued and
/// may queue more. DistributedDataParallel uses it to wait for its all-reduces.
/// A pass that throws drops its callbacks.
void queue_callback(std::function<void()> callback);

}  // namespace autograd

}  // namespace tape
