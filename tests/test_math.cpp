// Unary math (log1p ... clamp, minimum, maximum), activations (gelu, silu,
// softplus) and reductions (min, argmin, prod, var, std, logsumexp, norm):
// forward values computed by hand, NaN propagation, error messages and the
// backward cases gradcheck avoids (kinks, ties, zeros).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tape/tape.hpp>

#include "error_of.hpp"
#include <vector>

using namespace tape;
using tape_test::error_of;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

Tensor vec(std::vector<float> v) {
  const auto n = int64_t(v.size());
  return tensor(std::move(v), {n});
}

/// t's values equal want to within tol (NaN matches NaN, inf matches inf).
void check_close(const Tensor& t, const std::vector<float>& want, float tol = 1e-5f) {
  const auto v = t.to_vector<float>();
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(want[i])) CHECK_MESSAGE(std::isnan(v[i]), "index ", i, ": ", v[i]);
    else if (std::isinf(want[i])) CHECK_MESSAGE(v[i] == want[i], "index ", i, ": ", v[i]);
    else CHECK_MESSAGE(std::fabs(v[i] - want[i]) <= tol * (1.f + std::fabs(want[i])), "index ", i, ": ", v[i], " != ", want[i]);
  }
}


/// The gradient of sum(f(x)) at x.
template <class F>
Tensor grad_of(const Tensor& x0, F f) {
  Tensor x = x0.detach().clone().requires_grad_();
  sum(f(x)).backward();
  return x.grad();
}

}  // namespace

TEST_CASE("math: unary ops match hand-computed values") {
  Tensor x = vec({-1.f, 0.f, 0.5f, 2.f});
  check_close(log1p(vec({0.f, 1.f, -0.5f})), {0.f, std::log(2.f), std::log(0.5f)});
  check_close(expm1(vec({0.f, 1.f, -1.f})), {0.f, 1.7182818f, -0.6321206f});
  check_close(sin(vec({0.f, 1.5707963f})), {0.f, 1.f});
  check_close(cos(vec({0.f, 3.1415927f})), {1.f, -1.f});
  check_close(rsqrt(vec({4.f, 0.25f})), {0.5f, 2.f});
  check_close(square(x), {1.f, 0.f, 0.25f, 4.f});
  check_close(sign(vec({-3.f, 0.f, 2.f, kNaN})), {-1.f, 0.f, 1.f, kNaN});
  check_close(clamp(vec({-2.f, -0.5f, 0.3f, 5.f, kNaN}), -0.5f, 1.f), {-0.5f, -0.5f, 0.3f, 1.f, kNaN});
  check_close(x.square(), {1.f, 0.f, 0.25f, 4.f});
  check_close(x.clamp(0.f, 1.f), {0.f, 0.f, 0.5f, 1.f});
}

TEST_CASE("math: clamp's gradient is 1 inside [lo, hi] (bounds included) and 0 outside; sign's is 0") {
  check_close(grad_of(vec({-2.f, -1.f, 0.f, 1.f, 3.f}), [](const Tensor& t) { return clamp(t, -1.f, 1.f); }),
              {0.f, 1.f, 1.f, 1.f, 0.f});
  check_close(grad_of(vec({-2.f, 0.f, 3.f}), [](const Tensor& t) { return sign(t); }), {0.f, 0.f, 0.f});
  CHECK(error_of([] { clamp(vec({1.f}), 2.f, 1.f); }).find("clamp: lo (2) must not exceed hi (1)") != std::string::npos);
}

TEST_CASE("math: minimum and maximum broadcast, propagate NaN and split ties") {
  Tensor a = tensor(std::vector<float>{1.f, 5.f, 3.f, 2.f}, {2, 2});
  Tensor b = vec({2.f, 3.f});
  check_close(maximum(a, b), {2.f, 5.f, 3.f, 3.f});
  check_close(minimum(a, b), {1.f, 3.f, 2.f, 2.f});
  check_close(maximum(vec({1.f, kNaN}), vec({kNaN, 0.f})), {kNaN, kNaN});
  check_close(minimum(vec({1.f, kNaN}), vec({kNaN, 0.f})), {kNaN, kNaN});
  // ties: g/2 each
  Tensor p = vec({1.f, 2.f, 3.f}).requires_grad_(), q = vec({1.f, 0.f, 4.f}).requires_grad_();
  sum(maximum(p, q)).backward();
  check_close(p.grad(), {0.5f, 1.f, 0.f});
  check_close(q.grad(), {0.5f, 0.f, 1.f});
  // broadcast operand: gradient summed back to its shape
  Tensor a2 = a.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
  sum(minimum(a2, b2)).backward();
  check_close(a2.grad(), {1.f, 0.f, 0.f, 1.f});
  check_close(b2.grad(), {1.f, 1.f});
  CHECK(error_of([&] { maximum(a, vec({1.f, 2.f, 3.f})); }).find("maximum") != std::string::npos);
}

