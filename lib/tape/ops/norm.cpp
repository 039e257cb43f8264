// Normalization: batch_norm, layer_norm, group_norm (PyTorch's F.* semantics).
//
// Each normalises x over some of its elements — batch norm per channel over the
// batch and spatial positions, layer norm per row over the trailing dims, group
// norm per (sample, group of channels) — with the mean and the biased variance,
// then scales and shifts per channel (weight, bias; optional). Float32 batch and
// layer normalization run oneDNN's primitives, forward and backward; everything
// else (Float64, group norm, inputs with no elements) runs the two loop kernels
// below, templated over the element type: one for statistics per channel (batch
// norm), one for statistics per row (layer and group norm). Under create_graph
// the nodes write the same formulas with recorded ops (recorded_backward).
#include "tape/ops/norm.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "tape/backend/dnnl.hpp"
#include "tape/backend/dnnl_error.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {
using dnnl::memory;
using dnnl::normalization_flags;
using dnnl::prop_kind;

// --- geometry -------------------------------------------------------------------

/// Batch norm sees x as [n, c, s] (s: the product of the dims after 1), with
/// statistics per channel over n·s elements.
struct ChannelGeom {
  int64_t n = 0, c = 0, s = 1;
  int64_t count() const { return n * s; }
};
ChannelGeom channel_geom(const Shape& x) {
  ChannelGeom g{x[0], x[1], 1};
  for (size_t i = 2; i < x.size(); ++i) g.s *= x[i];
  return g;
}
// Note: oneDNN 2.6 runs 3-D (ncw) batch normalization with its reference
// implementation; [N, C, S, 1] (nchw) gets the jit one. So batch_norm hands
// oneDNN [N, C] or [N, C, S, 1], whatever the rank of x.
/// The shape batch_norm gives oneDNN for x.
Shape dnnl_shape(const ChannelGeom& g, int64_t dim) { return dim == 2 ? Shape{g.n, g.c} : Shape{g.n, g.c, g.s, 1}; }

/// Layer and group norm see x as `rows` rows of `len` elements, each normalised
/// on its own; element j of row r is scaled by weight[affine(r, j)]. Layer norm:
/// groups 1, per_group = len, inner 1. Group norm: row r is group r % groups of
/// sample r / groups, holding per_group channels of `inner` positions each.
struct RowGeom {
  int64_t rows = 0, len = 0, groups = 1, per_group = 0, inner = 1;
  int64_t affine(int64_t r, int64_t j) const { return (r % groups) * per_group + j / inner; }
  int64_t channels() const { return groups * per_group; }
};

// --- loop kernels (Float64, group norm, empty inputs) ----------------------------

/// Mean and biased variance of `n` values `stride` apart (two passes, in double).
template <class T>
std::pair<double, double> moments(const T* p, int64_t n, int64_t stride) {
  if (n == 0) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i * stride];
  const double m = s / double(n);
  double q = 0;
  for (int64_t i = 0; i < n; ++i) q += (p[i * stride] - m) * (p[i * stride] - m);
  return {m, q / double(n)};
}

/// Per channel: mean and variance (when batch_stats, computed into mean/var;
/// otherwise read from them), then y = (x − mean)·rstd·w + b.
template <class T>
void channel_forward(const T* x, const ChannelGeom& geo, bool batch_stats, T* mean, T* var, const T* w, const T* b,
                     double eps, T* y) {
  parallel_for(geo.c, [&](int64_t c) {
    if (batch_stats) {
      double m = 0, q = 0;  // two passes, in double
      for (int64_t i = 0; i < geo.n; ++i)
        for (int64_t k = 0; k < geo.s; ++k) m += x[(i * geo.c + c) * geo.s + k];
      m /= double(geo.count());
      for (int64_t i = 0; i < geo.n; ++i)
        for (int64_t k = 0; k < geo.s; ++k) {
          const double d = x[(i * geo.c + c) * geo.s + k] - m;
          q += d * d;
        }
      mean[c] = T(m);
      var[c] = T(q / double(geo.count()));
    }
    const double rstd = 1.0 / std::sqrt(double(var[c]) + eps);
    const double scale = (w ? double(w[c]) : 1.0) * rstd, shift = (b ? double(b[c]) : 0.0) - double(mean[c]) * scale;
    for (int64_t i = 0; i < geo.n; ++i) {
      const T* xp = x + (i * geo.c + c) * geo.s;
      T* yp = y + (i * geo.c + c) * geo.s;
      for (int64_t k = 0; k < geo.s; ++k) yp[k] = T(xp[k] * scale + shift);
    }
  }, /*cost=*/geo.count());
}

