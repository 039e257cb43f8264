// Losses: cross-entropy fused with log-softmax (and its PyTorch options, composed), nll, mse,
// bce_with_logits, l1, smooth l1, huber; and one_hot. The losses
// run in Float32 or Float64 (kernels templated over the type; targets are Int64
// indices or probabilities of the logits' dtype); one_hot returns Float32.
#include <cmath>
#include <limits>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
/// The 0-d loss total / n in `dtype` (rounded once from the double accumulation).
Tensor mean_to(double total, int64_t n, Dtype dtype) {
  Tensor loss = Tensor::empty({}, dtype);
  visit_float(dtype, "loss", [&]<class T>() { loss.data<T>()[0] = T(total / double(n)); });
  return loss;
}

// Note: the loss sums are functions of their own (not inlined): inlined into the
// dtype dispatch, GCC kept the double accumulator in a general register and moved
// it to and from SSE every element, 3× slower than this loop on its own.
/// −Σ_i x[i, t_i] over rows of c, in double.
template <class T>
[[gnu::noinline]] double neg_picked_sum(const T* x, const int64_t* t, int64_t n, int64_t c) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s -= x[i * c + t[i]];
  return s;
}

/// −Σ_i p_i·x_i over the nonzero p_i, in double.
template <class T>
[[gnu::noinline]] double neg_weighted_sum(const T* x, const T* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    if (p[i] != T(0)) s -= double(p[i]) * x[i];
  return s;
}

void check_targets(const Tensor& target, int64_t n, int64_t c, const char* op) {
  TAPE_CHECK(target.dim() == 1 && target.size(0) == n, op, ": target of shape ", target.shape(),
             " does not match ", n, " samples (expected [", n, "])");
  Tensor t = contig(target);
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    TAPE_CHECK(p[i] >= 0 && p[i] < c, op, ": target ", p[i], " at index ", i, " is out of range for ", c,
               " classes");
}

/// [n, c] of `dtype`: 1 at (i, target[i]), 0 elsewhere (target: contiguous, checked Int64 [n]).
Tensor one_hot_of(const Tensor& target, int64_t c, Dtype dtype) {
  const int64_t n = target.numel();
  Tensor out = zeros({n, c}, dtype);
  const int64_t* pt = target.data<int64_t>();
  visit_float(dtype, "one_hot", [&]<class T>() {
    T* po = out.data<T>();
    for (int64_t i = 0; i < n; ++i) po[i * c + pt[i]] = T(1);
  });
  return out;
}

// Forward: L = mean_i (log Σ_c e^{x_ic} − Σ_c p_ic·x_ic)  (p = one-hot target or probabilities)
// Backward: dx_i = g/N · (softmax(x_i)·Σ_c p_ic − p_i)
struct CrossEntropyBackward final : SavingNode<3> {  // log_softmax(x) (no graph), target, x
  bool index_target = true;
  const char* name() const override { return "CrossEntropyBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    if (grad_enabled()) {  // only under create_graph: then the same formula, recorded, through x
      Tensor logits = saved(2);
      if (any_requires_grad({&g, &logits})) {
        const Tensor target = saved(1);
        const Tensor p = index_target ? one_hot_of(target, logits.size(1), logits.dtype()) : target;
        Tensor s = softmax(logits, 1);
        if (!index_target) s = mul(s, sum(p, 1, true));
        return {mul(sub(s, p), g / double(logits.size(0)))};
      }
    }
    Tensor logp = saved(0), target = saved(1);
    const int64_t n = logp.size(0), c = logp.size(1);
    Tensor dx = Tensor::empty(logp.shape(), logp.dtype());
    visit_float(logp.dtype(), name(), [&]<class T>() {
      const T* pl = logp.data<T>();
      T* pd = dx.data<T>();
      const T scale = g.item<T>() / T(n);
      const int64_t* ti = index_target ? target.data<int64_t>() : nullptr;
      const T* tp = index_target ? nullptr : target.data<T>();
      parallel_for(n, [&](int64_t i) {
        const T* row = pl + i * c;
        T* drow = pd + i * c;
        if (ti) {
          for (int64_t k = 0; k < c; ++k) drow[k] = std::exp(row[k]) * scale;
          drow[ti[i]] -= scale;
        } else {
          T mass = 0;
          for (int64_t k = 0; k < c; ++k) mass += tp[i * c + k];
          for (int64_t k = 0; k < c; ++k) drow[k] = (std::exp(row[k]) * mass - tp[i * c + k]) * scale;
        }
      });
    });
    return {dx};
  }
};

