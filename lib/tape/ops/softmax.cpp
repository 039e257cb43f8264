// Softmax and log-softmax along a dim, numerically stable (the max is
// subtracted first, so rows like [1000, 999, -1000] stay finite). One loop,
// templated over Float32 / Float64 (row sums accumulate in double).
#include <cmath>
#include <limits>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
};
Rows rows_of(const Shape& s, int64_t dim) {
  Rows r;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    if (i < dim) r.outer *= s[size_t(i)];
    else if (i > dim) r.inner *= s[size_t(i)];
    else r.n = s[size_t(i)];
  }
  return r;
}

/// Walks every "row" (n elements with stride `inner`) of x.
template <class F>
void for_each_row(const Rows& r, F&& f) {
  parallel_for(r.outer * r.inner, [&](int64_t j) {
    const int64_t o = j / r.inner, i = j % r.inner;
    f(o * r.n * r.inner + i, r.inner);
  });
}

template <class T>
void softmax_forward(const T* x, T* y, const Rows& r, bool log_space) {
  for_each_row(r, [&](int64_t base, int64_t st) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t k = 0; k < r.n; ++k) m = std::max(m, x[base + k * st]);
    double s = 0;
    for (int64_t k = 0; k < r.n; ++k) s += std::exp(double(x[base + k * st] - m));
    if (log_space) {
      const T log_s = T(std::log(s));  // (x − m) − log s keeps precision when |m| is large
      for (int64_t k = 0; k < r.n; ++k) y[base + k * st] = (x[base + k * st] - m) - log_s;
    } else {
      const T inv = T(1.0 / s);
      for (int64_t k = 0; k < r.n; ++k) y[base + k * st] = std::exp(x[base + k * st] - m) * inv;
    }
  });
}

// softmax:     Forward: y = eˣ / Σeˣ          Backward: dx = y ⊙ (g − Σ g⊙y)
// log_softmax: Forward: y = x − log Σeˣ        Backward: dx = g − eʸ · Σ g
struct SoftmaxBackward final : SavingNode<1> {
  Rows r;
  int64_t dim = 0;
  bool log_space = false;
  const char* name() const override { return log_space ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    Tensor y = saved(0);
    if (any_requires_grad({&g_in, &y})) {  // create_graph: the same formula, recorded (y leads back here)
      if (log_space) return {sub(g_in, mul(exp(y), sum(g_in, dim, true)))};
      return {mul(y, sub(g_in, sum(mul(g_in, y), dim, true)))};
    }
    Tensor g = contig(g_in);
    Tensor dx = Tensor::empty(y.shape(), y.dtype());
    visit_float(y.dtype(), name(), [&]<class T>() {
      const T* py = y.data<T>();
      const T* pg = g.data<T>();
      T* pd = dx.data<T>();
      for_each_row(r, [&](int64_t base, int64_t st) {
        double s = 0;
        if (log_space) {
          for (int64_t k = 0; k < r.n; ++k) s += pg[base + k * st];
          for (int64_t k = 0; k < r.n; ++k) pd[base + k * st] = pg[base + k * st] - std::exp(py[base + k * st]) * T(s);
        } else {
          for (int64_t k = 0; k < r.n; ++k) s += double(pg[base + k * st]) * py[base + k * st];
          for (int64_t k = 0; k < r.n; ++k) pd[base + k * st] = py[base + k * st] * (pg[base + k * st] - T(s));
        }
      });
    });
    return {dx};
  }
};

Tensor softmax_impl(const Tensor& t, int64_t dim, bool log_space) {
  const char* op = log_space ? "log_softmax" : "softmax";
  if (t.defined() && t.dtype() == Dtype::BFloat16)
    return via_float32(t, [&](const Tensor& x) { return softmax_impl(x, dim, log_space); });
  check_float(t, op);
  dim = wrap_dim(dim, t.dim(), op);
  Tensor x = contig(t);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Rows r = rows_of(x.shape(), dim);
  visit_float(x.dtype(), op, [&]<class T>() { softmax_forward(x.data<T>(), y.data<T>(), r, log_space); });
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<SoftmaxBackward>();
    node->r = r;
    node->dim = dim;
    node->log_space = log_space;
    node->save(0, y, /*is_output=*/true);
    record(y, std::move(node), {&t});
  }
  return y;
}
}  // namespace

Tensor softmax(const Tensor& t, int64_t dim) { return softmax_impl(t, dim, false); }
Tensor log_softmax(const Tensor& t, int64_t dim) { return softmax_impl(t, dim, true); }

}  // namespace tape
