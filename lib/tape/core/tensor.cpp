#include "tape/core/tensor.hpp"

#include <cmath>
#include <cstring>
#include <new>

#include "tape/core/grad_mode.hpp"

namespace tape {

const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::Float32: return "Float32";
    case Dtype::Float64: return "Float64";
    case Dtype::Int64: return "Int64";
    case Dtype::Bool: return "Bool";
    case Dtype::BFloat16: return "BFloat16";
  }
  return "unknown";
}
size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::Float32: return 4;
    case Dtype::Float64: return 8;
    case Dtype::Int64: return 8;
    case Dtype::Bool: return 1;
    case Dtype::BFloat16: return 2;
  }
  return 0;
}

Dtype promote_types(Dtype a, Dtype b) {
  if (a == b) return a;
  // rank within a category: Bool < Int64 < floats; BFloat16 < Float32 < Float64
  auto rank = [](Dtype d) {
    switch (d) {
      case Dtype::Bool: return 0;
      case Dtype::Int64: return 1;
      case Dtype::BFloat16: return 2;
      case Dtype::Float32: return 3;
      case Dtype::Float64: return 4;
    }
    return 0;
  };
  return rank(a) > rank(b) ? a : b;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Note: every element count goes through shape_numel, which checks each
// product for int64 overflow (a wrapped count once allocated a small buffer that
// kernels then overran). It multiplies from the last dim, as strides are built,
// so a shape whose count fits also has strides that fit: [0, 2^40, 2^40] has no
// elements but a stride of 2^80 and is rejected, like PyTorch's numel check.
namespace {
/// acc·d, or a tape::Error naming the shape when it overflows int64.
int64_t mul_size(int64_t acc, int64_t d, const Shape& s) {
  TAPE_CHECK(d >= 0, "invalid shape ", s, ": sizes must be non-negative");
  int64_t out;
  if (__builtin_mul_overflow(acc, d, &out)) [[unlikely]]
    throw Error(str_cat("invalid shape ", s, ": the number of elements overflows int64"));
  return out;
}
}  // namespace

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc = mul_size(acc, s[i], s);
  }
  return st;
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (size_t i = s.size(); i-- > 0;) n = mul_size(n, s[i], s);
  return n;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TAPE_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t lo = -std::max<int64_t>(ndim, 1), hi = std::max<int64_t>(ndim, 1) - 1;
  TAPE_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a ", ndim,
             "-D tensor (expected in [", lo, ", ", hi, "])");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

int64_t TensorImpl::numel() const { return shape_numel(shape); }

bool TensorImpl::is_contiguous() const {
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != acc) return false;
    acc *= shape[i];
  }
  return true;
}

AutogradMeta& TensorImpl::meta() {
  if (!autograd) autograd = std::make_unique<AutogradMeta>();
  return *autograd;
}

namespace detail {
void bad_data_access(const Tensor& t, Dtype want, bool contiguous_issue) {
  if (contiguous_issue)
    throw Error(str_cat("data(): tensor of shape ", t.shape(), " is not contiguous; call contiguous() first"));
  throw Error(str_cat("data(): tensor of shape ", t.shape(), " has dtype ", dtype_name(t.dtype()),
                  ", not ", dtype_name(want)));
}
}  // namespace detail

