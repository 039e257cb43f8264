// Float64 and Int64 in the reductions, softmax and matmul/linear: forward values
// computed by hand (cases Float32 would round away), Int64 results that stay
// exact past 2^53, Float64 matmul against a naive loop (transposed views,
// batches, bias, backward) and the mixed-dtype errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <tape/tape.hpp>
#include <vector>

#include "dtype_check.hpp"
#include "error_of.hpp"

using namespace tape;
using tape_test::check_f64;
using tape_test::error_of;
using tape_test::ivec;
using tape_test::vec64;

namespace {

/// Uniform values in [-1, 1) as Float64.
Tensor uniform64(const Shape& s, Generator& g) { return rand(s, g).to(Dtype::Float64) * 2.0 - 1.0; }

/// c[b,i,j] = Σ_k a[b,i,k]·b[b,k,j] in long double, for [M,K]@[K,N] or [B,M,K]@[B,K,N].
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  const auto av = ac.to_vector<double>(), bv = bc.to_vector<double>();
  const int64_t batches = a.dim() == 3 ? a.size(0) : 1, m = a.size(-2), k = a.size(-1), n = b.size(-1);
  std::vector<double> c(size_t(batches * m * n));
  for (int64_t q = 0; q < batches; ++q)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        long double acc = 0;
        for (int64_t l = 0; l < k; ++l)
          acc += (long double)av[size_t((q * m + i) * k + l)] * bv[size_t((q * k + l) * n + j)];
        c[size_t((q * m + i) * n + j)] = double(acc);
      }
  return c;
}

}  // namespace

// --- reductions ----------------------------------------------------------------

TEST_CASE("dtype reduce: Float64 sum and mean keep what Float32 rounds away") {
  const double e = std::ldexp(1.0, -40);  // 1 + 2^-40 is 1 in Float32
  Tensor x = vec64({1 + e, 1 + e, -2});
  Tensor s = sum(x);
  CHECK(s.dtype() == Dtype::Float64);
  CHECK(s.item<double>() == std::ldexp(1.0, -39));
  CHECK(sum(x.to(Dtype::Float32)).item<float>() == 0.f);
  CHECK(mean(x).item<double>() == std::ldexp(1.0, -39) / 3);
  // [1e16, 2, -1e16]: exact in double (spacing 2 at 1e16)
  CHECK(sum(vec64({1e16, 2, -1e16})).item<double>() == 2.0);

  // along a dim, with keepdim, and a large tensor (the chunked parallel sum)
  Tensor m = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  check_f64(sum(m, 0), {5, 7, 9});
  check_f64(sum(m, 1, true), {6, 15});
  CHECK(sum(m, 1, true).shape() == Shape{2, 1});
  check_f64(mean(m, 1), {2, 5});
  Tensor big = full({100000}, 0.1, Dtype::Float64);
  CHECK(sum(big).item<double>() == doctest::Approx(10000.0).epsilon(1e-12));

  // backward: dx = g broadcast back (× 1/n for mean), in Float64
  Tensor w = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, true);
  mean(w, 1).sum().backward();
  check_f64(w.grad(), {1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3});
  Tensor v = vec64({1, 2});
  v.requires_grad_();
  sum(v).backward();
  check_f64(v.grad(), {1, 1});
}

TEST_CASE("dtype reduce: Float64 max/min/argmax/argmin and their backward") {
  // values 1e-300 apart: equal in Float32 (both flush to 0)
  Tensor x = tensor(std::vector<double>{3e-300, 1e-300, 2e-300, -1, 5, 4}, {2, 3}, true);
  Tensor mx = max(x, 1), mn = min(x, 1);
  check_f64(mx, {3e-300, 5}, 0);
  check_f64(mn, {1e-300, -1}, 0);
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(max(x).item<double>() == 5.0);
  (mx.sum() + mn.sum() * 2.0).backward();
  check_f64(x.grad(), {1, 2, 0, 2, 1, 0});
}