// Forward: L = −mean_i x[i, t_i]        Backward: dx[i, t_i] = −g/N, 0 elsewhere
struct NllLossBackward final : SavingNode<1> {
  Shape in_shape;
  const char* name() const override { return "NllLossBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor target = saved(0);
    const int64_t n = in_shape[0], c = in_shape[1];
    if (any_requires_grad({&g})) return {mul(one_hot_of(target, c, g.dtype()), neg(g) / double(n))};  // create_graph
    Tensor dx = zeros(in_shape, g.dtype());
    const int64_t* t = target.data<int64_t>();
    visit_float(g.dtype(), name(), [&]<class T>() {
      T* pd = dx.data<T>();
      for (int64_t i = 0; i < n; ++i) pd[i * c + t[i]] = -g.item<T>() / T(n);
    });
    return {dx};
  }
};
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target) {
  if (logits.defined() && logits.dtype() == Dtype::BFloat16 && (target.dtype() == Dtype::Int64 || all_bfloat16({&target})))
    return cross_entropy(logits.to(Dtype::Float32), float32_if_bfloat16(target)).to(Dtype::BFloat16);
  check_float(logits, "cross_entropy", "logits");
  // N = 0 is allowed: the mean over an empty batch is NaN, like PyTorch
  TAPE_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, C], got shape ", logits.shape());
  TAPE_CHECK(target.defined(), "cross_entropy: target is undefined");
  const int64_t n = logits.size(0), c = logits.size(1);
  const bool index_target = target.dtype() == Dtype::Int64;
  if (index_target) check_targets(target, n, c, "cross_entropy");
  else {
    check_same_dtype(logits, target, "cross_entropy", "probability target");
    TAPE_CHECK(target.shape() == logits.shape(), "cross_entropy: probability target of shape ", target.shape(),
               " does not match logits of shape ", logits.shape());
  }
  Tensor logp;
  {
    NoGradGuard ng;
    logp = log_softmax(logits, 1);
  }
  Tensor t = contig(target);
  const double total = visit_float(logp.dtype(), "cross_entropy", [&]<class T>() {
    return index_target ? neg_picked_sum(logp.data<T>(), t.data<int64_t>(), n, c)
                        : neg_weighted_sum(logp.data<T>(), t.data<T>(), n * c);
  });
  Tensor loss = mean_to(total, n, logits.dtype());
  if (any_requires_grad({&logits})) {
    auto node = std::make_shared<CrossEntropyBackward>();
    node->index_target = index_target;
    node->save(0, logp);
    node->save(1, t);
    node->save(2, logits);
    record(loss, std::move(node), {&logits});
  }
  return loss;
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target) {
  if (log_probs.defined() && log_probs.dtype() == Dtype::BFloat16)
    return via_float32(log_probs, [&](const Tensor& x) { return nll_loss(x, target); });
  check_float(log_probs, "nll_loss", "log_probs");
  TAPE_CHECK(log_probs.dim() == 2, "nll_loss: log_probs must be [N, C], got shape ", log_probs.shape());
  TAPE_CHECK(target.defined() && target.dtype() == Dtype::Int64, "nll_loss: target must be an Int64 tensor of class indices");
  const int64_t n = log_probs.size(0), c = log_probs.size(1);
  check_targets(target, n, c, "nll_loss");
  Tensor lp = contig(log_probs), t = contig(target);
  const int64_t* ti = t.data<int64_t>();
  const double total =
      visit_float(lp.dtype(), "nll_loss", [&]<class T>() { return neg_picked_sum(lp.data<T>(), ti, n, c); });
  Tensor loss = mean_to(total, n, lp.dtype());
  if (any_requires_grad({&log_probs})) {
    auto node = std::make_shared<NllLossBackward>();
    node->in_shape = log_probs.shape();
    node->save(0, t);
    record(loss, std::move(node), {&log_probs});
  }
  return loss;
}

// Forward: L = mean((x − t)²)   Backward: composed from sub/pow/mean
Tensor mse_loss(const Tensor& input, const Tensor& target) {
  if (all_bfloat16({&input, &target}))
    return mse_loss(input.to(Dtype::Float32), target.to(Dtype::Float32)).to(Dtype::BFloat16);
  check_float(input, "mse_loss", "input");
  check_float(target, "mse_loss", "target");
  check_same_dtype(input, target, "mse_loss", "target");
  TAPE_CHECK(input.shape() == target.shape(), "mse_loss: input of shape ", input.shape(),
             " and target of shape ", target.shape(), " differ");
  Tensor d = sub(input, target);
  return mean(mul(d, d));
}

