// Bool tensors and the ops of compare.cpp: comparisons (tensor-tensor with
// broadcasting, tensor-scalar, Float32 and Int64, NaN), logic, isnan/isfinite,
// where and masked_fill (forward and backward by hand; gradcheck covers the
// registry entries), and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <tape/tape.hpp>

#include "error_of.hpp"
#include <vector>

using namespace tape;
using tape_test::error_of;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

/// A Bool tensor's elements as 0/1 ints (std::vector<bool> is a bitset, awkward to compare).
std::vector<int> bits(const Tensor& t) {
  REQUIRE(t.dtype() == Dtype::Bool);
  std::vector<int> out;
  for (bool b : t.to_vector<bool>()) out.push_back(b ? 1 : 0);
  return out;
}

std::vector<float> vals(const Tensor& t) { return t.to_vector<float>(); }

Tensor mask(std::vector<float> v, Shape s) { return gt(tensor(std::move(v), std::move(s)), 0.f); }


}  // namespace

TEST_CASE("compare: Bool dtype basics") {
  CHECK(std::string(dtype_name(Dtype::Bool)) == "Bool");
  CHECK(dtype_size(Dtype::Bool) == 1);
  Tensor z = zeros({2, 3}, Dtype::Bool);
  CHECK(z.dtype() == Dtype::Bool);
  CHECK(bits(z) == std::vector<int>(6, 0));
  Tensor e = Tensor::empty({4}, Dtype::Bool);
  CHECK(e.numel() == 4);
  Tensor m = mask({1, -1, 2, 0}, {2, 2});
  CHECK(bits(m) == std::vector<int>{1, 0, 1, 0});
  CHECK(m.data<bool>()[2]);
  CHECK(select(select(m, 0, 0), 0, 0).item() == 1.f);
  CHECK(select(select(m, 0, 1), 0, 1).item() == 0.f);
  // strided copy of 1-byte elements: the transpose made contiguous
  CHECK(bits(m.t().contiguous()) == std::vector<int>{1, 1, 0, 0});
  CHECK(bits(m.t().clone()) == std::vector<int>{1, 1, 0, 0});
  CHECK(bits(cat({m, m.t()}, 0)) == std::vector<int>{1, 0, 1, 0, 1, 1, 0, 0});
  std::ostringstream os;
  os << m;
  CHECK(os.str() == "tensor([[ True, False],\n        [ True, False]], shape=[2, 2], dtype=Bool)");
  CHECK_THROWS_AS(m.data<float>(), Error);
  CHECK_THROWS_AS(m.requires_grad_(), Error);
}

TEST_CASE("compare: eq ne lt le gt ge, tensor-tensor with broadcasting") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor({2, 2, 7}, {3});
  CHECK(bits(eq(a, b)) == std::vector<int>{0, 1, 0, 0, 0, 0});
  CHECK(bits(ne(a, b)) == std::vector<int>{1, 0, 1, 1, 1, 1});
  CHECK(bits(lt(a, b)) == std::vector<int>{1, 0, 1, 0, 0, 1});
  CHECK(bits(le(a, b)) == std::vector<int>{1, 1, 1, 0, 0, 1});
  CHECK(bits(gt(a, b)) == std::vector<int>{0, 0, 0, 1, 1, 0});
  CHECK(bits(ge(a, b)) == std::vector<int>{0, 1, 0, 1, 1, 0});
  CHECK(bits(a == b) == bits(eq(a, b)));
  CHECK(bits(a != b) == bits(ne(a, b)));
  CHECK(bits(a < b) == bits(lt(a, b)));
  CHECK(bits(a <= b) == bits(le(a, b)));
  CHECK(bits(a > b) == bits(gt(a, b)));
  CHECK(bits(a >= b) == bits(ge(a, b)));
  // both operands broadcast: [2, 1] vs [3] → [2, 3]; a transposed (strided) operand
  Tensor c = tensor({1, 5}, {2, 1});
  Tensor r = lt(c, b);
  CHECK(r.shape() == Shape{2, 3});
  CHECK(bits(r) == std::vector<int>{1, 1, 1, 0, 0, 1});
  CHECK(bits(eq(a.t(), tensor({1, 4}, {2}))) == std::vector<int>{1, 1, 0, 0, 0, 0});
  // comparison results never require grad
  Tensor w = tensor({1, 2}, {2}, true);
  CHECK_FALSE(gt(w, 1.f).requires_grad());
}

