// Reductions: sum, mean, max over everything or along one dim; argmax; min, argmin,
// prod, var, std, logsumexp, norm. Each kernel is a template over the element
// type: Float32 and Float64 everywhere, Int64 for sum, max/min, argmax/argmin
// and prod (integer results, like PyTorch; mean of Int64 is an error).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
/// A dim reduction sees the input as [outer, n, inner].
struct DimSplit {
  int64_t outer = 1, n = 1, inner = 1;
  Shape out_shape, keep_shape;
};

DimSplit split(const Shape& s, int64_t dim, bool keepdim) {
  DimSplit d;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    if (i < dim) d.outer *= s[size_t(i)];
    else if (i > dim) d.inner *= s[size_t(i)];
    else d.n = s[size_t(i)];
    d.keep_shape.push_back(i == dim ? 1 : s[size_t(i)]);
    if (i != dim) d.out_shape.push_back(s[size_t(i)]);
  }
  if (keepdim) d.out_shape = d.keep_shape;
  return d;
}

/// Defined, and a dtype with a kernel here (Float32, Float64, Int64).
void check_number(const Tensor& t, const char* op) {
  TAPE_CHECK(t.defined(), op, ": input is an undefined tensor");
  TAPE_CHECK(t.dtype() == Dtype::Float32 || t.dtype() == Dtype::Float64 || t.dtype() == Dtype::Int64, op,
             ": input must be Float32, Float64 or Int64, got ", dtype_name(t.dtype()), " tensor of shape ", t.shape());
}

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// Forward: y = Σ x (over all, or along dim)   Backward: dx = g broadcast back, × scale
// (scale = 1 for sum, 1/n for mean)
struct SumBackward final : Node {
  Shape in_shape, keep_shape;
  double scale = 1;  // T(1)/T(n) of the input's type, exact in double
  const char* kind = "SumBackward";
  const char* name() const override { return kind; }
  std::vector<Tensor> apply(const Tensor& g) override {
    if (any_requires_grad({&g})) {  // create_graph: recorded (reshape, expand, mul)
      Tensor dx = expand(reshape(g, keep_shape), in_shape);
      return {scale != 1 ? dx * scale : dx};
    }
    Tensor dx = expand_copy(reshape(g, keep_shape), in_shape);
    if (scale != 1) dx.mul_(scale);
    return {dx};
  }
};

/// Σ (or the mean) of the contiguous t over everything, as a 0-d tensor of t's dtype.
/// Floats accumulate in double, integers in int64.
template <class T>
Tensor sum_all(const Tensor& t, bool is_mean) {
  using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
  const T* p = t.data<T>();
  const int64_t n = t.numel();
  Acc acc = 0;  // double accumulation: a loss over 60 000 samples stays exact to float precision
  if (n <= kParallelGrain) {
    for (int64_t i = 0; i < n; ++i) acc += p[i];
  } else {
    // Note: fixed chunks summed in a fixed order, so the result does not depend
    // on how many threads ran or which finished first (an OpenMP reduction
    // combines partial sums in completion order: with 3+ threads the bits vary).
    constexpr int64_t kChunks = 64;
    Acc part[kChunks] = {};
    parallel_for(kChunks, [&](int64_t c) {
      Acc s = 0;
      for (int64_t i = n * c / kChunks, end = n * (c + 1) / kChunks; i < end; ++i) s += p[i];
      part[c] = s;
    }, n / kChunks);
    for (Acc s : part) acc += s;
  }
  Tensor out = Tensor::empty({}, t.dtype());
  if constexpr (std::is_integral_v<T>) out.data<T>()[0] = acc;
  else out.data<T>()[0] = T(is_mean ? acc / double(n) : acc);  // the mean of nothing is NaN, like PyTorch
  return out;
}

