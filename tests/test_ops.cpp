#include <doctest/doctest.h>

#include <cmath>
#include <tape/tape.hpp>

using namespace tape;
using doctest::Approx;
using doctest::Contains;

static void check_values(const Tensor& t, const std::vector<float>& want, float tol = 1e-5f) {
  auto v = t.to_vector<float>();
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == Approx(want[i]).epsilon(tol));
}

TEST_CASE("ops: broadcasting arithmetic") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(a + tensor({10, 20, 30}, {3}), {11, 22, 33, 14, 25, 36});
  check_values(a * tensor({2, 3}, {2, 1}), {2, 4, 6, 12, 15, 18});
  check_values(a - 1.f, {0, 1, 2, 3, 4, 5});
  check_values(1.f - a, {0, -1, -2, -3, -4, -5});
  check_values(a / 2.f, {0.5f, 1, 1.5f, 2, 2.5f, 3});
  check_values(6.f / a, {6, 3, 2, 1.5f, 1.2f, 1});
  CHECK((tensor({1, 2}, {2, 1}) + tensor({1, 2, 3}, {3})).shape() == Shape{2, 3});
  CHECK(broadcast_shapes({5, 1, 4}, {3, 1}, "x") == Shape{5, 3, 4});
  CHECK_THROWS_WITH_AS(a + ones({2}),
                       "add: shapes [2, 3] and [2] cannot be broadcast together (dim 1: 3 vs 2)", Error);
  Tensor ai = a * arange(3, Dtype::Int64);  // Int64 promotes to Float32
  CHECK(ai.dtype() == Dtype::Float32);
  check_values(ai, {0, 2, 6, 0, 5, 12});
  CHECK_THROWS_WITH_AS(ones({2}, Dtype::Bool) + ones({2}, Dtype::Bool),
                       "add: operands must not both be Bool, got Bool tensors of shapes [2] and [2] (convert one with .to(dtype))",
                       Error);
  check_values(sum_to(ones({2, 3, 4}), {3, 1}), {8, 8, 8});
}

TEST_CASE("ops: unary math and activations") {
  Tensor x = tensor({-2, -0.5f, 0.5f, 2}, {4});
  check_values(neg(x), {2, 0.5f, -0.5f, -2});
  check_values(abs(x), {2, 0.5f, 0.5f, 2});
  check_values(relu(x), {0, 0, 0.5f, 2});
  check_values(leaky_relu(x, 0.1f), {-0.2f, -0.05f, 0.5f, 2});
  check_values(elu(x), {std::expm1(-2.f), std::expm1(-0.5f), 0.5f, 2});
  check_values(selu(x), {1.0507009873554805f * 1.6732632423543772f * std::expm1(-2.f),
                         1.0507009873554805f * 1.6732632423543772f * std::expm1(-0.5f), 1.0507009873554805f * 0.5f,
                         1.0507009873554805f * 2});
  check_values(tanh(x), {std::tanh(-2.f), std::tanh(-0.5f), std::tanh(0.5f), std::tanh(2.f)});
  check_values(sigmoid(x), {1 / (1 + std::exp(2.f)), 1 / (1 + std::exp(0.5f)), 1 / (1 + std::exp(-0.5f)),
                            1 / (1 + std::exp(-2.f))});
  check_values(exp(x), {std::exp(-2.f), std::exp(-0.5f), std::exp(0.5f), std::exp(2.f)});
  check_values(log(abs(x)), {std::log(2.f), std::log(0.5f), std::log(0.5f), std::log(2.f)});
  check_values(sqrt(abs(x)), {std::sqrt(2.f), std::sqrt(0.5f), std::sqrt(0.5f), std::sqrt(2.f)});
  check_values(pow(abs(x), 3.f), {8, 0.125f, 0.125f, 8});
  CHECK(sigmoid(tensor({-1000.f, 1000.f}, {2})).to_vector<float>() == std::vector<float>{0.f, 1.f});
}

TEST_CASE("ops: large tensors take the vectorised activation kernels and agree with libm") {
  // 20 000 elements (above kBulkMinimum) spanning [-12, 12]
  const int64_t n = 20000;
  std::vector<float> xs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) xs[size_t(i)] = -12.f + 24.f * float(i) / float(n - 1);
  Tensor x = tensor(xs, {n});
  const auto worst = [&](const Tensor& y, float (*ref)(float)) {
    const auto v = y.to_vector<float>();
    double w = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double want = ref(xs[size_t(i)]);
      w = std::max(w, std::abs(v[size_t(i)] - want) / (1e-3 + std::abs(want)));
    }
    return w;
  };
  CHECK(worst(tanh(x), [](float v) { return std::tanh(v); }) < 1e-5);
  CHECK(worst(sigmoid(x), [](float v) { return 1.f / (1.f + std::exp(-v)); }) < 1e-5);
  CHECK(worst(elu(x), [](float v) { return v > 0 ? v : std::expm1(v); }) < 1e-5);
  CHECK(worst(selu(x), [](float v) {
          return 1.0507009873554805f * (v > 0 ? v : 1.6732632423543772f * std::expm1(v));
        }) < 1e-5);
  CHECK(worst(elu(x, 0.5f), [](float v) { return v > 0 ? v : 0.5f * std::expm1(v); }) < 1e-5);
}

