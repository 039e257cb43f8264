// Reductions: sum, mean, max over everything or along one dim; argmax; min, argmin,
// prod, var, std, logsumexp, norm.
#include <algorithm>
#include <cmath>
#include <limits>
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

// Forward: y = Σ x (over all, or along dim)   Backward: dx = g broadcast back, × scale
// (scale = 1 for sum, 1/n for mean)
struct SumBackward final : Node {
  Shape in_shape, keep_shape;
  float scale = 1.f;
  const char* kind = "SumBackward";
  const char* name() const override { return kind; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor dx = expand_copy(reshape(g, keep_shape), in_shape);
    if (scale != 1.f) dx.mul_(scale);
    return {dx};
  }
};

Tensor reduce_sum(const Tensor& t_in, int64_t dim, bool keepdim, bool all, bool is_mean, const char* op) {
  check_float(t_in, op);
  Tensor t = contig(t_in);
  const float* p = t.data<float>();
  Tensor out;
  DimSplit d;
  if (all) {
    d.n = t.numel();
    d.keep_shape = Shape(size_t(t.dim()), 1);
    double acc = 0;  // double accumulation: a loss over 60 000 samples stays exact to float precision
    if (d.n <= kParallelGrain) {
      for (int64_t i = 0; i < d.n; ++i) acc += p[i];
    } else {
      // Note: fixed chunks summed in a fixed order, so the result does not depend
      // on how many threads ran or which finished first (an OpenMP reduction
      // combines partial sums in completion order: with 3+ threads the bits vary).
      constexpr int64_t kChunks = 64;
      double part[kChunks] = {};
      parallel_for(kChunks, [&](int64_t c) {
        double s = 0;
        for (int64_t i = d.n * c / kChunks, end = d.n * (c + 1) / kChunks; i < end; ++i) s += p[i];
        part[c] = s;
      }, d.n / kChunks);
      for (double s : part) acc += s;
    }
    out = full({}, float(is_mean ? acc / double(d.n) : acc));  // the mean of nothing is NaN, like PyTorch
  } else {
    dim = wrap_dim(dim, t.dim(), op);
    d = split(t.shape(), dim, keepdim);
    out = zeros(d.out_shape);
    float* po = out.data<float>();
    const float scale = is_mean ? 1.f / float(d.n) : 1.f;  // n = 0: 0·inf = NaN, like PyTorch
    parallel_for(d.outer, [&](int64_t o) {
      float* dst = po + o * d.inner;
      for (int64_t k = 0; k < d.n; ++k) {
        const float* src = p + (o * d.n + k) * d.inner;
        for (int64_t i = 0; i < d.inner; ++i) dst[i] += src[i];
      }
      if (scale != 1.f)
        for (int64_t i = 0; i < d.inner; ++i) dst[i] *= scale;
    });
  }
  if (any_requires_grad({&t_in})) {
    auto node = std::make_shared<SumBackward>();
    node->in_shape = t.shape();
    node->keep_shape = d.keep_shape;
    node->scale = is_mean ? 1.f / float(d.n) : 1.f;
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
    Tensor idx = saved(0), g = contig(g_in);
    Tensor dx = zeros(in_shape);
    float* pd = dx.data<float>();
    const float* pg = g.data<float>();
    const int64_t* pi = idx.data<int64_t>();
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i)
        pd[(o * d.n + pi[o * d.inner + i]) * d.inner + i] += pg[o * d.inner + i];
    return {dx};
  }
};