/// Σ (or the mean) of the contiguous t along the dim split as d.
template <class T>
Tensor sum_dim(const Tensor& t, const DimSplit& d, bool is_mean) {
  Tensor out = zeros(d.out_shape, t.dtype());
  const T* p = t.data<T>();
  T* po = out.data<T>();
  const T scale = is_mean ? T(1) / T(d.n) : T(1);  // n = 0: 0·inf = NaN, like PyTorch
  parallel_for(d.outer, [&](int64_t o) {
    T* dst = po + o * d.inner;
    for (int64_t k = 0; k < d.n; ++k) {
      const T* src = p + (o * d.n + k) * d.inner;
      for (int64_t i = 0; i < d.inner; ++i) dst[i] += src[i];
    }
    if (scale != T(1))
      for (int64_t i = 0; i < d.inner; ++i) dst[i] *= scale;
  });
  return out;
}

Tensor reduce_sum(const Tensor& t_in, int64_t dim, bool keepdim, bool all, bool is_mean, const char* op) {
  TAPE_CHECK(t_in.defined(), op, ": input is an undefined tensor");
  TAPE_CHECK(!is_mean || is_floating(t_in.dtype()), "mean: input of shape ", t_in.shape(), " is ",
             dtype_name(t_in.dtype()), "; mean needs a floating dtype (use .to(Float32) or .to(Float64) first)");
  if (t_in.dtype() == Dtype::BFloat16)
    return via_float32(t_in, [&](const Tensor& x) { return reduce_sum(x, dim, keepdim, all, is_mean, op); });
  if (t_in.dtype() == Dtype::Bool) {  // counts, like PyTorch: Bool sums to Int64
    NoGradGuard no_grad;
    return reduce_sum(cast_copy(t_in, Dtype::Int64), dim, keepdim, all, is_mean, op);
  }
  check_number(t_in, op);
  Tensor t = contig(t_in);
  DimSplit d;
  if (all) {
    d.n = t.numel();
    d.keep_shape = Shape(size_t(t.dim()), 1);
  } else {
    dim = wrap_dim(dim, t.dim(), op);
    d = split(t.shape(), dim, keepdim);
  }
  double scale = 1;
  Tensor out = visit_number(t.dtype(), op, [&]<class T>() {
    if (is_mean) scale = double(T(1) / T(d.n));
    return all ? sum_all<T>(t, is_mean) : sum_dim<T>(t, d, is_mean);
  });
  if (any_requires_grad({&t_in})) {
    auto node = std::make_shared<SumBackward>();
    node->in_shape = t.shape();
    node->keep_shape = d.keep_shape;
    node->scale = scale;
    node->kind = is_mean ? "MeanBackward" : "SumBackward";
    record(out, std::move(node), {&t_in});
  }
  return out;
}

// Forward: y = max_k (or min_k) x[.., k, ..]   Backward: dx[.., arg, ..] = g, 0 elsewhere
struct MaxBackward final : SavingNode<1> {
  Shape in_shape;
  DimSplit d;
  const char* kind = "MaxBackward";
  const char* name() const override { return kind; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor idx = saved(0);
    if (any_requires_grad({&g_in})) {  // create_graph: g scattered to the arg (recorded, linear in g)
      const Shape full{d.outer, d.n, d.inner}, picked{d.outer, 1, d.inner};
      return {reshape(scatter_add(zeros(full, g_in.dtype()), 1, reshape(idx, picked), reshape(g_in, picked)), in_shape)};
    }
    Tensor g = contig(g_in);
    Tensor dx = zeros(in_shape, g.dtype());
    visit_float(g.dtype(), kind, [&]<class T>() {
      T* pd = dx.data<T>();
      const T* pg = g.data<T>();
      const int64_t* pi = idx.data<int64_t>();
      for (int64_t o = 0; o < d.outer; ++o)
        for (int64_t i = 0; i < d.inner; ++i)
          pd[(o * d.n + pi[o * d.inner + i]) * d.inner + i] += pg[o * d.inner + i];
    });
    return {dx};
  }
};

