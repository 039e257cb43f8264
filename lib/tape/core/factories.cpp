#include <cmath>
#include <cstring>

#include "tape/core/dispatch.hpp"
#include "tape/core/strided.hpp"
#include "tape/core/tensor.hpp"

namespace tape {
using detail::visit_dtype;

namespace {
void check_count(size_t values, const Shape& shape) {
  TAPE_CHECK(int64_t(values) == shape_numel(shape), "tensor(): ", values, " values do not fill shape ", shape, " (",
             shape_numel(shape), " elements)");
}
template <class T>
Tensor from_values(const T* values, size_t n, const Shape& shape, Dtype dtype) {
  check_count(n, shape);
  Tensor t = Tensor::empty(shape, dtype);
  if (n) std::memcpy(t.data<T>(), values, n * sizeof(T));
  return t;
}
}  // namespace

Tensor tensor(std::vector<float> values, Shape shape, bool requires_grad) {
  Tensor t = from_values(values.data(), values.size(), shape, Dtype::Float32);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

Tensor tensor(std::vector<double> values, Shape shape, bool requires_grad) {
  Tensor t = from_values(values.data(), values.size(), shape, Dtype::Float64);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

Tensor tensor(std::vector<int64_t> values, Shape shape) {
  return from_values(values.data(), values.size(), shape, Dtype::Int64);
}

Tensor tensor(std::vector<bool> values, Shape shape) {  // vector<bool> is packed: copy one by one
  check_count(values.size(), shape);
  Tensor t = Tensor::empty(shape, Dtype::Bool);
  bool* p = t.data<bool>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

Tensor tensor(std::initializer_list<float> values, Shape shape, bool requires_grad) {
  return tensor(std::vector<float>(values), std::move(shape), requires_grad);
}

Tensor empty(const Shape& shape, Dtype dtype) { return Tensor::empty(shape, dtype); }

Tensor scalar_tensor(double v, Dtype dtype) { return full({}, v, dtype); }

Tensor zeros(const Shape& shape, Dtype dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  std::memset(t.impl()->storage->data(), 0, size_t(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor full(const Shape& shape, double value, Dtype dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  visit_dtype(dtype, [&]<class T>() {
    if constexpr (std::is_same_v<T, int64_t>)
      TAPE_CHECK(std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 0x1p63, "full(): value ",
                 value, " is not an Int64");
    const T v = T(value);
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = v;
  });
  return t;
}

Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }

namespace {
/// Float32 samples from `fill`, then cast: every floating dtype sees the same draws.
template <class Fill>
Tensor sampled(const Shape& shape, Dtype dtype, const char* who, Fill fill) {
  TAPE_CHECK(is_floating(dtype), who, ": dtype must be floating, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(shape);
  fill(t.data<float>(), t.numel());
  return dtype == Dtype::Float32 ? t : detail::cast_copy(t, dtype);
}
}  // namespace

Tensor randn(const Shape& shape, Dtype dtype, Generator& g) {
  return sampled(shape, dtype, "randn", [&](float* p, int64_t n) { g.fill_normal(p, n); });
}
Tensor randn(const Shape& shape, Generator& g) { return randn(shape, Dtype::Float32, g); }
Tensor rand(const Shape& shape, Dtype dtype, Generator& g) {
  return sampled(shape, dtype, "rand", [&](float* p, int64_t n) { g.fill_uniform(p, n); });
}
Tensor rand(const Shape& shape, Generator& g) { return rand(shape, Dtype::Float32, g); }

Tensor arange(int64_t n, Dtype dtype) {
  TAPE_CHECK(n >= 0, "arange(): n must be non-negative, got ", n);
  TAPE_CHECK(dtype != Dtype::Bool, "arange(): dtype Bool is not supported");
  Tensor t = Tensor::empty({n}, dtype);
  visit_dtype(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = T(i);
  });
  return t;
}

Tensor arange(double start, double end, double step, Dtype dtype) {
  TAPE_CHECK(step != 0.0, "arange(): step must be non-zero");
  TAPE_CHECK(dtype != Dtype::Bool, "arange(): dtype Bool is not supported");
  // a float → int64 conversion out of range (inf, NaN, 1e30) is undefined: check first
  const double count = std::ceil((end - start) / step);
  TAPE_CHECK(std::isfinite(count) && count < 0x1p62, "arange(): unsupported range ", start, " -> ", end,
             " with step ", step, " (", count, " elements)");
  const auto n = std::max<int64_t>(int64_t(count), 0);
  Tensor t = Tensor::empty({n}, dtype);
  visit_dtype(dtype, [&]<class T>() {
    T* p = t.data<T>();
    if constexpr (std::is_same_v<T, float>)  // Float32 steps as before: start + i·step in float
      for (int64_t i = 0; i < n; ++i) p[i] = float(start) + float(i) * float(step);
    else
      for (int64_t i = 0; i < n; ++i) p[i] = T(start + double(i) * step);
  });
  return t;
}

Tensor from_blob(void* data, const Shape& shape, Dtype dtype) {
  const int64_t n = shape_numel(shape);
  TAPE_CHECK(data != nullptr || n == 0, "from_blob(): data is null for shape ", shape);
  TAPE_CHECK(reinterpret_cast<uintptr_t>(data) % dtype_size(dtype) == 0, "from_blob(): data is not aligned for ",
             dtype_name(dtype));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, size_t(n) * dtype_size(dtype), Storage::External{});
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  TAPE_CHECK(a.shape() == b.shape(), "max_abs_diff(): shapes ", a.shape(), " and ", b.shape(), " differ");
  auto va = detail::cast_copy(a, Dtype::Float64).to_vector<double>();
  auto vb = detail::cast_copy(b, Dtype::Float64).to_vector<double>();
  double m = 0.0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  auto va = detail::cast_copy(a, Dtype::Float64).to_vector<double>();
  auto vb = detail::cast_copy(b, Dtype::Float64).to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(std::fabs(va[i] - vb[i]) <= atol + rtol * std::fabs(vb[i]))) return false;
  return true;
}

}  // namespace tape