TEST_CASE("ops: matmul and linear") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor({1, 0, 0, 1, 1, 1}, {3, 2});
  check_values(matmul(a, b), {4, 5, 10, 11});
  check_values(matmul(a.t(), a), {17, 22, 27, 22, 29, 36, 27, 36, 45});  // strided operand
  Tensor a3 = reshape(arange(0.f, 12.f), {2, 2, 3});
  Tensor b3 = reshape(ones({6}), {2, 3, 1});
  check_values(matmul(a3, b3), {3, 12, 21, 30});
  Tensor w = tensor({1, 0, 0, 0, 1, 0}, {2, 3});
  check_values(linear(a, w, tensor({10, 20}, {2})), {11, 22, 14, 25});
  check_values(linear(a, w), {1, 2, 4, 5});
  CHECK_THROWS_WITH_AS(matmul(a, a), "matmul: shapes [2, 3] and [2, 3] cannot be multiplied (3 != 2)", Error);
  CHECK_THROWS_WITH_AS(matmul(a, ones({3})), Contains("expects two 2-D or two 3-D tensors, got shapes [2, 3] and [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(linear(a, ones({2, 4})), Contains("linear: input of shape [2, 3] does not match weight of shape [2, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(linear(a, w, ones({3})), Contains("bias of shape [3] does not match weight of shape [2, 3]"),
                       Error);
}

TEST_CASE("ops: matmul at MNIST sizes agrees with a naive product") {
  manual_seed(7);
  Tensor x = randn({64, 784}), w = randn({50, 784}) * 0.05f, b = randn({50});
  Tensor y = linear(x, w, b);
  auto px = x.to_vector<float>(), pw = w.to_vector<float>(), pb = b.to_vector<float>(), py = y.to_vector<float>();
  double worst = 0;
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 50; ++j) {
      double s = pb[size_t(j)];
      for (int k = 0; k < 784; ++k) s += double(px[size_t(i * 784 + k)]) * pw[size_t(j * 784 + k)];
      worst = std::max(worst, std::abs(s - py[size_t(i * 50 + j)]));
    }
  CHECK(worst < 1e-3);
}

TEST_CASE("ops: reductions") {
  Tensor a = tensor({1, 5, 3, 4, 2, 6}, {2, 3});
  CHECK(sum(a).item() == 21.f);
  CHECK(mean(a).item() == 3.5f);
  check_values(sum(a, 0), {5, 7, 9});
  check_values(sum(a, 1), {9, 12});
  CHECK(sum(a, 1, true).shape() == Shape{2, 1});
  check_values(mean(a, -1), {3, 4});
  check_values(max(a, 1), {5, 6});
  CHECK(max(a).item() == 6.f);
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(argmax(a, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  CHECK(argmax(a, 1).dtype() == Dtype::Int64);
  CHECK_THROWS_WITH_AS(sum(a, 2), "sum: dim 2 is out of range for a 2-D tensor (expected in [-2, 1])", Error);
  CHECK_THROWS_WITH_AS(max(a, -3), Contains("max: dim -3 is out of range"), Error);
  // gradient of max goes to the arg max only
  Tensor x = tensor({1, 5, 3}, {1, 3}, true);
  max(x, 1).sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 1, 0});
}

TEST_CASE("ops: softmax and log_softmax are stable") {
  Tensor x = tensor({1000, 999, -1000}, {1, 3}, true);
  Tensor s = softmax(x, 1);
  const double e = std::exp(-1.0);
  check_values(s, {float(1 / (1 + e)), float(e / (1 + e)), 0.f});
  Tensor ls = log_softmax(x, 1);
  auto v = ls.to_vector<float>();
  CHECK(v[0] == Approx(-std::log1p(e)));
  CHECK(v[1] == Approx(-1 - std::log1p(e)));
  CHECK(v[2] == Approx(-2000 - std::log1p(e)));
  for (float f : v) CHECK(std::isfinite(f));
  (ls * tensor({1, 0, 0}, {1, 3})).sum().backward();
  auto g = x.grad().to_vector<float>();
  CHECK(g[0] == Approx(1 - 1 / (1 + e)));
  CHECK(g[1] == Approx(-e / (1 + e)));
  CHECK(g[2] == Approx(0).epsilon(1e-6));
  for (float f : g) CHECK(std::isfinite(f));
  check_values(sum(softmax(randn({4, 7}), 1), 1), {1, 1, 1, 1});
}

TEST_CASE("ops: shape ops and their errors") {
  Tensor x = arange(0.f, 24.f);
  CHECK(reshape(x, {2, -1, 4}).shape() == Shape{2, 3, 4});
  CHECK(flatten(reshape(x, {2, 3, 4})).shape() == Shape{2, 12});
  CHECK(flatten(reshape(x, {2, 3, 4}), 0).shape() == Shape{24});
  CHECK(transpose(reshape(x, {2, 3, 4}), 0, 2).shape() == Shape{4, 3, 2});
  CHECK_THROWS_WITH_AS(reshape(x, {5, -1}), "reshape: cannot reshape tensor of shape [24] (24 elements) into [5, -1]",
                       Error);
  CHECK_THROWS_WITH_AS(reshape(x, {-1, -1}), Contains("only one dimension can be -1"), Error);
  CHECK_THROWS_WITH_AS(ones({2, 3}).t().t().transpose(0, 5), Contains("transpose: dim 5 is out of range"), Error);
}

TEST_CASE("ops: oneDNN primitives are reused, and their cache is bounded") {
  matmul(ones({5, 3}), ones({3, 2}));
  const size_t n0 = primitive_cache_size();
  for (int i = 0; i < 10; ++i) matmul(ones({5, 3}), ones({3, 2}));
  CHECK(primitive_cache_size() == n0);  // same shapes: no new primitive
  for (int64_t n = 1; n <= int64_t(primitive_cache_capacity()) + 20; ++n) matmul(ones({n, 2}), ones({2, 2}));
  CHECK(primitive_cache_size() == primitive_cache_capacity());
}
