// autograd::grad, create_graph, hooks, retain_grad, custom Functions, engine
// validation, retries after a failed backward, anomaly mode.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include <tape/tape.hpp>

#include "error_of.hpp"

using namespace tape;
using tape_test::error_of;

namespace {
Tensor f64(std::vector<double> v, Shape s, bool rg = false) { return tensor(std::move(v), std::move(s), rg); }
bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

// --- create_graph and autograd::grad -------------------------------------------------
TEST_CASE("create_graph: second derivative of x³ through mul") {
  Tensor x = f64({1.5, -2.0}, {2}, true);
  Tensor y = (x * x * x).sum();
  auto g = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true);
  CHECK(g[0].requires_grad());
  CHECK(allclose(g[0], f64({3 * 2.25, 3 * 4.0}, {2})));
  auto h = autograd::grad({g[0].sum()}, {x});
  CHECK(allclose(h[0], f64({9.0, -12.0}, {2})));
  CHECK(!h[0].requires_grad());  // without create_graph the result has no graph
  CHECK(!x.grad().defined());     // grad() does not touch .grad()
}

TEST_CASE("create_graph: backward(create_graph) leaves a .grad() that can be differentiated") {
  Tensor x = f64({0.5, 2.0, -1.0}, {3}, true);
  (x * x * x).sum().backward({}, false, /*create_graph=*/true);
  REQUIRE(x.grad().defined());
  CHECK(x.grad().requires_grad());
  CHECK(allclose(x.grad().detach(), f64({0.75, 12.0, 3.0}, {3})));
  auto gg = autograd::grad({x.grad().sum()}, {x});
  CHECK(allclose(gg[0], f64({3.0, 12.0, -6.0}, {3})));  // 6x
  // as in PyTorch, x.grad()'s graph holds x: a reference cycle until .grad() is reset
  x.set_grad({});
  // without create_graph the accumulated gradient has no history
  Tensor z = f64({1.0}, {1}, true);
  (z * z).sum().backward();
  CHECK(!z.grad().requires_grad());
}

TEST_CASE("autograd::grad: unused inputs, inputs without grad, outputs without graph") {
  Tensor x = f64({1, 2}, {2}, true), z = f64({3}, {1}, true);
  Tensor y = (x * 2.0).sum();
  const std::string msg = error_of([&] { autograd::grad({y}, {x, z}, {}, true); });
  CHECK(has(msg, "input 1 of shape [1] was not used"));
  CHECK(has(msg, "allow_unused"));
  auto g = autograd::grad({y}, {x, z}, {}, false, false, /*allow_unused=*/true);
  CHECK(allclose(g[0], f64({2, 2}, {2})));
  CHECK(!g[1].defined());
  Tensor c = f64({1}, {1});
  CHECK(has(error_of([&] { autograd::grad({(x * 2.0).sum()}, {c}); }), "input 0 of shape [1] does not require grad"));
  CHECK(has(error_of([&] { autograd::grad({c}, {x}); }), "does not require grad and has no grad_fn"));
  CHECK(has(error_of([&] { autograd::grad({x * 2.0}, {x}); }), "only for scalar outputs"));
  CHECK(has(error_of([&] { autograd::grad({(x * 2.0).sum()}, {x}, {f64({1, 1}, {2})}); }),
            "gradient shape [2] does not match tensor shape []"));
}

TEST_CASE("autograd::grad: non-leaf inputs, several outputs, leaves untouched") {
  Tensor x = f64({1, -2, 3}, {3}, true), w = f64({0.5, 0.5, 0.5}, {3}, true);
  Tensor h = x * 3.0;
  Tensor y1 = (h * h * w).sum(), y2 = (h * w).sum();
  // d(y1 + 2·y2)/dh = 2·h·w + 2·w
  auto g = autograd::grad({y1, y2}, {h, x}, {f64({1}, {}), f64({2}, {})});
  CHECK(allclose(g[0], f64({4, -5, 10}, {3})));
  CHECK(allclose(g[1], g[0] * 3.0));
  CHECK(!w.grad().defined());
  CHECK(!x.grad().defined());
  // the same input twice gets two gradients that are not the same tensor
  auto twice = autograd::grad({(x * x).sum()}, {x, x});
  CHECK(allclose(twice[0], twice[1]));
  CHECK(!twice[0].is_same(twice[1]));
}

