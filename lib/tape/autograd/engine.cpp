// The backward engine: dependency counting over a worklist, never recursion.
#include <cstddef>
#include <memory_resource>
#include <optional>
#include <unordered_map>

#include "tape/autograd/node.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape {

namespace {
using detail::sum_gradients;
/// g converted to dtype d (recorded under create_graph).
Tensor cast_gradient(const Tensor& g, Dtype d) { return grad_enabled() ? g.to(d) : detail::cast_copy(g, d); }

/// Sets grad mode for a scope: on for create_graph (the backward is recorded), off otherwise.
class GradModeScope {
 public:
  explicit GradModeScope(bool on) : prev_(grad_enabled()) { set_grad_enabled(on); }
  ~GradModeScope() { set_grad_enabled(prev_); }
  GradModeScope(const GradModeScope&) = delete;
  GradModeScope& operator=(const GradModeScope&) = delete;

 private:
  bool prev_;
};

/// Throws when g (a gradient `node` produced for `what`) holds NaN or Inf.
void check_anomaly(const Node& node, const Tensor& g, size_t input) {
  if (!is_floating(g.dtype()) || g.numel() == 0) return;
  NoGradGuard no_grad;
  const int64_t nans = g.isnan().sum().item<int64_t>();
  const int64_t bad = g.isfinite().logical_not().sum().item<int64_t>();
  if (bad == 0) return;
  const AnomalyInfo* info = node.anomaly_info();
  throw Error(str_cat("anomaly: ", node.name(), " returned ", nans ? "NaN" : "Inf", " values (", bad, " of ", g.numel(),
                      ") in the gradient for its input ", input, " of shape ", g.shape(), "; ",
                      info ? str_cat("the forward op was ", info->forward, ", called from:\n", info->trace)
                           : std::string("it was recorded outside DetectAnomalyGuard (run the forward inside the "
                                         "guard to see the call that recorded it)")));
}
}  // namespace

class Engine {
 public:
  struct Root {
    Edge edge;
    Tensor grad;
  };
  /// Runs backward from `roots`. With `captures` (autograd::grad) it returns the
  /// gradient arriving at each captured edge and runs only the nodes that lead
  /// to one (no AccumulateGrad: no .grad() changes); without, it runs every
  /// reachable node and leaves accumulate into .grad().
  static std::vector<Tensor> run(const std::vector<Root>& roots, const std::vector<Edge>& captures, bool retain_graph,
                                 bool create_graph);
};

namespace {
/// The final callbacks of the backward pass running on this thread (null outside
/// one; a pass started inside another has its own list).
thread_local std::vector<std::function<void()>>* tls_callbacks = nullptr;

struct CallbackScope {
  std::vector<std::function<void()>> callbacks;
  std::vector<std::function<void()>>* outer = tls_callbacks;
  CallbackScope() { tls_callbacks = &callbacks; }
  ~CallbackScope() { tls_callbacks = outer; }
  /// Runs the callbacks in order, including those queued by callbacks.
  void run() {
    for (size_t i = 0; i < callbacks.size(); ++i) {
      auto cb = std::move(callbacks[i]);
      cb();
    }
    callbacks.clear();
  }
};
}  // namespace

namespace autograd {
void queue_callback(std::function<void()> callback) {
  TAPE_CHECK(callback, "autograd::queue_callback: the callback is empty");
  TAPE_CHECK(tls_callbacks != nullptr,
             "autograd::queue_callback: no backward pass is running on this thread (call it from a hook or a "
             "Function's backward)");
  tls_callbacks->push_back(std::move(callback));
}
}  // namespace autograd

