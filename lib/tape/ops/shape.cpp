// Shape ops: reshape/flatten (views of contiguous data, else a copy), view (a
// view or an error), transpose (a strided view); any dtype, backward in Float32
// and Float64. clone/contiguous are Tensor methods (autograd/tensor_methods.cpp).
#include <cstring>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

// Forward: y = x viewed as another shape (reshape, view)   Backward: dx = g reshaped to x's shape
struct ReshapeBackward final : Node {
  Shape in_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {reshape(g, in_shape)}; }
};

// Forward: y = x with dims d0, d1 swapped  Backward: dx = g with them swapped back
struct TransposeBackward final : Node {
  int64_t d0 = 0, d1 = 0;
  const char* name() const override { return "TransposeBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {transpose(g, d0, d1)}; }
};

}  // namespace

namespace {
/// shape_in with its -1 inferred from t's element count; throws naming `op`.
Shape infer_shape(const Tensor& t, const Shape& shape_in, const char* op) {
  TAPE_CHECK(t.defined(), op, ": input is undefined");
  Shape shape = shape_in;
  int64_t infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TAPE_CHECK(infer < 0, op, ": only one dimension can be -1, got ", shape_in);
      infer = int64_t(i);
      shape[i] = 1;  // counted as 1 until inferred
    } else {
      TAPE_CHECK(shape[i] >= 0, op, ": invalid size ", shape[i], " in ", shape_in);
    }
  }
  int64_t known = 0;
  try {
    known = shape_numel(shape);
  } catch (const Error&) {
    throw Error(str_cat(op, ": the number of elements of ", shape_in, " overflows int64"));
  }
  if (infer >= 0) {
    TAPE_CHECK(known > 0 || t.numel() > 0, op, ": cannot reshape tensor of shape ", t.shape(),
               " (0 elements) into ", shape_in, ": the size of the -1 dimension is ambiguous");
    TAPE_CHECK(known > 0 && t.numel() % known == 0, op, ": cannot reshape tensor of shape ", t.shape(), " (",
               t.numel(), " elements) into ", shape_in);
    shape[size_t(infer)] = t.numel() / known;
    known = t.numel();
  }
  TAPE_CHECK(known == t.numel(), op, ": cannot reshape tensor of shape ", t.shape(), " (", t.numel(),
             " elements) into ", shape_in);
  return shape;
}

/// Strides that let a tensor of (old_shape, old_strides) be viewed as new_shape
/// without a copy, or false when there are none (PyTorch's computeStride).
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape, Shape& out) {
  out.assign(new_shape.size(), 0);
  if (old_shape.empty() || shape_numel(old_shape) == 0) {
    out = contiguous_strides(new_shape);
    return true;
  }
  // Walk x's dims from the last, grouping runs that are contiguous with each
  // other ("chunks"); each chunk must be covered exactly by whole new dims.
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[size_t(d)];
    const bool chunk_ends =
        d == 0 || (old_shape[size_t(d - 1)] != 1 && old_strides[size_t(d - 1)] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_shape[size_t(view_d)] == 1)) {
      out[size_t(view_d)] = view_numel * chunk_base_stride;
      view_numel *= new_shape[size_t(view_d)];
      --view_d;
    }
    if (view_numel != tensor_numel) return false;
    if (d > 0) {
      chunk_base_stride = old_strides[size_t(d - 1)];
      tensor_numel = view_numel = 1;
    }
  }
  return view_d == -1;
}
}  // namespace

Tensor reshape(const Tensor& t, const Shape& shape_in) {
  const Shape shape = infer_shape(t, shape_in, "reshape");
  Tensor src = contig(t);
  Tensor y = make_view(src, shape, contiguous_strides(shape));
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->in_shape = t.shape();
    record(y, std::move(node), {&t});
  }
  return y;
}

Tensor view(const Tensor& t, const Shape& shape_in) {
  const Shape shape = infer_shape(t, shape_in, "view");
  Shape strides;
  TAPE_CHECK(view_strides(t.shape(), t.strides(), shape, strides), "view: cannot view a tensor of shape ", t.shape(),
             " (strides ", t.strides(), ") as shape ", shape_in,
             ": its dims are not contiguous enough; use reshape(), which copies when it must");
  Tensor y = make_view(t, shape, strides);
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->in_shape = t.shape();
    record(y, std::move(node), {&t});
  }
  return y;
}

Tensor flatten(const Tensor& t, int64_t start_dim) {
  TAPE_CHECK(t.defined(), "flatten: input is undefined");
  if (t.dim() == 0) return reshape(t, {1});
  start_dim = wrap_dim(start_dim, t.dim(), "flatten");
  Shape s(t.shape().begin(), t.shape().begin() + start_dim);
  int64_t rest = 1;
  for (int64_t i = start_dim; i < t.dim(); ++i) rest *= t.shape()[size_t(i)];
  s.push_back(rest);
  return reshape(t, s);
}

Tensor transpose(const Tensor& t, int64_t d0, int64_t d1) {
  TAPE_CHECK(t.defined(), "transpose: input is undefined");
  d0 = wrap_dim(d0, t.dim(), "transpose");
  d1 = wrap_dim(d1, t.dim(), "transpose");
  Shape shape = t.shape(), strides = t.strides();
  if (t.dim() > 0) {
    std::swap(shape[size_t(d0)], shape[size_t(d1)]);
    std::swap(strides[size_t(d0)], strides[size_t(d1)]);
  }
  Tensor y = make_view(t, shape, strides);
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<TransposeBackward>();
    node->d0 = d0;
    node->d1 = d1;
    record(y, std::move(node), {&t});
  }
  return y;
}

}  // namespace tape