/// Per channel: Σg and Σg·x̂ give dw, db and dx (see BatchNormBackward).
template <class T>
void channel_backward(const T* x, const T* g, const ChannelGeom& geo, bool batch_stats, const T* mean, const T* var,
                      const T* w, double eps, T* dx, T* dw, T* db) {
  parallel_for(geo.c, [&](int64_t c) {
    const double rstd = 1.0 / std::sqrt(double(var[c]) + eps), m = mean[c];
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < geo.n; ++i)
      for (int64_t k = 0; k < geo.s; ++k) {
        const int64_t at = (i * geo.c + c) * geo.s + k;
        sg += g[at];
        sgx += g[at] * (x[at] - m) * rstd;
      }
    if (dw) dw[c] = T(sgx);
    if (db) db[c] = T(sg);
    if (!dx) return;
    const double k_ = (w ? double(w[c]) : 1.0) * rstd, n = double(geo.count());
    const double a = batch_stats ? sg / n : 0.0, bcoef = batch_stats ? sgx / n : 0.0;
    for (int64_t i = 0; i < geo.n; ++i)
      for (int64_t k = 0; k < geo.s; ++k) {
        const int64_t at = (i * geo.c + c) * geo.s + k;
        dx[at] = T(k_ * (g[at] - a - (x[at] - m) * rstd * bcoef));
      }
  }, /*cost=*/geo.count());
}

/// Per row: mean and variance into mean/var, then y = (x − mean)·rstd·w + b.
template <class T>
void row_forward(const T* x, const RowGeom& geo, const T* w, const T* b, double eps, T* y, T* mean, T* var) {
  parallel_for(geo.rows, [&](int64_t r) {
    const T* xp = x + r * geo.len;
    T* yp = y + r * geo.len;
    const auto [m, v] = moments(xp, geo.len, 1);
    mean[r] = T(m);
    var[r] = T(v);
    const double rstd = 1.0 / std::sqrt(v + eps);
    // channel by channel: y = (x − μ)·scale + b, one scale and b per channel
    // (x − μ) first: x·scale − μ·scale would cancel when |μ| ≫ σ
    const T mt = T(m);
    for (int64_t d = 0; d < geo.per_group; ++d) {
      const int64_t a = geo.affine(r, d * geo.inner);
      const T scale = T(rstd * (w ? double(w[a]) : 1.0)), shift = b ? b[a] : T(0);
      const T* xd = xp + d * geo.inner;
      T* yd = yp + d * geo.inner;
      for (int64_t k = 0; k < geo.inner; ++k) yd[k] = (xd[k] - mt) * scale + shift;
    }
  }, /*cost=*/geo.len);
}

