#pragma once
// Internal (not installed): row-major walks over strided tensors.
#include <array>
#include <cstdint>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::detail {

/// Calls f(out_index, off_0, off_1, ...) for every element of `shape` in row-major
/// order, where off_k is the element offset into operand k (given by its strides,
/// 0 for broadcast dims). Iterative: counters over the outer dims, a tight inner loop.
template <size_t K, class F>
void for_each_strided(const Shape& shape, const std::array<const Shape*, K>& strides, F&& f) {
  const size_t nd = shape.size();
  int64_t total = 1;
  for (auto d : shape) total *= d;
  if (total == 0) return;
  if (nd == 0) {
    std::array<int64_t, K> off{};
    f(int64_t(0), off);
    return;
  }
  const int64_t inner = shape[nd - 1];
  std::array<int64_t, K> inner_stride{};
  for (size_t k = 0; k < K; ++k) inner_stride[k] = (*strides[k])[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  std::array<int64_t, K> base{};
  for (int64_t out = 0; out < total; out += inner) {
    std::array<int64_t, K> off = base;
    for (int64_t i = 0; i < inner; ++i) {
      f(out + i, off);
      for (size_t k = 0; k < K; ++k) off[k] += inner_stride[k];
    }
    // advance the outer counters
    for (size_t d = nd - 1; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) base[k] += (*strides[k])[d];
      if (idx[d] < shape[d]) break;
      for (size_t k = 0; k < K; ++k) base[k] -= (*strides[k])[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/// Strides of `t` viewed as `out_shape` under broadcasting (0 where broadcast).
inline Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& out_shape) {
  Shape st(out_shape.size(), 0);
  const size_t off = out_shape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) st[off + i] = shape[i] == 1 ? 0 : strides[i];
  return st;
}

}  // namespace tape::detail
