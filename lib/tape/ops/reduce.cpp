// Reductions: sum, mean, max over everything or along one dim; argmax.
#include <cmath>
#include <limits>

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

// Forward: y = max_k x[.., k, ..]   Backward: dx[.., argmax, ..] = g, 0 elsewhere
struct MaxBackward final : SavingNode<1> {
  Shape in_shape;
  DimSplit d;
  const char* name() const override { return "MaxBackward"; }
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

/// Values and Int64 indices of the max along a dim (first index on ties; NaN wins).
std::pair<Tensor, Tensor> max_impl(const Tensor& t, const DimSplit& d) {
  Tensor vals = Tensor::empty(d.out_shape), idx = Tensor::empty(d.out_shape, Dtype::Int64);
  const float* p = t.data<float>();
  float* pv = vals.data<float>();
  int64_t* pi = idx.data<int64_t>();
  parallel_for(d.outer, [&](int64_t o) {
    for (int64_t i = 0; i < d.inner; ++i) {
      float best = -std::numeric_limits<float>::infinity();
      int64_t arg = 0;
      for (int64_t k = 0; k < d.n; ++k) {
        const float v = p[(o * d.n + k) * d.inner + i];
        if (v > best || (std::isnan(v) && !std::isnan(best))) {
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

Tensor max(const Tensor& t, int64_t dim, bool keepdim) {
  check_float(t, "max");
  dim = wrap_dim(dim, t.dim(), "max");
  TAPE_CHECK(t.dim() == 0 || t.size(dim) > 0, "max: cannot reduce over dim ", dim, " of size 0 (shape ", t.shape(), ")");
  Tensor tc = contig(t);
  DimSplit d = split(tc.shape(), dim, keepdim);
  auto [vals, idx] = max_impl(tc, d);
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<MaxBackward>();
    node->save(0, idx);
    node->in_shape = tc.shape();
    node->d = d;
    record(vals, std::move(node), {&t});
  }
  return vals;
}

Tensor max(const Tensor& t) {
  check_float(t, "max");
  TAPE_CHECK(t.numel() > 0, "max: input is empty");
  return max(reshape(t, {-1}), 0, false);
}

Tensor argmax(const Tensor& t, int64_t dim, bool keepdim) {
  check_float(t, "argmax");
  dim = wrap_dim(dim, t.dim(), "argmax");
  TAPE_CHECK(t.dim() == 0 || t.size(dim) > 0, "argmax: cannot reduce over dim ", dim, " of size 0 (shape ", t.shape(), ")");
  Tensor tc = contig(t);
  return max_impl(tc, split(tc.shape(), dim, keepdim)).second;
}

}  // namespace tape
