#include "tape_testing/gradcheck_ops.hpp"

#include "tape/ops/op_util.hpp"

namespace tape::testing {
using namespace tape::detail;

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

}  // namespace tape::testing
