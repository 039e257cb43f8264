// The backward engine: dependency counting over a worklist, never recursion.
#include <atomic>

#include "tape/autograd/grad_mode.hpp"
#include "tape/autograd/node.hpp"
#include "tape/ops/ops.hpp"

namespace tape {

class Engine {
 public:
  static void run(const Tensor& root, const Tensor& grad_root, bool retain_graph);
};

void Engine::run(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  TAPE_CHECK(root.requires_grad(), "backward(): tensor of shape ", root.shape(),
             " does not require grad and has no grad_fn");
  Tensor g = grad_root;
  if (!g.defined()) {
    TAPE_CHECK(root.numel() == 1, "backward(): grad can be implicitly created only for scalar outputs, got shape ",
               root.shape(), "; pass a gradient of that shape");
    g = ones(root.shape());
  }
  TAPE_CHECK(g.shape() == root.shape(), "backward(): gradient shape ", g.shape(), " does not match tensor shape ",
             root.shape());
  NoGradGuard no_grad;  // backward formulas are not recorded
  Edge start = gradient_edge(root);

  // 1. Count, for every node reachable from the root, how many edges point at it.
  static std::atomic<uint64_t> epochs{0};
  const uint64_t epoch = ++epochs;
  std::vector<Node*> stack{start.fn.get()};
  start.fn->epoch_ = epoch;
  start.fn->dependencies_ = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges_) {
      if (!e.fn) continue;
      Node* c = e.fn.get();
      if (c->epoch_ != epoch) {
        c->epoch_ = epoch;
        c->dependencies_ = 0;
        c->grad_buffer_ = Tensor();
        stack.push_back(c);
      }
      ++c->dependencies_;
    }
  }

  // 2. Run nodes whose every consumer has delivered its gradient.
  start.fn->grad_buffer_ = g;
  std::vector<std::shared_ptr<Node>> ready{start.fn};
  while (!ready.empty()) {
    std::shared_ptr<Node> n = std::move(ready.back());
    ready.pop_back();
    Tensor grad_out = std::move(n->grad_buffer_);
    n->grad_buffer_ = Tensor();
    std::vector<Tensor> grads;
    if (grad_out.defined()) {
      TAPE_CHECK(!n->released_, "backward(): trying to backward through ", n->name(),
                 " a second time, but its saved tensors were already freed; call backward(grad, "
                 "/*retain_graph=*/true) the first time");
      grads = n->apply(grad_out);
      if (!retain_graph && n->single_use()) {
        n->release_saved();
        n->released_ = true;
      }
    }
    const auto& edges = n->next_edges_;
    for (size_t i = 0; i < edges.size(); ++i) {
      Node* c = edges[i].fn.get();
      if (!c) continue;
      if (i < grads.size() && grads[i].defined()) {
        Tensor& buf = c->grad_buffer_;
        TAPE_CHECK(grads[i].shape() == c->output_shape(), "backward(): ", n->name(), " produced a gradient of shape ",
                   grads[i].shape(), " for an input of shape ", c->output_shape());
        buf = buf.defined() ? add(buf, grads[i]) : std::move(grads[i]);
      }
      if (--c->dependencies_ == 0) ready.push_back(edges[i].fn);
    }
  }
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  Engine::run(root, grad, retain_graph);
}

}  // namespace tape
