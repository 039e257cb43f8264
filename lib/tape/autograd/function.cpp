// Custom Functions: the node that calls a user's backward, and the wrapping of
// forward's outputs (see function.hpp).
#include "tape/autograd/function.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace tape::autograd {

// --- SavedValue ------------------------------------------------------------------
const char* SavedValue::kind() const {
  static const char* const names[] = {"nothing", "a double", "an integer", "a bool", "a string", "a tensor",
                                      "an integer list"};
  return names[v_.index()];
}
double SavedValue::toDouble() const {
  if (auto* d = std::get_if<double>(&v_)) return *d;
  if (auto* i = std::get_if<int64_t>(&v_)) return double(*i);
  throw Error(str_cat("saved_data: toDouble() on a value holding ", kind()));
}
int64_t SavedValue::toInt() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return *i;
  throw Error(str_cat("saved_data: toInt() on a value holding ", kind()));
}
bool SavedValue::toBool() const {
  if (auto* b = std::get_if<bool>(&v_)) return *b;
  throw Error(str_cat("saved_data: toBool() on a value holding ", kind()));
}
const std::string& SavedValue::toStringRef() const {
  if (auto* s = std::get_if<std::string>(&v_)) return *s;
  throw Error(str_cat("saved_data: toStringRef() on a value holding ", kind()));
}
Tensor SavedValue::toTensor() const {
  if (auto* t = std::get_if<Tensor>(&v_)) return *t;
  throw Error(str_cat("saved_data: toTensor() on a value holding ", kind()));
}
const std::vector<int64_t>& SavedValue::toIntVector() const {
  if (auto* v = std::get_if<std::vector<int64_t>>(&v_)) return *v;
  throw Error(str_cat("saved_data: toIntVector() on a value holding ", kind()));
}

// --- AutogradContext -----------------------------------------------------------------
void AutogradContext::save_for_backward(std::vector<Tensor> to_save) { to_save_ = std::move(to_save); }

std::vector<Tensor> AutogradContext::get_saved_variables() const {
  TAPE_CHECK(!freed_, "get_saved_variables(): the saved tensors of ", owner_ ? owner_->name() : "this Function",
             " were freed after backward; pass retain_graph=true to the first backward to call it again");
  if (!owner_) return to_save_;  // forward without recording
  std::vector<Tensor> out;
  out.reserve(saved_.size());
  for (const SavedTensor& s : saved_) out.push_back(s.unpack(*owner_));
  return out;
}

bool AutogradContext::needs_input_grad(size_t i) const {
  TAPE_CHECK(owner_ == nullptr || i < needs_input_grad_.size(), "needs_input_grad(", i, "): the Function has ",
             needs_input_grad_.size(), " tensor inputs");
  return i < needs_input_grad_.size() && needs_input_grad_[i];
}

void AutogradContext::mark_dirty(const std::vector<Tensor>& inputs) { dirty_ = inputs; }
void AutogradContext::mark_non_differentiable(const std::vector<Tensor>& outputs) { non_differentiable_ = outputs; }

// --- the node -------------------------------------------------------------------------
std::string detail_function::node_name(const std::type_info& t) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(t.name(), nullptr, nullptr, &status), std::free);
  std::string name = status == 0 && d ? d.get() : t.name();
  if (const size_t k = name.rfind("::"); k != std::string::npos) name.erase(0, k + 2);  // MySquare, not ns::MySquare
  return name + "Backward";
}

std::shared_ptr<detail_function::CppNode> detail_function::make_node(const std::type_info& t,
                                                                      CppNode::Backward backward,
                                                                      const std::vector<Tensor>& inputs,
                                                                      std::vector<bool> is_tensor_arg) {
  auto node = std::make_shared<CppNode>(node_name(t), backward);
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& x : inputs) {
    edges.push_back(gradient_edge(x));
    node->ctx.needs_input_grad_.push_back(bool(edges.back()));
  }
  node->set_next_edges(std::move(edges));
  node->is_tensor_arg = std::move(is_tensor_arg);
  node->ctx.owner_ = node.get();
  return node;
}

namespace {
bool contains(const std::vector<Tensor>& ts, const Tensor& t) {
  for (const Tensor& u : ts)
    if (u.defined() && u.is_same(t)) return true;
  return false;
}
}  // namespace

