#pragma once
/// \file Tensor: a cheap shared handle to (storage, offset, shape, strides, dtype)
/// plus autograd metadata that exists only for tensors that need it.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "tape/core/dtype.hpp"
#include "tape/core/error.hpp"
#include "tape/core/generator.hpp"
#include "tape/core/storage.hpp"

namespace tape {

class Node;
class Tensor;
struct TensorHooks;

/// Autograd state of one tensor (allocated lazily).
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;              ///< set for op outputs
  std::weak_ptr<Node> grad_accumulator;       ///< cached AccumulateGrad of a leaf
  std::shared_ptr<struct TensorImpl> grad;    ///< accumulated gradient of a leaf (or retain_grad)
  std::shared_ptr<TensorHooks> hooks;         ///< register_hook / retain_grad (null when none)
  uint32_t output_nr = 0;                     ///< which output of grad_fn this tensor is
  /// Guards grad and grad_accumulator while backward runs: AccumulateGrad adds
  /// under it, and a leaf's accumulator is created under it (so two threads
  /// recording ops on one leaf share one).
  std::mutex mutex;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;       // in elements
  Dtype dtype = Dtype::Float32;
  std::unique_ptr<AutogradMeta> autograd;

  int64_t numel() const;
  bool is_contiguous() const;
  AutogradMeta& meta();  ///< creates it on first use
};

