#pragma once
/// \file The autograd graph: a Node per recorded op, Edges to the nodes that
/// produced its inputs, SavedTensors guarded by version counters.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape {

class Node;

/// Where an input's gradient goes: the node that produced it (or a leaf's
/// AccumulateGrad). An empty edge means "this input needs no gradient".
struct Edge {
  std::shared_ptr<Node> fn;
  explicit operator bool() const { return fn != nullptr; }
};

/// A tensor kept for backward, with the version it had when saved.
/// unpack() throws if an in-place op modified it since.
/// Note: an op's own output is saved as a detached alias (keeping the handle
/// would make output → grad_fn → node → output a reference cycle); inputs are
/// kept as they are, which saves an allocation per saved tensor.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t, bool is_output = false);
  Tensor unpack(const Node& owner) const;
  bool defined() const { return data_.defined(); }
  void reset() { data_ = Tensor(); }

 private:
  Tensor data_;          // the input itself, or a detached alias of an output
  uint32_t version_ = 0;
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

/// One recorded op. apply() maps the gradient of its output to one gradient per
/// next edge (undefined where that input needs none).
class Node {
 public:
  Node() = default;
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// "MulBackward", "AccumulateGrad", ...
  virtual const char* name() const = 0;
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  /// Drops saved tensors after backward (unless retain_graph).
  virtual void release_saved() {}
  /// False for nodes that outlive one graph (a leaf's AccumulateGrad is reused by
  /// every graph that leaf enters, so backward never marks it released).
  virtual bool single_use() const { return true; }

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  void set_next_edges(std::vector<Edge> e) { next_edges_ = std::move(e); }
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].fn; }
  /// Output shape and dtype (for graphs and checks): the engine casts an
  /// incoming gradient of another dtype to this one, as PyTorch does.
  const Shape& output_shape() const { return out_shape_; }
  Dtype output_dtype() const { return out_dtype_; }
  void set_output(const Tensor& out) {
    out_shape_ = out.shape();
    out_dtype_ = out.dtype();
  }
  bool released() const {
    std::lock_guard lock(mutex_);
    return released_;
  }

 private:
  friend class Engine;
  std::vector<Edge> next_edges_;
  Shape out_shape_;
  Dtype out_dtype_ = Dtype::Float32;
  // Note: a node keeps no state of a backward pass (dependency counts and
  // gradient buffers live in the engine's per-call GraphTask), so two threads
  // may run backward through graphs that share nodes. The mutex serialises
  // apply() and the release of saved tensors on one node.
  mutable std::mutex mutex_;
  bool released_ = false;
};

/// The sink of a leaf tensor: adds incoming gradients into leaf.grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  const char* name() const override { return "AccumulateGrad"; }
  bool single_use() const override { return false; }
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  Tensor variable() const { return Tensor(leaf_); }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

/// The edge an op should record for input `t` (empty if t needs no gradient).
Edge gradient_edge(const Tensor& t);

/// True if grad mode is on and any of the tensors requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> ts);

/// Attaches `node` to `out` with edges to `inputs` (only call when recording).
void record(Tensor& out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs);

/// Runs backward from `root` (see engine.cpp).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace tape
