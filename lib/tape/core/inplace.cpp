// The in-place methods of Tensor (add_, mul_, fill_, zero_, copy_) and the copy
// kernel behind clone()/contiguous(). They are core: plain loops over (strided)
// storage that record nothing, so optimizers, the engine and loaders can use them
// without the op layer.
#include <cmath>
#include <cstring>

#include "tape/core/dispatch.hpp"
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

template <class T>
const T* typed_base(const Tensor& t) {
  return static_cast<const T*>(t.impl()->storage->data()) + t.impl()->offset;
}

/// self[i] = f(self[i], other[i]) with `other` broadcast to self's shape; self
/// is Float32, Float64 or Int64 and `other` is read converted to self's dtype.
template <class F>
Tensor& inplace_binary(Tensor& self, const Tensor& other_in, const char* op, F f) {
  check_inplace(self, op);
  TAPE_CHECK(other_in.defined(), op, ": other is an undefined tensor");
  TAPE_CHECK(broadcast_shapes(self.shape(), other_in.shape(), op) == self.shape(), op, ": cannot broadcast shape ",
             other_in.shape(), " into ", self.shape());
  TAPE_CHECK(is_floating(self.dtype()) || !is_floating(other_in.dtype()), op, ": result type ",
             dtype_name(other_in.dtype()), " cannot be written into a tensor of dtype ", dtype_name(self.dtype()));
  visit_number(self.dtype(), op, [&]<class T>() {
    const Tensor other = other_in.dtype() == self.dtype() ? other_in : cast_copy(other_in, self.dtype());
    T* ps = self.data<T>();
    const T* po = typed_base<T>(other);
    const int64_t n = self.numel();
    if (other.is_contiguous() && other.numel() == n) {
      // Note: `other` may alias self (x.add_(x)); reading po[i] before writing ps[i] keeps that exact.
      for (int64_t i = 0; i < n; ++i) ps[i] = f(ps[i], po[i]);
    } else {
      // Broadcast or strided: read `other` into a private copy first, so an
      // `other` that overlaps self is read before it is overwritten.
      const Shape st = broadcast_strides(other.shape(), other.strides(), self.shape());
      std::vector<T> b(static_cast<size_t>(n));
      for_each_strided<1>(self.shape(), {&st},
                          [&](int64_t i, const std::array<int64_t, 1>& o) { b[size_t(i)] = po[o[0]]; });
      for (int64_t i = 0; i < n; ++i) ps[i] = f(ps[i], b[size_t(i)]);
    }
  });
  self.impl()->storage->bump_version();
  return self;
}

char* byte_base(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data()) + t.impl()->offset * int64_t(dtype_size(t.dtype()));
}

}  // namespace

// Note: alpha is converted to self's type once, so a Float32 add_ computes
// a + alpha·b in float as before (optimizer steps are unchanged bit for bit).
Tensor& Tensor::add_(const Tensor& other, double alpha) {
  return inplace_binary(*this, other, "add_", [alpha](auto a, auto b) {
    using T = decltype(a);
    return T(a + T(alpha) * b);
  });
}
Tensor& Tensor::mul_(const Tensor& other) {
  return inplace_binary(*this, other, "mul_", [](auto a, auto b) { return decltype(a)(a * b); });
}
Tensor& Tensor::add_(double s) { return add_(scalar_tensor(s, dtype())); }
Tensor& Tensor::mul_(double s) { return mul_(scalar_tensor(s, dtype())); }

Tensor& Tensor::fill_(double v) {
  check_inplace(*this, "fill_");
  visit_dtype(dtype(), [&]<class T>() {
    const T value = T(v);
    T* p = data<T>();
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = value;
  });
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
  // Strided: one element of `es` bytes at a time (every dtype is 1, 2, 4 or 8 bytes).
  auto copy_as = [&](auto element) {
    using E = decltype(element);
    for_each_strided<1>(t.shape(), {&t.strides()}, [&](int64_t i, const std::array<int64_t, 1>& o) {
      reinterpret_cast<E*>(dst)[i] = reinterpret_cast<const E*>(src)[o[0]];
    });
  };
  if (es == 1) copy_as(uint8_t{});
  else if (es == 2) copy_as(uint16_t{});
  else if (es == 4) copy_as(float{});
  else copy_as(int64_t{});
  return out;
}

Tensor add_same_shape(const Tensor& a, const Tensor& b) {
  TAPE_CHECK(a.defined() && b.defined(), "add: an operand is undefined");
  TAPE_CHECK(a.shape() == b.shape(), "add: shapes ", a.shape(), " and ", b.shape(), " differ");
  TAPE_CHECK(a.dtype() == b.dtype(), "add: dtypes ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), " differ");
  if (a.dtype() == Dtype::BFloat16) {  // accumulate in float, round once
    Tensor s = cast_copy(a, Dtype::Float32);
    s.add_(cast_copy(b, Dtype::Float32));
    return cast_copy(s, Dtype::BFloat16);
  }
  Tensor out = copy_contiguous(a);  // new and unrecorded, so add_ may write it
  out.add_(b);
  return out;
}

Tensor cast_copy(const Tensor& t, Dtype dtype) {
  TAPE_CHECK(t.defined(), "to(): tensor is undefined");
  if (t.dtype() == dtype) return copy_contiguous(t);
  Tensor out = Tensor::empty(t.shape(), dtype);
  visit_dtype(t.dtype(), [&]<class S>() {
    visit_dtype(dtype, [&]<class D>() {
      const S* src = typed_base<S>(t);
      D* dst = out.data<D>();
      // Note: float → Int64 truncates toward zero (PyTorch); NaN/inf/out-of-range
      // give an unspecified value there too, so we pin them to 0 instead of UB.
      auto convert = [](S v) -> D {
        if constexpr (std::is_same_v<D, bool>) return double(v) != 0.0;  // exact for every source type
        else if constexpr (std::is_same_v<D, int64_t> && !std::is_same_v<S, int64_t> && !std::is_same_v<S, bool>) {
          const double x = double(v);
          return std::isfinite(x) && std::fabs(x) < 0x1p63 ? int64_t(x) : 0;
        } else if constexpr (std::is_same_v<D, BFloat16>) return BFloat16(float(v));
        else if constexpr (std::is_same_v<S, BFloat16>) return D(float(v));
        else return D(v);
      };
      if (t.is_contiguous()) {
        for (int64_t i = 0, n = t.numel(); i < n; ++i) dst[i] = convert(src[i]);
      } else {
        for_each_strided<1>(t.shape(), {&t.strides()},
                            [&](int64_t i, const std::array<int64_t, 1>& o) { dst[i] = convert(src[o[0]]); });
      }
    });
  });
  return out;
}

}  // namespace detail
}  // namespace tape
