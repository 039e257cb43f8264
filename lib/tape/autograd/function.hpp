#pragma once
/// \file Custom differentiable functions, as LibTorch spells them:
///
///     struct MySquare : tape::autograd::Function<MySquare> {
///       static Tensor forward(AutogradContext* ctx, const Tensor& x) {
///         ctx->save_for_backward({x});
///         return x * x;
///       }
///       static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
///         Tensor x = ctx->get_saved_variables()[0];
///         return {g[0] * 2 * x};
///       }
///     };
///     Tensor y = MySquare::apply(x);
///
/// forward runs with grad mode off; its arguments may be tensors, vectors of
/// tensors and anything else (numbers, options). backward receives one gradient
/// per output and returns one per forward argument (undefined for arguments that
/// are not tensors or need none). Written with tape's ops, backward is itself
/// differentiable, so create_graph works through a custom Function.
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tape/autograd/node.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape::autograd {

/// A non-tensor value a Function keeps for backward in ctx->saved_data (the
/// part of LibTorch's IValue custom functions use).
class SavedValue {
 public:
  SavedValue() = default;
  SavedValue(double v) : v_(v) {}
  SavedValue(float v) : v_(double(v)) {}
  SavedValue(int v) : v_(int64_t(v)) {}
  SavedValue(int64_t v) : v_(v) {}
  SavedValue(bool v) : v_(v) {}
  SavedValue(const char* v) : v_(std::string(v)) {}
  SavedValue(std::string v) : v_(std::move(v)) {}
  SavedValue(Tensor v) : v_(std::move(v)) {}
  SavedValue(std::vector<int64_t> v) : v_(std::move(v)) {}

  bool isNone() const { return v_.index() == 0; }
  /// A double (an integer converts); throws tape::Error naming what it holds otherwise.
  double toDouble() const;
  int64_t toInt() const;
  bool toBool() const;
  const std::string& toStringRef() const;
  Tensor toTensor() const;
  const std::vector<int64_t>& toIntVector() const;

 private:
  const char* kind() const;
  std::variant<std::monostate, double, int64_t, bool, std::string, Tensor, std::vector<int64_t>> v_;
};

/// What forward hands to backward (LibTorch's AutogradContext).
class AutogradContext {
 public:
  /// Tensors backward needs (inputs or outputs of forward). They are guarded by
  /// version counters: an in-place change before backward is an error.
  void save_for_backward(std::vector<Tensor> to_save);
  /// The saved tensors, in order. Throws once backward has freed them (unless retain_graph).
  std::vector<Tensor> get_saved_variables() const;
  /// Whether tensor input i (counting only tensor arguments, in order) needs a gradient.
  bool needs_input_grad(size_t i) const;
  /// Inputs forward modified in place (and returns): their history is replaced by this Function.
  void mark_dirty(const std::vector<Tensor>& inputs);
  /// Outputs that get no gradient (an index, a mask): they do not require grad.
  void mark_non_differentiable(const std::vector<Tensor>& outputs);
  /// true (default): backward receives zeros for outputs that got no gradient; false: undefined tensors.
  void set_materialize_grads(bool on) { materialize_grads_ = on; }

  /// Anything else backward needs: ctx->saved_data["scale"] = 2.0; ... .toDouble().
  std::unordered_map<std::string, SavedValue> saved_data;

 private:
  template <class T>
  friend struct Function;
  friend struct detail_function;
  std::vector<Tensor> to_save_;
  std::vector<SavedTensor> saved_;
  std::vector<bool> needs_input_grad_;
  std::vector<Tensor> dirty_, non_differentiable_;
  const Node* owner_ = nullptr;
  bool materialize_grads_ = true;
  bool freed_ = false;
};

/// The machinery behind Function<T>::apply (not templated, in function.cpp).
struct detail_function {
  /// A node whose backward calls `backward` with ctx.
  class CppNode final : public Node {
   public:
    using Backward = std::vector<Tensor> (*)(AutogradContext*, std::vector<Tensor>);
    CppNode(std::string name, Backward backward) : name_(std::move(name)), backward_(backward) {}
    const char* name() const override { return name_.c_str(); }
    std::vector<Tensor> apply(const Tensor& g) override;
    std::vector<Tensor> apply_all(std::vector<Tensor>& grads) override;
    void release_saved() override;
    AutogradContext ctx;
    std::vector<bool> is_tensor_arg;  ///< per forward argument (elements of tensor vectors counted one by one)

   private:
    std::string name_;
    Backward backward_;
  };
  /// "MySquareBackward" for a Function type.
  static std::string node_name(const std::type_info& t);
  /// Creates the node, with edges to the tensor inputs.
  static std::shared_ptr<CppNode> make_node(const std::type_info& t, CppNode::Backward backward,
                                            const std::vector<Tensor>& inputs, std::vector<bool> is_tensor_arg);
  /// Attaches the node to forward's outputs (in place in `outputs`) and saves ctx's tensors.
  static void wrap_outputs(const std::shared_ptr<CppNode>& node, const std::vector<Tensor>& inputs,
                           std::vector<Tensor>& outputs);

  // collecting the tensor arguments of forward
  static void collect(std::vector<Tensor>& tensors, std::vector<bool>& is_tensor, const Tensor& t) {
    tensors.push_back(t);
    is_tensor.push_back(true);
  }
  static void collect(std::vector<Tensor>& tensors, std::vector<bool>& is_tensor, const std::vector<Tensor>& ts) {
    for (const Tensor& t : ts) collect(tensors, is_tensor, t);
  }
  template <class A>
  static void collect(std::vector<Tensor>&, std::vector<bool>& is_tensor, const A&) {
    is_tensor.push_back(false);
  }
};

/// Base of a user-defined differentiable function T (CRTP): T defines static
/// forward(AutogradContext*, args...) returning a Tensor or std::vector<Tensor>,
/// and static backward(AutogradContext*, std::vector<Tensor>) returning one
/// gradient per forward argument.
template <class T>
struct Function {
  template <class... Args>
  static auto apply(Args&&... args) {
    std::vector<Tensor> inputs;
    std::vector<bool> is_tensor_arg;
    (detail_function::collect(inputs, is_tensor_arg, args), ...);
    bool record = false;
    if (grad_enabled())
      for (const Tensor& t : inputs) record = record || (t.defined() && t.requires_grad());
    std::shared_ptr<detail_function::CppNode> node;
    AutogradContext local;  // when nothing is recorded
    AutogradContext* ctx = &local;
    if (record) {
      auto backward = +[](AutogradContext* c, std::vector<Tensor> g) -> std::vector<Tensor> {
        return T::backward(c, std::move(g));
      };
      node = detail_function::make_node(typeid(T), backward, inputs, std::move(is_tensor_arg));
      ctx = &node->ctx;
    }
    using Out = decltype(T::forward(ctx, std::forward<Args>(args)...));
    static_assert(std::is_same_v<Out, Tensor> || std::is_same_v<Out, std::vector<Tensor>>,
                  "Function<T>: T::forward must return Tensor or std::vector<Tensor>");
    std::vector<Tensor> outputs;
    {
      NoGradGuard no_grad;
      if constexpr (std::is_same_v<Out, Tensor>) outputs.push_back(T::forward(ctx, std::forward<Args>(args)...));
      else outputs = T::forward(ctx, std::forward<Args>(args)...);
    }
    if (node) detail_function::wrap_outputs(node, inputs, outputs);
    if constexpr (std::is_same_v<Out, Tensor>) return outputs[0];
    else return outputs;
  }
};

}  // namespace tape::autograd