std::vector<Tensor> Engine::run(const std::vector<Root>& roots, const std::vector<Edge>& captures, bool retain_graph,
                                bool create_graph) {
  // create_graph: backward formulas run with grad mode on, so they are recorded
  GradModeScope grad_mode(create_graph);
  CallbackScope final_callbacks;
  const bool capture_mode = !captures.empty();

  // Note: the state of one backward pass — how many consumers each node still
  // waits for and the sum of the gradients delivered so far — lives in this
  // call's GraphTask, never on the nodes (PyTorch's GraphTask), so concurrent
  // backward calls through shared nodes (a leaf's AccumulateGrad, a graph kept
  // with retain_graph) do not see each other's counts.
  struct NodeTask {
    int dependencies = 0;
    bool needed = true;          // leads to a captured edge (always true without captures)
    bool captured = false;
    bool visited = false;        // by the post-order walk
    bool queued = false;         // a root put on the ready list
    bool released_here = false;  // this pass freed its saved tensors
    Tensor buffer;               // the summed gradient of output 0
  };
  // Small graphs keep the maps in a stack arena (no malloc per node).
  std::byte arena[16384];
  std::pmr::monotonic_buffer_resource pool(arena, sizeof arena);
  std::pmr::unordered_map<Node*, NodeTask> graph_task(128, &pool);
  // outputs 1.. of multi-output nodes (custom Functions) only
  std::pmr::unordered_map<Node*, std::vector<Tensor>> more_buffers(&pool);

  // 1. Count, for every node reachable from the roots, how many edges point at it.
  std::vector<Node*> stack;
  for (const Root& r : roots)
    if (graph_task.try_emplace(r.edge.fn.get()).second) stack.push_back(r.edge.fn.get());
  std::vector<Node*> reached(stack);  // every node, in discovery order
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges_) {
      if (!e.fn) continue;
      auto [it, first] = graph_task.try_emplace(e.fn.get());
      if (first) {
        stack.push_back(e.fn.get());
        reached.push_back(e.fn.get());
      }
      ++it->second.dependencies;
    }
  }

  // 1b. autograd::grad: a node is needed when a captured edge is reachable from
  // it. Post-order over an explicit stack: children are decided before parents.
  if (capture_mode) {
    for (const Edge& c : captures)
      if (auto it = graph_task.find(c.fn.get()); it != graph_task.end()) it->second.captured = true;
    for (Node* n : reached) graph_task[n].needed = false;
    struct Frame {
      Node* n;
      size_t next;
    };
    std::vector<Frame> frames;
    for (const Root& r : roots) {
      if (graph_task[r.edge.fn.get()].visited) continue;
      frames.push_back({r.edge.fn.get(), 0});
      graph_task[r.edge.fn.get()].visited = true;
      while (!frames.empty()) {
        Frame& f = frames.back();
        const auto& edges = f.n->next_edges_;
        if (f.next < edges.size()) {
          Node* c = edges[f.next++].fn.get();
          if (c && !graph_task[c].visited) {
            graph_task[c].visited = true;
            frames.push_back({c, 0});
          }
          continue;
        }
        NodeTask& t = graph_task[f.n];
        t.needed = t.captured;
        for (const Edge& e : edges)
          if (e.fn && graph_task[e.fn.get()].needed) t.needed = true;
        frames.pop_back();
      }
    }
  }

  // 2. Seed the roots' gradients.
  auto deliver = [&](NodeTask& t, uint32_t input_nr, Tensor g, const Node& to) {
    if (input_nr == 0) {
      t.buffer = t.buffer.defined() ? sum_gradients(t.buffer, g) : std::move(g);
      return;
    }
    std::vector<Tensor>& more = more_buffers[const_cast<Node*>(&to)];
    if (more.size() < to.num_outputs() - 1) more.resize(to.num_outputs() - 1);
    Tensor& b = more[input_nr - 1];
    b = b.defined() ? sum_gradients(b, g) : std::move(g);
  };
  std::vector<std::shared_ptr<Node>> ready;
  for (const Root& r : roots) {
    NodeTask& t = graph_task[r.edge.fn.get()];
    deliver(t, r.edge.input_nr, r.grad, *r.edge.fn);
  }
  for (const Root& r : roots) {
    NodeTask& t = graph_task[r.edge.fn.get()];
    if (t.dependencies == 0 && !t.queued) {
      t.queued = true;
      ready.push_back(r.edge.fn);
    }
  }

  std::vector<Tensor> results(captures.size());
  try {
    // 3. Run nodes whose every consumer has delivered its gradient.
    while (!ready.empty()) {
      std::shared_ptr<Node> n = std::move(ready.back());
      ready.pop_back();
      NodeTask& task = graph_task[n.get()];
      // the gradient of each output: most nodes have one, kept out of a vector (no allocation)
      const size_t n_out = n->num_outputs();
      Tensor grad0 = std::move(task.buffer);
      std::vector<Tensor> grad_outs;  // outputs 0.. when there are several
      if (n_out > 1) {
        std::vector<Tensor>& more = more_buffers[n.get()];
        grad_outs.push_back(std::move(grad0));
        for (size_t k = 1; k < n_out; ++k) grad_outs.push_back(k - 1 < more.size() ? std::move(more[k - 1]) : Tensor());
      }
      auto grad_of = [&](size_t k) -> Tensor& { return n_out > 1 ? grad_outs[k] : grad0; };
      // the tensor hooks of a non-leaf output see (and may replace) its gradient
      if (!n->hooks_.empty())
        for (const auto& h : n->hooks_)
          if (h->output_nr < n_out && grad_of(h->output_nr).defined())
            grad_of(h->output_nr) = h->run(std::move(grad_of(h->output_nr)));
      if (task.captured) {
        for (size_t k = 0; k < captures.size(); ++k) {
          if (captures[k].fn != n) continue;
          Tensor g = grad_of(captures[k].input_nr);
          if (g.defined())
            if (auto* acc = dynamic_cast<AccumulateGrad*>(n.get())) g = acc->run_hooks(g);
          results[k] = g;
        }
      }
      // autograd::grad runs a node only when a captured edge lies beyond it
      bool run_it = !capture_mode;
      if (capture_mode)
        for (const Edge& e : n->next_edges_)
          if (e.fn && graph_task[e.fn.get()].needed) run_it = true;
      if (!run_it) continue;

      bool any_grad = grad0.defined();
      for (const Tensor& g : grad_outs) any_grad = any_grad || g.defined();
      std::vector<Tensor> grads;
      if (any_grad) {
        std::lock_guard lock(n->mutex_);
        if (n->released_) {
          if (n->failure_)
            throw Error(str_cat("backward(): ", n->name(), "'s saved tensors were freed by an earlier backward() "
                                "that failed: ", *n->failure_, " (run the forward again to retry)"));
          throw Error(str_cat("backward(): trying to backward through ", n->name(),
                              " a second time, but its saved tensors were already freed; call backward(grad, "
                              "/*retain_graph=*/true) the first time"));
        }
        detail::RunningNodeScope running(n);
        if (n_out == 1) {
          grads = n->apply(grad0);
          grad0 = Tensor();
        } else {
          grads = n->apply_all(grad_outs);
          grad_outs.clear();
        }
        if (!retain_graph && n->single_use()) {
          n->release_saved();
          n->released_ = true;
          task.released_here = true;
        }
        // validate_outputs: one gradient per input, of the input's shape and a floating dtype
        const auto& edges = n->next_edges_;
        if (grads.size() != edges.size())
          throw Error(str_cat("backward(): ", n->name(), " returned ", grads.size(), " gradient",
                              grads.size() == 1 ? "" : "s", " for ", edges.size(), " input",
                              edges.size() == 1 ? "" : "s",
                              " (a backward returns one gradient per input, undefined where none is needed)"));
        for (size_t i = 0; i < grads.size(); ++i) {
          if (!grads[i].defined() || !edges[i].fn) continue;
          const Node& c = *edges[i].fn;
          const uint32_t nr = edges[i].input_nr;
          if (grads[i].shape() != c.output_shape(nr))
            throw Error(str_cat("backward(): ", n->name(), " returned a gradient of shape ", grads[i].shape(),
                                " for input ", i, ", which has shape ", c.output_shape(nr)));
          if (!is_floating(grads[i].dtype()))
            throw Error(str_cat("backward(): ", n->name(), " returned a ", dtype_name(grads[i].dtype()),
                                " gradient for input ", i, " (shape ", grads[i].shape(), "); gradients are floating"));
          if (grads[i].dtype() != c.output_dtype(nr)) grads[i] = cast_gradient(grads[i], c.output_dtype(nr));
          if (autograd::anomaly_mode_enabled()) [[unlikely]]
            check_anomaly(*n, grads[i], i);
        }
      }
      const auto& edges = n->next_edges_;
      for (size_t i = 0; i < edges.size(); ++i) {
        Node* c = edges[i].fn.get();
        if (!c) continue;
        NodeTask& t = graph_task[c];
        if (!t.needed) continue;
        if (i < grads.size() && grads[i].defined()) deliver(t, edges[i].input_nr, std::move(grads[i]), *c);
        if (--t.dependencies == 0) ready.push_back(edges[i].fn);
      }
    }
  } catch (const std::exception& e) {
    // the graph cannot be replayed: say why on the next attempt
    auto why = std::make_shared<const std::string>(e.what());
    for (auto& [n, t] : graph_task) {
      if (!t.released_here) continue;
      std::lock_guard lock(n->mutex_);
      n->failure_ = why;
    }
    throw;
  }
  final_callbacks.run();
  return results;
}