/// Values and Int64 indices of the max (is_max) or min along a dim (first index
/// on ties; NaN wins).
template <class T>
std::pair<Tensor, Tensor> extreme_impl(const Tensor& t, const DimSplit& d, bool is_max) {
  using Lim = std::numeric_limits<T>;
  Tensor vals = Tensor::empty(d.out_shape, t.dtype()), idx = Tensor::empty(d.out_shape, Dtype::Int64);
  const T* p = t.data<T>();
  T* pv = vals.data<T>();
  int64_t* pi = idx.data<int64_t>();
  const T start = Lim::has_infinity ? (is_max ? -Lim::infinity() : Lim::infinity()) : (is_max ? Lim::lowest() : Lim::max());
  parallel_for(d.outer, [&](int64_t o) {
    for (int64_t i = 0; i < d.inner; ++i) {
      T best = start;
      int64_t arg = 0;
      for (int64_t k = 0; k < d.n; ++k) {
        const T v = p[(o * d.n + k) * d.inner + i];
        if ((is_max ? v > best : v < best) || (is_nan(v) && !is_nan(best))) {
          best = v;
          arg = k;
        }
      }
      pv[o * d.inner + i] = d.n ? p[(o * d.n + arg) * d.inner + i] : best;
      pi[o * d.inner + i] = arg;
    }
  });
  return {vals, idx};
}
}  // namespace

Tensor sum(const Tensor& t) { return reduce_sum(t, 0, false, true, false, "sum"); }
Tensor sum(const Tensor& t, int64_t dim, bool keepdim) { return reduce_sum(t, dim, keepdim, false, false, "sum"); }
Tensor mean(const Tensor& t) {
  return reduce_sum(t, 0, false, true, true, "mean");
}
Tensor mean(const Tensor& t, int64_t dim, bool keepdim) { return reduce_sum(t, dim, keepdim, false, true, "mean"); }

namespace {
/// The checked, contiguous input of max/min/argmax/argmin and its split at `dim`.
std::pair<Tensor, DimSplit> extreme_input(const Tensor& t, int64_t dim, bool keepdim, const char* op) {
  check_number(t, op);
  dim = wrap_dim(dim, t.dim(), op);
  TAPE_CHECK(t.dim() == 0 || t.size(dim) > 0, op, ": cannot reduce over dim ", dim, " of size 0 (shape ", t.shape(), ")");
  Tensor tc = contig(t);
  DimSplit d = split(tc.shape(), dim, keepdim);
  return {std::move(tc), std::move(d)};
}

/// extreme_impl for the input's dtype.
std::pair<Tensor, Tensor> extreme_of(const Tensor& tc, const DimSplit& d, bool is_max, const char* op) {
  return visit_number(tc.dtype(), op, [&]<class T>() { return extreme_impl<T>(tc, d, is_max); });
}

/// max / min (values, recorded) along dim.
Tensor extreme(const Tensor& t, int64_t dim, bool keepdim, bool is_max) {
  if (t.defined() && t.dtype() == Dtype::BFloat16)
    return via_float32(t, [&](const Tensor& x) { return extreme(x, dim, keepdim, is_max); });
  const char* op = is_max ? "max" : "min";
  const auto [tc, d] = extreme_input(t, dim, keepdim, op);
  auto [vals, idx] = extreme_of(tc, d, is_max, op);
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<MaxBackward>();
    node->save(0, idx);
    node->in_shape = tc.shape();
    node->d = d;
    node->kind = is_max ? "MaxBackward" : "MinBackward";
    record(vals, std::move(node), {&t});
  }
  return vals;
}

/// argmax / argmin along dim (Int64, not recorded).
Tensor arg_extreme(const Tensor& t, int64_t dim, bool keepdim, bool is_max) {
  if (t.defined() && t.dtype() == Dtype::BFloat16) return arg_extreme(cast_copy(t, Dtype::Float32), dim, keepdim, is_max);
  const char* op = is_max ? "argmax" : "argmin";
  const auto [tc, d] = extreme_input(t, dim, keepdim, op);
  return extreme_of(tc, d, is_max, op).second;
}
}  // namespace