TEST_CASE("autograd::grad: a Hessian-vector product equals the explicit Hessian times v") {
  // f(x) = Σ x_i² x_{i+1} (a cubic whose Hessian is easy to write)
  Tensor x = f64({0.3, -1.2, 0.8, 2.0}, {4}, true);
  Tensor v = f64({1.0, 0.5, -2.0, 0.25}, {4});
  Tensor f = (x.narrow(0, 0, 3).square() * x.narrow(0, 1, 3)).sum();
  auto g = autograd::grad({f}, {x}, {}, false, true);
  auto hv = autograd::grad({(g[0] * v).sum()}, {x});
  const auto xs = x.detach().to_vector<double>(), vs = v.to_vector<double>();
  double H[4][4] = {};
  for (int i = 0; i < 3; ++i) {
    H[i][i] += 2 * xs[size_t(i) + 1];
    H[i][i + 1] += 2 * xs[size_t(i)];
    H[i + 1][i] += 2 * xs[size_t(i)];
  }
  std::vector<double> want(4, 0.0);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) want[size_t(i)] += H[i][j] * vs[size_t(j)];
  CHECK(max_abs_diff(hv[0], f64(want, {4})) < 1e-12);
}

// --- hooks -----------------------------------------------------------------------------
TEST_CASE("hooks: leaf and non-leaf hooks see and replace gradients; remove_hook") {
  Tensor x = f64({1, 2, 3}, {3}, true);
  Tensor h = x * 2.0;
  Tensor seen;
  int calls = 0;
  const int hh = h.register_hook([&](const Tensor& g) {
    seen = g.clone();
    ++calls;
    return g * 10.0;  // replaces dL/dh
  });
  const int hx = x.register_hook([&](const Tensor& g) { return g + 1.0; });
  (h * h).sum().backward();
  CHECK(calls == 1);
  CHECK(allclose(seen, f64({4, 8, 12}, {3})));                 // 2h
  CHECK(allclose(x.grad(), f64({81, 161, 241}, {3})));         // 10·2h·2 + 1
  h.remove_hook(hh);
  x.remove_hook(hx);
  CHECK(has(error_of([&] { x.remove_hook(hx); }), "no hook with handle"));
  x.set_grad({});
  Tensor h2 = x * 2.0;
  (h2 * h2).sum().backward();
  CHECK(allclose(x.grad(), f64({8, 16, 24}, {3})));
  CHECK(calls == 1);
}

TEST_CASE("hooks: a hook returning {} keeps the gradient; wrong shapes and no-grad tensors are errors") {
  Tensor x = f64({1, 2}, {2}, true);
  int calls = 0;
  x.register_hook([&](const Tensor&) {
    ++calls;
    return Tensor();
  });
  (x * 3.0).sum().backward();
  CHECK(calls == 1);
  CHECK(allclose(x.grad(), f64({3, 3}, {2})));
  Tensor y = f64({1, 2}, {2}, true);
  y.register_hook([](const Tensor&) { return zeros({3}, Dtype::Float64); });
  CHECK(has(error_of([&] { (y * 3.0).sum().backward(); }), "returned a gradient of shape [3] for a tensor of shape [2]"));
  Tensor c = f64({1}, {1});
  CHECK(has(error_of([&] { c.register_hook([](const Tensor& g) { return g; }); }), "does not require grad"));
}

