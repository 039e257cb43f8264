// The backward engine: dependency counting over a worklist, never recursion.
#include <cstddef>
#include <memory_resource>
#include <unordered_map>

#include "tape/core/grad_mode.hpp"
#include "tape/autograd/node.hpp"

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
    g = ones(root.shape(), root.dtype());
  }
  if (g.dtype() != root.dtype()) g = detail::cast_copy(g, root.dtype());
  TAPE_CHECK(g.shape() == root.shape(), "backward(): gradient shape ", g.shape(), " does not match tensor shape ",
             root.shape());
  NoGradGuard no_grad;  // backward formulas are not recorded
  Edge start = gradient_edge(root);

  // Note: the state of one backward pass — how many consumers each node still
  // waits for and the sum of the gradients delivered so far — lives in this
  // call's GraphTask, never on the nodes (PyTorch's GraphTask), so concurrent
  // backward calls through shared nodes (a leaf's AccumulateGrad, a graph kept
  // with retain_graph) do not see each other's counts.
  struct NodeTask {
    int dependencies = 0;
    Tensor buffer;  // the summed gradient of the node's output
  };
  // Small graphs keep the map in a stack arena (no malloc per node).
  std::byte arena[8192];
  std::pmr::monotonic_buffer_resource pool(arena, sizeof arena);
  std::pmr::unordered_map<Node*, NodeTask> graph_task(64, &pool);

  // 1. Count, for every node reachable from the root, how many edges point at it.
  graph_task[start.fn.get()];
  std::vector<Node*> stack{start.fn.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges_) {
      if (!e.fn) continue;
      auto [it, first] = graph_task.try_emplace(e.fn.get());
      if (first) stack.push_back(e.fn.get());
      ++it->second.dependencies;
    }
  }

  // 2. Run nodes whose every consumer has delivered its gradient.
  graph_task[start.fn.get()].buffer = g;
  std::vector<std::shared_ptr<Node>> ready{start.fn};
  while (!ready.empty()) {
    std::shared_ptr<Node> n = std::move(ready.back());
    ready.pop_back();
    Tensor grad_out = std::move(graph_task[n.get()].buffer);
    std::vector<Tensor> grads;
    if (grad_out.defined()) {
      std::lock_guard lock(n->mutex_);
      TAPE_CHECK(!n->released_, "backward(): trying to backward through ", n->name(),
                 " a second time, but its saved tensors were already freed; call backward(grad, "
                 "/*retain_graph=*/true) the first time");
      grads = n->apply(grad_out);
      grad_out = Tensor();
      if (!retain_graph && n->single_use()) {
        n->release_saved();
        n->released_ = true;
      }
    }
    const auto& edges = n->next_edges_;
    for (size_t i = 0; i < edges.size(); ++i) {
      Node* c = edges[i].fn.get();
      if (!c) continue;
      NodeTask& t = graph_task[c];
      if (i < grads.size() && grads[i].defined()) {
        TAPE_CHECK(grads[i].shape() == c->output_shape(), "backward(): ", n->name(), " produced a gradient of shape ",
                   grads[i].shape(), " for an input of shape ", c->output_shape());
        if (grads[i].dtype() != c->output_dtype()) grads[i] = detail::cast_copy(grads[i], c->output_dtype());
        t.buffer = t.buffer.defined() ? detail::add_same_shape(t.buffer, grads[i]) : std::move(grads[i]);
      }
      if (--t.dependencies == 0) ready.push_back(edges[i].fn);
    }
  }
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  Engine::run(root, grad, retain_graph);
}

}  // namespace tape