TEST_CASE("dtype reduce: Float64 prod, var, std, logsumexp and norm") {
  // 1e200·1e100·1e-250 overflows Float32 at every step
  Tensor p = vec64({1e200, 1e100, 1e-250});
  CHECK(prod(p).item<double>() == doctest::Approx(1e50).epsilon(1e-14));
  Tensor q = vec64({2, 3, 4});
  q.requires_grad_();
  Tensor pq = prod(q);
  CHECK(pq.dtype() == Dtype::Float64);
  CHECK(pq.item<double>() == 24.0);
  pq.backward();
  check_f64(q.grad(), {12, 8, 6});

  Tensor z = vec64({2, 0, 5});
  z.requires_grad_();
  prod(z).backward();
  check_f64(z.grad(), {0, 10, 0});

  // var of [1, 2, 3, 4] = 5/3 (unbiased), 5/4 (biased)
  Tensor v = vec64({1, 2, 3, 4});
  CHECK(var(v, 0).item<double>() == doctest::Approx(5.0 / 3).epsilon(1e-15));
  CHECK(var(v, 0, false).item<double>() == doctest::Approx(1.25).epsilon(1e-15));
  CHECK(tape::std(v, 0).item<double>() == doctest::Approx(std::sqrt(5.0 / 3)).epsilon(1e-15));
  CHECK(var(v, 0).dtype() == Dtype::Float64);

  // logsumexp([1000, 1000]) = 1000 + log 2: the shift keeps it finite
  Tensor l = vec64({1000, 1000});
  l.requires_grad_();
  Tensor lse = logsumexp(l, 0);
  CHECK(lse.item<double>() == doctest::Approx(1000 + std::log(2.0)).epsilon(1e-15));
  lse.backward();
  check_f64(l.grad(), {0.5, 0.5});

  Tensor n = vec64({3, -4});
  n.requires_grad_();
  Tensor nn2 = norm(n);
  CHECK(nn2.item<double>() == 5.0);
  nn2.backward();
  check_f64(n.grad(), {0.6, -0.8});
  CHECK(norm(n, 1.f).item<double>() == 7.0);
  CHECK(norm(n, 3.f).item<double>() == doctest::Approx(std::cbrt(91.0)).epsilon(1e-15));
}