Tensor max(const Tensor& t, int64_t dim, bool keepdim) { return extreme(t, dim, keepdim, true); }
Tensor min(const Tensor& t, int64_t dim, bool keepdim) { return extreme(t, dim, keepdim, false); }

Tensor max(const Tensor& t) {
  if (t.defined() && t.dtype() == Dtype::BFloat16) return via_float32(t, [](const Tensor& x) { return max(x); });
  check_number(t, "max");
  TAPE_CHECK(t.numel() > 0, "max: input of shape ", t.shape(), " has no elements (the maximum of nothing is undefined)");
  return max(reshape(t, {-1}), 0, false);
}

Tensor argmax(const Tensor& t, int64_t dim, bool keepdim) { return arg_extreme(t, dim, keepdim, true); }
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim) { return arg_extreme(t, dim, keepdim, false); }

// --- prod, var, std, logsumexp, norm -----------------------------------------------
namespace {
/// Saves the contiguous `t` a fused backward reads in slot i and, when the op's
/// input t_in was not contiguous (t is then a copy without a graph), t_in itself
/// in slot i + 1, for the recorded formula to differentiate through.
template <size_t K>
void save_input(SavingNode<K>& node, size_t i, const Tensor& t, const Tensor& t_in) {
  node.save(i, t);
  if (!t_in.is_contiguous()) node.save(i + 1, t_in);
}

/// The positions (in t's contiguous order) of t's zeros.
std::vector<int64_t> zeros_in(const Tensor& t) {
  std::vector<int64_t> at;
  visit_float(t.dtype(), "ProdBackward", [&]<class T>() {
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (p[i] == T(0)) at.push_back(i);
  });
  return at;
}

/// ProdBackward recorded (create_graph): dx_i = g·Π_{j≠i} x_j. With m = x whose
/// zeros are replaced by 1, Π_{j≠i} x_j = prod(m)/m_i · Π_{zeros k≠i} x_k, and that
/// last factor is a product of one tensor per zero k (x_k everywhere, 1 at k).
/// Three or more zeros make dx and all its first derivatives 0: dx is then zeros
/// with no graph (only third and higher derivatives of prod are approximated, by 0).
/// xc is x contiguous (for finding the zeros).
Tensor prod_backward_recorded(const Tensor& g, const Tensor& x, const Tensor& xc) {
  const std::vector<int64_t> zero_at = zeros_in(xc);
  if (zero_at.size() > 2) return zeros(x.shape(), x.dtype());
  const Tensor one = ones({}, x.dtype());
  const Tensor m = zero_at.empty() ? x : where(eq(x, 0.0), one, x);
  Tensor dx = div(mul(g, prod(m)), m);
  for (int64_t k : zero_at) {
    Tensor at_k = zeros(x.shape(), Dtype::Bool);
    at_k.data<bool>()[k] = true;
    dx = mul(dx, where(at_k, one, select(reshape(x, {-1}), 0, k)));
  }
  return dx;
}

// Forward: y = Π x   Backward: dx_i = g·Π_{j≠i} x_j (no zero: g·y/x_i; one zero at k:
// only dx_k = g·Π_{j≠k} x_j; two or more zeros: dx = 0)
struct ProdBackward final : SavingNode<2> {  // x contiguous; the input when it was not
  const char* name() const override { return "ProdBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor x = saved(0), x_in = saved(1);
    const Tensor& xg = x_in.defined() ? x_in : x;  // the one with x's graph
    if (any_requires_grad({&g_in, &xg})) return {prod_backward_recorded(g_in, xg, x)};
    Tensor dx = zeros(x.shape(), x.dtype());
    visit_float(x.dtype(), name(), [&]<class T>() {
      const T g = contig(g_in).data<T>()[0];
      const T* px = x.data<T>();
      T* pd = dx.data<T>();
      const int64_t n = x.numel();
      int64_t zeros_seen = 0, zero_at = -1;
      double rest = 1;  // the product of the nonzero elements
      for (int64_t i = 0; i < n; ++i) {
        if (px[i] == T(0)) {
          ++zeros_seen;
          zero_at = i;
        } else {
          rest *= px[i];
        }
      }
      if (zeros_seen == 0) {
        // Π_{j≠i} without dividing: prefix · suffix products
        std::vector<double> prefix(size_t(n) + 1, 1.0);
        for (int64_t i = 0; i < n; ++i) prefix[size_t(i) + 1] = prefix[size_t(i)] * px[i];
        double suffix = 1;
        for (int64_t i = n - 1; i >= 0; --i) {
          pd[i] = T(double(g) * prefix[size_t(i)] * suffix);
          suffix *= px[i];
        }
      } else if (zeros_seen == 1) {
        pd[zero_at] = T(double(g) * rest);
      }
    });
    return {dx};
  }
};

// Forward: y = (Σ|x|ᵖ)^(1/p)   Backward: dx = g·sign(x)·|x|ᵖ⁻¹ / yᵖ⁻¹ (0 where y = 0)
struct NormBackward final : SavingNode<3> {  // x contiguous; the input when it was not; y
  float p = 2.f;
  const char* name() const override { return "NormBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor x = saved(0), x_in = saved(1), y = saved(2);
    const Tensor& xg = x_in.defined() ? x_in : x;  // the one with x's graph
    if (any_requires_grad({&g_in, &xg, &y})) {  // create_graph: the same formula, recorded
      if (y.item<double>() == 0) return {zeros(x.shape(), x.dtype())};
      if (p == 1.f) return {mul(g_in, sign(xg))};
      if (p == 2.f) return {mul(g_in, div(xg, y))};
      return {div(mul(g_in, mul(sign(xg), pow(abs(xg), p - 1.0))), pow(y, p - 1.0))};
    }
    Tensor dx = zeros(x.shape(), x.dtype());
    visit_float(x.dtype(), name(), [&]<class T>() {
      const T g = contig(g_in).data<T>()[0], yv = y.data<T>()[0];
      if (yv == T(0)) return;
      const T* px = x.data<T>();
      T* pd = dx.data<T>();
      const T pp = T(p), scale = g / std::pow(yv, pp - T(1));
      parallel_for(x.numel(), [&](int64_t i) {
        const T v = px[i], s = T((v > T(0)) - (v < T(0)));
        if (pp == T(1)) pd[i] = g * s;
        else if (pp == T(2)) pd[i] = g * v / yv;
        else pd[i] = v == T(0) ? T(0) : scale * s * std::pow(std::fabs(v), pp - T(1));
      });
    });
    return {dx};
  }
};

/// Σ|x|ᵖ in double. Note: not inlined into the dtype dispatch, where GCC kept the
/// accumulator in a general register and moved it to and from SSE every element.
template <class T>
[[gnu::noinline]] double abs_pow_sum(const T* px, int64_t n, float p) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = std::fabs(double(px[i]));
    acc += p == 1.f ? a : p == 2.f ? a * a : std::pow(a, double(p));
  }
  return acc;
}
}  // namespace

