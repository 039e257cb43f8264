#include "tape/ops/gradcheck.hpp"

#include <algorithm>
#include <cmath>

#include "tape/ops/op_util.hpp"
#include "tape/ops/registry.hpp"

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
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult r;
  // Analytic: one backward of sum(y ⊙ v).
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).set_grad({});
  Tensor y = f(inputs);
  Generator gen(opt.seed ^ 0x9e3779b97f4a7c15ull);
  Tensor v = randn(y.shape(), gen);
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
  const double center = opt.excuse_kinks ? dot(f(inputs), vv) : 0.0;  // f at the unperturbed inputs
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor ga = x.grad();
    std::vector<float> analytic = ga.defined() ? ga.to_vector<float>() : std::vector<float>(size_t(x.numel()), 0.f);
    TAPE_CHECK(x.is_contiguous(), "gradcheck: input ", k, " must be contiguous");
    float* p = const_cast<Tensor&>(x).data<float>();
    for (int64_t j : elements_to_check(x.numel(), opt, k)) {
      const float orig = p[j];
      p[j] = orig + opt.eps;
      const double plus = dot(f(inputs), vv);
      p[j] = orig - opt.eps;
      const double minus = dot(f(inputs), vv);
      p[j] = orig;
      const float numeric = float((plus - minus) / (2.0 * double(opt.eps)));
      const float a = analytic[size_t(j)];
      const float err = std::fabs(a - numeric);
      const float tol = opt.atol + opt.rtol * std::fabs(numeric);
      ++r.checked;
      if (opt.excuse_kinks && !(err <= tol)) {
        const double right = (plus - center) / double(opt.eps), left = (center - minus) / double(opt.eps);
        if (std::fabs(right - left) > tol && a >= std::min(left, right) - tol && a <= std::max(left, right) + tol) {
          ++r.kinks;
          continue;
        }
      }
      if (std::fabs(numeric) > opt.atol) any_nonzero = true;
      r.max_abs_err = std::max(r.max_abs_err, err);
      r.max_rel_err = std::max(r.max_rel_err, err / (std::fabs(numeric) + opt.atol));
      if (!(err <= tol) && r.ok) {
        r.ok = false;
        r.message = cat("input ", k, " (shape ", x.shape(), ") element ", j, ": analytic ", a, " vs numeric ",
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

GradcheckResult gradcheck_op(const OpInfo& op, uint64_t seed) {
  Generator g(seed * 7919 + 17);
  std::vector<Tensor> inputs = op.make_inputs(g);
  GradcheckOptions opt;
  opt.rtol = op.rtol;
  opt.atol = op.atol;
  opt.seed = seed;
  return gradcheck(op.fn, inputs, opt);
}

namespace {
// An op whose backward is deliberately scaled: y = x², dx = factor·2x·g.
struct ScaledSquareBackward final : SavingNode<1> {
  float factor = 1.f;
  const char* name() const override { return "ScaledSquareBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {mul(g, saved(0) * (2.f * factor))}; }
};
Tensor scaled_square(const Tensor& x, float factor) {
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, x);
  }
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ScaledSquareBackward>();
    node->factor = factor;
    node->save(0, x);
    record(y, std::move(node), {&x});
  }
  return y;
}
}  // namespace

SelfTestResult gradcheck_self_test() {
  auto run = [](float factor) {
    Generator g(3);
    Tensor x = add(rand({4, 5}, g), scalar_tensor(0.5f)).requires_grad_();
    return gradcheck([factor](const std::vector<Tensor>& in) { return scaled_square(in[0], factor); }, {x});
  };
  return {run(1.f), run(1.05f), run(0.f)};
}

}  // namespace tape
