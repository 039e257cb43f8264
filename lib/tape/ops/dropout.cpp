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
  TAPE_CHECK(x.defined(), "dropout: input is an undefined tensor");
  TAPE_CHECK(is_floating(x.dtype()), "dropout: input must be Float32, Float64 or BFloat16, got ",
             dtype_name(x.dtype()), " tensor of shape ", x.shape());
  TAPE_CHECK(p >= 0.f && p <= 1.f, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0.f) return x;
  if (x.dtype() == Dtype::BFloat16)
    return via_float32(x, [&](const Tensor& xf) { return dropout(xf, p, training, gen); });
  // mask holds 0 or 1/(1−p): the forward is one multiply and backward reuses it.
  // The draws are Float32 in every dtype (one seed, one mask); a Float32 mask is
  // written over its own draws.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  Tensor draws = x.dtype() == Dtype::Float32 ? mask : Tensor::empty(x.shape());
  const int64_t n = mask.numel();
  gen.fill_uniform(draws.data<float>(), n);  // one lock for the whole mask
  visit_float(x.dtype(), "dropout", [&]<class T>() {
    const float* pu = draws.data<float>();
    T* pm = mask.data<T>();
    const T keep = p >= 1.f ? T(0) : T(1) / (T(1) - T(p));
    for (int64_t i = 0; i < n; ++i) pm[i] = pu[i] >= p ? keep : T(0);
  });
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