namespace {
/// The checks of an elementwise loss: float input and target of one dtype and one shape.
void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  check_float(input, op, "input");
  check_float(target, op, "target");
  check_same_dtype(input, target, op, "target");
  TAPE_CHECK(input.shape() == target.shape(), op, ": input of shape ", input.shape(), " and target of shape ",
             target.shape(), " differ");
}
}  // namespace

// Forward: L = mean(max(x, 0) − x·t + log(1 + e^{−|x|}))
// Backward: dx = g/N·(σ(x) − t), dt = −g/N·x (composed from where/mul/exp/log1p/mean; at x = 0 both
// branches take the x ≥ 0 side, so dx = g/N·(½ − t) as in PyTorch)
Tensor bce_with_logits(const Tensor& input, const Tensor& target) {
  if (all_bfloat16({&input, &target}))
    return bce_with_logits(input.to(Dtype::Float32), target.to(Dtype::Float32)).to(Dtype::BFloat16);
  check_pair(input, target, "bce_with_logits");
  const Tensor pos = ge(input, 0.0);
  const Tensor relu_x = masked_fill(input, logical_not(pos), 0.0);  // max(x, 0), slope 1 at 0
  const Tensor abs_x = where(pos, input, neg(input));               // |x|, slope 1 at 0
  return mean(add(sub(relu_x, mul(input, target)), log1p(exp(neg(abs_x)))));
}

// Forward: L = mean(|x − t|)   Backward: dx = g/N·sign(x − t), dt = −dx (composed from sub/abs/mean)
Tensor l1_loss(const Tensor& input, const Tensor& target) {
  if (all_bfloat16({&input, &target}))
    return l1_loss(input.to(Dtype::Float32), target.to(Dtype::Float32)).to(Dtype::BFloat16);
  check_pair(input, target, "l1_loss");
  return mean(abs(sub(input, target)));
}

// Forward: L = mean(|d| < β ? ½·d²/β : |d| − ½·β), d = x − t (β = 0: mean |d|)
// Backward: dx = g/N·(|d| < β ? d/β : sign(d)), dt = −dx (composed from sub/abs/where/mean)
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, double beta) {
  if (all_bfloat16({&input, &target}))
    return smooth_l1_loss(input.to(Dtype::Float32), target.to(Dtype::Float32), beta).to(Dtype::BFloat16);
  check_pair(input, target, "smooth_l1_loss");
  TAPE_CHECK(beta >= 0, "smooth_l1_loss: beta must be >= 0, got ", beta);
  if (beta == 0) return l1_loss(input, target);
  const Tensor d = sub(input, target), ad = abs(d);
  return mean(where(lt(ad, beta), mul(d, d) * (0.5 / beta), ad - 0.5 * beta));
}

// Forward: L = mean(|d| < δ ? ½·d² : δ·(|d| − ½·δ)), d = x − t
// Backward: dx = g/N·(|d| < δ ? d : δ·sign(d)), dt = −dx (composed from sub/abs/where/mean)
Tensor huber_loss(const Tensor& input, const Tensor& target, double delta) {
  if (all_bfloat16({&input, &target}))
    return huber_loss(input.to(Dtype::Float32), target.to(Dtype::Float32), delta).to(Dtype::BFloat16);
  check_pair(input, target, "huber_loss");
  TAPE_CHECK(delta > 0, "huber_loss: delta must be > 0, got ", delta);
  const Tensor d = sub(input, target), ad = abs(d);
  return mean(where(lt(ad, delta), mul(d, d) * 0.5, (ad - 0.5 * delta) * delta));
}

