#include "tape/ops/gradcheck.hpp"

#include <algorithm>
#include <cmath>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

GradcheckTolerances gradcheck_defaults(Dtype dtype) {
  // Note: Float64 tolerances. The central difference's error is truncation,
  // ε²·f'''/6 (≈ 1e-12 relative at ε = 1e-6), plus f's rounding noise over the
  // step, a few ulps of |f| / 2ε (≈ 1e-10·|f|; f = Σ y·v is at most ~50 for the
  // registry's samples). rtol 1e-5 and atol 1e-8 sit a factor ≥ 10 above the
  // worst error of any correct registry op (docs/gradcheck.md has the
  // measurements) and a factor 100 below a backward that is 0.1 % off, which
  // gradcheck_self_test shows failing.
  if (dtype == Dtype::Float64) return {1e-6, 1e-5, 1e-8};
  return {1e-3, 1e-2, 1e-3};
}

namespace {
/// y as contiguous doubles (any dtype).
std::vector<double> as_doubles(const Tensor& y) {
  if (y.numel() == 0) return {};
  return cast_copy(y, Dtype::Float64).to_vector<double>();
}

/// sum(y ⊙ v), without recording. Accumulated in long double: when one input
/// element moves, most terms are bit-identical in f(x+ε) and f(x−ε), and the
/// wider sum lets them cancel exactly, so the numeric gradient's noise is the
/// rounding of the terms that changed, not of the whole sum (which matters for
/// ops with many outputs, such as conv2d).
long double dot(const Tensor& y, const std::vector<double>& v) {
  const std::vector<double> p = as_doubles(y);
  long double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += static_cast<long double>(p[i]) * v[i];
  return s;
}

/// Reads and writes element j (in row-major order of the shape) of a Float32 or
/// Float64 tensor with any strides, in place.
class Element {
 public:
  explicit Element(const Tensor& x) : x_(x) {}
  double get(int64_t j) const {
    const int64_t o = offset(j);
    return x_.dtype() == Dtype::Float64 ? base<double>()[o] : double(base<float>()[o]);
  }
  /// Sets element j to v rounded to the tensor's dtype.
  void set(int64_t j, double v) const {
    const int64_t o = offset(j);
    if (x_.dtype() == Dtype::Float64) base<double>()[o] = v;
    else base<float>()[o] = float(v);
  }