/// Contiguous (row-major) strides for a shape.
Shape contiguous_strides(const Shape& s);
/// Number of elements of a shape; checks for negative sizes.
int64_t shape_numel(const Shape& s);
/// The shape two shapes broadcast to (NumPy rules); throws naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// `dim` in [-ndim, ndim) wrapped to [0, ndim) (0-D tensors accept -1 and 0); throws naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// A new, uninitialised, contiguous tensor.
  static Tensor empty(const Shape& shape, Dtype dtype = Dtype::Float32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t numel() const;
  int64_t size(int64_t d) const;   ///< negative d counts from the end
  Dtype dtype() const;
  bool is_contiguous() const;
  /// This tensor if contiguous, otherwise a contiguous copy (no autograd link lost).
  Tensor contiguous() const;

  template <class T> T* data();
  template <class T> const T* data() const;
  template <class T> std::vector<T> to_vector() const;
  /// The one element as float (any dtype).
  float item() const;
  /// The one element as T: item<float>(), item<double>(), item<int64_t>(), item<bool>().
  template <class T> T item() const;
  /// A copy converted to `dtype` (this tensor itself when it already has it).
  /// Differentiable between floating dtypes: the gradient is cast back.
  Tensor to(Dtype dtype) const;

  // --- autograd -----------------------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;
  Tensor grad() const;                 ///< undefined until a gradient arrives
  void set_grad(const Tensor& g);      ///< replaces (or clears, with {}) the gradient
  const std::shared_ptr<Node>& grad_fn() const;
  /// Name of grad_fn ("MulBackward"), or "" for a leaf (defined in autograd/node.cpp).
  const char* grad_fn_name() const;
  void set_grad_fn(std::shared_ptr<Node> fn, uint32_t output_nr = 0);  ///< used by ops
  /// Accumulates d(this)/d(leaf) · grad into every leaf's .grad(). create_graph
  /// records the backward itself (the gradients get a grad_fn and can be
  /// differentiated again) and then keeps the graph, as retain_graph does.
  void backward(const Tensor& grad = {}, bool retain_graph = false, bool create_graph = false) const;
  /// Runs `hook` on this tensor's gradient whenever backward computes it (leaf
  /// or not), before the gradient is used; a hook that returns a defined tensor
  /// (same shape) replaces the gradient. Returns a handle for remove_hook.
  int register_hook(std::function<Tensor(const Tensor& grad)> hook);
  void remove_hook(int handle);
  /// For a leaf: runs `hook(leaf)` after backward has accumulated into .grad()
  /// (the gradient-ready signal data-parallel training overlaps with). Removed with remove_hook.
  int register_post_accumulate_grad_hook(std::function<void(const Tensor& leaf)> hook);
  /// A non-leaf keeps its gradient in .grad() from now on (a no-op for leaves).
  void retain_grad();
  bool retains_grad() const;
  /// Which output of grad_fn() this tensor is (0 but for multi-output Functions).
  uint32_t output_nr() const;
  /// Same data, no history; shares the version counter like PyTorch's detach().
  Tensor detach() const;
  /// A contiguous copy with its own storage (differentiable).
  Tensor clone() const;
  uint32_t version() const;

  // --- in-place (not recorded; allowed on tensors that need no grad, or under NoGradGuard)
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double s);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double s);
  Tensor& zero_();
  Tensor& fill_(double v);
  Tensor& copy_(const Tensor& src);

  // --- method forms of the free functions in ops.hpp
  Tensor reshape(const Shape& s) const;
  Tensor view(const Shape& s) const;  ///< no copy; throws if the strides do not allow it
  Tensor flatten(int64_t start_dim = 1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor permute(const Shape& dims) const;
  Tensor expand(const Shape& sizes) const;
  std::vector<Tensor> split(int64_t split_size, int64_t dim = 0) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;
  Tensor sum() const;
  Tensor sum(int64_t dim, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(int64_t dim, bool keepdim = false) const;
  Tensor max(int64_t dim, bool keepdim = false) const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor min(int64_t dim, bool keepdim = false) const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor prod() const;
  Tensor var(int64_t dim, bool unbiased = true, bool keepdim = false) const;
  Tensor std(int64_t dim, bool unbiased = true, bool keepdim = false) const;
  Tensor logsumexp(int64_t dim, bool keepdim = false) const;
  Tensor norm(float p = 2.f) const;
  Tensor matmul(const Tensor& other) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor pow(double e) const;
  Tensor log1p() const;
  Tensor expm1() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor rsqrt() const;
  Tensor square() const;
  Tensor sign() const;
  Tensor clamp(double lo, double hi) const;
  Tensor maximum(const Tensor& other) const;
  Tensor minimum(const Tensor& other) const;
  Tensor relu() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor operator-() const;
  // comparisons (Bool results) and masks
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor eq(double s) const;
  Tensor ne(double s) const;
  Tensor lt(double s) const;
  Tensor le(double s) const;
  Tensor gt(double s) const;
  Tensor ge(double s) const;
  Tensor logical_not() const;
  Tensor isnan() const;
  Tensor isfinite() const;
  Tensor masked_fill(const Tensor& mask, double value) const;
  /// cond ? *this : other (LibTorch's Tensor::where).
  Tensor where(const Tensor& cond, const Tensor& other) const;
  // gathering
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  Tensor scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True when both handles alias the same TensorImpl.
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

// --- factories -------------------------------------------------------------
Tensor tensor(std::vector<float> values, Shape shape, bool requires_grad = false);
Tensor tensor(std::vector<double> values, Shape shape, bool requires_grad = false);  ///< Float64
Tensor tensor(std::vector<int64_t> values, Shape shape);
Tensor tensor(std::vector<bool> values, Shape shape);
/// Braced literals are Float32: tensor({1, 2, 3, 4}, {2, 2}).
Tensor tensor(std::initializer_list<float> values, Shape shape, bool requires_grad = false);
Tensor scalar_tensor(double v, Dtype dtype = Dtype::Float32);
Tensor empty(const Shape& shape, Dtype dtype = Dtype::Float32);
Tensor zeros(const Shape& shape, Dtype dtype = Dtype::Float32);
Tensor ones(const Shape& shape, Dtype dtype = Dtype::Float32);
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::Float32);
/// Normal(0, 1) / uniform [0, 1) samples; a floating dtype (Float64 draws the
/// same Float32 samples, widened, so a seed gives the same values in both).
Tensor randn(const Shape& shape, Generator& g = default_generator());
Tensor randn(const Shape& shape, Dtype dtype, Generator& g = default_generator());
Tensor rand(const Shape& shape, Generator& g = default_generator());
Tensor rand(const Shape& shape, Dtype dtype, Generator& g = default_generator());
Tensor arange(int64_t n, Dtype dtype = Dtype::Float32);
Tensor arange(double start, double end, double step = 1.0, Dtype dtype = Dtype::Float32);
Tensor zeros_like(const Tensor& t);  ///< same shape and dtype
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// A tensor over caller-owned contiguous memory, without a copy: the caller
/// keeps `data` alive (and unchanged by others) for as long as the tensor or a
/// view of it lives. Writes through the tensor change the caller's memory.
Tensor from_blob(void* data, const Shape& shape, Dtype dtype = Dtype::Float32);

/// Prints values (elided when large), shape and dtype, PyTorch style.
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

/// Largest |a - b| over all elements (shapes must match; any dtypes, compared as double).
double max_abs_diff(const Tensor& a, const Tensor& b);
/// Elementwise |a-b| <= atol + rtol*|b| (NaN never close).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

// ---------------------------------------------------------------------------

namespace detail {
[[noreturn]] void bad_data_access(const Tensor& t, Dtype want, bool contiguous_issue);
/// A contiguous copy with its own storage, not recorded (the kernel of clone()).
Tensor copy_contiguous(const Tensor& t);
/// a + b for two floating tensors of one shape and dtype, not recorded (gradient accumulation).
Tensor add_same_shape(const Tensor& a, const Tensor& b);
/// A contiguous copy of t converted to `dtype`, not recorded (the kernel of to()).
Tensor cast_copy(const Tensor& t, Dtype dtype);
/// The one element of t (numel 1, any dtype) as double / as int64 (exact for Int64).
double item_double(const Tensor& t);
int64_t item_int64(const Tensor& t);
}  // namespace detail

template <class T>
T Tensor::item() const {
  static_assert(std::is_arithmetic_v<T> || std::is_same_v<T, BFloat16>, "item<T>(): T must be a number type");
  if constexpr (std::is_same_v<T, bool>) return detail::item_double(*this) != 0.0;
  else if constexpr (std::is_integral_v<T>) return T(detail::item_int64(*this));
  else return T(detail::item_double(*this));
}

template <class T>
T* Tensor::data() {
  check_defined("data()");
  if (impl_->dtype != DtypeOf<T>::value) detail::bad_data_access(*this, DtypeOf<T>::value, false);
  if (!impl_->is_contiguous()) detail::bad_data_access(*this, DtypeOf<T>::value, true);
  return static_cast<T*>(impl_->storage->data()) + impl_->offset;
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace tape
