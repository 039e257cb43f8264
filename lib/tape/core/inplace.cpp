// The in-place methods of Tensor (add_, mul_, fill_, zero_, copy_) and the copy
// kernel behind clone()/contiguous(). They are core: plain loops over (strided)
// storage that record nothing, so optimizers, the engine and loaders can use them
// without the op layer.
#include <cstring>

#include "tape/core/grad_mode.hpp"
#include "tape/core/strided.hpp"
#include "tape/core/tensor.hpp"

namespace tape {
using namespace detail;

namespace {

// Note: in-place ops are not differentiable in tape. Writing into a tensor that
// requires grad while recording would silently corrupt gradients, so it is an
// error; under NoGradGuard (optimizers) or on detached data it is allowed, and
// the version bump lets saved-tensor checks catch writes to saved data.
void check_inplace(const Tensor& t, const char* op) {
  TAPE_CHECK(t.defined(), op, ": tensor is undefined");
  TAPE_CHECK(!(grad_enabled() && t.requires_grad()), op, ": in-place operation on a tensor of shape ", t.shape(),
             " that requires grad; wrap it in NoGradGuard or use detach()");
  TAPE_CHECK(t.is_contiguous(), op, ": in-place operation needs a contiguous tensor, got shape ", t.shape());
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  TAPE_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
  TAPE_CHECK(t.dtype() == Dtype::Float32, op, ": ", arg, " must be Float32, got ", dtype_name(t.dtype()),
             " tensor of shape ", t.shape());
}

const float* float_base(const Tensor& t) {
  return static_cast<const float*>(t.impl()->storage->data()) + t.impl()->offset;
}

/// self[i] = f(self[i], other[i]) with `other` broadcast to self's shape.
template <class F>
Tensor& inplace_binary(Tensor& self, const Tensor& other, const char* op, F f) {
  check_inplace(self, op);
  check_float(self, op, "self");
  check_float(other, op, "other");
  TAPE_CHECK(broadcast_shapes(self.shape(), other.shape(), op) == self.shape(), op, ": cannot broadcast shape ",
             other.shape(), " into ", self.shape());
  float* ps = self.data<float>();
  const float* po = float_base(other);
  const int64_t n = self.numel();
  if (other.is_contiguous() && other.numel() == n) {
    // Note: `other` may alias self (x.add_(x)); reading po[i] before writing ps[i] keeps that exact.
    for (int64_t i = 0; i < n; ++i) ps[i] = f(ps[i], po[i]);
  } else {
    // Broadcast or strided: read `other` into a private copy first, so an
    // `other` that overlaps self is read before it is overwritten.
    const Shape st = broadcast_strides(other.shape(), other.strides(), self.shape());
    std::vector<float> b(static_cast<size_t>(n));
    for_each_strided<1>(self.shape(), {&st}, [&](int64_t i, const std::array<int64_t, 1>& o) { b[size_t(i)] = po[o[0]]; });
    for (int64_t i = 0; i < n; ++i) ps[i] = f(ps[i], b[size_t(i)]);
  }
  self.impl()->storage->bump_version();
  return self;
}

char* byte_base(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data()) + t.impl()->offset * int64_t(dtype_size(t.dtype()));
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, float alpha) {
  return inplace_binary(*this, other, "add_", [alpha](float a, float b) { return a + alpha * b; });
}
Tensor& Tensor::mul_(const Tensor& other) {
  return inplace_binary(*this, other, "mul_", [](float a, float b) { return a * b; });
}
Tensor& Tensor::add_(float s) { return add_(scalar_tensor(s)); }
Tensor& Tensor::mul_(float s) { return mul_(scalar_tensor(s)); }

Tensor& Tensor::fill_(float v) {
  check_inplace(*this, "fill_");
  check_float(*this, "fill_", "self");
  float* p = data<float>();
  for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = v;
  impl()->storage->bump_version();
  return *this;
}

Tensor& Tensor::zero_() {
  check_inplace(*this, "zero_");
  std::memset(byte_base(*this), 0, size_t(numel()) * dtype_size(dtype()));
  impl()->storage->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  TAPE_CHECK(src.defined(), "copy_: source is undefined");
  TAPE_CHECK(src.dtype() == dtype(), "copy_: dtype ", dtype_name(src.dtype()), " does not match ",
             dtype_name(dtype()));
  TAPE_CHECK(src.shape() == shape(), "copy_: source shape ", src.shape(), " does not match destination shape ",
             shape());
  const Tensor s = detail::copy_contiguous(src);
  std::memcpy(byte_base(*this), byte_base(s), size_t(numel()) * dtype_size(dtype()));
  impl()->storage->bump_version();
  return *this;
}

namespace detail {

Tensor copy_contiguous(const Tensor& t) {
  TAPE_CHECK(t.defined(), "copy: tensor is undefined");
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  const size_t es = dtype_size(t.dtype());
  const char* src = byte_base(t);
  char* dst = byte_base(out);
  if (t.is_contiguous()) {
    std::memcpy(dst, src, size_t(t.numel()) * es);
    return out;
  }
  // Strided: one element of `es` bytes at a time (every dtype is 1, 4 or 8 bytes).
  auto copy_as = [&](auto element) {
    using E = decltype(element);
    for_each_strided<1>(t.shape(), {&t.strides()}, [&](int64_t i, const std::array<int64_t, 1>& o) {
      reinterpret_cast<E*>(dst)[i] = reinterpret_cast<const E*>(src)[o[0]];
    });
  };
  if (es == 1) copy_as(uint8_t{});
  else if (es == 4) copy_as(float{});
  else copy_as(int64_t{});
  return out;
}

Tensor add_same_shape(const Tensor& a, const Tensor& b) {
  check_float(a, "add", "first operand");
  check_float(b, "add", "second operand");
  TAPE_CHECK(a.shape() == b.shape(), "add: shapes ", a.shape(), " and ", b.shape(), " differ");
  Tensor out = copy_contiguous(a);  // new and unrecorded, so add_ may write it
  out.add_(b);
  return out;
}

}  // namespace detail
}  // namespace tape
