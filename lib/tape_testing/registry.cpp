// The op registry: one entry per differentiable op (see registry.hpp).
// Adding an op: write it in its family's file, then add one entry below.
#include "tape_testing/registry.hpp"

#include <algorithm>
#include <cmath>

#include "tape/ops/ops.hpp"

namespace tape::testing {

namespace {
using Inputs = std::vector<Tensor>;

/// Uniform in [lo, hi), requiring grad.
Tensor u(Generator& g, const Shape& s, float lo = -1.f, float hi = 1.f, bool grad = true) {
  Tensor t = rand(s, g);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  if (grad) t.requires_grad_();
  return t;
}
/// Uniform with |x| in [0.2, 1.2): keeps samples away from the kink of relu/abs/...
Tensor away(Generator& g, const Shape& s) {
  Tensor t = u(g, s, 0.2f, 1.2f, false);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (g.uniform() < 0.5f) p[i] = -p[i];
  return t.requires_grad_();
}

std::vector<OpInfo> build() {
  std::vector<OpInfo> r;
  auto add_op = [&](OpInfo o) { r.push_back(std::move(o)); };

  // --- elementwise
  add_op({"add", "elementwise", "add(a, b)", "y = a + b; da = g, db = g (summed over broadcast dims)",
          [](Generator& g) { return Inputs{u(g, {3, 4}), u(g, {4})}; },
          [](const Inputs& x) { return add(x[0], x[1]); }});
  add_op({"sub", "elementwise", "sub(a, b)", "y = a − b; da = g, db = −g",
          [](Generator& g) { return Inputs{u(g, {2, 3, 4}), u(g, {3, 1})}; },
          [](const Inputs& x) { return sub(x[0], x[1]); }});
  add_op({"mul", "elementwise", "mul(a, b)", "y = a·b; da = g·b, db = g·a",
          [](Generator& g) { return Inputs{u(g, {3, 4}), u(g, {3, 1})}; },
          [](const Inputs& x) { return mul(x[0], x[1]); }});
  add_op({"div", "elementwise", "div(a, b)", "y = a / b; da = g / b, db = −g·a / b²",
          [](Generator& g) { return Inputs{u(g, {3, 4}), u(g, {4}, 0.5f, 2.f)}; },
          [](const Inputs& x) { return div(x[0], x[1]); }});
  add_op({"scalar_ops", "elementwise", "2 − x·3 + x/4", "operators with float scalars",
          [](Generator& g) { return Inputs{u(g, {5})}; },
          [](const Inputs& x) { return 2.f - x[0] * 3.f + x[0] / 4.f; }});
  add_op({"neg", "elementwise", "neg(x)", "y = −x; dx = −g", [](Generator& g) { return Inputs{u(g, {3, 4})}; },
          [](const Inputs& x) { return neg(x[0]); }});
  add_op({"exp", "elementwise", "exp(x)", "y = eˣ; dx = g·y", [](Generator& g) { return Inputs{u(g, {3, 4})}; },
          [](const Inputs& x) { return exp(x[0]); }});
  add_op({"log", "elementwise", "log(x)", "y = ln x; dx = g / x",
          [](Generator& g) { return Inputs{u(g, {3, 4}, 0.5f, 2.f)}; }, [](const Inputs& x) { return log(x[0]); }});
  add_op({"sqrt", "elementwise", "sqrt(x)", "y = √x; dx = g / (2y)",
          [](Generator& g) { return Inputs{u(g, {3, 4}, 0.5f, 2.f)}; }, [](const Inputs& x) { return sqrt(x[0]); }});
  add_op({"abs", "elementwise", "abs(x)", "y = |x|; dx = g·sign(x)", [](Generator& g) { return Inputs{away(g, {3, 4})}; },
          [](const Inputs& x) { return abs(x[0]); }});
  add_op({"pow", "elementwise", "pow(x, 2.5)", "y = xᵉ; dx = g·e·xᵉ⁻¹",
          [](Generator& g) { return Inputs{u(g, {3, 4}, 0.5f, 1.5f)}; },
          [](const Inputs& x) { return pow(x[0], 2.5f); }});
  add_op({"log1p", "elementwise", "log1p(x)", "y = ln(1 + x); dx = g / (1 + x)",
          [](Generator& g) { return Inputs{u(g, {3, 4}, -0.5f, 2.f)}; }, [](const Inputs& x) { return log1p(x[0]); }});
  add_op({"expm1", "elementwise", "expm1(x)", "y = eˣ − 1; dx = g·(y + 1)",
          [](Generator& g) { return Inputs{u(g, {3, 4})}; }, [](const Inputs& x) { return expm1(x[0]); }});
  add_op({"sin", "elementwise", "sin(x)", "y = sin x; dx = g·cos x",
          [](Generator& g) { return Inputs{u(g, {3, 4}, -3.f, 3.f)}; }, [](const Inputs& x) { return sin(x[0]); }});
  add_op({"cos", "elementwise", "cos(x)", "y = cos x; dx = −g·sin x",
          [](Generator& g) { return Inputs{u(g, {3, 4}, -3.f, 3.f)}; }, [](const Inputs& x) { return cos(x[0]); }});
  add_op({"rsqrt", "elementwise", "rsqrt(x)", "y = 1/√x; dx = −g·y³/2",
          [](Generator& g) { return Inputs{u(g, {3, 4}, 0.5f, 2.f)}; }, [](const Inputs& x) { return rsqrt(x[0]); }});
  add_op({"square", "elementwise", "square(x)", "y = x²; dx = 2g·x",
          [](Generator& g) { return Inputs{u(g, {3, 4})}; }, [](const Inputs& x) { return square(x[0]); }});
  add_op({"sign", "elementwise", "sign(x)·x²", "y = sign x; dx = 0",
          [](Generator& g) { return Inputs{away(g, {3, 4})}; },
          [](const Inputs& x) { return mul(sign(x[0]), square(x[0])); }});
  add_op({"clamp", "elementwise", "clamp(x, -0.5, 0.5)", "y = min(max(x, lo), hi); dx = g·[lo ≤ x ≤ hi]",
          [](Generator& g) {  // |x| in [0.2, 1.2) minus the band around ±0.5
            Tensor t = away(g, {3, 4}).detach();
            float* p = t.data<float>();
            for (int64_t i = 0; i < t.numel(); ++i)
              if (std::fabs(std::fabs(p[i]) - 0.5f) < 0.05f) p[i] *= 1.3f;
            return Inputs{t.requires_grad_()};
          },
          [](const Inputs& x) { return clamp(x[0], -0.5f, 0.5f); }});
  add_op({"maximum", "elementwise", "maximum(a, b)", "y = max(a, b); da = g·[a > b], db = g·[b > a] (½ each on ties)",
          [](Generator& g) { return Inputs{away(g, {3, 4}), u(g, {4}, -0.1f, 0.1f)}; },
          [](const Inputs& x) { return maximum(x[0], x[1]); }});
  add_op({"minimum", "elementwise", "minimum(a, b)", "y = min(a, b); da = g·[a < b], db = g·[b < a] (½ each on ties)",
          [](Generator& g) { return Inputs{away(g, {3, 4}), u(g, {3, 1}, -0.1f, 0.1f)}; },
          [](const Inputs& x) { return minimum(x[0], x[1]); }});

  // --- activations
  add_op({"relu", "activation", "relu(x)", "y = max(x, 0); dx = g·[x > 0]",
          [](Generator& g) { return Inputs{away(g, {4, 5})}; }, [](const Inputs& x) { return relu(x[0]); }});
  add_op({"leaky_relu", "activation", "leaky_relu(x, 0.1)", "y = x or s·x; dx = g·(1 or s)",
          [](Generator& g) { return Inputs{away(g, {4, 5})}; }, [](const Inputs& x) { return leaky_relu(x[0], 0.1f); }});
  add_op({"elu", "activation", "elu(x, 1)", "y = x or α(eˣ − 1); dx = g·(1 or y + α)",
          [](Generator& g) { return Inputs{away(g, {4, 5})}; }, [](const Inputs& x) { return elu(x[0], 1.f); }});
  add_op({"selu", "activation", "selu(x)", "y = λ·elu(x, α); dx = g·λ·(1 or α·eˣ)",
          [](Generator& g) { return Inputs{away(g, {4, 5})}; }, [](const Inputs& x) { return selu(x[0]); }});
  add_op({"tanh", "activation", "tanh(x)", "y = tanh x; dx = g·(1 − y²)",
          [](Generator& g) { return Inputs{u(g, {4, 5}, -2.f, 2.f)}; }, [](const Inputs& x) { return tanh(x[0]); }});
  add_op({"sigmoid", "activation", "sigmoid(x)", "y = 1/(1 + e⁻ˣ); dx = g·y(1 − y)",
          [](Generator& g) { return Inputs{u(g, {4, 5}, -3.f, 3.f)}; }, [](const Inputs& x) { return sigmoid(x[0]); }});
  add_op({"gelu", "activation", "gelu(x)", "y = x·Φ(x); dx = g·(Φ(x) + x·φ(x))",
          [](Generator& g) { return Inputs{u(g, {4, 5}, -3.f, 3.f)}; }, [](const Inputs& x) { return gelu(x[0]); }});
  add_op({"silu", "activation", "silu(x)", "y = x·σ(x); dx = g·σ(x)(1 + x(1 − σ(x)))",
          [](Generator& g) { return Inputs{u(g, {4, 5}, -3.f, 3.f)}; }, [](const Inputs& x) { return silu(x[0]); }});
  add_op({"softplus", "activation", "softplus(x, 2, 3)", "y = ln(1 + e^(βx))/β, x where βx > threshold; dx = g·σ(βx) or g",
          [](Generator& g) {  // βx in [−6, 6) away from the threshold 3
            Tensor t = u(g, {4, 5}, -3.f, 3.f, false);
            float* p = t.data<float>();
            for (int64_t i = 0; i < t.numel(); ++i)
              if (std::fabs(2.f * p[i] - 3.f) < 0.1f) p[i] += 0.2f;
            return Inputs{t.requires_grad_()};
          },
          [](const Inputs& x) { return softplus(x[0], 2.f, 3.f); }});

  // --- linear algebra
  add_op({"matmul", "linear algebra", "matmul(a, b)", "C = A·B; dA = G·Bᵀ, dB = Aᵀ·G",
          [](Generator& g) { return Inputs{u(g, {3, 5}), u(g, {5, 4})}; },
          [](const Inputs& x) { return matmul(x[0], x[1]); }});
  add_op({"matmul_batched", "linear algebra", "matmul(a, b) 3-D", "C[i] = A[i]·B[i]",
          [](Generator& g) { return Inputs{u(g, {2, 3, 4}), u(g, {2, 4, 2})}; },
          [](const Inputs& x) { return matmul(x[0], x[1]); }});
  add_op({"matmul_transposed", "linear algebra", "matmul(a.t(), b)", "strided (transposed) operand",
          [](Generator& g) { return Inputs{u(g, {5, 3}), u(g, {5, 4})}; },
          [](const Inputs& x) { return matmul(x[0].t(), x[1]); }});
  add_op({"linear", "linear algebra", "linear(x, w, b)", "y = x·Wᵀ + b; dx = G·W, dW = Gᵀ·x, db = Σ G",
          [](Generator& g) { return Inputs{u(g, {4, 6}), u(g, {3, 6}), u(g, {3})}; },
          [](const Inputs& x) { return linear(x[0], x[1], x[2]); }});

  // --- shape
  add_op({"reshape", "shape", "reshape(x, {3, -1})", "view; dx = g reshaped back",
          [](Generator& g) { return Inputs{u(g, {2, 3, 2})}; },
          [](const Inputs& x) { return mul(reshape(x[0], {3, -1}), reshape(x[0], {3, -1})); }});
  add_op({"flatten", "shape", "flatten(x, 1)", "view; dx = g reshaped back",
          [](Generator& g) { return Inputs{u(g, {2, 3, 2})}; },
          [](const Inputs& x) { return exp(flatten(x[0], 1)); }});
  add_op({"transpose", "shape", "transpose(x, 0, 2)", "strided view; dx = gᵀ",
          [](Generator& g) { return Inputs{u(g, {2, 3, 4})}; },
          [](const Inputs& x) { return mul(transpose(x[0], 0, 2), transpose(x[0], 0, 2)); }});

  // --- views (index.cpp): inputs are made non-contiguous inside fn (gradcheck perturbs contiguous leaves)
  add_op({"view", "views", "view(x.transpose(0, 1), {3, 2, 2, -1})", "no-copy view; dx = g reshaped back",
          [](Generator& g) { return Inputs{u(g, {2, 3, 4})}; },
          [](const Inputs& x) {
            Tensor v = view(transpose(x[0], 0, 1), {3, 2, 2, -1});
            return mul(v, v);
          }});
  add_op({"select", "views", "select(x.transpose(0, 2), 1, -2)", "y = x[:, i]; dx = zeros with g at index i",
          [](Generator& g) { return Inputs{u(g, {3, 4, 5})}; },
          [](const Inputs& x) {
            Tensor v = select(transpose(x[0], 0, 2), 1, -2);
            return mul(v, v);
          }});
  add_op({"narrow", "views", "narrow(x.t(), 1, 1, 2)", "y = x[:, s:s+n]; dx = zeros with g in that range",
          [](Generator& g) { return Inputs{u(g, {4, 3})}; },
          [](const Inputs& x) { return exp(narrow(x[0].t(), 1, 1, 2)); }});
  add_op({"slice", "views", "slice(x.t(), 0, -5, 100, 2)", "y = x[s:e:k]; dx = zeros with g at every k-th",
          [](Generator& g) { return Inputs{u(g, {3, 6})}; },
          [](const Inputs& x) {
            Tensor v = slice(x[0].t(), 0, -5, 100, 2);
            return mul(v, v);
          }});
  add_op({"squeeze", "views", "squeeze(x.transpose(0, 1), 0)", "drops a size-1 dim; dx = g reshaped back",
          [](Generator& g) { return Inputs{u(g, {3, 1, 4})}; },
          [](const Inputs& x) { return exp(squeeze(transpose(x[0], 0, 1), 0)); }});
  add_op({"unsqueeze", "views", "unsqueeze(x.t(), -1)", "inserts a size-1 dim; dx = g reshaped back",
          [](Generator& g) { return Inputs{u(g, {3, 4})}; },
          [](const Inputs& x) { return exp(unsqueeze(x[0].t(), -1)); }});
  add_op({"permute", "views", "permute(x, {2, 0, 1})", "strided view; dx = g permuted back",
          [](Generator& g) { return Inputs{u(g, {2, 3, 4})}; },
          [](const Inputs& x) {
            Tensor v = permute(x[0], {2, 0, 1});
            return mul(v, v);
          }});
  add_op({"expand", "views", "expand(a.t(), {2, -1, 3}) · b", "stride-0 view; da = g summed over broadcast dims",
          [](Generator& g) { return Inputs{u(g, {1, 4}), u(g, {2, 4, 3})}; },
          [](const Inputs& x) { return mul(expand(x[0].t(), {2, -1, 3}), x[1]); }});

  // --- joins (join.cpp)
  add_op({"cat", "joins", "cat({a, b.t(), c}, 1)", "y = [a, b, c] along dim; dxᵢ = g narrowed to xᵢ's range",
          [](Generator& g) { return Inputs{u(g, {3, 2}), u(g, {4, 3}), u(g, {3, 1})}; },
          [](const Inputs& x) { return exp(cat({x[0], x[1].t(), x[2]}, 1)); }});
  add_op({"stack", "joins", "stack({a, b.t()}, 1)", "y = cat of unsqueezed inputs; dxᵢ = g selected at i",
          [](Generator& g) { return Inputs{u(g, {3, 4}), u(g, {4, 3})}; },
          [](const Inputs& x) { return exp(stack({x[0], x[1].t()}, 1)); }});
  add_op({"split", "joins", "split(x.t(), 2, 1)", "narrow views; dx = zeros with each part's g in place",
          [](Generator& g) { return Inputs{u(g, {5, 3})}; },
          [](const Inputs& x) {
            auto p = split(x[0].t(), 2, 1);
            return cat({mul(p[0], p[1]), exp(p[2])}, 1);
          }});
  add_op({"chunk", "joins", "chunk(x, 3, 0)", "narrow views of ⌈n/3⌉; dx = zeros with each part's g in place",
          [](Generator& g) { return Inputs{u(g, {7, 2})}; },
          [](const Inputs& x) {
            auto p = chunk(x[0], 3, 0);
            return add(mul(p[0], p[1]), p[2]);
          }});

  // --- comparisons & masks (compare.cpp); the Bool inputs need no grad
  add_op({"where", "compare", "where(cond, a, b)", "y = cond ? a : b; da = g where cond, db = g elsewhere (summed)",
          [](Generator& g) { return Inputs{gt(u(g, {2, 1, 4}, -1.f, 1.f, false), 0.f), u(g, {3, 4}), u(g, {3, 1})}; },
          [](const Inputs& x) { return where(x[0], x[1], x[2]); }});
  add_op({"masked_fill", "compare", "masked_fill(t, mask, 0.5)", "y = mask ? 0.5 : t; dt = g with masked positions 0",
          [](Generator& g) { return Inputs{u(g, {3, 4}), gt(u(g, {4}, -1.f, 1.f, false), 0.f)}; },
          [](const Inputs& x) { return masked_fill(x[0], x[1], 0.5f); }});

  // --- reductions
  add_op({"sum", "reduction", "sum(x)", "y = Σx; dx = g", [](Generator& g) { return Inputs{u(g, {3, 4})}; },
          [](const Inputs& x) { return sum(mul(x[0], x[0])); }});
  add_op({"sum_dim", "reduction", "sum(x, 1, keepdim)", "y = Σ_dim x; dx = g broadcast",
          [](Generator& g) { return Inputs{u(g, {2, 3, 4})}; }, [](const Inputs& x) { return sum(x[0], 1, true); }});
  add_op({"mean", "reduction", "mean(x)", "y = Σx / n; dx = g / n", [](Generator& g) { return Inputs{u(g, {3, 4})}; },
          [](const Inputs& x) { return mean(mul(x[0], x[0])); }});
  add_op({"mean_dim", "reduction", "mean(x, -1)", "y = mean along dim; dx = g / n",
          [](Generator& g) { return Inputs{u(g, {3, 4})}; }, [](const Inputs& x) { return mean(x[0], -1); }});
  add_op({"max_dim", "reduction", "max(x, 1)", "y = max along dim; dx = g at the arg max",
          [](Generator& g) {
            // distinct values so the arg max is stable under ±eps
            Tensor t = arange(0.f, 12.f);
            float* p = t.data<float>();
            for (int i = 11; i > 0; --i) std::swap(p[i], p[g.below(uint64_t(i + 1))]);
            return Inputs{reshape(t * 0.3f, {3, 4}).detach().requires_grad_()};
          },
          [](const Inputs& x) { return max(x[0], 1); }});
  add_op({"min_dim", "reduction", "min(x, 0, keepdim)", "y = min along dim; dx = g at the arg min",
          [](Generator& g) {
            Tensor t = arange(0.f, 12.f);  // distinct values: the arg min is stable under ±eps
            float* p = t.data<float>();
            for (int i = 11; i > 0; --i) std::swap(p[i], p[g.below(uint64_t(i + 1))]);
            return Inputs{reshape(t * 0.3f, {3, 4}).detach().requires_grad_()};
          },
          [](const Inputs& x) { return min(x[0], 0, true); }});
  add_op({"prod", "reduction", "prod(x)", "y = Πx; dx_i = g·Π_{j≠i} x_j",
          [](Generator& g) { return Inputs{away(g, {2, 3})}; }, [](const Inputs& x) { return prod(x[0]); }});
  add_op({"var", "reduction", "var(x, 1)", "y = Σ(x − x̄)²/(n − 1); dx = 2g·(x − x̄)/(n − 1)",
          [](Generator& g) { return Inputs{u(g, {3, 4})}; }, [](const Inputs& x) { return var(x[0], 1); }});
  add_op({"std", "reduction", "std(x, 0, false, keepdim)", "y = √var; dx = g·∂var/(2y)",
          [](Generator& g) { return Inputs{u(g, {4, 3})}; }, [](const Inputs& x) { return std(x[0], 0, false, true); }});
  add_op({"logsumexp", "reduction", "logsumexp(x, 1)", "y = m + log Σe^(x − m); dx = g·e^(x − y)",
          [](Generator& g) { return Inputs{u(g, {3, 4}, -2.f, 2.f)}; }, [](const Inputs& x) { return logsumexp(x[0], 1); }});
  add_op({"norm", "reduction", "norm(x)", "y = √Σx²; dx = g·x/y",
          [](Generator& g) { return Inputs{u(g, {3, 4})}; }, [](const Inputs& x) { return norm(x[0]); }});
  add_op({"norm_p1", "reduction", "norm(x, 1)", "y = Σ|x|; dx = g·sign(x)",
          [](Generator& g) { return Inputs{away(g, {3, 4})}; }, [](const Inputs& x) { return norm(x[0], 1.f); }});
  add_op({"norm_p3", "reduction", "norm(x, 3)", "y = (Σ|x|³)^(1/3); dx = g·sign(x)|x|²/y²",
          [](Generator& g) { return Inputs{away(g, {3, 4})}; }, [](const Inputs& x) { return norm(x[0], 3.f); }});

  // --- softmax
  add_op({"softmax", "softmax & losses", "softmax(x, 1)", "y = eˣ/Σeˣ; dx = y(g − Σg·y)",
          [](Generator& g) { return Inputs{u(g, {3, 5}, -2.f, 2.f)}; }, [](const Inputs& x) { return softmax(x[0], 1); }});
  add_op({"softmax_dim0", "softmax & losses", "softmax(x, 0)", "along a non-last dim",
          [](Generator& g) { return Inputs{u(g, {4, 3}, -2.f, 2.f)}; }, [](const Inputs& x) { return softmax(x[0], 0); }});
  add_op({"log_softmax", "softmax & losses", "log_softmax(x, 1)", "y = x − log Σeˣ; dx = g − eʸ·Σg",
          [](Generator& g) { return Inputs{u(g, {3, 5}, -2.f, 2.f)}; },
          [](const Inputs& x) { return log_softmax(x[0], 1); }});

  // --- losses & regularisation (loss.cpp, dropout.cpp)
  add_op({"cross_entropy", "softmax & losses", "cross_entropy(logits, Int64 target)",
          "L = mean(logΣeˣ − x[t]); dx = (softmax(x) − onehot(t)) / N",
          [](Generator& g) { return Inputs{u(g, {4, 5}, -2.f, 2.f), tensor(std::vector<int64_t>{0, 3, 4, 1}, {4})}; },
          [](const Inputs& x) { return cross_entropy(x[0], x[1]); }});
  add_op({"cross_entropy_probs", "softmax & losses", "cross_entropy(logits, Float32 probabilities)",
          "L = −mean Σ p·log_softmax(x); dx = (softmax(x)·Σp − p) / N",
          [](Generator& g) { return Inputs{u(g, {3, 4}, -2.f, 2.f), softmax(u(g, {3, 4}, -1.f, 1.f, false), 1)}; },
          [](const Inputs& x) { return cross_entropy(x[0], x[1]); }});
  add_op({"nll_loss", "softmax & losses", "nll_loss(log_probs, target)", "L = −mean x[i, t_i]; dx[i, t_i] = −1/N",
          [](Generator& g) { return Inputs{u(g, {4, 3}), tensor(std::vector<int64_t>{2, 0, 1, 2}, {4})}; },
          [](const Inputs& x) { return nll_loss(log_softmax(x[0], 1), x[1]); }});
  add_op({"mse_loss", "softmax & losses", "mse_loss(input, target)", "L = mean((x − t)²); dx = 2(x − t)/n",
          [](Generator& g) { return Inputs{u(g, {3, 4}), u(g, {3, 4})}; },
          [](const Inputs& x) { return mse_loss(x[0], x[1]); }});
  add_op({"dropout", "regularisation", "dropout(x, 0.3, training)", "y = x·m/(1−p); dx = g·m/(1−p)",
          [](Generator& g) { return Inputs{u(g, {4, 6})}; },
          [](const Inputs& x) {
            Generator fixed(99);  // the same mask on every call, so finite differences see one function
            return dropout(x[0], 0.3f, true, fixed);
          }});

  // --- convolution & pooling (conv.cpp, pool.cpp)
  add_op({"conv2d", "convolution & pooling", "conv2d(x, w, b, 1, 1)",
          "y = x ⋆ w + b; dx = g ⋆ᵀ w, dw = x ⋆ g, db = Σ_{n,i,j} g",
          // weights in ±0.5 keep |y| small: float32 rounding of y is the finite differences' noise
          [](Generator& g) { return Inputs{u(g, {2, 3, 7, 7}), u(g, {4, 3, 3, 3}, -.5f, .5f), u(g, {4}, -.5f, .5f)}; },
          [](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, 1); }});
  add_op({"conv2d_stride2", "convolution & pooling", "conv2d(x, w, {}, 2, 0)", "stride 2, no bias",
          [](Generator& g) { return Inputs{u(g, {2, 2, 7, 6}), u(g, {3, 2, 3, 2}, -.5f, .5f)}; },
          [](const Inputs& x) { return conv2d(x[0], x[1], {}, 2, 0); }});
  // distinct values 0.01 apart (≥ 2·eps), so each window's arg max is stable under ±eps
  static const auto distinct = [](Generator& g, const Shape& s) {
    Tensor t = arange(0.f, float(shape_numel(s)));
    float* p = t.data<float>();
    for (int64_t i = t.numel() - 1; i > 0; --i) std::swap(p[i], p[g.below(uint64_t(i + 1))]);
    return reshape(t * 0.01f, s).detach().requires_grad_();
  };
  add_op({"max_pool2d", "convolution & pooling", "max_pool2d(x, 2)",
          "y = max over each 2×2 window; dx = g at the arg max",
          [](Generator& g) { return Inputs{distinct(g, {2, 3, 6, 6})}; },
          [](const Inputs& x) { return max_pool2d(x[0], 2); }});
  add_op({"max_pool2d_overlap", "convolution & pooling", "max_pool2d(x, 3, 2)",
          "overlapping windows: dx sums g over the windows whose arg max it is",
          [](Generator& g) { return Inputs{distinct(g, {1, 2, 7, 8})}; },
          [](const Inputs& x) { return max_pool2d(x[0], 3, 2); }});

