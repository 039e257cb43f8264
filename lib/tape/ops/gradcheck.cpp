#include "tape/ops/gradcheck.hpp"

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
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor ga = x.grad();
    std::vector<float> analytic = ga.defined() ? ga.to_vector<float>() : std::vector<float>(size_t(x.numel()), 0.f);
    TAPE_CHECK(x.is_contiguous(), "gradcheck: input ", k, " must be contiguous");
    float* p = const_cast<Tensor&>(x).data<float>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const float orig = p[j];
      p[j] = orig + opt.eps;
      const double plus = dot(f(inputs), vv);
      p[j] = orig - opt.eps;
      const double minus = dot(f(inputs), vv);
      p[j] = orig;
      const float numeric = float((plus - minus) / (2.0 * double(opt.eps)));
      const float a = analytic[size_t(j)];
      const float err = std::fabs(a - numeric);
      if (std::fabs(numeric) > opt.atol) any_nonzero = true;
      r.max_abs_err = std::max(r.max_abs_err, err);
      r.max_rel_err = std::max(r.max_rel_err, err / (std::fabs(numeric) + opt.atol));
      if (!(err <= opt.atol + opt.rtol * std::fabs(numeric)) && r.ok) {
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
