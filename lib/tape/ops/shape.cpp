// Shape ops: reshape/flatten (views of contiguous data), transpose (a strided
// view). clone/contiguous are Tensor methods: autograd/functions.cpp.
#include <cstring>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {
Tensor make_view(const Tensor& t, Shape shape, Shape strides) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->offset = t.impl()->offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}

// Forward: y = x viewed as another shape   Backward: dx = g viewed as x's shape
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

Tensor reshape(const Tensor& t, const Shape& shape_in) {
  TAPE_CHECK(t.defined(), "reshape: input is undefined");
  Shape shape = shape_in;
  int64_t infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TAPE_CHECK(infer < 0, "reshape: only one dimension can be -1, got ", shape_in);
      infer = int64_t(i);
      shape[i] = 1;  // counted as 1 until inferred
    } else {
      TAPE_CHECK(shape[i] >= 0, "reshape: invalid size ", shape[i], " in ", shape_in);
    }
  }
  int64_t known = 0;
  try {
    known = shape_numel(shape);
  } catch (const Error&) {
    throw Error(str_cat("reshape: the number of elements of ", shape_in, " overflows int64"));
  }
  if (infer >= 0) {
    TAPE_CHECK(known > 0 || t.numel() > 0, "reshape: cannot reshape tensor of shape ", t.shape(),
               " (0 elements) into ", shape_in, ": the size of the -1 dimension is ambiguous");
    TAPE_CHECK(known > 0 && t.numel() % known == 0, "reshape: cannot reshape tensor of shape ", t.shape(), " (",
               t.numel(), " elements) into ", shape_in);
    shape[size_t(infer)] = t.numel() / known;
    known = t.numel();
  }
  TAPE_CHECK(known == t.numel(), "reshape: cannot reshape tensor of shape ", t.shape(), " (", t.numel(),
             " elements) into ", shape_in);
  Tensor src = contig(t);
  Tensor y = make_view(src, shape, contiguous_strides(shape));
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