/// dx per row; dw, db per channel (a channel's elements are spread over rows).
template <class T>
void row_backward(const T* x, const T* g, const RowGeom& geo, const T* mean, const T* var, const T* w, double eps,
                  T* dx, T* dw, T* db) {
  const auto rstd_of = [&](int64_t r) { return 1.0 / std::sqrt(double(var[r]) + eps); };
  if (dx)
    parallel_for(geo.rows, [&](int64_t r) {
      const T* xp = x + r * geo.len;
      const T* gp = g + r * geo.len;
      const double m = mean[r], rstd = rstd_of(r), n = double(geo.len);
      const auto weight = [&](int64_t d) { return w ? double(w[geo.affine(r, d * geo.inner)]) : 1.0; };
      double s1 = 0, s2 = 0;  // Σ dx̂, Σ dx̂·(x − μ) with dx̂ = g·w, channel by channel
      for (int64_t d = 0; d < geo.per_group; ++d) {
        double sg = 0, sgx = 0;
        for (int64_t j = d * geo.inner; j < (d + 1) * geo.inner; ++j) {
          sg += gp[j];
          sgx += gp[j] * (xp[j] - m);
        }
        s1 += weight(d) * sg;
        s2 += weight(d) * sgx;
      }
      // dx = rstd·(g·w − s1/n − (x − μ)·rstd²·s2/n) = (g·w)·rstd − (x − μ)·c1 − c0
      const T c1 = T(rstd * rstd * rstd * s2 / n), c0 = T(rstd * s1 / n), mt = T(m);
      for (int64_t d = 0; d < geo.per_group; ++d) {
        const T k = T(weight(d) * rstd);
        const T* xd = xp + d * geo.inner;
        const T* gd = gp + d * geo.inner;
        T* dd = dx + r * geo.len + d * geo.inner;
        for (int64_t j = 0; j < geo.inner; ++j) dd[j] = gd[j] * k - (xd[j] - mt) * c1 - c0;
      }
    }, /*cost=*/geo.len);
  if (dw || db) {
    // Note: tasks of 64 adjacent channels, each walking the samples in order: for
    // layer norm that reads 64 adjacent columns of each row, not one strided column.
    constexpr int64_t kBlock = 64;
    std::vector<double> rstd(size_t(geo.rows));
    for (int64_t r = 0; r < geo.rows; ++r) rstd[size_t(r)] = rstd_of(r);
    const int64_t samples = geo.rows / geo.groups;
    parallel_for((geo.channels() + kBlock - 1) / kBlock, [&](int64_t blk) {
      const int64_t a0 = blk * kBlock, a1 = std::min(geo.channels(), a0 + kBlock);
      double sw[kBlock] = {}, sb[kBlock] = {};
      for (int64_t i = 0; i < samples; ++i)
        for (int64_t a = a0; a < a1; ++a) {
          const int64_t r = i * geo.groups + a / geo.per_group, first = r * geo.len + (a % geo.per_group) * geo.inner;
          const double m = mean[r], rs = rstd[size_t(r)];
          double acc_w = 0, acc_b = 0;
          for (int64_t at = first; at < first + geo.inner; ++at) {
            acc_b += g[at];
            acc_w += g[at] * (x[at] - m);
          }
          sw[a - a0] += acc_w * rs;
          sb[a - a0] += acc_b;
        }
      for (int64_t a = a0; a < a1; ++a) {
        if (dw) dw[a] = T(sw[a - a0]);
        if (db) db[a] = T(sb[a - a0]);
      }
    }, /*cost=*/samples * kBlock * geo.inner);
  }
}

// --- oneDNN (Float32) -------------------------------------------------------------

// Note: cache keys start with ids of their own, past backend::OpId's (which
// other op families extend), so no key of this file can equal one of theirs.
constexpr int64_t kBatchNormId = 1001, kLayerNormId = 1002;

normalization_flags flags_of(bool scale, bool shift, bool global_stats) {
  normalization_flags f = normalization_flags::none;
  if (scale) f |= normalization_flags::use_scale;
  if (shift) f |= normalization_flags::use_shift;
  if (global_stats) f |= normalization_flags::use_global_stats;
  return f;
}

dn::Key norm_key(int64_t op, prop_kind pk, normalization_flags f, double eps, const Shape& x) {
  dn::Key k{op, int64_t(pk), int64_t(f), int64_t(std::bit_cast<uint32_t>(float(eps)))};
  k.insert(k.end(), x.begin(), x.end());
  return k;
}

/// Backward propagates to scale/shift when they are used, else to the data only.
prop_kind backward_kind(normalization_flags f) {
  const auto ss = normalization_flags::use_scale | normalization_flags::use_shift;
  return (unsigned(f) & unsigned(ss)) ? prop_kind::backward : prop_kind::backward_data;
}

struct BnFwd {
  dnnl::batch_normalization_forward::primitive_desc pd;
  dnnl::batch_normalization_forward prim;
};
struct BnBwd {
  dnnl::batch_normalization_backward::primitive_desc pd;
  dnnl::batch_normalization_backward prim;
};

// memory descriptors (x plain: nc or nchw) → primitive descriptor → primitive
BnFwd bn_fwd(const Shape& x, prop_kind pk, normalization_flags f, double eps) {
  return *dn::cached<BnFwd>(norm_key(kBatchNormId, pk, f, eps, x), [&] {
    dnnl::batch_normalization_forward::desc desc(pk, dn::plain_md(x), float(eps), f);
    dnnl::batch_normalization_forward::primitive_desc pd(desc, dn::attr(), dn::engine());
    return BnFwd{pd, dnnl::batch_normalization_forward(pd)};
  });
}
BnBwd bn_bwd(const Shape& x, normalization_flags f, double eps) {
  return *dn::cached<BnBwd>(norm_key(kBatchNormId, backward_kind(f), f, eps, x), [&] {
    const BnFwd hint = bn_fwd(x, prop_kind::forward_training, f, eps);
    dnnl::batch_normalization_backward::desc desc(backward_kind(f), dn::plain_md(x), dn::plain_md(x), float(eps), f);
    dnnl::batch_normalization_backward::primitive_desc pd(desc, dn::attr(), dn::engine(), hint.pd);
    return BnBwd{pd, dnnl::batch_normalization_backward(pd)};
  });
}