Tensor prod(const Tensor& t_in) {
  if (t_in.defined() && t_in.dtype() == Dtype::BFloat16) return via_float32(t_in, [](const Tensor& x) { return prod(x); });
  check_number(t_in, "prod");
  Tensor t = contig(t_in);
  Tensor out = Tensor::empty({}, t.dtype());
  visit_number(t.dtype(), "prod", [&]<class T>() {
    const T* p = t.data<T>();
    if constexpr (std::is_integral_v<T>) {
      uint64_t acc = 1;  // wraps on overflow like PyTorch's int64 (unsigned: no undefined behaviour)
      for (int64_t i = 0; i < t.numel(); ++i) acc *= uint64_t(p[i]);
      out.data<T>()[0] = T(acc);
    } else {
      double acc = 1;
      for (int64_t i = 0; i < t.numel(); ++i) acc *= p[i];
      out.data<T>()[0] = T(acc);
    }
  });
  if (any_requires_grad({&t_in})) {
    auto node = std::make_shared<ProdBackward>();
    save_input(*node, 0, t, t_in);
    record(out, std::move(node), {&t_in});
  }
  return out;
}

// Forward: y = Σ (x − mean)² / max(n − unbiased, 0)   Backward: through sub, mul, sum, div
// (dx = 2g·(x − mean) / divisor)
Tensor var(const Tensor& t, int64_t dim, bool unbiased, bool keepdim) {
  if (t.defined() && t.dtype() == Dtype::BFloat16)
    return via_float32(t, [&](const Tensor& x) { return var(x, dim, unbiased, keepdim); });
  check_float(t, "var");
  dim = wrap_dim(dim, t.dim(), "var");
  const int64_t n = t.dim() == 0 ? 1 : t.size(dim);
  const double divisor = double(std::max<int64_t>(n - (unbiased ? 1 : 0), 0));  // 0: 0/0 = NaN, like PyTorch
  Tensor d = sub(t, mean(t, dim, true));
  return div(sum(mul(d, d), dim, keepdim), scalar_tensor(divisor, t.dtype()));
}

