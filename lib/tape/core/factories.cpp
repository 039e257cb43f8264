#include <cmath>
#include <cstring>

#include "tape/core/strided.hpp"
#include "tape/core/tensor.hpp"

namespace tape {

Tensor tensor(std::vector<float> values, Shape shape, bool requires_grad) {
  TAPE_CHECK(int64_t(values.size()) == shape_numel(shape), "tensor(): ", values.size(),
             " values do not fill shape ", shape, " (", shape_numel(shape), " elements)");
  Tensor t = Tensor::empty(shape, Dtype::Float32);
  if (!values.empty()) std::memcpy(t.data<float>(), values.data(), values.size() * sizeof(float));
  if (requires_grad) t.requires_grad_(true);
  return t;
}

Tensor tensor(std::vector<int64_t> values, Shape shape) {
  TAPE_CHECK(int64_t(values.size()) == shape_numel(shape), "tensor(): ", values.size(),
             " values do not fill shape ", shape, " (", shape_numel(shape), " elements)");
  Tensor t = Tensor::empty(shape, Dtype::Int64);
  if (!values.empty()) std::memcpy(t.data<int64_t>(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

Tensor tensor(std::initializer_list<float> values, Shape shape, bool requires_grad) {
  return tensor(std::vector<float>(values), std::move(shape), requires_grad);
}

Tensor scalar_tensor(float v) { return full({}, v); }

Tensor zeros(const Shape& shape, Dtype dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  std::memset(t.impl()->storage->data(), 0, size_t(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor full(const Shape& shape, float value) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = value;
  return t;
}

Tensor ones(const Shape& shape) { return full(shape, 1.f); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape()); }

Tensor randn(const Shape& shape, Generator& g) {
  Tensor t = Tensor::empty(shape);
  g.fill_normal(t.data<float>(), t.numel());
  return t;
}

Tensor rand(const Shape& shape, Generator& g) {
  Tensor t = Tensor::empty(shape);
  g.fill_uniform(t.data<float>(), t.numel());
  return t;
}

Tensor arange(int64_t n, Dtype dtype) {
  TAPE_CHECK(n >= 0, "arange(): n must be non-negative, got ", n);
  Tensor t = Tensor::empty({n}, dtype);
  if (dtype == Dtype::Int64) {
    auto* p = t.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = i;
  } else {
    auto* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = float(i);
  }
  return t;
}

Tensor arange(float start, float end, float step) {
  TAPE_CHECK(step != 0.f, "arange(): step must be non-zero");
  // a float → int64 conversion out of range (inf, NaN, 1e30) is undefined: check first
  const float count = std::ceil((end - start) / step);
  TAPE_CHECK(std::isfinite(count) && count < 0x1p63f, "arange(): unsupported range ", start, " -> ", end, " with step ",
             step, " (", count, " elements)");
  const auto n = int64_t(count);
  Tensor t = Tensor::empty({std::max<int64_t>(n, 0)});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = start + float(i) * step;
  return t;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  TAPE_CHECK(a.shape() == b.shape(), "max_abs_diff(): shapes ", a.shape(), " and ", b.shape(), " differ");
  auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  float m = 0.f;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

bool allclose(const Tensor& a, const Tensor& b, float rtol, float atol) {
  if (a.shape() != b.shape()) return false;
  auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(std::fabs(va[i] - vb[i]) <= atol + rtol * std::fabs(vb[i]))) return false;
  return true;
}

}  // namespace tape