namespace {
/// The gradient to seed root `t` with: `g` checked (or ones for one element), in t's dtype.
Tensor root_gradient(const Tensor& t, const Tensor& g_in, const char* who, size_t index, bool many) {
  const std::string which = many ? str_cat(" ", index) : std::string();
  TAPE_CHECK(t.defined(), who, ": output", which, " is undefined");
  TAPE_CHECK(t.requires_grad(), who, ": output", which, " of shape ", t.shape(),
             " does not require grad and has no grad_fn");
  Tensor g = g_in;
  if (!g.defined()) {
    TAPE_CHECK(t.numel() == 1, who, ": grad can be implicitly created only for scalar outputs, got shape ", t.shape(),
               "; pass a gradient of that shape");
    return ones(t.shape(), t.dtype());
  }
  TAPE_CHECK(g.shape() == t.shape(), who, ": gradient shape ", g.shape(), " does not match tensor shape ", t.shape());
  TAPE_CHECK(is_floating(g.dtype()), who, ": the gradient must be floating, got ", dtype_name(g.dtype()));
  if (g.dtype() != t.dtype()) g = grad_enabled() ? g.to(t.dtype()) : detail::cast_copy(g, t.dtype());
  return g;
}
}  // namespace

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph, bool create_graph) {
  std::vector<Engine::Root> roots{{gradient_edge(root), Tensor()}};
  roots[0].grad = root_gradient(root, grad, "backward()", 0, false);
  Engine::run(roots, {}, retain_graph || create_graph, create_graph);
}

