// Tensor::to(dtype): a converted copy, differentiable between floating dtypes.
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
// Forward: y = cast(x, to)          Backward: dx = cast(g, from)
struct ToCopyBackward final : Node {
  Dtype from;
  explicit ToCopyBackward(Dtype f) : from(f) {}
  const char* name() const override { return "ToCopyBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.to(from)}; }
};
}  // namespace

Tensor Tensor::to(Dtype dtype) const {
  check_defined("to()");
  if (this->dtype() == dtype) return *this;  // PyTorch: no copy when nothing changes
  Tensor y = cast_copy(*this, dtype);
  // Gradients flow only between floating dtypes (an Int64 or Bool result has none).
  if (is_floating(dtype) && is_floating(this->dtype()) && any_requires_grad({this}))
    record(y, std::make_shared<ToCopyBackward>(this->dtype()), {this});
  return y;
}

}  // namespace tape