TEST_CASE("hooks: they run in autograd::grad too, and on gradients of create_graph") {
  Tensor x = f64({1, 2}, {2}, true);
  x.register_hook([](const Tensor& g) { return g * 2.0; });
  auto g = autograd::grad({(x * x).sum()}, {x}, {}, false, true);
  CHECK(allclose(g[0].detach(), f64({4, 8}, {2})));
  CHECK(g[0].requires_grad());
}

TEST_CASE("retain_grad: a non-leaf keeps its gradient; post-accumulate hooks fire after accumulation") {
  Tensor x = f64({1, -1}, {2}, true);
  Tensor h = x * 3.0, k = x * 4.0;
  h.retain_grad();
  CHECK(h.retains_grad());
  CHECK(!k.retains_grad());
  std::vector<double> grads_seen;
  x.register_post_accumulate_grad_hook([&](const Tensor& leaf) { grads_seen.push_back(leaf.grad().sum().item<double>()); });
  ((h * h).sum() + (k * h).sum()).backward();
  CHECK(allclose(h.grad(), f64({2 * 3 + 4, -2 * 3 - 4}, {2})));  // 2h + k
  CHECK(!k.grad().defined());
  REQUIRE(grads_seen.size() == 1);  // once per backward, after the sum of both paths
  CHECK(grads_seen[0] == doctest::Approx(x.grad().sum().item<double>()));
  CHECK(has(error_of([&] { h.register_post_accumulate_grad_hook([](const Tensor&) {}); }), "only leaf tensors"));
}

// --- custom Functions ----------------------------------------------------------------------
namespace {
struct MySquare : autograd::Function<MySquare> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * 2.0 * x};
  }
};

// y = scale · a · b with a non-tensor argument and saved_data; records which inputs needed grads
struct ScaledMul : autograd::Function<ScaledMul> {
  static inline std::vector<bool> needs;
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& a, double scale, const Tensor& b) {
    ctx->saved_data["scale"] = scale;
    ctx->save_for_backward({a, b});
    return a * b * scale;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    const auto s = ctx->get_saved_variables();
    const double scale = ctx->saved_data["scale"].toDouble();
    needs = {ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
    return {ctx->needs_input_grad(0) ? g[0] * s[1] * scale : Tensor(), Tensor(),
            ctx->needs_input_grad(1) ? g[0] * s[0] * scale : Tensor()};
  }
};

// two outputs: (exp(x), 2x), the first saved as an output
struct ExpAndDouble : autograd::Function<ExpAndDouble> {
  static std::vector<Tensor> forward(autograd::AutogradContext* ctx, const Tensor& x) {
    Tensor e = x.exp();
    ctx->save_for_backward({e});
    return {e, x * 2.0};
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor e = ctx->get_saved_variables()[0];
    return {g[0] * e + g[1] * 2.0};
  }
};

struct WrongCount : autograd::Function<WrongCount> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& a, const Tensor& b) { return a * b; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) { return {g[0]}; }
};
struct WrongShape : autograd::Function<WrongShape> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& a) { return a * 2.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    return {zeros({7}, g[0].dtype())};
  }
};
struct Boom : autograd::Function<Boom> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& a) { return a * 1.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor>) {
    throw Error("boom: the real cause");
  }
};
// in place on its input (mark_dirty), plus an index output (mark_non_differentiable)
struct ScaleInPlace : autograd::Function<ScaleInPlace> {
  static std::vector<Tensor> forward(autograd::AutogradContext* ctx, Tensor x) {
    x.mul_(3.0);
    Tensor idx = x.argmax(0).to(Dtype::Float64);
    ctx->mark_dirty({x});
    ctx->mark_non_differentiable({idx});
    return {x, idx};
  }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) { return {g[0] * 3.0}; }
};
}  // namespace