TEST_CASE("dtype reduce: Int64 sum, max, min, argmax, argmin and prod stay Int64 and exact") {
  const int64_t big = int64_t(1) << 62;  // past 2^53: a double would round big + 1
  Tensor x = ivec({big, 1, 1});
  Tensor s = sum(x);
  CHECK(s.dtype() == Dtype::Int64);
  CHECK(s.item<int64_t>() == big + 2);

  Tensor m = tensor(std::vector<int64_t>{3, -7, 5, 2, 9, -1}, {2, 3});
  CHECK(sum(m, 0).to_vector<int64_t>() == std::vector<int64_t>{5, 2, 4});
  CHECK(sum(m, 1, true).shape() == Shape{2, 1});
  CHECK(sum(m, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 10});
  CHECK(max(m, 1).dtype() == Dtype::Int64);
  CHECK(max(m, 1).to_vector<int64_t>() == std::vector<int64_t>{5, 9});
  CHECK(min(m, 0).to_vector<int64_t>() == std::vector<int64_t>{2, -7, -1});
  CHECK(argmax(m, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 1});
  CHECK(argmin(m, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(max(m).item<int64_t>() == 9);
  // extremes of the type itself are found (the search does not start from a value inside the range)
  const int64_t lo = INT64_MIN, hi = INT64_MAX;
  CHECK(max(ivec({lo, lo}), 0).item<int64_t>() == lo);
  CHECK(min(ivec({hi, 3, hi}), 0).item<int64_t>() == 3);
  CHECK(argmin(ivec({hi, hi}), 0).item<int64_t>() == 0);

  CHECK(prod(ivec({3, -4, 5})).item<int64_t>() == -60);
  CHECK(prod(ivec({big, 2})).item<int64_t>() == INT64_MIN);  // wraps like PyTorch's int64
  CHECK(prod(ivec({})).item<int64_t>() == 1);
  CHECK(sum(ivec({})).item<int64_t>() == 0);

  // a Bool tensor sums to an Int64 count, as in PyTorch: (pred == label).sum()
  Tensor hits = eq(ivec({1, 2, 3, 4}), ivec({1, 0, 3, 4}));
  CHECK(sum(hits).dtype() == Dtype::Int64);
  CHECK(sum(hits).item<int64_t>() == 3);
}

TEST_CASE("dtype reduce: mean of Int64 and reductions of other dtypes are one-line errors") {
  Tensor x = ivec({1, 2, 3});
  const std::string e = error_of([&] { mean(x); });
  CHECK(e.find("mean") != std::string::npos);
  CHECK(e.find("Int64") != std::string::npos);
  CHECK(e.find(".to(Float32)") != std::string::npos);
  CHECK(error_of([&] { mean(x, 0); }).find("Int64") != std::string::npos);
  CHECK(error_of([&] { var(x, 0); }).find("var") != std::string::npos);
  CHECK(error_of([&] { norm(x); }).find("Int64") != std::string::npos);
  Tensor b = eq(x, x);
  CHECK(error_of([&] { max(b, 0); }) == "max: input must be Float32, Float64 or Int64, got Bool tensor of shape [3]");
  CHECK(error_of([&] { sum(Tensor()); }) == "sum: input is an undefined tensor");
}

// --- softmax ---------------------------------------------------------------------

TEST_CASE("dtype reduce: Float64 softmax and log_softmax, forward and backward") {
  Tensor x = tensor(std::vector<double>{0, std::log(3.0)}, {1, 2}, true);
  Tensor y = softmax(x, 1);
  check_f64(y, {0.25, 0.75});
  check_f64(log_softmax(x, 1), {std::log(0.25), std::log(0.75)});
  // dx = y ⊙ (g − Σ g⊙y) with g = [1, 0]: [0.25·0.75, −0.75·0.25]
  y.backward(tensor(std::vector<double>{1, 0}, {1, 2}));
  check_f64(x.grad(), {0.1875, -0.1875});

  // log_softmax: dx = g − eʸ·Σg with g = [1, 1]
  Tensor x2 = tensor(std::vector<double>{0, std::log(3.0)}, {1, 2}, true);
  log_softmax(x2, 1).sum().backward();
  check_f64(x2.grad(), {1 - 2 * 0.25, 1 - 2 * 0.75});

  // a row Float32 cannot separate: 1 + 1e-12 vs 1
  Tensor t = tensor(std::vector<double>{1 + 1e-12, 1}, {2});
  const auto p = softmax(t, 0).to_vector<double>();
  CHECK(p[0] - p[1] == doctest::Approx(0.5e-12).epsilon(1e-3));
  // along a non-last dim
  Tensor c = tensor(std::vector<double>{0, 1, std::log(3.0), 1}, {2, 2});
  check_f64(softmax(c, 0), {0.25, 0.5, 0.75, 0.5});
  CHECK(error_of([] { softmax(ivec({1, 2}), 0); }).find("Int64") != std::string::npos);
}

// --- matmul / linear -------------------------------------------------------------

TEST_CASE("dtype reduce: Float64 matmul matches a naive loop (2-D, transposed views, batched)") {
  Generator g(7);
  Tensor a = uniform64({5, 7}, g), b = uniform64({7, 3}, g);
  Tensor c = matmul(a, b);
  CHECK(c.dtype() == Dtype::Float64);
  CHECK(c.shape() == Shape{5, 3});
  check_f64(c, naive_matmul(a, b), 1e-14);

  // transposed operands are views (strides swapped), read by BLAS without a copy
  Tensor at = uniform64({7, 5}, g), bt = uniform64({3, 7}, g);
  check_f64(matmul(at.t(), b), naive_matmul(at.t(), b), 1e-14);
  check_f64(matmul(a, bt.t()), naive_matmul(a, bt.t()), 1e-14);
  check_f64(matmul(at.t(), bt.t()), naive_matmul(at.t(), bt.t()), 1e-14);
  // a view with neither inner stride 1 (every other column) is copied first
  Tensor wide = uniform64({5, 14}, g);
  Tensor strided = slice(wide, 1, 0, 14, 2);
  check_f64(matmul(strided, b), naive_matmul(strided, b), 1e-14);

  // batched [B,M,K]@[B,K,N], and a batch of transposed operands
  Tensor ba = uniform64({3, 4, 6}, g), bb = uniform64({3, 6, 2}, g), bbt = uniform64({3, 2, 6}, g);
  check_f64(matmul(ba, bb), naive_matmul(ba, bb), 1e-14);
  check_f64(matmul(ba, transpose(bbt, 1, 2)), naive_matmul(ba, transpose(bbt, 1, 2)), 1e-14);

  // exact small case by hand: [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]]
  Tensor h = matmul(tensor(std::vector<double>{1, 2, 3, 4}, {2, 2}), tensor(std::vector<double>{5, 6, 7, 8}, {2, 2}));
  check_f64(h, {19, 22, 43, 50}, 0);
  // empty: K = 0 gives zeros, in Float64
  Tensor e = matmul(zeros({2, 0}, Dtype::Float64), zeros({0, 3}, Dtype::Float64));
  check_f64(e, {0, 0, 0, 0, 0, 0}, 0);
}

TEST_CASE("dtype reduce: Float64 matmul and linear backward match the naive products") {
  Generator g(11);
  Tensor a = uniform64({4, 5}, g).requires_grad_(), b = uniform64({5, 3}, g).requires_grad_();
  Tensor gout = uniform64({4, 3}, g);
  matmul(a, b).backward(gout);
  // dA = G·Bᵀ, dB = Aᵀ·G
  check_f64(a.grad(), naive_matmul(gout, b.detach().t()), 1e-14);
  check_f64(b.grad(), naive_matmul(a.detach().t(), gout), 1e-14);

  // batched backward
  Tensor ba = uniform64({2, 3, 4}, g).requires_grad_(), bb = uniform64({2, 4, 2}, g).requires_grad_();
  Tensor bg = uniform64({2, 3, 2}, g);
  matmul(ba, bb).backward(bg);
  check_f64(ba.grad(), naive_matmul(bg, transpose(bb.detach(), 1, 2)), 1e-14);
  check_f64(bb.grad(), naive_matmul(transpose(ba.detach(), 1, 2), bg), 1e-14);

  // linear: y = x·Wᵀ + b; dx = G·W, dW = Gᵀ·x, db = Σ_rows G
  Tensor x = uniform64({3, 4}, g).requires_grad_(), w = uniform64({2, 4}, g).requires_grad_();
  Tensor bias = tensor(std::vector<double>{0.5, -1.5}, {2}, true);
  Tensor y = linear(x, w, bias);
  std::vector<double> want = naive_matmul(x.detach(), w.detach().t());
  for (size_t i = 0; i < want.size(); ++i) want[i] += i % 2 ? -1.5 : 0.5;
  check_f64(y, want, 1e-14);
  Tensor gy = uniform64({3, 2}, g);
  y.backward(gy);
  check_f64(x.grad(), naive_matmul(gy, w.detach()), 1e-14);
  check_f64(w.grad(), naive_matmul(gy.t(), x.detach()), 1e-14);
  const auto gv = gy.to_vector<double>();
  check_f64(bias.grad(), {gv[0] + gv[2] + gv[4], gv[1] + gv[3] + gv[5]}, 1e-14);
}

TEST_CASE("dtype reduce: linear with a strided bias gives the same result in Float32 and Float64") {
  // every other element of a [4] tensor: oneDNN's bias descriptor is dense, so this bias is copied first
  Tensor x = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}), w = tensor(std::vector<double>{1, 0, 0, 0, 1, 1}, {2, 3});
  Tensor bias = slice(tensor(std::vector<double>{10, -1, 20, -1}, {4}), 0, 0, 4, 2);
  REQUIRE_FALSE(bias.is_contiguous());
  // y = x·Wᵀ + b = [[1 + 10, 5 + 20], [4 + 10, 11 + 20]]
  check_f64(linear(x, w, bias), {11, 25, 14, 31}, 0);
  Tensor y32 = linear(x.to(Dtype::Float32), w.to(Dtype::Float32), bias.to(Dtype::Float32));
  CHECK(y32.to_vector<float>() == std::vector<float>{11, 25, 14, 31});
  Tensor b32 = slice(tensor({10.f, -1.f, 20.f, -1.f}, {4}), 0, 0, 4, 2);
  CHECK(linear(x.to(Dtype::Float32), w.to(Dtype::Float32), b32).to_vector<float>() == std::vector<float>{11, 25, 14, 31});
}