struct LnFwd {
  dnnl::layer_normalization_forward::primitive_desc pd;
  dnnl::layer_normalization_forward prim;
};
struct LnBwd {
  dnnl::layer_normalization_backward::primitive_desc pd;
  dnnl::layer_normalization_backward prim;
};

// x as [rows, len], statistics [rows]
LnFwd ln_fwd(const Shape& x2, prop_kind pk, normalization_flags f, double eps) {
  return *dn::cached<LnFwd>(norm_key(kLayerNormId, pk, f, eps, x2), [&] {
    dnnl::layer_normalization_forward::desc desc(pk, dn::plain_md(x2), dn::plain_md({x2[0]}), float(eps), f);
    dnnl::layer_normalization_forward::primitive_desc pd(desc, dn::attr(), dn::engine());
    return LnFwd{pd, dnnl::layer_normalization_forward(pd)};
  });
}
LnBwd ln_bwd(const Shape& x2, normalization_flags f, double eps) {
  return *dn::cached<LnBwd>(norm_key(kLayerNormId, backward_kind(f), f, eps, x2), [&] {
    const LnFwd hint = ln_fwd(x2, prop_kind::forward_training, f, eps);
    dnnl::layer_normalization_backward::desc desc(backward_kind(f), dn::plain_md(x2), dn::plain_md(x2),
                                                  dn::plain_md({x2[0]}), float(eps), f);
    dnnl::layer_normalization_backward::primitive_desc pd(desc, dn::attr(), dn::engine(), hint.pd);
    return LnBwd{pd, dnnl::layer_normalization_backward(pd)};
  });
}

/// The oneDNN arguments shared by both normalizations' forward and backward.
struct DnnlArgs {
  std::unordered_map<int, memory> args;
  void add(int arg, const Tensor& t) {
    if (t.defined()) args.emplace(arg, dn::mem(dn::plain_md(t.shape()), t));
  }
};

/// Forward on x (contiguous Float32, shaped for the primitive); mean/var are
/// outputs (training) or inputs (use_global_stats).
template <class Fwd>
void dnnl_norm_forward(const Fwd& p, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mean,
                       const Tensor& var, const Tensor& y) {
  DnnlArgs a;
  a.add(DNNL_ARG_SRC, x);
  a.add(DNNL_ARG_DST, y);
  a.add(DNNL_ARG_SCALE, w);
  a.add(DNNL_ARG_SHIFT, b);
  a.add(DNNL_ARG_MEAN, mean);
  a.add(DNNL_ARG_VARIANCE, var);
  dn::execute(p.prim, std::move(a.args));
}

/// Backward: dx always; dw / db (buffers) when the primitive uses scale / shift.
/// Note: with use_shift, oneDNN 2.6's backward also asks for the shift itself,
/// which no gradient depends on: it gets zeros.
template <class Bwd>
void dnnl_norm_backward(const Bwd& p, const Tensor& x, const Tensor& g, const Tensor& w, const Tensor& mean,
                        const Tensor& var, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  DnnlArgs a;
  a.add(DNNL_ARG_SRC, x);
  a.add(DNNL_ARG_DIFF_DST, g);
  a.add(DNNL_ARG_SCALE, w);
  a.add(DNNL_ARG_MEAN, mean);
  a.add(DNNL_ARG_VARIANCE, var);
  a.add(DNNL_ARG_DIFF_SRC, dx);
  a.add(DNNL_ARG_DIFF_SCALE, dw);
  a.add(DNNL_ARG_DIFF_SHIFT, db);
  if (db.defined()) a.add(DNNL_ARG_SHIFT, zeros(db.shape()));
  dn::execute(p.prim, std::move(a.args));
}

// --- the recorded backward (create_graph) -------------------------------------------

/// What the recorded formulas need to know about one normalisation.
struct RecordedGeom {
  Shape stat_shape;           ///< x reshaped so that its statistics are over `stat_dims`
  std::vector<int64_t> stat_dims;
  Shape affine_shape;         ///< weight and bias reshaped to broadcast against x
  bool batch_stats = true;    ///< false: mean and var are constants (batch norm in eval)
  Tensor mean, var;           ///< the constants, shaped to broadcast against stat_shape
};

Tensor mean_over(Tensor t, const std::vector<int64_t>& dims) {
  for (int64_t d : dims) t = mean(t, d, true);
  return t;
}

struct Grads {
  Tensor dx, dw, db;
};

