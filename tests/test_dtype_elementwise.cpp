// Elementwise ops, activations, comparisons and dropout across dtypes: Float64
// forward values a Float32 kernel would round differently, Float64 backward
// against analytic derivatives, Int64 arithmetic, promotion of mixed dtypes
// (each leaf's gradient in its own dtype), BFloat16 through Float32, and the
// error messages that name the op and the dtype.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <tape/tape.hpp>
#include <vector>

#include "error_of.hpp"

using namespace tape;
using tape_test::error_of;

namespace {

Tensor dvec(std::vector<double> v, bool requires_grad = false) {
  const auto n = int64_t(v.size());
  return tensor(std::move(v), {n}, requires_grad);
}
Tensor ivec(std::vector<int64_t> v) {
  const auto n = int64_t(v.size());
  return tensor(std::move(v), {n});
}

/// t is Float64 and each element is within rel·|want| of want (rel = 0: equal).
void check_f64(const Tensor& t, const std::vector<double>& want, double rel = 1e-15) {
  REQUIRE(t.dtype() == Dtype::Float64);
  const auto v = t.to_vector<double>();
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i)
    CHECK_MESSAGE(std::fabs(v[i] - want[i]) <= rel * std::fabs(want[i]), "index ", i, ": ", v[i],
                  " != ", want[i]);
}

void check_i64(const Tensor& t, const std::vector<int64_t>& want) {
  REQUIRE(t.dtype() == Dtype::Int64);
  CHECK(t.to_vector<int64_t>() == want);
}

void check_f32(const Tensor& t, const std::vector<float>& want) {
  REQUIRE(t.dtype() == Dtype::Float32);
  CHECK(t.to_vector<float>() == want);
}

std::vector<int> bits(const Tensor& t) {
  REQUIRE(t.dtype() == Dtype::Bool);
  std::vector<int> out;
  for (bool b : t.to_vector<bool>()) out.push_back(b ? 1 : 0);
  return out;
}

/// d/dx sum(f(x)) for a Float64 x.
Tensor grad_of(std::vector<double> x0, const std::function<Tensor(const Tensor&)>& f) {
  Tensor x = dvec(std::move(x0), true);
  sum(f(x)).backward();
  REQUIRE(x.grad().dtype() == Dtype::Float64);
  return x.grad();
}

const double kEps = 1e-10;  // 1 + kEps is 1 in Float32

}  // namespace

TEST_CASE("dtype elementwise: Float64 arithmetic keeps digits Float32 would round away") {
  Tensor one = dvec({1, 1});
  Tensor eps = dvec({kEps, -kEps});
  check_f64(one + eps, {1 + kEps, 1 - kEps}, 0);
  check_f64((one + eps) - one, {(1 + kEps) - 1, (1 - kEps) - 1}, 0);
  check_f64((one + eps) * (one + eps), {(1 + kEps) * (1 + kEps), (1 - kEps) * (1 - kEps)}, 0);
  check_f64(one / dvec({3, 7}), {1.0 / 3, 1.0 / 7}, 0);
  // a scalar keeps a Float64 tensor Float64, and stays a double (0.1, not 0.1f)
  check_f64(dvec({3}) * 0.1, {3 * 0.1}, 0);
  check_f64(0.1 + dvec({0.2}), {0.1 + 0.2}, 0);
  check_f64(1.0 - dvec({kEps}), {1 - kEps}, 0);
  check_f64(dvec({1}) / 3.0, {1.0 / 3}, 0);
  check_f64(2.f * dvec({kEps}), {2 * kEps}, 0);  // a float scalar: still Float64
  check_f64(neg(dvec({kEps})), {-kEps}, 0);
  // broadcasting and sum_to in Float64
  Tensor m = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  check_f64(m + dvec({kEps, 0, 0}), {1 + kEps, 2, 3, 4 + kEps, 5, 6}, 0);
  check_f64(sum_to(m + kEps, {3}), {5 + 2 * kEps, 7 + 2 * kEps, 9 + 2 * kEps});
}