  return r;
}
}  // namespace

const std::vector<OpInfo>& op_registry() {
  static const std::vector<OpInfo> r = build();
  return r;
}

const OpInfo* find_op(const std::string& name) {
  for (const auto& o : op_registry())
    if (o.name == name) return &o;
  return nullptr;
}

namespace {
/// A markdown table cell: '|' must be escaped, newlines become spaces.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}
}  // namespace

std::string ops_markdown() {
  const auto& ops = op_registry();
  std::vector<std::string> groups;  // in order of first appearance
  for (const auto& o : ops)
    if (std::find(groups.begin(), groups.end(), o.group) == groups.end()) groups.push_back(o.group);
  std::string s =
      "# Differentiable ops\n\n"
      "Generated from the op registry (`lib/tape_testing/registry.cpp`) by\n"
      "`build/tools/tape-ops-doc > docs/ops.md` — do not edit by hand; a test fails\n"
      "when this file is out of date. Every op here is checked against central finite\n"
      "differences by `tape-gradcheck` and by the test suite. `g` is the gradient\n"
      "arriving at the op's output.\n\n";
  s += str_cat(ops.size(), " ops in ", groups.size(), " groups.\n\n");
  s += "| group | op | signature | formula |\n|---|---|---|---|\n";
  for (const auto& gname : groups)
    for (const auto& o : ops)
      if (o.group == gname)
        s += "| " + md_cell(o.group) + " | `" + md_cell(o.name) + "` | `" + md_cell(o.signature) + "` | " +
             md_cell(o.formula) + " |\n";
  return s;
}

}  // namespace tape::testing
