// Inverted dropout.
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
// Forward: y = x·m / (1 − p), m ~ Bernoulli(1 − p)   Backward: dx = g·m / (1 − p)
struct DropoutBackward final : SavingNode<1> {
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {mul(g, saved(0))}; }
};
}  // namespace

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  check_float(x, "dropout");
  TAPE_CHECK(p >= 0.f && p <= 1.f, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0.f) return x;
  // mask holds 0 or 1/(1−p): the forward is one multiply and backward reuses it
  Tensor mask = Tensor::empty(x.shape());
  float* pm = mask.data<float>();
  const float keep = p >= 1.f ? 0.f : 1.f / (1.f - p);
  const int64_t n = mask.numel();
  gen.fill_uniform(pm, n);  // one lock for the whole mask
  for (int64_t i = 0; i < n; ++i) pm[i] = pm[i] >= p ? keep : 0.f;
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, mask);
  }
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<DropoutBackward>();
    node->save(0, mask);
    record(y, std::move(node), {&x});
  }
  return y;
}

}  // namespace tape