TEST_CASE("Function: a custom square matches x*x, passes gradcheck and gradgradcheck") {
  Tensor x = f64({0.5, -1.5, 2.0}, {3}, true);
  Tensor y = MySquare::apply(x);
  CHECK(y.grad_fn_name() == std::string("MySquareBackward"));
  CHECK(allclose(y.detach(), f64({0.25, 2.25, 4.0}, {3})));
  y.sum().backward();
  CHECK(allclose(x.grad(), f64({1.0, -3.0, 4.0}, {3})));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return MySquare::apply(in[0]); }, {randn({4}, Dtype::Float64).requires_grad_()}).ok);
  // second order through the user's backward (written with ops)
  Tensor z = f64({1.0, 3.0}, {2}, true);
  auto g = autograd::grad({MySquare::apply(z).sum()}, {z}, {}, false, true);
  auto gg = autograd::grad({g[0].sum()}, {z});
  CHECK(allclose(gg[0], f64({2.0, 2.0}, {2})));
}

TEST_CASE("Function: non-tensor arguments, saved_data, needs_input_grad") {
  Tensor a = f64({1, 2}, {2}, true), b = f64({3, 4}, {2});
  Tensor y = ScaledMul::apply(a, 0.5, b);
  y.sum().backward();
  CHECK(allclose(a.grad(), f64({1.5, 2.0}, {2})));
  CHECK(ScaledMul::needs == std::vector<bool>{true, false});
  // no input requires grad: forward runs, nothing is recorded
  Tensor c = ScaledMul::apply(b, 2.0, b);
  CHECK(!c.requires_grad());
  CHECK(allclose(c, f64({18, 32}, {2})));
}

TEST_CASE("Function: several outputs; an unused output's gradient is materialised as zeros") {
  Tensor x = f64({0.0, 1.0}, {2}, true);
  auto outs = ExpAndDouble::apply(x);
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].output_nr() == 0);
  CHECK(outs[1].output_nr() == 1);
  (outs[0].sum() + outs[1].sum() * 3.0).backward();
  CHECK(allclose(x.grad(), f64({1.0 + 6.0, std::exp(1.0) + 6.0}, {2})));
  x.set_grad({});
  auto outs2 = ExpAndDouble::apply(x);
  outs2[1].sum().backward();  // exp(x) gets no gradient: zeros
  CHECK(allclose(x.grad(), f64({2.0, 2.0}, {2})));
  // a saved output regains its graph under create_graph: d²(Σ exp x)/dx² = exp x
  auto g = autograd::grad({ExpAndDouble::apply(x)[0].sum()}, {x}, {}, false, true);
  auto gg = autograd::grad({g[0].sum()}, {x});
  CHECK(allclose(gg[0], f64({1.0, std::exp(1.0)}, {2})));
}

TEST_CASE("Function: mark_dirty and mark_non_differentiable") {
  Tensor leaf = f64({1, 5, 2}, {3}, true);
  Tensor x = leaf * 1.0;  // a non-leaf may be modified in place
  auto outs = ScaleInPlace::apply(x);
  CHECK(outs[0].is_same(x));
  CHECK(x.grad_fn_name() == std::string("ScaleInPlaceBackward"));
  CHECK(!outs[1].requires_grad());
  CHECK(outs[1].item<double>() == 1.0);
  outs[0].sum().backward();
  CHECK(allclose(leaf.grad(), f64({3, 3, 3}, {3})));
  CHECK(has(error_of([&] { ScaleInPlace::apply(leaf); }), "leaf requiring grad was modified in place"));
}

TEST_CASE("Function: SavedValue conversions name what the value holds") {
  autograd::SavedValue v = 3, d = 2.5, s = "text";
  CHECK(v.toInt() == 3);
  CHECK(v.toDouble() == 3.0);
  CHECK(d.toDouble() == 2.5);
  CHECK(s.toStringRef() == "text");
  CHECK(has(error_of([&] { s.toDouble(); }), "toDouble() on a value holding a string"));
  CHECK(autograd::SavedValue().isNone());
}