// Forward: y = √var(x)   Backward: dx = g·∂var/∂x / (2y)
Tensor std(const Tensor& t, int64_t dim, bool unbiased, bool keepdim) {
  if (t.defined() && t.dtype() == Dtype::BFloat16)
    return via_float32(t, [&](const Tensor& x) { return std(x, dim, unbiased, keepdim); });
  check_float(t, "std");
  return sqrt(var(t, dim, unbiased, keepdim));
}

// Forward: y = m + log Σ e^(x − m), m = max along dim (detached)   Backward: dx = g·e^(x − y)
// (through exp, sum, log; m's terms cancel)
Tensor logsumexp(const Tensor& t, int64_t dim, bool keepdim) {
  if (t.defined() && t.dtype() == Dtype::BFloat16)
    return via_float32(t, [&](const Tensor& x) { return logsumexp(x, dim, keepdim); });
  check_float(t, "logsumexp");
  dim = wrap_dim(dim, t.dim(), "logsumexp");
  if (t.dim() > 0 && t.size(dim) == 0) return log(sum(exp(t), dim, keepdim));  // log 0 = −inf
  Tensor m;
  {
    NoGradGuard no_grad;
    m = max(t, dim, true);
    // an infinite max would make x − m NaN: shift by 0 there instead
    visit_float(m.dtype(), "logsumexp", [&]<class T>() {
      T* pm = m.data<T>();
      for (int64_t i = 0; i < m.numel(); ++i)
        if (std::isinf(pm[i])) pm[i] = T(0);
    });
  }
  Tensor y = add(log(sum(exp(sub(t, m)), dim, true)), m);
  return keepdim || t.dim() == 0 ? y : reshape(y, split(t.shape(), dim, false).out_shape);
}

Tensor norm(const Tensor& t_in, float p) {
  if (t_in.defined() && t_in.dtype() == Dtype::BFloat16)
    return via_float32(t_in, [&](const Tensor& x) { return norm(x, p); });
  check_float(t_in, "norm");
  TAPE_CHECK(p > 0.f && std::isfinite(p), "norm: p must be finite and > 0, got ", p);
  Tensor t = contig(t_in);
  Tensor out = Tensor::empty({}, t.dtype());
  visit_float(t.dtype(), "norm", [&]<class T>() {
    const double acc = abs_pow_sum(t.data<T>(), t.numel(), p);
    out.data<T>()[0] = T(p == 1.f ? acc : p == 2.f ? std::sqrt(acc) : std::pow(acc, 1.0 / double(p)));
  });
  if (any_requires_grad({&t_in})) {
    auto node = std::make_shared<NormBackward>();
    node->p = p;
    save_input(*node, 0, t, t_in);
    node->save(2, out, /*is_output=*/true);
    record(out, std::move(node), {&t_in});
  }
  return out;
}

}  // namespace tape