TEST_CASE("dtype elementwise: Float64 unary math matches hand-computed values") {
  check_f64(exp(dvec({kEps, 1})), {1.0000000001000000000050, 2.718281828459045});
  check_f64(log(dvec({10, std::exp(2.0)})), {2.302585092994046, 2});
  check_f64(log1p(dvec({kEps})), {9.9999999995e-11});
  check_f64(expm1(dvec({kEps})), {1.00000000005e-10});
  check_f64(sqrt(dvec({2, 1 + 2 * kEps})), {1.4142135623730951, 1 + kEps});
  check_f64(rsqrt(dvec({4, 2})), {0.5, 0.7071067811865476});
  check_f64(abs(dvec({-kEps, 2.5})), {kEps, 2.5}, 0);
  check_f64(pow(dvec({8, 2}), 1.0 / 3), {2, 1.2599210498948732});
  check_f64(sin(dvec({1})), {0.8414709848078965});
  check_f64(cos(dvec({1})), {0.5403023058681398});
  check_f64(square(dvec({1 + kEps})), {(1 + kEps) * (1 + kEps)}, 0);
  check_f64(sign(dvec({-kEps, 0, kEps})), {-1, 0, 1}, 0);
  // bounds stay doubles: 0.1 is not 0.1f
  check_f64(clamp(dvec({0, 0.5, 1}), 0.1, 0.7), {0.1, 0.5, 0.7}, 0);
  check_f64(minimum(dvec({1 + kEps, 2}), dvec({1, 2 - kEps})), {1, 2 - kEps}, 0);
  check_f64(maximum(dvec({1 + kEps, 2}), dvec({1, 2 - kEps})), {1 + kEps, 2}, 0);
}

TEST_CASE("dtype elementwise: Float64 activations match hand-computed values") {
  check_f64(relu(dvec({-kEps, kEps})), {0, kEps}, 0);
  check_f64(leaky_relu(dvec({-2, kEps}), 0.5f), {-1, kEps}, 0);
  check_f64(elu(dvec({-1, 2})), {-0.6321205588285577, 2});
  check_f64(selu(dvec({-1, 1})), {-1.0507009873554805 * 1.6732632423543772 * 0.6321205588285577, 1.0507009873554805});
  check_f64(tanh(dvec({0.5, kEps})), {0.46211715726000974, kEps});
  check_f64(sigmoid(dvec({0, 1, -800})), {0.5, 0.7310585786300049, 0});
  check_f64(gelu(dvec({1, -1})), {0.8413447460685429, -0.15865525393145707});
  check_f64(silu(dvec({1})), {0.7310585786300049});
  check_f64(softplus(dvec({0, 30})), {0.6931471805599453, 30});
  // above the oneDNN bulk threshold Float64 still runs its own (double) formula
  Tensor big = full({5000}, 0.5, Dtype::Float64);
  CHECK(tanh(big).to_vector<double>()[4999] == std::tanh(0.5));
  CHECK(sigmoid(big).to_vector<double>()[0] == 1 / (1 + std::exp(-0.5)));
}