 private:
  template <class T>
  T* base() const {
    return static_cast<T*>(x_.impl()->storage->data()) + x_.impl()->offset;
  }
  int64_t offset(int64_t j) const {
    const Shape& s = x_.shape();
    const Shape& st = x_.strides();
    int64_t o = 0;
    for (size_t d = s.size(); d-- > 0;) {
      o += (j % s[d]) * st[d];
      j /= s[d];
    }
    return o;
  }
  Tensor x_;
};

/// Every index of an input, or a sorted sample of max_elements_per_input of them
/// (partial Fisher–Yates seeded from opt.seed and the input's position).
std::vector<int64_t> elements_to_check(int64_t numel, const GradcheckOptions& opt, size_t input) {
  std::vector<int64_t> idx(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) idx[size_t(i)] = i;
  const int64_t m = opt.max_elements_per_input;
  if (m <= 0 || m >= numel) return idx;
  Generator g(opt.seed * 0x100000001b3ull + input + 1);
  for (int64_t i = 0; i < m; ++i) std::swap(idx[size_t(i)], idx[size_t(i + int64_t(g.below(uint64_t(numel - i))))]);
  idx.resize(size_t(m));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Note: kinks. Where ReLU or max-pool is not differentiable within ±ε of the
// sample, the central difference averages slopes and misses the analytic value
// (the slope at the point itself), and no step size fixes that in float32: a
// smaller ε crosses fewer kinks but the output's rounding makes the numeric error
// grow like ulp(f)/ε. A first-layer convolution weight touches every pixel, so
// it crosses kinks within ±1e-3 all the time. Finite differences cannot judge
// such an element either way, so with excuse_kinks an element that fails is
// counted as a kink instead when f visibly bends within ±ε — its slopes differ
// by more than the tolerance plus twice their rounding noise (2 ulps of the
// output's magnitude over the step), either
//  1. between the one-sided slopes (f(x+ε) − f(x))/ε and (f(x) − f(x−ε))/ε
//     (one kink: the central difference misses by half their gap), or
//  2. among the slopes over the 8 segments of [−ε, ε], ε/4 each (several kinks).
// A backward that is wrong where f is smooth shows no bend, so it still fails.
template <class Probe>
bool on_kink(double numeric, double plus, double minus, double center, double magnitude,
             const GradcheckTolerances& t, double unit_roundoff, const Probe& probe) {
  const double eps = t.eps;
  const double tol = t.atol + t.rtol * std::fabs(numeric);
  const double ulp = magnitude * unit_roundoff;  // at the output's magnitude
  const double right = (plus - center) / eps, left = (center - minus) / eps;
  if (std::fabs(right - left) > tol + 2.0 * (2.0 * ulp / eps)) return true;
  constexpr int kSeg = 4;  // segments per side
  const double h = eps / kSeg;
  double f[2 * kSeg + 1];
  f[0] = minus;
  f[kSeg] = center;
  f[2 * kSeg] = plus;
  for (int i = 1; i < kSeg; ++i) {
    f[kSeg + i] = probe(h * i);
    f[kSeg - i] = probe(-h * i);
  }
  double lo = 1e300, hi = -1e300;
  for (int i = 0; i < 2 * kSeg; ++i) {
    const double slope = (f[i + 1] - f[i]) / h;
    lo = std::min(lo, slope);
    hi = std::max(hi, slope);
  }
  return hi - lo > tol + 2.0 * (2.0 * ulp / h);
}

/// Stride-0 dims make one memory location several elements: perturbing one would move them all.
bool overlaps(const Tensor& x) {
  if (x.numel() == 0) return false;  // a 0-size dim makes the other strides irrelevant
  for (size_t d = 0; d < x.shape().size(); ++d)
    if (x.shape()[d] > 1 && x.strides()[d] == 0) return true;
  return false;
}
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult r;
  // The dtype decides the defaults: Float64 only when every checked input is.
  bool any_checked = false, all_f64 = true;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    TAPE_CHECK(x.dtype() == Dtype::Float32 || x.dtype() == Dtype::Float64, "gradcheck: input ", k,
               " must be Float32 or Float64 to be checked, got ", dtype_name(x.dtype()));
    TAPE_CHECK(!overlaps(x), "gradcheck: input ", k, " (shape ", x.shape(), ", strides ", x.strides(),
               ") has a stride-0 dim: one element is several, so it cannot be perturbed alone");
    any_checked = true;
    all_f64 = all_f64 && x.dtype() == Dtype::Float64;
  }
  r.dtype = any_checked && all_f64 ? Dtype::Float64 : Dtype::Float32;
  const GradcheckTolerances def = gradcheck_defaults(r.dtype);
  const GradcheckTolerances t{opt.eps.value_or(def.eps), opt.rtol.value_or(def.rtol), opt.atol.value_or(def.atol)};
  TAPE_CHECK(t.eps > 0 && t.rtol >= 0 && t.atol >= 0, "gradcheck: eps must be > 0 and rtol, atol >= 0, got eps ",
             t.eps, ", rtol ", t.rtol, ", atol ", t.atol);
  r.used = t;
  const double unit_roundoff = r.dtype == Dtype::Float64 ? 2.220446049250313e-16 : 1.1920929e-7;