/// The backward of y = x̂·w + b with recorded ops (see the nodes' formulas),
/// computing only what `need` asks for.
Grads recorded_backward(const Tensor& x, const Tensor& g, const Tensor& w, const RecordedGeom& geo, double eps,
                        const std::array<bool, 3>& need) {
  const Tensor xs = reshape(x, geo.stat_shape);
  Tensor mu = geo.mean, rstd;
  if (geo.batch_stats) {
    mu = mean_over(xs, geo.stat_dims);
    const Tensor xc = xs - mu;
    rstd = rsqrt(mean_over(xc * xc, geo.stat_dims) + eps);
  } else {
    rstd = rsqrt(geo.var + eps);
  }
  const Tensor xhat_s = (xs - mu) * rstd;
  Grads out;
  if (need[0]) {
    const Tensor dh = reshape(w.defined() ? g * reshape(w, geo.affine_shape) : g, geo.stat_shape);
    Tensor dx_s = geo.batch_stats
                      ? rstd * (dh - mean_over(dh, geo.stat_dims) - xhat_s * mean_over(dh * xhat_s, geo.stat_dims))
                      : dh * rstd;
    out.dx = reshape(dx_s, x.shape());
  }
  const Shape param_shape = w.defined() ? w.shape() : Shape{};
  if (need[1]) out.dw = reshape(sum_to(g * reshape(xhat_s, x.shape()), geo.affine_shape), param_shape);
  if (need[2]) out.db = sum_to(g, geo.affine_shape);
  return out;
}

/// A copy of a statistic (never an alias of a running buffer the module updates).
Tensor stat_copy(const Tensor& t, Dtype d) {
  NoGradGuard no_grad;
  return copy_contiguous(t.to(d));
}

Tensor undefined_unless(bool keep, Tensor t) { return keep ? std::move(t) : Tensor(); }

void check_param(const Tensor& p, const Tensor& x, const Shape& want, const char* op, const char* what) {
  if (!p.defined()) return;
  TAPE_CHECK(p.shape() == want, op, ": ", what, " must have shape ", want, " for input of shape ", x.shape(), ", got ",
             p.shape());
  check_same_dtype(x, p, op, what);
}

// --- batch_norm ----------------------------------------------------------------------

// Forward: x̂ = (x − μ)/√(σ² + eps), y = x̂·w + b; μ, σ² per channel over N and the
//   spatial dims: the batch's mean and biased variance when training,
//   the running statistics (constants) otherwise
// Backward: dx = w/√(σ² + eps) · (g − mean(g) − x̂·mean(g·x̂)) when training,
//   w/√(σ² + eps) · g otherwise;  dw = Σ g·x̂;  db = Σ g  (sums and means per channel)
struct BatchNormBackward final : SavingNode<2> {
  ChannelGeom geo;
  double eps = 1e-5;
  bool batch_stats = true, use_dnnl = false;
  Tensor mean, var;  // per channel: the batch's (training) or a copy of the running ones
  const char* name() const override { return "BatchNormBackward"; }
  void release_saved() override {
    SavingNode<2>::release_saved();
    mean = var = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    const Tensor x = saved(0), w = saved(1);
    const std::array<bool, 3> need{needs_input_grad(0), needs_input_grad(1), needs_input_grad(2)};
    if (any_requires_grad({&g_in, &x, &w})) {  // create_graph: the formulas, recorded
      RecordedGeom r{{geo.n, geo.c, geo.s}, {2, 0}, affine_shape(x), batch_stats, {}, {}};
      if (!batch_stats) r.mean = reshape(mean, {1, geo.c, 1}), r.var = reshape(var, {1, geo.c, 1});
      Grads d = recorded_backward(x, g_in, w, r, eps, need);
      return {d.dx, d.dw, d.db.defined() ? reshape(d.db, {geo.c}) : d.db};
    }
    const Tensor xc = contig(x), g = contig(g_in);
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    Tensor dw = Tensor::empty({geo.c}, x.dtype()), db = Tensor::empty({geo.c}, x.dtype());
    if (use_dnnl) {
      dn::translate_errors("batch_norm backward", {&x.shape()}, [&] {
        const normalization_flags f = flags_of(w.defined(), true, !batch_stats);
        const Shape s = dnnl_shape(geo, x.dim());
        dnnl_norm_backward(bn_bwd(s, f, eps), reshape(xc, s), reshape(g, s), w.defined() ? contig(w) : Tensor(), mean,
                           var, reshape(dx, s), w.defined() ? dw : Tensor(), db);
      });
    } else {
      visit_float(x.dtype(), name(), [&]<class T>() {
        const Tensor wc = w.defined() ? contig(w) : Tensor();
        channel_backward<T>(xc.data<T>(), g.data<T>(), geo, batch_stats, mean.data<T>(), var.data<T>(),
                            wc.defined() ? wc.data<T>() : nullptr, eps, dx.data<T>(), dw.data<T>(), db.data<T>());
      });
    }
    return {undefined_unless(need[0], dx), undefined_unless(need[1], dw), undefined_unless(need[2], db)};
  }