TEST_CASE("dtype elementwise: Float64 backward matches analytic derivatives") {
  const std::vector<double> x = {0.25, 1.5, 3};
  const auto each = [&](double (*f)(double)) {
    std::vector<double> out;
    for (double v : x) out.push_back(f(v));
    return out;
  };
  check_f64(grad_of(x, [](const Tensor& t) { return exp(t); }), each([](double v) { return std::exp(v); }));
  check_f64(grad_of(x, [](const Tensor& t) { return log(t); }), each([](double v) { return 1 / v; }));
  check_f64(grad_of(x, [](const Tensor& t) { return sqrt(t); }), each([](double v) { return 0.5 / std::sqrt(v); }));
  check_f64(grad_of(x, [](const Tensor& t) { return rsqrt(t); }), each([](double v) { return -0.5 * std::pow(v, -1.5); }), 1e-14);
  check_f64(grad_of(x, [](const Tensor& t) { return sin(t); }), each([](double v) { return std::cos(v); }));
  check_f64(grad_of(x, [](const Tensor& t) { return pow(t, 2.5); }), each([](double v) { return 2.5 * std::pow(v, 1.5); }));
  check_f64(grad_of(x, [](const Tensor& t) { return log1p(t); }), each([](double v) { return 1 / (1 + v); }));
  check_f64(grad_of(x, [](const Tensor& t) { return tanh(t); }),
            each([](double v) { return 1 - std::tanh(v) * std::tanh(v); }));
  check_f64(grad_of(x, [](const Tensor& t) { return sigmoid(t); }), each([](double v) {
              const double s = 1 / (1 + std::exp(-v));
              return s * (1 - s);
            }));
  check_f64(grad_of(x, [](const Tensor& t) { return gelu(t); }), each([](double v) {
              return 0.5 * (1 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-v * v / 2) / std::sqrt(2 * std::numbers::pi);
            }));
  check_f64(grad_of(x, [](const Tensor& t) { return silu(t); }), each([](double v) {
              const double s = 1 / (1 + std::exp(-v));
              return s * (1 + v * (1 - s));
            }));
  check_f64(grad_of(x, [](const Tensor& t) { return softplus(t); }),
            each([](double v) { return 1 / (1 + std::exp(-v)); }));
  // kinked ops: relu / leaky_relu keep a sign byte, elu and selu both sides
  check_f64(grad_of({-1, 2}, [](const Tensor& t) { return relu(t); }), {0, 1}, 0);
  check_f64(grad_of({-1, 2}, [](const Tensor& t) { return leaky_relu(t, 0.25f); }), {0.25, 1}, 0);
  check_f64(grad_of({-1, 2}, [](const Tensor& t) { return elu(t); }), {std::exp(-1.0), 1});
  check_f64(grad_of({-1, 2}, [](const Tensor& t) { return selu(t); }),
            {1.0507009873554805 * 1.6732632423543772 * std::exp(-1.0), 1.0507009873554805});
  check_f64(grad_of({-1, 0.5, 2}, [](const Tensor& t) { return clamp(t, 0.0, 1.0); }), {0, 1, 0}, 0);
  check_f64(grad_of({-3, 2}, [](const Tensor& t) { return abs(t) + sign(t) + square(t); }), {-1 - 6, 1 + 4}, 0);
  // binary ops: d(a·b/(a+b))/da at a = 1 + eps, b = 3, through mul, div, add and a scalar
  Tensor a = dvec({1 + kEps}, true), b = dvec({3}, true);
  sum(a * b / (a + b) * 2.0 - 1.0).backward();
  const double av = 1 + kEps, bv = 3;
  check_f64(a.grad(), {2 * bv * bv / ((av + bv) * (av + bv))});
  check_f64(b.grad(), {2 * av * av / ((av + bv) * (av + bv))});
  Tensor p = dvec({1, 5}, true), q = dvec({1, 2}, true);
  sum(maximum(p, q) - minimum(p, q) * 3.0).backward();
  check_f64(p.grad(), {0.5 - 1.5, 1}, 0);  // the tie splits ½ each
  check_f64(q.grad(), {0.5 - 1.5, -3}, 0);
}