TEST_CASE("math: gelu, silu and softplus") {
  check_close(gelu(vec({0.f, 1.f, -1.f, kNaN})), {0.f, 0.8413447f, -0.1586553f, kNaN});
  check_close(silu(vec({0.f, 1.f, -2.f})), {0.f, 0.7310586f, -0.2384058f});
  check_close(softplus(vec({0.f, 1.f, -30.f})), {std::log(2.f), 1.3132616f, 9.357623e-14f});
  check_close(softplus(vec({25.f})), {25.f});                     // linear above the threshold
  check_close(softplus(vec({1.f, 15.f}), 2.f, 20.f), {1.0634640f, 15.f});  // βx = 30 > 20
  check_close(grad_of(vec({0.f}), [](const Tensor& t) { return gelu(t); }), {0.5f});
  check_close(grad_of(vec({0.f}), [](const Tensor& t) { return silu(t); }), {0.5f});
  check_close(grad_of(vec({0.f, 30.f}), [](const Tensor& t) { return softplus(t); }), {0.5f, 1.f});
  CHECK(error_of([] { softplus(vec({1.f}), 0.f); }).find("softplus: beta must be finite and nonzero") != std::string::npos);
  Tensor x = vec({-1.f, 0.5f, 3.f});
  CHECK(max_abs_diff(nn::GELU()(x), gelu(x)) == 0.f);
  CHECK(max_abs_diff(nn::SiLU()(x), silu(x)) == 0.f);
  CHECK(max_abs_diff(nn::Softplus(2.0, 1.0)(x), softplus(x, 2.f, 1.f)) == 0.f);
  CHECK(nn::Softplus(2.0, 1.0).extra_repr() == "beta=2.0, threshold=1.0");
  CHECK(error_of([] { nn::Softplus(0.0); }).find("Softplus: beta") != std::string::npos);
}

TEST_CASE("math: min and argmin mirror max and argmax") {
  Tensor x = tensor(std::vector<float>{3.f, 1.f, 2.f, 0.f, 5.f, 0.f}, {2, 3});
  check_close(min(x, 1), {1.f, 0.f});
  CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});  // first index on ties
  CHECK(argmin(x, 0, true).shape() == Shape{1, 3});
  CHECK(x.argmin(0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  check_close(min(vec({1.f, kNaN, 0.f}), 0), {kNaN});
  check_close(grad_of(x, [](const Tensor& t) { return min(t, 1); }), {0.f, 1.f, 0.f, 1.f, 0.f, 0.f});
  CHECK(error_of([] { min(zeros({2, 0}), 1); }).find("min: cannot reduce over dim 1 of size 0") != std::string::npos);
  CHECK(error_of([] { argmin(zeros({0}), 0); }).find("argmin: cannot reduce over dim 0 of size 0") != std::string::npos);
}

TEST_CASE("math: prod and its gradient with zeros") {
  check_close(prod(vec({2.f, 3.f, -4.f})), {-24.f});
  check_close(prod(zeros({0})), {1.f});
  check_close(grad_of(vec({2.f, 3.f, -4.f}), [](const Tensor& t) { return prod(t); }), {-12.f, -8.f, 6.f});
  // one zero: only that element gets a gradient (the product of the others)
  check_close(grad_of(vec({2.f, 0.f, 5.f}), [](const Tensor& t) { return prod(t); }), {0.f, 10.f, 0.f});
  // two zeros: every gradient is 0
  check_close(grad_of(vec({0.f, 3.f, 0.f}), [](const Tensor& t) { return prod(t); }), {0.f, 0.f, 0.f});
}

TEST_CASE("math: var, std, logsumexp and norm") {
  Tensor x = tensor(std::vector<float>{1.f, 2.f, 3.f, 4.f, 2.f, 0.f}, {2, 3});
  check_close(var(x, 1), {1.f, 4.f});
  check_close(var(x, 1, false), {2.f / 3.f, 8.f / 3.f});
  check_close(tape::std(x, 1), {1.f, 2.f});
  check_close(x.std(0, true, true), {2.1213203f, 0.f, 2.1213203f});
  check_close(var(vec({3.f}), 0), {kNaN});  // n − 1 = 0
  check_close(logsumexp(vec({0.f, 0.f}), 0), {std::log(2.f)});
  check_close(logsumexp(vec({1000.f, 1000.f}), 0), {1000.f + std::log(2.f)});  // stable
  check_close(logsumexp(vec({-kInf, -kInf}), 0), {-kInf});
  check_close(logsumexp(vec({1.f, kNaN}), 0), {kNaN});
  check_close(logsumexp(x, 1, true), {3.4076059f, 4.1429316f});
  check_close(norm(vec({3.f, -4.f})), {5.f});
  check_close(norm(vec({3.f, -4.f}), 1.f), {7.f});
  check_close(norm(vec({1.f, 2.f}), 3.f), {2.0800838f});
  check_close(norm(zeros({0})), {0.f});
  check_close(grad_of(vec({3.f, -4.f}), [](const Tensor& t) { return norm(t); }), {0.6f, -0.8f});
  check_close(grad_of(vec({0.f, 0.f}), [](const Tensor& t) { return norm(t); }), {0.f, 0.f});  // subgradient 0
  check_close(grad_of(vec({3.f, -4.f}), [](const Tensor& t) { return norm(t, 1.f); }), {1.f, -1.f});
  CHECK(error_of([] { norm(vec({1.f}), 0.f); }).find("norm: p must be finite and > 0, got 0") != std::string::npos);
  CHECK(error_of([] { var(vec({1.f}), 2); }).find("var") != std::string::npos);
}