TEST_CASE("dtype reduce: Float64 matmul agrees with the Float32 path") {
  Generator g(3);
  Tensor a = uniform64({64, 48}, g), b = uniform64({48, 40}, g);
  const auto c64 = matmul(a, b).to_vector<double>();
  const auto c32 = matmul(a.to(Dtype::Float32), b.to(Dtype::Float32)).to_vector<float>();
  for (size_t i = 0; i < c64.size(); ++i) CHECK(std::fabs(c64[i] - c32[i]) < 1e-4);
}

TEST_CASE("dtype reduce: mixed Float32/Float64 operands are an error naming both dtypes") {
  Tensor a32 = ones({2, 3}), b64 = ones({3, 4}, Dtype::Float64);
  CHECK(error_of([&] { matmul(a32, b64); }) ==
        "matmul: second operand has dtype Float64 but the input is Float32 (convert one with .to(dtype))");
  Tensor x64 = ones({2, 3}, Dtype::Float64), w32 = ones({4, 3});
  CHECK(error_of([&] { linear(x64, w32); }) ==
        "linear: weight has dtype Float32 but the input is Float64 (convert one with .to(dtype))");
  CHECK(error_of([&] { linear(x64, w32.to(Dtype::Float64), ones({4})); }) ==
        "linear: bias has dtype Float32 but the input is Float64 (convert one with .to(dtype))");
  CHECK(error_of([&] { matmul(ivec({1, 2}).reshape({1, 2}), ivec({1, 2}).reshape({2, 1})); })
            .find("Int64") != std::string::npos);
}
