#include "tape/ops/gradcheck.hpp"

#include <algorithm>
#include <cmath>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
/// sum(y ⊙ v) in double, without recording.
double dot(const Tensor& y, const std::vector<float>& v) {
  Tensor yc = contig(y);
  const float* p = yc.data<float>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += double(p[i]) * v[i];
  return s;
}

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
bool on_kink(float numeric, double plus, double minus, double center, double magnitude,
             const GradcheckOptions& opt, const Probe& probe) {
  const double eps = opt.eps;
  const double tol = opt.atol + opt.rtol * std::fabs(numeric);
  const double ulp = magnitude * 1.1920929e-7;  // of float32 at the output's magnitude
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
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult r;
  // Analytic: one backward of sum(y ⊙ v).
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).set_grad({});
  Tensor y = f(inputs);
  Generator gen(opt.seed ^ 0x9e3779b97f4a7c15ull);
  // A random v checks every output element; a scalar output gets v = 1, so the
  // check's sensitivity does not hinge on the size of one random number.
  Tensor v = y.numel() == 1 ? ones(y.shape()) : randn(y.shape(), gen);
  if (!y.requires_grad()) {
    r.message = "output does not require grad: nothing to check";
    return r;
  }
  y.backward(v);
  const std::vector<float> vv = v.to_vector<float>();

  bool any_nonzero = false;
  r.ok = true;
  r.message = "ok";
  NoGradGuard no_grad;
  // f·v at the unperturbed inputs, and Σ|f·v| (the scale of its rounding noise)
  double center = 0, magnitude = 0;
  if (opt.excuse_kinks) {
    Tensor y0 = contig(f(inputs));
    const float* q = y0.data<float>();
    for (size_t i = 0; i < vv.size(); ++i) {
      center += double(q[i]) * vv[i];
      magnitude += std::fabs(double(q[i]) * vv[i]);
    }
  }
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor ga = x.grad();
    std::vector<float> analytic = ga.defined() ? ga.to_vector<float>() : std::vector<float>(size_t(x.numel()), 0.f);
    TAPE_CHECK(x.is_contiguous(), "gradcheck: input ", k, " must be contiguous");
    float* p = const_cast<Tensor&>(x).data<float>();
    // f(x + h·e_j) · v, restoring the element afterwards.
    auto probe = [&](int64_t j, double h) {
      const float orig = p[j];
      p[j] = float(double(orig) + h);
      const double out = dot(f(inputs), vv);
      p[j] = orig;
      return out;
    };
    for (int64_t j : elements_to_check(x.numel(), opt, k)) {
      const double plus = probe(j, opt.eps), minus = probe(j, -double(opt.eps));
      const float numeric = float((plus - minus) / (2.0 * double(opt.eps)));
      const float a = analytic[size_t(j)];
      const float err = std::fabs(a - numeric);
      const float tol = opt.atol + opt.rtol * std::fabs(numeric);
      ++r.checked;
      if (opt.excuse_kinks && !(err <= tol) &&
          on_kink(numeric, plus, minus, center, magnitude, opt, [&](double h) { return probe(j, h); })) {
        ++r.kinks;
        continue;
      }
      if (std::fabs(numeric) > opt.atol) any_nonzero = true;
      r.max_abs_err = std::max(r.max_abs_err, err);
      r.max_rel_err = std::max(r.max_rel_err, err / (std::fabs(numeric) + opt.atol));
      if (!(err <= tol) && r.ok) {
        r.ok = false;
        r.message = str_cat("input ", k, " (shape ", x.shape(), ") element ", j, ": analytic ", a, " vs numeric ",
                        numeric);
      }
    }
  }
  if (r.ok && !any_nonzero) {
    r.ok = false;
    r.message = "the numeric gradient is zero everywhere: the sample inputs do not exercise the op";
  }
  return r;
}

}  // namespace tape