TEST_CASE("compare: tensor-scalar and Int64 inputs") {
  Tensor a = tensor({-1, 0, 0.5f, 2}, {4});
  CHECK(bits(a > 0.f) == std::vector<int>{0, 0, 1, 1});
  CHECK(bits(a >= 0.f) == std::vector<int>{0, 1, 1, 1});
  CHECK(bits(a < 0.5f) == std::vector<int>{1, 1, 0, 0});
  CHECK(bits(a <= 0.5f) == std::vector<int>{1, 1, 1, 0});
  CHECK(bits(a == 0.5f) == std::vector<int>{0, 0, 1, 0});
  CHECK(bits(a != 0.5f) == std::vector<int>{1, 1, 0, 1});
  Tensor i = tensor(std::vector<int64_t>{3, -2, 7, 3}, {2, 2});
  Tensor j = tensor(std::vector<int64_t>{3, 0}, {2});
  CHECK(bits(eq(i, j)) == std::vector<int>{1, 0, 0, 0});
  CHECK(bits(gt(i, j)) == std::vector<int>{0, 0, 1, 1});
  CHECK(bits(i == 3.f) == std::vector<int>{1, 0, 0, 1});
  CHECK(bits(i < 2.5f) == std::vector<int>{0, 1, 0, 0});  // compared as real numbers, not truncated
  CHECK(bits(i != 2.5f) == std::vector<int>(4, 1));
  // Int64 beyond float precision: 2^53 + 1 vs 2^53 + 1 is still equal tensor-tensor
  Tensor big = tensor(std::vector<int64_t>{(int64_t(1) << 53) + 1}, {1});
  CHECK(bits(eq(big, tensor(std::vector<int64_t>{(int64_t(1) << 53)}, {1}))) == std::vector<int>{0});
  // Bool compares as 0 / 1, against Bool, Int64 (promoted) or a scalar, as in PyTorch
  Tensor m = mask({1, -1, 1}, {3});
  CHECK(bits(gt(m, logical_not(m))) == std::vector<int>{1, 0, 1});
  CHECK(bits(ge(tensor(std::vector<int64_t>{1, 0, 2}, {3}), m)) == std::vector<int>{1, 1, 1});
  CHECK(bits(m == 1.0) == std::vector<int>{1, 0, 1});
}

TEST_CASE("compare: NaN compares false except ne; isnan and isfinite") {
  Tensor a = tensor({kNan, 1, kNan, kInf}, {4});
  Tensor b = tensor({kNan, kNan, 1, kInf}, {4});
  CHECK(bits(eq(a, b)) == std::vector<int>{0, 0, 0, 1});
  CHECK(bits(ne(a, b)) == std::vector<int>{1, 1, 1, 0});
  CHECK(bits(lt(a, b)) == std::vector<int>{0, 0, 0, 0});
  CHECK(bits(le(a, b)) == std::vector<int>{0, 0, 0, 1});
  CHECK(bits(gt(a, b)) == std::vector<int>{0, 0, 0, 0});
  CHECK(bits(ge(a, b)) == std::vector<int>{0, 0, 0, 1});
  CHECK(bits(a == kNan) == std::vector<int>{0, 0, 0, 0});
  CHECK(bits(a != kNan) == std::vector<int>{1, 1, 1, 1});
  Tensor x = tensor({1, kNan, kInf, -kInf, -0.f}, {5});
  CHECK(bits(isnan(x)) == std::vector<int>{0, 1, 0, 0, 0});
  CHECK(bits(isfinite(x)) == std::vector<int>{1, 0, 0, 0, 1});
}

TEST_CASE("compare: logical_and, logical_or, logical_not") {
  Tensor p = mask({1, 1, -1, -1}, {2, 2});  // [[T T] [F F]]
  Tensor q = mask({1, -1}, {2});             // [T F]
  CHECK(bits(logical_and(p, q)) == std::vector<int>{1, 0, 0, 0});
  CHECK(bits(logical_or(p, q)) == std::vector<int>{1, 1, 1, 0});
  CHECK(bits(logical_not(p)) == std::vector<int>{0, 0, 1, 1});
  CHECK(bits(logical_not(p.t())) == std::vector<int>{0, 1, 0, 1});
}