 private:
  Shape affine_shape(const Tensor& x) const {
    Shape s(size_t(x.dim()), 1);
    s[1] = geo.c;
    return s;
  }
};

/// running = (1 − momentum)·running + momentum·batch (unbiased variance), not recorded.
void update_running(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean, const Tensor& var,
                    int64_t count, double momentum) {
  NoGradGuard no_grad;
  if (running_mean.defined()) {
    Tensor r = running_mean;  // a handle: copy_ writes the buffer itself
    r.copy_(r * (1.0 - momentum) + mean.to(r.dtype()) * momentum);
  }
  if (running_var.defined()) {
    Tensor r = running_var;
    const double unbias = count > 1 ? double(count) / double(count - 1) : 1.0;
    r.copy_(r * (1.0 - momentum) + var.to(r.dtype()) * (momentum * unbias));
  }
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  if (x_in.defined() && x_in.dtype() == Dtype::BFloat16)
    return batch_norm(x_in.to(Dtype::Float32), running_mean, running_var, float32_if_bfloat16(weight),
                      float32_if_bfloat16(bias), training, momentum, eps)
        .to(Dtype::BFloat16);
  check_float(x_in, op);
  TAPE_CHECK(x_in.dim() >= 2, op, ": input must be [N, C], [N, C, L] or [N, C, H, W], got shape ", x_in.shape());
  const ChannelGeom geo = channel_geom(x_in.shape());
  check_param(weight, x_in, {geo.c}, op, "weight");
  check_param(bias, x_in, {geo.c}, op, "bias");
  for (const Tensor* r : {&running_mean, &running_var}) {
    if (!r->defined()) continue;
    TAPE_CHECK(is_floating(r->dtype()) && r->shape() == Shape{geo.c}, op, ": running_mean and running_var must be "
               "floating tensors of shape [", geo.c, "] for input of shape ", x_in.shape(), ", got ", r->shape());
  }
  TAPE_CHECK(training || (running_mean.defined() && running_var.defined()), op,
             ": running_mean and running_var are needed when not training (input of shape ", x_in.shape(), ")");
  TAPE_CHECK(!training || geo.count() != 1, op,
             ": Expected more than 1 value per channel when training, got input size ", x_in.shape());

  const Tensor x = contig(x_in), w = weight.defined() ? contig(weight) : Tensor(),
               b = bias.defined() ? contig(bias) : Tensor();
  const Dtype dt = x.dtype();
  Tensor y = Tensor::empty(x.shape(), dt), mean, var;
  if (training) {
    mean = Tensor::empty({geo.c}, dt);
    var = Tensor::empty({geo.c}, dt);
  } else {
    mean = stat_copy(running_mean, dt);
    var = stat_copy(running_var, dt);
  }
  const bool use_dnnl = dt == Dtype::Float32 && x.numel() > 0;
  const bool recording = any_requires_grad({&x_in, &weight, &bias});
  if (use_dnnl) {
    dn::translate_errors(op, {&x.shape()}, [&] {
      // Note: forward_training also serves the eval forward that records a graph,
      // because the backward primitive takes a forward_training pd as its hint.
      const prop_kind pk = training || recording ? prop_kind::forward_training : prop_kind::forward_inference;
      NoGradGuard no_grad;  // the reshapes are views for oneDNN, not graph edges
      const Shape s = dnnl_shape(geo, x.dim());
      dnnl_norm_forward(bn_fwd(s, pk, flags_of(w.defined(), b.defined(), !training), eps), reshape(x, s), w, b, mean,
                        var, reshape(y, s));
    });
  } else {
    visit_float(dt, op, [&]<class T>() {
      channel_forward<T>(x.data<T>(), geo, training, mean.data<T>(), var.data<T>(), w.defined() ? w.data<T>() : nullptr,
                         b.defined() ? b.data<T>() : nullptr, eps, y.data<T>());
    });
  }
  if (training && geo.count() > 0) update_running(running_mean, running_var, mean, var, geo.count(), momentum);
  if (recording) {
    auto node = std::make_shared<BatchNormBackward>();
    node->geo = geo;
    node->eps = eps;
    node->batch_stats = training;
    node->use_dnnl = use_dnnl;
    node->mean = mean;
    node->var = var;
    node->save(0, x_in);
    node->save(1, weight);
    record(y, std::move(node), {&x_in, &weight, &bias});
  }
  return y;
}