// Forward: logp = log_softmax(x, 1), w_i = weight[t_i] (0 where t_i = ignore_index),
//   nll = −Σ_i w_i·logp[i, t_i] / Σ_i w_i,  smooth = −Σ_i [t_i kept] Σ_c weight_c·logp[i, c] / Σ_i w_i,
//   L = (1 − ε)·nll + ε/C·smooth  (weight_c = 1 without weight; PyTorch 1.13; probability targets p:
//   L = −mean_i Σ_c weight_c·((1 − ε)·p_ic + ε/C)·logp_ic)
// Backward: composed from log_softmax/gather/index_select/mul/sum/div (the defaults take the fused
//   2-argument cross_entropy)
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  const Tensor& weight = options.weight;
  const double eps = options.label_smoothing;
  TAPE_CHECK(eps >= 0 && eps <= 1, "cross_entropy: label_smoothing must be in [0, 1], got ", eps);
  if (logits.defined() && logits.dtype() == Dtype::BFloat16) {
    CrossEntropyOptions o = options;
    if (weight.defined()) o.weight = float32_if_bfloat16(weight);
    return cross_entropy(logits.to(Dtype::Float32), float32_if_bfloat16(target), o).to(Dtype::BFloat16);
  }
  check_float(logits, "cross_entropy", "logits");
  TAPE_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, C], got shape ", logits.shape());
  TAPE_CHECK(target.defined(), "cross_entropy: target is undefined");
  const int64_t n = logits.size(0), c = logits.size(1);
  if (weight.defined()) {
    check_same_dtype(logits, weight, "cross_entropy", "weight");
    TAPE_CHECK(weight.dim() == 1 && weight.size(0) == c, "cross_entropy: weight of shape ", weight.shape(),
               " does not match logits of shape ", logits.shape(), " (expected [", c, "])");
  }
  const bool index_target = target.dtype() == Dtype::Int64;
  if (!index_target) {  // probabilities: ignore_index does not apply (as in PyTorch)
    if (!weight.defined() && eps == 0) return cross_entropy(logits, target);
    check_same_dtype(logits, target, "cross_entropy", "probability target");
    TAPE_CHECK(target.shape() == logits.shape(), "cross_entropy: probability target of shape ", target.shape(),
               " does not match logits of shape ", logits.shape());
    Tensor p = eps == 0 ? target : target * (1 - eps) + eps / double(c);
    if (weight.defined()) p = mul(p, reshape(weight, {1, c}));
    return neg(mean(sum(mul(log_softmax(logits, 1), p), 1)));
  }
  TAPE_CHECK(target.dim() == 1 && target.size(0) == n, "cross_entropy: target of shape ", target.shape(),
             " does not match ", n, " samples (expected [", n, "])");
  // the kept targets (ignored ones → class 0 with weight 0) and their 0/1 mask
  Tensor t = contig(target);
  Tensor safe = Tensor::empty({n}, Dtype::Int64), kept = Tensor::empty({n}, logits.dtype());
  bool any_ignored = false;
  {
    const int64_t* pt = t.data<int64_t>();
    int64_t* ps = safe.data<int64_t>();
    visit_float(logits.dtype(), "cross_entropy", [&]<class T>() {
      T* pk = kept.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        const bool ignored = pt[i] == options.ignore_index;
        TAPE_CHECK(ignored || (pt[i] >= 0 && pt[i] < c), "cross_entropy: target ", pt[i], " at index ", i,
                   " is out of range for ", c, " classes (ignore_index ", options.ignore_index, ")");
        any_ignored = any_ignored || ignored;
        ps[i] = ignored ? 0 : pt[i];
        pk[i] = ignored ? T(0) : T(1);
      }
    });
  }
  if (!weight.defined() && eps == 0 && !any_ignored) return cross_entropy(logits, t);  // the fused path
  const Tensor logp = log_softmax(logits, 1);
  const Tensor w = weight.defined() ? mul(index_select(weight, 0, safe), kept) : kept;  // w_i
  const Tensor w_total = sum(w);
  const Tensor picked = reshape(gather(logp, 1, reshape(safe, {n, 1})), {n});
  Tensor loss = neg(div(sum(mul(picked, w)), w_total));
  if (eps == 0) return loss;
  const Tensor row = weight.defined() ? sum(mul(logp, reshape(weight, {1, c})), 1) : sum(logp, 1);
  const Tensor smooth_total = neg(sum(mul(row, kept)));
  return add(loss * (1 - eps), div(smooth_total, w_total) * (eps / double(c)));
}

Tensor one_hot(const Tensor& labels, int64_t num_classes) {
  TAPE_CHECK(labels.defined() && labels.dtype() == Dtype::Int64, "one_hot: labels must be an Int64 tensor");
  TAPE_CHECK(num_classes > 0, "one_hot: num_classes must be positive, got ", num_classes);
  TAPE_CHECK(labels.dim() == 1, "one_hot: labels must be 1-D [N], got shape ", labels.shape());
  check_targets(labels, labels.size(0), num_classes, "one_hot");
  return one_hot_of(contig(labels), num_classes, Dtype::Float32);
}

}  // namespace tape