TEST_CASE("dtype elementwise: Int64 arithmetic, and true division to Float32") {
  Tensor i = ivec({1, 2, 3});
  check_i64(i + 1, {2, 3, 4});
  check_i64(i * 2, {2, 4, 6});
  check_i64(i - 4.0, {-3, -2, -1});  // an integral-valued scalar keeps Int64
  check_i64(10 - i, {9, 8, 7});
  check_i64(i * i + i, {2, 6, 12});
  check_i64(i - ivec({3}), {-2, -1, 0});  // broadcast
  check_f32(i * 2.5, {2.5f, 5.f, 7.5f});  // a non-integral scalar gives Float32
  check_f32(i + 0.5f, {1.5f, 2.5f, 3.5f});
  check_f32(i / 2, {0.5f, 1.f, 1.5f});  // true division, as in PyTorch
  check_f32(i / ivec({2, 4, 3}), {0.5f, 0.5f, 1.f});
  check_f32(6 / i, {6.f, 3.f, 2.f});
  // exact beyond 2^53, where double and float both round
  const int64_t big = (int64_t(1) << 53) + 1;
  check_i64(ivec({big}) + 2, {big + 2});
  check_i64(ivec({big}) * ivec({1}), {big});
  // the integer unary ops
  Tensor j = ivec({-3, 0, 4});
  check_i64(neg(j), {3, 0, -4});
  check_i64(-j, {3, 0, -4});
  check_i64(abs(j), {3, 0, 4});
  check_i64(sign(j), {-1, 0, 1});
  check_i64(square(j), {9, 0, 16});
  check_i64(clamp(j, -1, 2), {-1, 0, 2});
  check_f32(clamp(j, -0.5, 2.5), {-0.5f, 0.f, 2.5f});  // non-integral bounds: Float32
  check_i64(minimum(j, ivec({0})), {-3, 0, 0});
  check_i64(maximum(j, ivec({0})), {0, 0, 4});
  check_i64(sum_to(tensor(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3}), {3}), {5, 7, 9});
  // Bool operands count as 0 / 1 beside a number
  check_i64(ones({3}, Dtype::Bool) + i, {2, 3, 4});
  check_i64(gt(i, 1.f) * 5, {0, 5, 5});
}

TEST_CASE("dtype elementwise: mixed dtypes promote; each leaf's gradient keeps its dtype") {
  Tensor a = tensor({1.5f, 2.f}, {2}, true);        // Float32
  Tensor b = dvec({kEps, 0.25}, true);              // Float64
  Tensor y = a * b + a;
  CHECK(y.dtype() == Dtype::Float64);
  check_f64(y, {1.5 * kEps + 1.5, 2 * 0.25 + 2}, 0);
  sum(y).backward();
  REQUIRE(a.grad().dtype() == Dtype::Float32);
  REQUIRE(b.grad().dtype() == Dtype::Float64);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{1.f, 1.25f});  // kEps rounds away in Float32
  check_f64(b.grad(), {1.5, 2}, 0);
  // Int64 + Float32 → Float32, Int64 · Float64 → Float64; the float leaf gets its gradient
  Tensor w = tensor({0.5f, 0.25f}, {2}, true);
  Tensor z = ivec({2, 3}) + w;
  check_f32(z, {2.5f, 3.25f});
  sum(z * ivec({4, 5})).backward();
  check_f32(w.grad(), {4.f, 5.f});
  check_f64(ivec({2}) * dvec({0.1}), {0.2}, 0);
  check_f64(dvec({1}) / ivec({3}), {1.0 / 3}, 0);
  CHECK(maximum(ivec({1, 4}), tensor({2.5f, 3.f}, {2})).dtype() == Dtype::Float32);
  check_f64(minimum(tensor({0.5f}, {1}), dvec({0.1})), {0.1}, 0);
  // a gradient crossing a promotion twice: Float32 leaf through sub and div with Float64
  Tensor c = tensor({2.f}, {1}, true);
  sum(dvec({1}) / (c - dvec({1}))).backward();
  REQUIRE(c.grad().dtype() == Dtype::Float32);
  CHECK(c.grad().item<float>() == -1.f);
}