// --- layer_norm and group_norm ----------------------------------------------------------

namespace {

// layer_norm: Forward: x̂ = (x − μ)/√(σ² + eps), y = x̂·w + b; μ, σ² per row over
//   the trailing normalized_shape (biased variance); w, b of normalized_shape
//   Backward: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))/√(σ² + eps) with dx̂ = g·w
//   (means per row);  dw = Σ g·x̂;  db = Σ g  (sums over the leading dims)
// group_norm: Forward: x̂ = (x − μ)/√(σ² + eps), y = x̂·w + b; μ, σ² per (sample,
//   group of C/G channels) over its channels and positions; w, b per channel
//   Backward: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))/√(σ² + eps) with dx̂ = g·w
//   (means per sample and group);  dw = Σ g·x̂;  db = Σ g  (sums per channel)
struct RowNormBackward final : SavingNode<2> {
  RowGeom geo;
  RecordedGeom recorded;  // stat_shape, stat_dims, affine_shape
  double eps = 1e-5;
  bool use_dnnl = false;  // layer_norm in Float32
  bool group = false;
  Tensor mean, var;       // per row
  const char* name() const override { return group ? "GroupNormBackward" : "LayerNormBackward"; }
  void release_saved() override {
    SavingNode<2>::release_saved();
    mean = var = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    const Tensor x = saved(0), w = saved(1);
    const std::array<bool, 3> need{needs_input_grad(0), needs_input_grad(1), needs_input_grad(2)};
    if (any_requires_grad({&g_in, &x, &w})) {  // create_graph: the formulas, recorded
      Grads d = recorded_backward(x, g_in, w, recorded, eps, need);
      const Shape param = group ? Shape{geo.channels()} : recorded.affine_shape;
      return {d.dx, d.dw, d.db.defined() ? reshape(d.db, param) : d.db};
    }
    const Tensor xc = contig(x), g = contig(g_in);
    const Shape param = group ? Shape{geo.channels()} : recorded.affine_shape;
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    Tensor dw = Tensor::empty(param, x.dtype()), db = Tensor::empty(param, x.dtype());
    if (use_dnnl) {
      dn::translate_errors("layer_norm backward", {&x.shape()}, [&] {
        const normalization_flags f = flags_of(w.defined(), true, false);
        const Shape x2{geo.rows, geo.len};
        dnnl_norm_backward(ln_bwd(x2, f, eps), reshape(xc, x2), reshape(g, x2), w.defined() ? contig(w) : Tensor(),
                           mean, var, reshape(dx, x2), w.defined() ? reshape(dw, {geo.len}) : Tensor(),
                           reshape(db, {geo.len}));
      });
    } else {
      visit_float(x.dtype(), name(), [&]<class T>() {
        const Tensor wc = w.defined() ? contig(w) : Tensor();
        row_backward<T>(xc.data<T>(), g.data<T>(), geo, mean.data<T>(), var.data<T>(),
                        wc.defined() ? wc.data<T>() : nullptr, eps, need[0] ? dx.data<T>() : nullptr,
                        need[1] ? dw.data<T>() : nullptr, need[2] ? db.data<T>() : nullptr);
      });
    }
    return {undefined_unless(need[0], dx), undefined_unless(need[1], dw), undefined_unless(need[2], db)};
  }
};

/// The forward shared by layer_norm and group_norm: x contiguous, w/b checked.
Tensor row_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, double eps, const RowGeom& geo,
                RecordedGeom recorded, bool group) {
  const char* op = group ? "group_norm" : "layer_norm";
  const Tensor x = contig(x_in), w = weight.defined() ? contig(weight) : Tensor(),
               b = bias.defined() ? contig(bias) : Tensor();
  const Dtype dt = x.dtype();
  Tensor y = Tensor::empty(x.shape(), dt), mean = Tensor::empty({geo.rows}, dt), var = Tensor::empty({geo.rows}, dt);
  const bool use_dnnl = !group && dt == Dtype::Float32 && x.numel() > 0;
  const bool recording = any_requires_grad({&x_in, &weight, &bias});
  if (use_dnnl) {
    dn::translate_errors(op, {&x.shape()}, [&] {
      NoGradGuard no_grad;  // the reshapes below are views for oneDNN, not graph edges
      const Shape x2{geo.rows, geo.len};
      const prop_kind pk = recording ? prop_kind::forward_training : prop_kind::forward_inference;
      dnnl_norm_forward(ln_fwd(x2, pk, flags_of(w.defined(), b.defined(), false), eps), reshape(x, x2),
                        w.defined() ? reshape(w, {geo.len}) : Tensor(), b.defined() ? reshape(b, {geo.len}) : Tensor(),
                        mean, var, reshape(y, x2));
    });
  } else {
    visit_float(dt, op, [&]<class T>() {
      row_forward<T>(x.data<T>(), geo, w.defined() ? w.data<T>() : nullptr, b.defined() ? b.data<T>() : nullptr, eps,
                     y.data<T>(), mean.data<T>(), var.data<T>());
    });
  }
  if (recording) {
    auto node = std::make_shared<RowNormBackward>();
    node->geo = geo;
    node->recorded = std::move(recorded);
    node->eps = eps;
    node->use_dnnl = use_dnnl;
    node->group = group;
    node->mean = mean;
    node->var = var;
    node->save(0, x_in);
    node->save(1, weight);
    record(y, std::move(node), {&x_in, &weight, &bias});
  }
  return y;
}

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "layer_norm";
  if (x_in.defined() && x_in.dtype() == Dtype::BFloat16)
    return layer_norm(x_in.to(Dtype::Float32), normalized_shape, float32_if_bfloat16(weight),
                      float32_if_bfloat16(bias), eps)
        .to(Dtype::BFloat16);
  check_float(x_in, op);
  const int64_t k = int64_t(normalized_shape.size()), lead = x_in.dim() - k;
  TAPE_CHECK(k >= 1, op, ": normalized_shape must have at least one dim, got ", normalized_shape);
  bool matches = lead >= 0;
  for (int64_t i = 0; matches && i < k; ++i) matches = x_in.size(lead + i) == normalized_shape[size_t(i)];
  TAPE_CHECK(matches, op, ": expected input of shape [*, ", shape_str(normalized_shape).substr(1),
             " (normalized_shape ", normalized_shape, "), got ", x_in.shape());
  check_param(weight, x_in, normalized_shape, op, "weight");
  check_param(bias, x_in, normalized_shape, op, "bias");
  RowGeom geo;
  geo.len = shape_numel(normalized_shape);
  geo.rows = geo.len > 0 ? x_in.numel() / geo.len : 0;
  if (geo.len == 0) {
    geo.rows = 1;
    for (int64_t i = 0; i < lead; ++i) geo.rows *= x_in.size(i);
  }
  geo.per_group = geo.len;
  RecordedGeom rec{{geo.rows, geo.len}, {1}, normalized_shape, true, {}, {}};
  return row_norm(x_in, weight, bias, eps, geo, std::move(rec), false);
}