// --- engine validation and retries ----------------------------------------------------------
TEST_CASE("engine: a backward returning the wrong number, shape or dtype of gradients is an error naming it") {
  Tensor a = f64({1, 2}, {2}, true), b = f64({3, 4}, {2}, true);
  const std::string count = error_of([&] { WrongCount::apply(a, b).sum().backward(); });
  CHECK(has(count, "WrongCountBackward"));
  CHECK(has(count, "returned 1 gradients, expected 2"));
  const std::string shape = error_of([&] { WrongShape::apply(a).sum().backward(); });
  CHECK(has(shape, "WrongShapeBackward returned a gradient of shape [7] for input 0, which has shape [2]"));

  // a raw node (below Function's own check) gets the engine's validate_outputs
  struct RawNode final : Node {
    int mode = 0;
    const char* name() const override { return "RawBackward"; }
    std::vector<Tensor> apply(const Tensor& g) override {
      if (mode == 0) return {g};
      return {g.to(Dtype::Int64), g};
    }
  };
  for (int mode : {0, 1}) {
    Tensor y = a.detach() + b.detach();
    auto node = std::make_shared<RawNode>();
    node->mode = mode;
    record(y, node, {&a, &b});
    const std::string msg = error_of([&] { y.sum().backward(); });
    CHECK(has(msg, "RawBackward"));
    CHECK(has(msg, mode == 0 ? "returned 1 gradient for 2 inputs" : "returned a Int64 gradient for input 0"));
  }
}

TEST_CASE("engine: after a backward that failed half-way, the retry's error names the real cause") {
  Tensor x = f64({1, 2}, {2}, true);
  Tensor y = (Boom::apply(x * 2.0) * 3.0).sum();
  const std::string first = error_of([&] { y.backward(); });
  CHECK(has(first, "boom: the real cause"));
  const std::string retry = error_of([&] { y.backward(); });
  CHECK(has(retry, "freed by an earlier backward() that failed"));
  CHECK(has(retry, "boom: the real cause"));
}

// --- anomaly mode -------------------------------------------------------------------------
TEST_CASE("anomaly: NaN/Inf in backward names the node and the forward op, only under the guard") {
  Tensor x = f64({0.0, 4.0}, {2}, true);
  {
    Tensor y = x.sqrt().sum();
    y.backward();  // off: d sqrt(x)/dx at 0 is inf, no error
    CHECK(std::isinf(x.grad().to_vector<double>()[0]));
  }
  CHECK(!autograd::anomaly_mode_enabled());
  {
    autograd::DetectAnomalyGuard anomaly;
    CHECK(autograd::anomaly_mode_enabled());
    Tensor y = (x.sqrt() * 2.0).sum();
    const std::string msg = error_of([&] { y.backward(); });
    CHECK(has(msg, "anomaly: SqrtBackward returned Inf values (1 of 2)"));
    CHECK(has(msg, "the forward op was Sqrt([2] Float64) -> [2] Float64"));
    CHECK(has(msg, "called from"));
  }
  CHECK(!autograd::anomaly_mode_enabled());
  {
    Tensor y = x.sqrt().sum();  // recorded outside the guard, run inside
    autograd::DetectAnomalyGuard anomaly;
    CHECK(has(error_of([&] { y.backward(); }), "recorded outside DetectAnomalyGuard"));
  }
}

// --- threads ----------------------------------------------------------------------------------
TEST_CASE("threads: autograd::grad with create_graph on several threads over shared leaves") {
  Tensor w = f64({0.5, -1.0, 2.0}, {3}, true);
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Tensor x = f64({double(t), 1.0, -1.0}, {3});
        auto g = autograd::grad({(w * w * w * x).sum()}, {w}, {}, false, true);
        auto gg = autograd::grad({g[0].sum()}, {w});
        if (max_abs_diff(gg[0], w.detach() * x * 6.0) > 1e-12) ++wrong;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(wrong == 0);
  CHECK(!w.grad().defined());
}

