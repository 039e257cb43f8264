#pragma once
// Test helpers for Float64 / Int64 tests: 1-D tensors from values, and a
// Float64 comparison that names the element that differs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <tape/tape.hpp>
#include <vector>

namespace tape_test {

/// A 1-D Float64 tensor of v.
inline tape::Tensor vec64(std::vector<double> v, bool requires_grad = false) {
  const auto n = int64_t(v.size());
  return tape::tensor(std::move(v), {n}, requires_grad);
}

/// A 1-D Int64 tensor of v.
inline tape::Tensor ivec(std::vector<int64_t> v) {
  const auto n = int64_t(v.size());
  return tape::tensor(std::move(v), {n});
}

/// t is Float64 and every element is within tol·(1 + |want|) of want (tol = 0: equal).
inline void check_f64(const tape::Tensor& t, const std::vector<double>& want, double tol = 1e-14) {
  REQUIRE(t.dtype() == tape::Dtype::Float64);
  const auto v = t.to_vector<double>();
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i)
    CHECK_MESSAGE(std::fabs(v[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])), "index ", i, ": ", v[i],
                  " != ", want[i]);
}

}  // namespace tape_test