/// Values and Int64 indices of the max (is_max) or min along a dim (first index
/// on ties; NaN wins).
std::pair<Tensor, Tensor> extreme_impl(const Tensor& t, const DimSplit& d, bool is_max) {
  Tensor vals = Tensor::empty(d.out_shape), idx = Tensor::empty(d.out_shape, Dtype::Int64);
  const float* p = t.data<float>();
  float* pv = vals.data<float>();
  int64_t* pi = idx.data<int64_t>();
  parallel_for(d.outer, [&](int64_t o) {
    for (int64_t i = 0; i < d.inner; ++i) {
      float best = is_max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
      int64_t arg = 0;
      for (int64_t k = 0; k < d.n; ++k) {
        const float v = p[(o * d.n + k) * d.inner + i];
        if ((is_max ? v > best : v < best) || (std::isnan(v) && !std::isnan(best))) {
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
  check_float(t, op);
  dim = wrap_dim(dim, t.dim(), op);
  TAPE_CHECK(t.dim() == 0 || t.size(dim) > 0, op, ": cannot reduce over dim ", dim, " of size 0 (shape ", t.shape(), ")");
  Tensor tc = contig(t);
  DimSplit d = split(tc.shape(), dim, keepdim);
  return {std::move(tc), std::move(d)};
}

/// max / min (values, recorded) along dim.
Tensor extreme(const Tensor& t, int64_t dim, bool keepdim, bool is_max) {
  const auto [tc, d] = extreme_input(t, dim, keepdim, is_max ? "max" : "min");
  auto [vals, idx] = extreme_impl(tc, d, is_max);
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
  const auto [tc, d] = extreme_input(t, dim, keepdim, is_max ? "argmax" : "argmin");
  return extreme_impl(tc, d, is_max).second;
}
}  // namespace

Tensor max(const Tensor& t, int64_t dim, bool keepdim) { return extreme(t, dim, keepdim, true); }
Tensor min(const Tensor& t, int64_t dim, bool keepdim) { return extreme(t, dim, keepdim, false); }

Tensor max(const Tensor& t) {
  check_float(t, "max");
  TAPE_CHECK(t.numel() > 0, "max: input is empty");
  return max(reshape(t, {-1}), 0, false);
}

Tensor argmax(const Tensor& t, int64_t dim, bool keepdim) { return arg_extreme(t, dim, keepdim, true); }
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim) { return arg_extreme(t, dim, keepdim, false); }

// --- prod, var, std, logsumexp, norm -----------------------------------------------
namespace {
// Forward: y = Π x   Backward: dx_i = g·Π_{j≠i} x_j (no zero: g·y/x_i; one zero at k:
// only dx_k = g·Π_{j≠k} x_j; two or more zeros: dx = 0)
struct ProdBackward final : SavingNode<1> {
  const char* name() const override { return "ProdBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor x = saved(0);
    const float g = contig(g_in).data<float>()[0];
    Tensor dx = zeros(x.shape());
    const float* px = x.data<float>();
    float* pd = dx.data<float>();
    const int64_t n = x.numel();
    int64_t zeros_seen = 0, zero_at = -1;
    double rest = 1;  // the product of the nonzero elements
    for (int64_t i = 0; i < n; ++i) {
      if (px[i] == 0.f) {
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
        pd[i] = float(double(g) * prefix[size_t(i)] * suffix);
        suffix *= px[i];
      }
    } else if (zeros_seen == 1) {
      pd[zero_at] = float(double(g) * rest);
    }
    return {dx};
  }
};

// Forward: y = (Σ|x|ᵖ)^(1/p)   Backward: dx = g·sign(x)·|x|ᵖ⁻¹ / yᵖ⁻¹ (0 where y = 0)
struct NormBackward final : SavingNode<2> {
  float p = 2.f;
  const char* name() const override { return "NormBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor x = saved(0), y = saved(1);
    const float g = contig(g_in).data<float>()[0], yv = y.data<float>()[0];
    Tensor dx = zeros(x.shape());
    if (yv == 0.f) return {dx};
    const float* px = x.data<float>();
    float* pd = dx.data<float>();
    const float pp = p, scale = g / std::pow(yv, pp - 1.f);
    parallel_for(x.numel(), [&](int64_t i) {
      const float v = px[i], s = float((v > 0.f) - (v < 0.f));
      if (pp == 1.f) pd[i] = g * s;
      else if (pp == 2.f) pd[i] = g * v / yv;
      else pd[i] = v == 0.f ? 0.f : scale * s * std::pow(std::fabs(v), pp - 1.f);
    });
    return {dx};
  }
};
}  // namespace

Tensor prod(const Tensor& t_in) {
  check_float(t_in, "prod");
  Tensor t = contig(t_in);
  const float* p = t.data<float>();
  double acc = 1;
  for (int64_t i = 0; i < t.numel(); ++i) acc *= p[i];
  Tensor out = full({}, float(acc));
  if (any_requires_grad({&t_in})) {
    auto node = std::make_shared<ProdBackward>();
    node->save(0, t);
    record(out, std::move(node), {&t_in});
  }
  return out;
}

// Forward: y = Σ (x − mean)² / max(n − unbiased, 0)   Backward: through sub, mul, sum, div
// (dx = 2g·(x − mean) / divisor)
Tensor var(const Tensor& t, int64_t dim, bool unbiased, bool keepdim) {
  check_float(t, "var");
  dim = wrap_dim(dim, t.dim(), "var");
  const int64_t n = t.dim() == 0 ? 1 : t.size(dim);
  const float divisor = float(std::max<int64_t>(n - (unbiased ? 1 : 0), 0));  // 0: 0/0 = NaN, like PyTorch
  Tensor d = sub(t, mean(t, dim, true));
  return div(sum(mul(d, d), dim, keepdim), scalar_tensor(divisor));
}

// Forward: y = √var(x)   Backward: dx = g·∂var/∂x / (2y)
Tensor std(const Tensor& t, int64_t dim, bool unbiased, bool keepdim) {
  check_float(t, "std");
  return sqrt(var(t, dim, unbiased, keepdim));
}

// Forward: y = m + log Σ e^(x − m), m = max along dim (detached)   Backward: dx = g·e^(x − y)
// (through exp, sum, log; m's terms cancel)
Tensor logsumexp(const Tensor& t, int64_t dim, bool keepdim) {
  check_float(t, "logsumexp");
  dim = wrap_dim(dim, t.dim(), "logsumexp");
  if (t.dim() > 0 && t.size(dim) == 0) return log(sum(exp(t), dim, keepdim));  // log 0 = −inf
  Tensor m;
  {
    NoGradGuard no_grad;
    m = max(t, dim, true);
    // an infinite max would make x − m NaN: shift by 0 there instead
    float* pm = m.data<float>();
    for (int64_t i = 0; i < m.numel(); ++i)
      if (std::isinf(pm[i])) pm[i] = 0.f;
  }
  Tensor y = add(log(sum(exp(sub(t, m)), dim, true)), m);
  return keepdim || t.dim() == 0 ? y : reshape(y, split(t.shape(), dim, false).out_shape);
}

Tensor norm(const Tensor& t_in, float p) {
  check_float(t_in, "norm");
  TAPE_CHECK(p > 0.f && std::isfinite(p), "norm: p must be finite and > 0, got ", p);
  Tensor t = contig(t_in);
  const float* px = t.data<float>();
  double acc = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double a = std::fabs(double(px[i]));
    acc += p == 1.f ? a : p == 2.f ? a * a : std::pow(a, double(p));
  }
  Tensor out = full({}, float(p == 1.f ? acc : p == 2.f ? std::sqrt(acc) : std::pow(acc, 1.0 / double(p))));
  if (any_requires_grad({&t_in})) {
    auto node = std::make_shared<NormBackward>();
    node->p = p;
    node->save(0, t);
    node->save(1, out, /*is_output=*/true);
    record(out, std::move(node), {&t_in});
  }
  return out;
}

}  // namespace tape
