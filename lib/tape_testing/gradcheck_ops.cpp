#include "tape_testing/gradcheck_ops.hpp"

#include <cmath>
#include <limits>

#include "tape/ops/op_util.hpp"

namespace tape::testing {
using namespace tape::detail;

std::string input_shapes(const SampleInput& s) {
  std::string out;
  for (const Tensor& t : s.inputs) {
    if (!out.empty()) out += " ";
    if (!t.defined()) {
      out += "-";
      continue;
    }
    out += t.requires_grad() ? shape_str(t.shape()) : str_cat("(", shape_str(t.shape()), ")");
  }
  return out;
}

GradcheckOptions gradcheck_options(const OpInfo& op, Dtype dtype, uint64_t seed) {
  const GradcheckTolerances def = gradcheck_defaults(dtype);
  GradcheckOptions opt;
  opt.eps = op.eps.value_or(def.eps);
  opt.rtol = op.rtol.value_or(def.rtol);
  opt.atol = op.atol.value_or(def.atol);
  opt.seed = seed;
  return opt;
}

namespace {
/// Values of any dtype as doubles.
std::vector<double> doubles(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return {};
  return cast_copy(t, Dtype::Float64).to_vector<double>();
}

/// A 0-element sample (or one whose output is empty): backward runs, and each
/// input that requires grad gets a gradient of its own shape and dtype, all zero
/// when the output has no element.
GradcheckResult check_shapes_only(const OpInfo& op, const SampleInput& s) {
  GradcheckResult r;
  for (const Tensor& x : s.inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).set_grad({});
  Tensor y = op.fn(s.inputs);
  if (!y.requires_grad()) {
    r.message = "output does not require grad";
    return r;
  }
  y.backward(ones(y.shape(), y.dtype()));
  for (size_t k = 0; k < s.inputs.size(); ++k) {
    const Tensor& x = s.inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor gx = x.grad();
    if (!gx.defined()) {
      r.message = str_cat("input ", k, " (shape ", x.shape(), ") got no gradient");
      return r;
    }
    if (gx.shape() != x.shape() || gx.dtype() != x.dtype()) {
      r.message = str_cat("input ", k, ": gradient ", dtype_name(gx.dtype()), " ", gx.shape(), " for a ",
                          dtype_name(x.dtype()), " input of shape ", x.shape());
      return r;
    }
    if (y.numel() == 0)
      for (double v : doubles(gx))
        if (v != 0) {
          r.message = str_cat("input ", k, ": nonzero gradient ", v, " from an empty output");
          return r;
        }
  }
  r.ok = true;
  r.message = "ok (0 elements: shapes checked)";
  return r;
}

/// Whether gradcheck can perturb something that reaches the output.
bool numeric_sample(const OpInfo& op, const SampleInput& s) {
  bool any = false;
  for (const Tensor& x : s.inputs) any = any || (x.defined() && x.requires_grad() && x.numel() > 0);
  if (!any) return false;
  NoGradGuard ng;
  return op.fn(s.inputs).numel() > 0;
}

// y = x, with a backward that scales g by `factor` (a deliberately wrong backward).
struct ScaledIdentityBackward final : Node {
  double factor = 1;
  const char* name() const override { return "ScaledIdentityBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor out = cast_copy(g, g.dtype());
    visit_float(out.dtype(), "ScaledIdentityBackward", [&]<class T>() {
      T* p = out.data<T>();
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = T(double(p[i]) * factor);
    });
    return {out};
  }
};
}  // namespace

Tensor scaled_identity(const Tensor& x, double factor) {
  Tensor y = cast_copy(x, x.dtype());
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ScaledIdentityBackward>();
    node->factor = factor;
    record(y, std::move(node), {&x});
  }
  return y;
}

std::vector<SampleCheck> gradcheck_op(const OpInfo& op, uint64_t seed, Dtype dtype) {
  std::vector<SampleCheck> out;
  if (!op.differentiable) return out;
  for (const SampleInput& s : op_samples(op, dtype, seed)) {
    SampleCheck c{s.name, input_shapes(s), true, {}};
    GradcheckOptions opt = gradcheck_options(op, dtype, seed);
    opt.expect_zero_gradient = s.zero_gradient;
    try {
      c.numeric = numeric_sample(op, s);
      c.result = c.numeric ? gradcheck(op.fn, s.inputs, opt) : check_shapes_only(op, s);
    } catch (const std::exception& e) {
      c.result.ok = false;
      c.result.message = str_cat("threw: ", e.what());
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<SampleCheck> gradgradcheck_op(const OpInfo& op, uint64_t seed) {
  std::vector<SampleCheck> out;
  if (!op.differentiable) return out;
  for (const SampleInput& s : op_samples(op, Dtype::Float64, seed)) {
    SampleCheck c{s.name, input_shapes(s), true, {}};
    try {
      c.numeric = numeric_sample(op, s);
      if (!c.numeric) continue;
      const GradcheckOptions opt = gradcheck_options(op, Dtype::Float64, seed);
      c.result = gradgradcheck(op.fn, s.inputs, opt);
    } catch (const std::exception& e) {
      c.result.ok = false;
      c.result.message = str_cat("threw: ", e.what());
    }
    out.push_back(std::move(c));
  }
  return out;
}

GradcheckResult gradcheck_op_scaled(const OpInfo& op, double factor, uint64_t seed) {
  const GradcheckOptions opt = gradcheck_options(op, Dtype::Float64, seed);
  const SampleInput s = op_samples(op, Dtype::Float64, seed).front();
  const auto& fn = op.fn;
  return gradcheck([&fn, factor](const Inputs& in) { return scaled_identity(fn(in), factor); }, s.inputs, opt);
}

namespace {
/// max |a − b| / scale with scale = max |b| (1 when b is all zero); NaN matches
/// NaN and an infinity the same infinity; any other mismatch of those is +inf.
double scaled_diff(const Tensor& a, const Tensor& b, std::string* why) {
  if (a.shape() != b.shape()) {
    *why = str_cat("shapes ", a.shape(), " and ", b.shape(), " differ");
    return std::numeric_limits<double>::infinity();
  }
  const std::vector<double> x = doubles(a), y = doubles(b);
  double scale = 0, err = 0;
  for (double v : y)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  if (scale == 0) scale = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i]) || std::isinf(x[i]) || std::isinf(y[i])) {
      const bool same = (std::isnan(x[i]) && std::isnan(y[i])) || x[i] == y[i];
      if (!same) {
        *why = str_cat("element ", i, ": ", x[i], " vs ", y[i]);
        return std::numeric_limits<double>::infinity();
      }
      continue;
    }
    const double e = std::fabs(x[i] - y[i]) / scale;
    if (e > err) {
      err = e;
      *why = str_cat("element ", i, ": Float32 ", x[i], " vs Float64 ", y[i]);
    }
  }
  return err;
}
}  // namespace