  // Analytic: one backward of sum(y ⊙ v).
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).set_grad({});
  Tensor y = f(inputs);
  if (!y.requires_grad()) {
    r.message = "output does not require grad: nothing to check";
    return r;
  }
  Generator gen(opt.seed ^ 0x9e3779b97f4a7c15ull);
  // A random v checks every output element; a scalar output gets v = 1, so the
  // check's sensitivity does not hinge on the size of one random number. v has
  // y's dtype (Float64 draws the Float32 values, widened).
  Tensor v = y.numel() == 1 ? ones(y.shape(), y.dtype()) : randn(y.shape(), y.dtype(), gen);
  y.backward(v);
  const std::vector<double> vv = as_doubles(v);

  bool any_nonzero = false;
  r.ok = true;
  r.message = "ok";
  NoGradGuard no_grad;
  // f·v at the unperturbed inputs, and Σ|f·v| (the scale of its rounding noise)
  double center = 0, magnitude = 0;
  if (opt.excuse_kinks) {
    const std::vector<double> q = as_doubles(f(inputs));
    for (size_t i = 0; i < vv.size(); ++i) {
      center += q[i] * vv[i];
      magnitude += std::fabs(q[i] * vv[i]);
    }
  }
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor ga = x.grad();
    TAPE_CHECK(!ga.defined() || ga.shape() == x.shape(), "gradcheck: the gradient of input ", k, " has shape ",
               ga.shape(), " but the input has shape ", x.shape());
    const std::vector<double> analytic = ga.defined() ? as_doubles(ga) : std::vector<double>(size_t(x.numel()), 0.0);
    const Element el(x);
    // f(x + h·e_j) · v, restoring the element afterwards (bit for bit: the old
    // value is representable). `step` gets the step actually taken: x + h
    // rounded to x's dtype, minus x.
    auto probe = [&](int64_t j, double h, double* step = nullptr) {
      const double orig = el.get(j);
      el.set(j, orig + h);
      if (step) *step = el.get(j) - orig;
      const long double out = dot(f(inputs), vv);
      el.set(j, orig);
      return out;
    };
    for (int64_t j : elements_to_check(x.numel(), opt, k)) {
      double up = 0, down = 0;
      const long double plus = probe(j, t.eps, &up), minus = probe(j, -t.eps, &down);
      const double numeric = double((plus - minus) / (up - down));
      const double a = analytic[size_t(j)];
      const double err = std::fabs(a - numeric);
      const double tol = t.atol + t.rtol * std::fabs(numeric);
      ++r.checked;
      if (opt.excuse_kinks && !(err <= tol) &&
          on_kink(numeric, double(plus), double(minus), center, magnitude, t, unit_roundoff,
                  [&](double h) { return double(probe(j, h)); })) {
        ++r.kinks;
        continue;
      }
      if (std::fabs(numeric) > t.atol) any_nonzero = true;
      r.max_abs_err = std::max(r.max_abs_err, err);
      r.max_rel_err = std::max(r.max_rel_err, err / (std::fabs(numeric) + t.atol));
      r.max_tol_ratio = std::max(r.max_tol_ratio, err / tol);
      if (!(err <= tol) && r.ok) {
        r.ok = false;
        r.message = str_cat("input ", k, " (shape ", x.shape(), ") element ", j, ": analytic ", a, " vs numeric ",
                            numeric);
      }
    }
  }
  if (r.ok && !any_nonzero && !opt.expect_zero_gradient) {
    r.ok = false;
    r.message = "the numeric gradient is zero everywhere: the sample inputs do not exercise the op";
  }
  return r;
}

GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  std::vector<size_t> wrt;  // the inputs the first gradient is taken for
  Dtype dtype = Dtype::Float64;
  for (size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].defined() && inputs[k].requires_grad()) {
      wrt.push_back(k);
      if (inputs[k].dtype() != Dtype::Float64) dtype = Dtype::Float32;
    }
  TAPE_CHECK(!wrt.empty(), "gradgradcheck: no input requires grad");
  Shape out_shape;
  {
    NoGradGuard no_grad;
    out_shape = f(inputs).shape();
  }
  Generator gen(opt.seed + 7);
  std::vector<Tensor> with_v = inputs;
  with_v.push_back(randn(out_shape, dtype, gen).requires_grad_());  // v, the upstream gradient
  const auto h = [&](const std::vector<Tensor>& in) {
    EnableGradGuard grad_mode;  // gradcheck evaluates h under NoGradGuard; h needs a graph
    const std::vector<Tensor> x(in.begin(), in.end() - 1);
    std::vector<Tensor> diff;
    for (size_t k : wrt) diff.push_back(x[k]);
    const std::vector<Tensor> grads =
        autograd::grad({f(x)}, diff, {in.back()}, false, /*create_graph=*/true, /*allow_unused=*/true);
    std::vector<Tensor> flat;
    for (size_t j = 0; j < grads.size(); ++j)
      flat.push_back(grads[j].defined() ? grads[j].reshape({-1}) : zeros({diff[j].numel()}, diff[j].dtype()));
    return cat(flat, 0);
  };
  return gradcheck(h, with_v, opt);
}

}  // namespace tape