Tensor Tensor::empty(const Shape& shape, Dtype dtype) {
  const int64_t n = shape_numel(shape);
  int64_t nbytes;
  TAPE_CHECK(!__builtin_mul_overflow(n, int64_t(dtype_size(dtype)), &nbytes), "Tensor::empty: a ", dtype_name(dtype),
             " tensor of shape ", shape, " is too large (its size in bytes overflows int64)");
  auto impl = std::make_shared<TensorImpl>();
  try {
    impl->storage = std::make_shared<Storage>(size_t(nbytes));
  } catch (const std::bad_alloc&) {
    throw Error(str_cat("Tensor::empty: cannot allocate ", nbytes, " bytes for a ", dtype_name(dtype), " tensor of shape ",
                    shape, " (out of memory)"));
  }
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

void Tensor::check_defined(const char* what) const {
  TAPE_CHECK(impl_, what, ": tensor is undefined");
}

const Shape& Tensor::shape() const {
  check_defined("shape()");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  check_defined("strides()");
  return impl_->strides;
}
int64_t Tensor::numel() const {
  check_defined("numel()");
  return impl_->numel();
}
int64_t Tensor::size(int64_t d) const { return shape()[size_t(wrap_dim(d, dim(), "size"))]; }
Dtype Tensor::dtype() const {
  check_defined("dtype()");
  return impl_->dtype;
}
bool Tensor::is_contiguous() const {
  check_defined("is_contiguous()");
  return impl_->is_contiguous();
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous()");
  if (impl_->is_contiguous()) return *this;
  return clone();
}

float Tensor::item() const { return float(detail::item_double(*this)); }

namespace detail {
namespace {
/// Address of the one element of t (checked).
const void* only_element(const Tensor& t) {
  TAPE_CHECK(t.defined(), "item(): tensor is undefined");
  TAPE_CHECK(t.numel() == 1, "item(): only one-element tensors can be converted to a scalar, got shape ", t.shape(),
             " (", t.numel(), " elements)");
  // one element: its offset is the tensor's offset whatever the strides
  return static_cast<const char*>(t.impl()->storage->data()) + t.impl()->offset * int64_t(dtype_size(t.dtype()));
}
}  // namespace

double item_double(const Tensor& t) {
  const void* p = only_element(t);
  switch (t.dtype()) {
    case Dtype::Float32: return *static_cast<const float*>(p);
    case Dtype::Float64: return *static_cast<const double*>(p);
    case Dtype::Int64: return double(*static_cast<const int64_t*>(p));
    case Dtype::Bool: return *static_cast<const bool*>(p) ? 1.0 : 0.0;
    case Dtype::BFloat16: return float(*static_cast<const BFloat16*>(p));
  }
  return 0.0;
}

int64_t item_int64(const Tensor& t) {
  if (t.defined() && t.dtype() == Dtype::Int64) return *static_cast<const int64_t*>(only_element(t));
  const double v = item_double(t);
  TAPE_CHECK(std::isfinite(v) && v >= -0x1p63 && v < 0x1p63, "item(): value ", v, " of a ", dtype_name(t.dtype()),
             " tensor does not fit an integer");
  return int64_t(v);
}
}  // namespace detail

bool Tensor::requires_grad() const {
  check_defined("requires_grad()");
  return impl_->autograd && (impl_->autograd->requires_grad || impl_->autograd->grad_fn);
}

Tensor& Tensor::requires_grad_(bool on) {
  check_defined("requires_grad_()");
  TAPE_CHECK(!on || is_floating(dtype()), "requires_grad_(): only floating-point tensors can require grad, got ",
             dtype_name(dtype()), " tensor of shape ", shape());
  TAPE_CHECK(is_leaf(), "requires_grad_(): can only change requires_grad of leaf tensors (this one has grad_fn ",
             grad_fn_name(), ")");
  if (on || impl_->autograd) impl_->meta().requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return !impl_ || !impl_->autograd || !impl_->autograd->grad_fn; }

Tensor Tensor::grad() const {
  check_defined("grad()");
  if (!impl_->autograd || !impl_->autograd->grad) return Tensor();
  return Tensor(impl_->autograd->grad);
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad()");
  if (!g.defined()) {
    if (impl_->autograd) impl_->autograd->grad.reset();
    return;
  }
  TAPE_CHECK(g.shape() == shape(), "set_grad(): gradient shape ", g.shape(), " does not match tensor shape ",
             shape());
  impl_->meta().grad = g.impl_ptr();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  if (!impl_ || !impl_->autograd) return none;
  return impl_->autograd->grad_fn;
}

void Tensor::set_grad_fn(std::shared_ptr<Node> fn, uint32_t output_nr) {
  AutogradMeta& m = impl_->meta();
  m.grad_fn = std::move(fn);
  m.output_nr = output_nr;
}

uint32_t Tensor::output_nr() const { return impl_ && impl_->autograd ? impl_->autograd->output_nr : 0; }

Tensor Tensor::detach() const {
  check_defined("detach()");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

uint32_t Tensor::version() const {
  check_defined("version()");
  return impl_->storage->version();
}


}  // namespace tape