void detail_function::wrap_outputs(const std::shared_ptr<CppNode>& node, const std::vector<Tensor>& inputs,
                                   std::vector<Tensor>& outputs) {
  AutogradContext& ctx = node->ctx;
  // the marks are needed only here; kept, a dirty input (whose grad_fn becomes
  // this node) would make node → ctx → input → node a reference cycle
  struct ClearMarks {
    AutogradContext& c;
    ~ClearMarks() {
      c.dirty_.clear();
      c.non_differentiable_.clear();
    }
  } clear_marks{ctx};
  TAPE_CHECK(!outputs.empty(), node->name(), ": forward returned no tensors");
  for (const Tensor& d : ctx.dirty_)
    TAPE_CHECK(contains(inputs, d), node->name(), ": mark_dirty() got a tensor that is not an input of forward");
  uint32_t nr = 0;
  std::vector<std::pair<Tensor, uint32_t>> recorded;  // the tensors that now carry the node, and their number
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    TAPE_CHECK(out.defined(), node->name(), ": forward returned an undefined tensor as output ", i);
    if (contains(ctx.non_differentiable_, out) || !is_floating(out.dtype())) continue;
    if (contains(inputs, out)) {
      if (contains(ctx.dirty_, out)) {
        // modified in place: the input's own history now ends in this Function
        TAPE_CHECK(!(out.is_leaf() && out.requires_grad()), node->name(),
                   ": an input that is a leaf requiring grad was modified in place (mark_dirty); clone() it first");
      } else {
        out = out.detach();  // an input returned as is: a new handle carries the Function's history
      }
    }
    const uint32_t k = nr == 0 ? 0 : node->add_output(out);
    if (nr == 0) node->set_output(out);
    ++nr;
    out.set_grad_fn(node, k);
    // (an input returned as is was given a new handle: saving that input keeps it an input)
    recorded.emplace_back(out, k);
  }
  TAPE_CHECK(nr > 0, node->name(), ": every output of forward is non-differentiable, so nothing can be recorded");
  if (autograd::anomaly_mode_enabled()) {
    std::vector<const Tensor*> ptrs;
    for (const Tensor& t : inputs) ptrs.push_back(&t);
    tape::detail::note_forward(*node, outputs[0], ptrs);
  }
  // saved tensors: an output is saved without its handle (no reference cycle)
  for (const Tensor& t : ctx.to_save_) {
    bool is_output = false;
    uint32_t k = 0;
    for (const auto& [o, nr_o] : recorded)
      if (t.defined() && t.is_same(o)) {
        is_output = true;
        k = nr_o;
      }
    ctx.saved_.emplace_back(t, is_output, k);
  }
  ctx.to_save_.clear();
}

std::vector<Tensor> detail_function::CppNode::apply(const Tensor& g) {
  std::vector<Tensor> grads{g};
  return apply_all(grads);
}

std::vector<Tensor> detail_function::CppNode::apply_all(std::vector<Tensor>& grads) {
  if (ctx.materialize_grads_)
    for (size_t k = 0; k < grads.size(); ++k)
      if (!grads[k].defined()) grads[k] = zeros(output_shape(k), output_dtype(k));
  std::vector<Tensor> out = backward_(&ctx, std::move(grads));
  const size_t n_args = is_tensor_arg.size();
  // extra undefined gradients are tolerated (LibTorch does)
  if (out.size() > n_args) {
    bool all_undefined = true;
    for (size_t i = n_args; i < out.size(); ++i) all_undefined = all_undefined && !out[i].defined();
    if (all_undefined) out.resize(n_args);
  }
  TAPE_CHECK(out.size() == n_args, name(), ": backward returned ", out.size(), " gradients, expected ", n_args,
             " (one per argument of forward; undefined for non-tensor arguments)");
  std::vector<Tensor> per_input;
  per_input.reserve(next_edges().size());
  for (size_t i = 0; i < n_args; ++i) {
    if (is_tensor_arg[i]) {
      per_input.push_back(std::move(out[i]));
    } else {
      TAPE_CHECK(!out[i].defined(), name(), ": backward returned a gradient for argument ", i,
                 ", which is not a tensor");
    }
  }
  return per_input;
}

void detail_function::CppNode::release_saved() {
  ctx.saved_.clear();
  ctx.freed_ = true;
}

}  // namespace tape::autograd