TEST_CASE("dtype elementwise: BFloat16 computes in Float32 and rounds back") {
  Tensor a = tensor({1.f, 2.5f, -3.f}, {3}).to(Dtype::BFloat16);
  Tensor s = a + a;
  CHECK(s.dtype() == Dtype::BFloat16);
  CHECK(s.to(Dtype::Float32).to_vector<float>() == std::vector<float>{2.f, 5.f, -6.f});
  Tensor r = relu(a);
  CHECK(r.dtype() == Dtype::BFloat16);
  CHECK(r.to(Dtype::Float32).to_vector<float>() == std::vector<float>{1.f, 2.5f, 0.f});
  // 1 + 2^-8 is exact in Float32 and halfway in BFloat16: the sum rounds to even (1)
  Tensor one = tensor({1.f}, {1}).to(Dtype::BFloat16);
  Tensor tiny = tensor({0x1p-8f}, {1}).to(Dtype::BFloat16);
  CHECK((one + tiny).to(Dtype::Float32).item<float>() == 1.f);
  CHECK((one * 3.0).dtype() == Dtype::BFloat16);            // a scalar keeps BFloat16
  CHECK((one + tensor({0x1p-8f}, {1})).item<float>() == 1.f + 0x1p-8f);  // BFloat16 + Float32 → Float32
  CHECK(exp(one).dtype() == Dtype::BFloat16);
  CHECK(exp(one).to(Dtype::Float32).item<float>() == 2.71875f);  // e rounded to 8 bits
  CHECK(bits(isnan(one / tensor({0.f}, {1}).to(Dtype::BFloat16) * 0.0)) == std::vector<int>{1});
  CHECK(where(gt(one, 0.f), one, tiny).dtype() == Dtype::BFloat16);
  // gradients flow through the casts back to the leaves, in their dtypes
  Tensor x = tensor({-1.f, 2.f}, {2}, true);
  sum((relu(x.to(Dtype::BFloat16)) * 3.0).to(Dtype::Float32)).backward();
  REQUIRE(x.grad().dtype() == Dtype::Float32);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0.f, 3.f});
  Tensor xb = tensor({0.5f, 4.f}, {2}).to(Dtype::BFloat16).requires_grad_();
  sum((xb * xb).to(Dtype::Float32)).backward();
  REQUIRE(xb.grad().dtype() == Dtype::BFloat16);
  CHECK(xb.grad().to(Dtype::Float32).to_vector<float>() == std::vector<float>{1.f, 8.f});
}

TEST_CASE("dtype elementwise: comparisons, where, masked_fill, isnan and isfinite in Float64 and mixed dtypes") {
  Tensor a = dvec({1 + kEps, 1, 2});
  Tensor b = dvec({1, 1, 3});
  CHECK(bits(eq(a, b)) == std::vector<int>{0, 1, 0});  // Float32 would call 1 + 1e-10 equal to 1
  CHECK(bits(gt(a, b)) == std::vector<int>{1, 0, 0});
  CHECK(bits(a > 1.0) == std::vector<int>{1, 0, 1});
  CHECK(bits(dvec({0.1}) == 0.1) == std::vector<int>{1});
  CHECK(bits(tensor({0.1f}, {1}) == 0.1) == std::vector<int>{1});  // the scalar rounds to Float32
  // mixed dtypes promote: 0.1f widened is not the double 0.1
  CHECK(bits(eq(tensor({0.1f, 2.f}, {2}), dvec({0.1, 2}))) == std::vector<int>{0, 1});
  CHECK(bits(lt(ivec({1, 2}), tensor({1.5f, 1.5f}, {2}))) == std::vector<int>{1, 0});
  // where and masked_fill are differentiable in Float64; mixed where promotes
  Tensor cond = gt(dvec({1, -1, 1}), 0.0);
  Tensor x = dvec({1 + kEps, 2, 3}, true);
  Tensor y = tensor({10.f, 20.f, 30.f}, {3}, true);
  Tensor w = where(cond, x, y);
  check_f64(w, {1 + kEps, 20, 3}, 0);
  sum(w * dvec({1, 2, 3})).backward();
  check_f64(x.grad(), {1, 0, 3}, 0);
  check_f32(y.grad(), {0.f, 2.f, 0.f});
  check_i64(where(cond, ivec({1, 2, 3}), ivec({-1})), {1, -1, 3});
  Tensor t = dvec({1, 2, 3}, true);
  Tensor m = masked_fill(t, cond, 0.1);
  check_f64(m, {0.1, 2, 0.1}, 0);
  sum(m * t).backward();
  check_f64(t.grad(), {0.1, 4, 0.1}, 0);
  check_i64(masked_fill(ivec({1, 2, 3}), cond, -7), {-7, 2, -7});
  // isnan / isfinite: Float64 elementwise, Int64 never NaN and always finite (PyTorch)
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK(bits(isnan(dvec({nan, 1, inf}))) == std::vector<int>{1, 0, 0});
  CHECK(bits(isfinite(dvec({nan, 1, -inf}))) == std::vector<int>{0, 1, 0});
  CHECK(bits(isnan(ivec({1, 2}))) == std::vector<int>{0, 0});
  CHECK(bits(isfinite(ivec({1, 2}))) == std::vector<int>{1, 1});
  // NaN propagates through the Float64 kernels
  CHECK(std::isnan(maximum(dvec({nan}), dvec({1})).item<double>()));
  CHECK(std::isnan(relu(dvec({nan})).item<double>()));
}

