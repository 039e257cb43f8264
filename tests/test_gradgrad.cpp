// Higher-order gradients: gradgradcheck over the op registry (Float64).
#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>

#include <tape/tape.hpp>

#include "tape_testing/gradcheck_ops.hpp"

using namespace tape;
using namespace tape::testing;

namespace {
/// TAPE_GRADGRAD_ONLY=exp,log (a debugging aid): check only these entries.
bool selected(const std::string& name) {
  const char* only = std::getenv("TAPE_GRADGRAD_ONLY");
  if (!only || !*only) return true;
  std::stringstream ss(only);
  for (std::string item; std::getline(ss, item, ',');)
    if (item == name) return true;
  return false;
}
}  // namespace

TEST_CASE("gradgradcheck: every differentiable registered op in Float64") {
  int checked = 0;
  double worst = 0;
  std::string worst_at;
  std::vector<std::string> failing;
  for (const OpInfo& op : op_registry()) {
    if (!selected(op.name)) continue;
    for (const SampleCheck& c : gradgradcheck_op(op, 0)) {
      INFO(op.name, " sample '", c.sample, "' ", c.inputs, ": ", c.result.message);
      CHECK(c.result.ok);
      if (!c.result.ok) failing.push_back(op.name + "/" + c.sample + ": " + c.result.message.substr(0, 160));
      ++checked;
      if (!op.rtol && !op.atol && c.result.max_tol_ratio > worst) {
        worst = c.result.max_tol_ratio;
        worst_at = op.name + " / " + c.sample;
      }
    }
  }
  for (const auto& f : failing) MESSAGE(f);
  MESSAGE(checked, " samples; largest |analytic − numeric| / tolerance of a second derivative: ", worst, " (",
          worst_at, ")");
  if (!std::getenv("TAPE_GRADGRAD_ONLY")) CHECK(checked >= 150);
}

namespace {
// y = x³ with three backwards: exact; right in value but detached (no second
// derivative in x); right in value but with a second derivative 0.1 % off.
template <int kMode>
struct Cube : autograd::Function<Cube<kMode>> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    if (kMode == 1) return {g[0] * 3.0 * (x * x).detach()};
    // x − x.detach() is 0 in value, 1 in derivative: d/dx of this is 6x·1.001
    if (kMode == 2) return {g[0] * 3.0 * (x * x + 0.002 * x * (x - x.detach()))};
    return {g[0] * 3.0 * x * x};
  }
};
template <int kMode>
GradcheckResult cube_check(bool second_order) {
  Generator gen(3);
  std::vector<Tensor> in{randn({5}, Dtype::Float64, gen).requires_grad_()};
  const auto f = [](const std::vector<Tensor>& x) { return Cube<kMode>::apply(x[0]); };
  return second_order ? gradgradcheck(f, in) : gradcheck(f, in);
}
}  // namespace

TEST_CASE("gradgradcheck: fails for a double backward 0.1 % off or detached, passes when right") {
  const GradcheckResult right = cube_check<0>(true);
  CHECK_MESSAGE(right.ok, right.message);
  // the wrong ones pass the first-order check: only the second order sees them
  CHECK(cube_check<1>(false).ok);
  CHECK(cube_check<2>(false).ok);
  const GradcheckResult detached = cube_check<1>(true), off = cube_check<2>(true);
  CHECK_FALSE(detached.ok);
  CHECK_FALSE(off.ok);
  MESSAGE("second derivative 0.1 % off: ", off.max_tol_ratio, "× the tolerance; detached: ", detached.message);
  CHECK(off.max_tol_ratio > 10);
}