// --- against PyTorch (float64; values from tests/reference/autograd_reference.py) -------
namespace {
/// scale · sin(arange(n)·a + b): the reference script's deterministic inputs.
Tensor wave(int64_t n, double a, double b, double scale) { return (arange(n, Dtype::Float64) * a + b).sin() * scale; }

std::vector<Tensor> mlp_params(int64_t out_dim) {
  return {wave(15, 0.37, 0.1, 0.8).reshape({5, 3}).requires_grad_(), wave(5, 0.91, 0.3, 0.2).requires_grad_(),
          wave(5 * out_dim, 0.53, 0.7, 0.6).reshape({out_dim, 5}).requires_grad_(),
          wave(out_dim, 1.3, 0.2, 0.1).requires_grad_()};
}
Tensor mlp(const std::vector<Tensor>& p, const Tensor& x) { return linear(linear(x, p[0], p[1]).tanh(), p[2], p[3]); }

void check_close(const Tensor& got, std::vector<double> want, const char* what) {
  INFO(what);
  REQUIRE(got.defined());
  CHECK(max_abs_diff(got.reshape({-1}), tensor(std::move(want), {got.numel()})) < 1e-12);
}
}  // namespace

TEST_CASE("reference: a WGAN-GP gradient penalty matches PyTorch in Float64") {
  auto p = mlp_params(1);
  Tensor real = wave(12, 0.29, 0.5, 1.5).reshape({4, 3}), fake = wave(12, 0.61, 1.1, 1.0).reshape({4, 3});
  Tensor alpha = (arange(4, Dtype::Float64).reshape({4, 1}) + 1.0) / 5.0;
  Tensor interp = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_();
  Tensor d = mlp(p, interp);
  Tensor g = autograd::grad({d}, {interp}, {ones_like(d)}, false, /*create_graph=*/true)[0];
  Tensor norms = (g * g).sum(1).sqrt();
  Tensor gp = (norms - 1.0).pow(2).mean();
  gp.backward();
  check_close(gp, {0.372966078055069}, "gp");
  check_close(p[0].grad(), {-0.19627556823662812, -0.1261847130329316, -0.041395777863279144, -0.028257489588812024,
                            -0.031078375174053888, -0.007130847209365507, -0.14102316789903918, -0.08321266740241062,
                            -0.016348126005736305, -0.17385759414398055, -0.10683072106320882, -0.025340942721678195,
                            -0.009624955358560353, -0.010078045428082945, -0.00167102456274874},
              "w1.grad");
  check_close(p[1].grad(), {0.07767456760180556, 0.2690913840679034, 0.2839442117468023, 0.12192774114073948,
                            0.09304700667452642},
              "b1.grad");
  check_close(p[2].grad(), {-0.3582497914512261, -0.5366809095834322, -0.469999177498532, 0.4857330689024209,
                            0.5583035826251146},
              "w2.grad");
  // PyTorch leaves b2.grad None (the penalty does not depend on it); zeros are the same numbers
  if (p[3].grad().defined()) CHECK(p[3].grad().abs().sum().item<double>() == 0.0);
}