std::vector<ConsistencyCheck> consistency_op(const OpInfo& op, uint64_t seed) {
  std::vector<ConsistencyCheck> out;
  if (!op.supports(Dtype::Float32) || !op.supports(Dtype::Float64)) return out;
  const std::vector<SampleInput> s32 = op_samples(op, Dtype::Float32, seed), s64 = op_samples(op, Dtype::Float64, seed);
  TAPE_CHECK(s32.size() == s64.size(), "consistency_op: ", op.name, " has ", s32.size(), " Float32 samples but ",
             s64.size(), " Float64 samples");
  for (size_t i = 0; i < s32.size(); ++i) {
    ConsistencyCheck c;
    c.sample = s64[i].name;
    c.message = "ok";
    try {
      Tensor y32 = op.fn(s32[i].inputs), y64 = op.fn(s64[i].inputs);
      c.tol = is_floating(y64.dtype()) ? op.consistency_rtol : 0.0;
      std::string why;
      c.output_err = scaled_diff(y32, y64, &why);
      if (!(c.output_err <= c.tol)) c.message = "output " + why;
      if (op.differentiable && y64.requires_grad() && y64.numel() > 0) {
        Generator g(seed + 5);
        const Tensor v = randn(y64.shape(), g);  // Float32 values; widened for the Float64 run
        y32.backward(v.to(y32.dtype()));
        y64.backward(v.to(y64.dtype()));
        for (size_t k = 0; k < s64[i].inputs.size(); ++k) {
          const Tensor &a = s32[i].inputs[k], &b = s64[i].inputs[k];
          if (!b.defined() || !b.requires_grad() || b.numel() == 0) continue;
          if (!a.grad().defined() || !b.grad().defined()) {
            c.grad_err = std::numeric_limits<double>::infinity();
            c.message = str_cat("input ", k, ": no gradient in ", a.grad().defined() ? "Float64" : "Float32");
            continue;
          }
          std::string gwhy;
          const double e = scaled_diff(a.grad(), b.grad(), &gwhy);
          if (e > c.grad_err || std::isnan(e)) {
            c.grad_err = e;
            if (!(e <= c.tol) && c.message == "ok") c.message = str_cat("gradient of input ", k, " ", gwhy);
          }
        }
      }
      c.ok = c.output_err <= c.tol && c.grad_err <= c.tol;
    } catch (const std::exception& e) {
      c.ok = false;
      c.message = str_cat("threw: ", e.what());
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {
// y = x², with a backward that is deliberately scaled: dx = factor·2x·g. Its own
// loops (any float dtype), so the self-test depends on no registry op.
struct ScaledSquareBackward final : SavingNode<1> {
  double factor = 1;
  const char* name() const override { return "ScaledSquareBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    const Tensor x = saved(0);
    const Tensor g = cast_copy(g_in, x.dtype());
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    visit_float(x.dtype(), "ScaledSquareBackward", [&]<class T>() {
      const T *px = x.data<T>(), *pg = g.data<T>();
      T* pd = dx.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) pd[i] = T(factor * 2.0 * double(px[i]) * double(pg[i]));
    });
    return {dx};
  }
};
Tensor scaled_square(const Tensor& x, double factor) {
  const Tensor xc = cast_copy(x, x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  visit_float(x.dtype(), "scaled_square", [&]<class T>() {
    const T* px = xc.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] * px[i];
  });
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ScaledSquareBackward>();
    node->factor = factor;
    node->save(0, xc);
    record(y, std::move(node), {&x});
  }
  return y;
}
}  // namespace

SelfTestResult gradcheck_self_test() {
  auto run = [](double factor, Dtype dtype) {
    Generator g(3);
    std::vector<float> v = rand({4, 5}, g).to_vector<float>();
    for (float& e : v) e += 0.5f;  // x in [0.5, 1.5)
    Tensor x = tensor(std::move(v), {4, 5}).to(dtype).requires_grad_();
    return gradcheck([factor](const std::vector<Tensor>& in) { return scaled_square(in[0], factor); }, {x});
  };
  const Dtype f64 = Dtype::Float64;
  return {run(1.0, f64), run(1.001, f64), run(1.05, f64), run(0.0, f64), run(1.001, Dtype::Float32)};
}

}  // namespace tape::testing