TEST_CASE("dtype elementwise: dropout in Float64") {
  Tensor x = full({1000}, 1.0 + kEps, Dtype::Float64).requires_grad_();
  Generator g1(7), g2(7);
  Tensor y = dropout(x, 0.3f, true, g1);
  REQUIRE(y.dtype() == Dtype::Float64);
  const double keep = (1 + kEps) * (1 / (1 - double(0.3f)));
  int kept = 0;
  for (double v : y.to_vector<double>()) {
    CHECK((v == 0 || std::fabs(v - keep) <= 1e-15 * keep));
    kept += v != 0;
  }
  CHECK(kept > 600);
  CHECK(kept < 800);
  // the same seed drops the same elements in Float32
  Tensor y32 = dropout(ones({1000}), 0.3f, true, g2);
  const auto v64 = y.to_vector<double>();
  const auto v32 = y32.to_vector<float>();
  bool same = true;
  for (size_t i = 0; i < v64.size(); ++i) same = same && ((v64[i] == 0) == (v32[i] == 0));
  CHECK(same);
  sum(y).backward();
  REQUIRE(x.grad().dtype() == Dtype::Float64);
  const auto gx = x.grad().to_vector<double>();
  for (size_t i = 0; i < gx.size(); ++i) CHECK((gx[i] == 0) == (v64[i] == 0));
  Tensor xb = ones({8}, Dtype::BFloat16);
  CHECK(dropout(xb, 0.5f, true).dtype() == Dtype::BFloat16);
}

TEST_CASE("dtype elementwise: errors name the op and the dtype") {
  Tensor flag = ones({2}, Dtype::Bool);
  CHECK(error_of([&] { exp(flag); }) == "exp: input must be Float32, Float64 or BFloat16, got Bool tensor of shape [2]");
  CHECK(error_of([&] { tanh(ivec({1})); }) == "tanh: input must be Float32, Float64 or BFloat16, got Int64 tensor of shape [1]");
  CHECK(error_of([&] { abs(flag); }) ==
        "abs: input must be Float32, Float64, BFloat16 or Int64, got Bool tensor of shape [2]");
  CHECK(error_of([&] { relu(Tensor()); }) == "relu: input is an undefined tensor");
  CHECK(error_of([&] { flag * flag; }) ==
        "mul: operands must not both be Bool, got Bool tensors of shapes [2] and [2] (convert one with .to(dtype))");
  CHECK(error_of([&] { add(dvec({1, 2}), dvec({1, 2, 3})); }).find("add: shapes [2] and [3] cannot be broadcast") == 0);
  CHECK(error_of([&] { dvec({1}) * Tensor(); }) == "mul: second operand is an undefined tensor");
  CHECK(error_of([&] { dropout(ivec({1}), 0.5f, true); }) ==
        "dropout: input must be Float32, Float64 or BFloat16, got Int64 tensor of shape [1]");
}