TEST_CASE("reference: a Hessian-vector product of a cross-entropy MLP matches PyTorch in Float64") {
  auto p = mlp_params(3);
  Tensor x = wave(12, 0.43, 0.9, 1.2).reshape({4, 3});
  Tensor target = tensor(std::vector<int64_t>{0, 2, 1, 2}, {4});
  Tensor loss = cross_entropy(mlp(p, x), target);
  check_close(loss, {1.0691066093906463}, "loss");
  auto grads = autograd::grad({loss}, p, {}, false, /*create_graph=*/true);
  Tensor dot = zeros({}, Dtype::Float64);
  for (size_t k = 0; k < p.size(); ++k)
    dot = dot + (grads[k] * wave(p[k].numel(), 0.77, 0.4 + double(k), 1.0).reshape(p[k].shape())).sum();
  auto hv = autograd::grad({dot}, p);
  check_close(hv[0], {0.26135653746254545, 0.24797089639313472, 0.18943756601253264, 0.03670024662485901,
                      0.006544932175017979, -0.02480200826278601, 0.0876200405508402, 0.1392870063154294,
                      0.16559419568010936, -0.11097610048489141, -0.1685006469011, -0.1953465331774316,
                      0.025245279399629315, 0.029027489572016518, 0.02752470824038651},
              "hvp w1");
  check_close(hv[1], {0.19734889404206882, 0.08816550408668444, -0.036786363938072685, 0.009541796602822339,
                      0.01982804424655085},
              "hvp b1");
  check_close(hv[2], {0.43319844588498335, 0.524869736474747, 0.38631051520984716, -0.3761727428267499,
                      -0.5181593911102744, 0.31022013063545906, 0.07526348072353342, -0.04509972631990409,
                      0.020759303040685698, -0.1656277013477474, -0.7434185765204424, -0.6001332171982804,
                      -0.3412107888899431, 0.3554134397860642, 0.6837870924580217},
              "hvp w2");
  check_close(hv[2 + 1], {0.21294345032298134, -0.2669928032861612, 0.05404935296317981}, "hvp b2");
}

// --- module forward hooks ------------------------------------------------------------------
TEST_CASE("module hooks: forward hooks see activations and may replace input and output") {
  manual_seed(0);
  auto fc1 = std::make_shared<nn::Linear>(3, 4);
  nn::Sequential net{fc1, std::make_shared<nn::ReLU>()};
  Tensor x = randn({2, 3});
  Tensor seen_in, seen_out;
  const int h = fc1->register_forward_hook([&](nn::Module& m, const Tensor& in, const Tensor& out) {
    CHECK(&m == fc1.get());
    seen_in = in;
    seen_out = out;
    return Tensor();
  });
  Tensor y = net(x);
  REQUIRE(seen_out.defined());
  CHECK(seen_in.is_same(x));
  CHECK(allclose(y, relu(seen_out)));
  // replacing the output (negated: the ReLU now keeps what it dropped) and the input
  const int flip = fc1->register_forward_hook([](nn::Module&, const Tensor&, const Tensor& out) { return -out; });
  CHECK(allclose(net(x), relu(-seen_out)));
  fc1->remove_forward_hook(flip);
  const int zero_in = fc1->register_forward_pre_hook([](nn::Module&, const Tensor& in) { return zeros_like(in); });
  CHECK(allclose(net(x), relu(fc1->bias.reshape({1, 4}).expand({2, 4}))));
  fc1->remove_forward_hook(zero_in);
  fc1->remove_forward_hook(h);
  CHECK(allclose(net(x), y));
  CHECK(has(error_of([&] { fc1->remove_forward_hook(h); }), "no forward hook with handle"));
}

namespace {
// returns its input unchanged (a new handle carries the Function) and saves it
struct PassThrough : autograd::Function<PassThrough> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * x * 0.0 + g[0]};  // reads x: its graph must still be x's own
  }
};
}  // namespace

TEST_CASE("Function: an input returned as is gets a new handle; saving it keeps it an input") {
  Tensor leaf = f64({1, 2}, {2}, true);
  Tensor x = leaf * 2.0;
  Tensor y = PassThrough::apply(x);
  CHECK(!y.is_same(x));
  CHECK(x.grad_fn_name() == std::string("MulBackward"));
  CHECK(y.grad_fn_name() == std::string("PassThroughBackward"));
  auto g = autograd::grad({(y * y).sum()}, {leaf}, {}, false, true);
  CHECK(allclose(g[0].detach(), f64({8, 16}, {2})));  // d/dleaf (2·leaf)² = 8·leaf
  auto gg = autograd::grad({g[0].sum()}, {leaf});
  CHECK(allclose(gg[0], f64({8, 8}, {2})));
}