TEST_CASE("compare: where, forward with broadcasting and backward") {
  Tensor cond = mask({1, -1, 1}, {3});          // [T F T]
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  Tensor b = tensor({10, 20}, {2, 1}, true);
  Tensor y = where(cond, a, b);
  CHECK(y.shape() == Shape{2, 3});
  CHECK(vals(y) == std::vector<float>{1, 10, 3, 4, 20, 6});
  CHECK(std::string(y.grad_fn_name()) == "WhereBackward");
  sum(mul(y, tensor({1, 2, 3, 4, 5, 6}, {2, 3}))).backward();
  CHECK(vals(a.grad()) == std::vector<float>{1, 0, 3, 4, 0, 6});
  CHECK(vals(b.grad()) == std::vector<float>{2, 5});  // summed over the broadcast dim
  // cond broadcast too: [2, 1] against [3]
  Tensor c2 = mask({-1, 1}, {2, 1});
  CHECK(vals(where(c2, tensor({7, 8, 9}, {3}), scalar_tensor(0.f))) == std::vector<float>{0, 0, 0, 7, 8, 9});
  // the output of where with no grad inputs records nothing
  CHECK_FALSE(where(cond, tensor({1, 2, 3}, {3}), tensor({4, 5, 6}, {3})).requires_grad());
}

TEST_CASE("compare: masked_fill, forward with a broadcast mask and backward") {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  Tensor m = mask({-1, 1, -1}, {3});
  Tensor y = masked_fill(t, m, -9.f);
  CHECK(vals(y) == std::vector<float>{1, -9, 3, 4, -9, 6});
  CHECK(std::string(y.grad_fn_name()) == "MaskedFillBackward");
  sum(mul(y, y)).backward();
  CHECK(vals(t.grad()) == std::vector<float>{2, 0, 6, 8, 0, 12});
  // a typical use: mask NaNs
  Tensor x = tensor({1, kNan, 3}, {3});
  CHECK(vals(masked_fill(x, isnan(x), 0.f)) == std::vector<float>{1, 0, 3});
}

TEST_CASE("compare: errors name the op and the shapes") {
  Tensor f = tensor({1, 2, 3}, {3});
  Tensor i = tensor(std::vector<int64_t>{1, 2, 3}, {3});
  Tensor m = mask({1, -1, 1}, {3});
  std::string e = error_of([&] { lt(f, tensor({1, 2}, {2})); });
  CHECK(e.find("lt: shapes [3] and [2] cannot be broadcast") == 0);
  CHECK(e.find('\n') == std::string::npos);
  e = error_of([&] { logical_and(m, f); });
  CHECK(e == "logical_and: second operand must be Bool, got Float32 tensor of shape [3]");
  e = error_of([&] { logical_not(f); });
  CHECK(e == "logical_not: input must be Bool, got Float32 tensor of shape [3]");
  e = error_of([&] { where(f, f, f); });
  CHECK(e == "where: cond must be Bool, got Float32 tensor of shape [3]");
  e = error_of([&] { where(m, Tensor(), f); });
  CHECK(e == "where: a is an undefined tensor");
  e = error_of([&] { where(m, f, zeros({2, 2})); });
  CHECK(e == "where: shapes [3] (cond), [3] (a) and [2, 2] (b) cannot be broadcast together");
  e = error_of([&] { masked_fill(f, f, 0.f); });
  CHECK(e == "masked_fill: mask must be Bool, got Float32 tensor of shape [3]");
  e = error_of([&] { masked_fill(f, zeros({2, 3}, Dtype::Bool), 0.f); });
  CHECK(e == "masked_fill: mask of shape [2, 3] does not broadcast to the input's shape [3]");
  e = error_of([&] { masked_fill(i, m, 1e300); });
  CHECK(e == "masked_fill: value 1e+300 does not fit an Int64 tensor of shape [3]");
  CHECK(error_of([&] { isnan(Tensor()); }) == "isnan: input is an undefined tensor");
  CHECK(error_of([&] { eq(Tensor(), f); }) == "eq: first operand is an undefined tensor");
}