namespace autograd {

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  TAPE_CHECK(!outputs.empty(), "autograd::grad: outputs is empty");
  TAPE_CHECK(!inputs.empty(), "autograd::grad: inputs is empty");
  TAPE_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "autograd::grad: ", grad_outputs.size(),
             " grad_outputs for ", outputs.size(), " outputs (pass one per output, or none)");
  std::vector<Engine::Root> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor g = root_gradient(outputs[i], grad_outputs.empty() ? Tensor() : grad_outputs[i], "autograd::grad", i,
                             outputs.size() > 1);
    roots.push_back({gradient_edge(outputs[i]), std::move(g)});
  }
  std::vector<Edge> captures;
  for (size_t j = 0; j < inputs.size(); ++j) {
    TAPE_CHECK(inputs[j].defined(), "autograd::grad: input ", j, " is undefined");
    TAPE_CHECK(inputs[j].requires_grad(), "autograd::grad: input ", j, " of shape ", inputs[j].shape(),
               " does not require grad");
    captures.push_back(gradient_edge(inputs[j]));
  }
  std::vector<Tensor> out = Engine::run(roots, captures, retain_graph || create_graph, create_graph);
  for (size_t j = 0; j < out.size(); ++j) {
    if (!out[j].defined()) {
      TAPE_CHECK(allow_unused, "autograd::grad: input ", j, " of shape ", inputs[j].shape(),
                 " was not used to compute the outputs (pass allow_unused=true to get an undefined gradient)");
      continue;
    }
    if (!create_graph && out[j].requires_grad()) out[j] = out[j].detach();
    // a gradient shared with another input or a caller's tensor is not handed out twice
    for (size_t k = 0; k < j; ++k)
      if (out[k].defined() && out[k].is_same(out[j])) out[j] = create_graph ? out[j].clone() : out[j].clone().detach();
  }
  return out;
}

}  // namespace autograd

}  // namespace tape