Tensor group_norm(const Tensor& x_in, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  if (x_in.defined() && x_in.dtype() == Dtype::BFloat16)
    return group_norm(x_in.to(Dtype::Float32), num_groups, float32_if_bfloat16(weight), float32_if_bfloat16(bias), eps)
        .to(Dtype::BFloat16);
  check_float(x_in, op);
  TAPE_CHECK(x_in.dim() >= 2, op, ": input must be [N, C, *], got shape ", x_in.shape());
  const int64_t n = x_in.size(0), c = x_in.size(1);
  TAPE_CHECK(num_groups >= 1 && c % num_groups == 0, op, ": the ", c, " channels of input ", x_in.shape(),
             " cannot be split into ", num_groups, " groups");
  check_param(weight, x_in, {c}, op, "weight");
  check_param(bias, x_in, {c}, op, "bias");
  RowGeom geo;
  geo.groups = num_groups;
  geo.per_group = c / num_groups;
  geo.inner = 1;
  for (int64_t i = 2; i < x_in.dim(); ++i) geo.inner *= x_in.size(i);
  geo.rows = n * num_groups;
  geo.len = geo.per_group * geo.inner;
  Shape affine(size_t(x_in.dim()), 1);
  affine[1] = c;
  RecordedGeom rec{{n, num_groups, geo.len}, {2}, affine, true, {}, {}};
  return row_norm(x_in, weight, bias, eps, geo, std::move(rec), true);
}

}  // namespace tape
