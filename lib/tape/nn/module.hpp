#pragma once
/// \file Module: the base class of every layer and model (LibTorch's torch::nn::Module).
/// A module owns named parameters, buffers and child modules, in registration order.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The computation. Call sub-modules through operator() (not forward) so that
  /// summary() sees them.
  virtual Tensor forward(const Tensor& x) = 0;
  /// Runs the forward pre-hooks, forward(x), then the forward hooks (and records
  /// the output shape while summary() is running).
  Tensor operator()(const Tensor& x);
  /// The inference fast path: operator()(x) with nothing recorded (a NoGradGuard
  /// scope), so ops skip saving inputs and pick oneDNN's forward_inference kernels
  /// (max pooling without its arg-max workspace, convolution without training
  /// bookkeeping). Training/eval mode is left as it is: call eval() first for
  /// dropout and batch norm, as in PyTorch.
  Tensor forward_inference(const Tensor& x);

  /// Runs before forward with (module, input); a defined result replaces the input.
  using ForwardPreHook = std::function<Tensor(Module& module, const Tensor& input)>;
  /// Runs after forward with (module, input, output); a defined result replaces the output
  /// (PyTorch's register_forward_hook: activations, feature extraction, output edits).
  using ForwardHook = std::function<Tensor(Module& module, const Tensor& input, const Tensor& output)>;
  /// Returns a handle for remove_forward_hook.
  int register_forward_pre_hook(ForwardPreHook hook);
  int register_forward_hook(ForwardHook hook);
  /// Removes a hook of either kind; an unknown handle is an error.
  void remove_forward_hook(int handle);
  /// True when a forward hook or pre-hook is registered on this module (then a
  /// container must call it through operator(), not fuse it away).
  bool has_forward_hooks() const { return !forward_pre_hooks_.empty() || !forward_hooks_.empty(); }

  /// All parameters, recursively, in registration order; a shared tensor appears once.
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// ("fc1.weight", tensor) pairs. Called on a root module (one not registered in
  /// another) it also gives each parameter tensor its full dotted name.
  NamedTensors named_parameters(bool recurse = true) const;
  /// Non-trainable state (e.g. running statistics), recursively, dotted names.
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  /// Direct sub-modules in registration order.
  std::vector<std::shared_ptr<Module>> children() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  /// This module and every sub-module, pre-order (this first), each once
  /// (torch.nn.Module.modules()). The pointers are owned by the tree.
  std::vector<Module*> modules();
  /// ("", this), ("features", ...), ("features.0", ...): pre-order, dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules();
  /// Calls fn on every sub-module (depth first, children before parents) and then on this.
  void apply(const std::function<void(Module&)>& fn);

  /// Total number of parameter elements (shared tensors counted once).
  int64_t num_parameters() const;
  /// Elements of parameters that require grad.
  int64_t num_trainable_parameters() const;

  /// Parameters and buffers by dotted name ("fc1.weight", "bn.running_mean"), as
  /// PyTorch's state_dict(): detached tensors that share the module's storage.
  std::map<std::string, Tensor> state_dict() const;
  struct LoadResult {
    std::vector<std::string> missing_keys;     ///< in the module, not in the map
    std::vector<std::string> unexpected_keys;  ///< in the map, not in the module
  };
  /// Copies `state` into the parameters and buffers (under NoGradGuard; values
  /// are cast to each tensor's dtype). Everything is checked before anything is
  /// written: a shape mismatch, an undefined tensor, or (when `strict`) a missing
  /// or unexpected key throws one error listing them, and the module is unchanged.
  /// With strict = false the keys that did not match are returned.
  LoadResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  /// Training mode (the default) or evaluation mode, recursively. Changes layer
  /// behaviour (dropout) only, never grad mode.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Clears every parameter's gradient (sets it undefined, like set_to_none=True).
  void zero_grad();

  /// Converts every floating parameter and buffer to `dtype` in place, recursively
  /// (LibTorch's module->to(torch::kFloat64)): the tensors keep their identity, so
  /// members, optimizers built afterwards and names all see the new data. Gradients
  /// are cleared. Integer buffers are left alone; `dtype` must be floating.
  /// Build optimizers after calling it (their state is per dtype).
  Module& to(Dtype dtype);

  /// "Linear". The default is the demangled C++ class name without namespaces.
  virtual std::string type_name() const;
  /// "in_features=784, out_features=50, bias=true"; empty by default.
  virtual std::string extra_repr() const { return {}; }
  /// The PyTorch-style module tree that operator<< prints.
  std::string repr() const;

  /// A Keras/torchinfo-style table: each leaf module's name, type, output shape and
  /// parameter count, then "Total params: 44,426" etc. Runs one dummy forward on
  /// zeros(input_shape) in eval mode under NoGradGuard; training flags and the
  /// global RNG state are restored afterwards.
  std::string summary(const Shape& input_shape);
  /// True while summary() runs its dummy forward on this thread (it records each
  /// leaf module's output shape, so containers must call every module themselves).
  static bool recording_summary();

 protected:
  /// Registers `t` as parameter `name`: sets requires_grad and names the tensor.
  /// Returns the same handle (store it in a member).
  Tensor register_parameter(std::string name, Tensor t);
  /// Registers state that is saved in checkpoints but not trained.
  Tensor register_buffer(std::string name, Tensor t);
  /// Registers a child module; returns the same pointer.
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    register_module_impl(std::move(name), m);
    return m;
  }

 private:
  void register_module_impl(std::string name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name, const char* what) const;
  using Seen = std::unordered_set<const TensorImpl*>;
  void collect(const std::string& prefix, bool recurse, bool buffers, NamedTensors& out, Seen& seen) const;
  void print(std::ostream& os, int indent) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::unordered_set<std::string> names_;  ///< of parameters, buffers and children: O(1) duplicate checks
  bool training_ = true;
  std::vector<std::pair<int, ForwardPreHook>> forward_pre_hooks_;
  std::vector<std::pair<int, ForwardHook>> forward_hooks_;
};

/// Prints the module tree like PyTorch's repr.
std::ostream& operator<<(std::ostream& os, const Module& m);

/// 44426 → "44,426".
std::string format_thousands(int64_t n);

}  // namespace tape::nn
