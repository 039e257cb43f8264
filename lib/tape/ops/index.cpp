// Views: select, narrow, slice, squeeze, unsqueeze, permute, expand. Each is a
// new TensorImpl over x's storage (so it shares x's version counter) with another
// offset/shape/strides; nothing is copied. Forward works for any dtype,
// backward for Float32 and Float64.
#include <algorithm>
#include <functional>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

/// The same view taken of another tensor of x's shape (used by backward).
using ViewOf = std::function<Tensor(const Tensor&)>;

/// dx for a view that picks some of x's elements: zeros of x's shape with g
/// added where the view looks (view_of applied to those zeros says where).
Tensor scatter_into_zeros(const Tensor& g, const Shape& in_shape, const ViewOf& view_of) {
  Tensor dx = zeros(in_shape, g.dtype());
  const Tensor where = view_of(dx);  // not recorded: backward runs without grad
  visit_float(g.dtype(), "view backward", [&]<class T>() {
    T* base = static_cast<T*>(dx.impl()->storage->data()) + where.impl()->offset;
    const T* pg = base_ptr<T>(g);
    // the views these nodes undo never repeat an element, so = is +=
    for_each_strided<2>(where.shape(), {&where.strides(), &g.strides()},
                        [&](int64_t, const std::array<int64_t, 2>& o) { base[o[0]] = pg[o[1]]; });
  });
  return dx;
}

// Forward: dx = zeros(x.shape) with g written where the view looks (the backward
// of select / narrow / slice, recorded under create_graph)
// Backward: dg = the same view of gdx (recorded in turn, so any order works)
struct ViewScatterBackward final : Node {
  ViewOf view_of;
  const char* name() const override { return "ViewScatterBackward"; }
  std::vector<Tensor> apply(const Tensor& gdx) override { return {view_of(gdx)}; }
};

// Backward of select / narrow / slice: dx = zeros(x.shape) with g scattered into
// the viewed elements (a ViewScatterBackward records it under create_graph).
struct ScatterViewBackward final : Node {
  const char* node_name = "";
  Shape in_shape;
  ViewOf view_of;
  const char* name() const override { return node_name; }
  std::vector<Tensor> apply(const Tensor& g) override {
    if (!any_requires_grad({&g})) return {scatter_into_zeros(g, in_shape, view_of)};
    // create_graph: the scatter is linear in g, its backward the view
    Tensor dx = scatter_into_zeros(g, in_shape, view_of);
    auto node = std::make_shared<ViewScatterBackward>();
    node->view_of = view_of;
    record(dx, std::move(node), {&g});
    return {dx};
  }
};

// Backward of squeeze / unsqueeze: dx = g reshaped to x's shape.
struct ReshapeViewBackward final : Node {
  const char* node_name = "";
  Shape in_shape;
  const char* name() const override { return node_name; }
  std::vector<Tensor> apply(const Tensor& g) override { return {reshape(g, in_shape)}; }
};

// Forward: y = x with dims reordered (y.dim i = x.dim dims[i])   Backward: dx = g permuted back
struct PermuteBackward final : Node {
  Shape inverse;
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {permute(g, inverse)}; }
};

// Forward: y = x broadcast to sizes (stride 0)   Backward: dx = g summed over the broadcast dims
struct ExpandBackward final : Node {
  Shape in_shape;
  const char* name() const override { return "ExpandBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {sum_to(g, in_shape)}; }
};

Tensor record_scatter(Tensor y, const Tensor& t, const char* node_name, ViewOf view_of) {
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<ScatterViewBackward>();
    node->node_name = node_name;
    node->in_shape = t.shape();
    node->view_of = std::move(view_of);
    record(y, std::move(node), {&t});
  }
  return y;
}

Tensor record_reshape(Tensor y, const Tensor& t, const char* node_name) {
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<ReshapeViewBackward>();
    node->node_name = node_name;
    node->in_shape = t.shape();
    record(y, std::move(node), {&t});
  }
  return y;
}

void check_has_dims(const Tensor& t, const char* op) {
  TAPE_CHECK(t.defined(), op, ": input is undefined");
  TAPE_CHECK(t.dim() > 0, op, ": expects a tensor with at least 1 dim, got a 0-D tensor");
}

}  // namespace

// Forward: y = x[..., index, ...] along dim (dim dropped)   Backward: dx = zeros with g at that index
Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  check_has_dims(t, "select");
  dim = wrap_dim(dim, t.dim(), "select");
  const int64_t size = t.shape()[size_t(dim)];
  TAPE_CHECK(index >= -size && index < size, "select: index ", index, " is out of range for dim ", dim,
             " of size ", size, " (tensor of shape ", t.shape(), ")");
  if (index < 0) index += size;
  Shape shape = t.shape(), strides = t.strides();
  const int64_t offset = t.impl()->offset + index * strides[size_t(dim)];
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  Tensor y = make_view(t, shape, strides, offset);
  return record_scatter(y, t, "SelectBackward", [dim, index](const Tensor& z) { return select(z, dim, index); });
}

// Forward: y = x[start : start+length] along dim   Backward: dx = zeros with g in that range
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  check_has_dims(t, "narrow");
  dim = wrap_dim(dim, t.dim(), "narrow");
  const int64_t size = t.shape()[size_t(dim)];
  TAPE_CHECK(start >= -size && start <= size, "narrow: start ", start, " is out of range for dim ", dim,
             " of size ", size, " (tensor of shape ", t.shape(), ")");
  if (start < 0) start += size;
  TAPE_CHECK(length >= 0 && start + length <= size, "narrow: start ", start, " + length ", length,
             " exceeds dim ", dim, " of size ", size, " (tensor of shape ", t.shape(), ")");
  Shape shape = t.shape();
  shape[size_t(dim)] = length;
  const int64_t offset = t.impl()->offset + start * t.strides()[size_t(dim)];
  Tensor y = make_view(t, shape, t.strides(), offset);
  return record_scatter(y, t, "NarrowBackward",
                        [dim, start, length](const Tensor& z) { return narrow(z, dim, start, length); });
}

// Forward: y = x[start:end:step] along dim   Backward: dx = zeros with g at those positions
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_has_dims(t, "slice");
  dim = wrap_dim(dim, t.dim(), "slice");
  TAPE_CHECK(step >= 1, "slice: step must be positive, got ", step);
  const int64_t size = t.shape()[size_t(dim)];
  // PyTorch: negative bounds wrap once, then both are clamped into [0, size], end ≥ start
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  Shape shape = t.shape(), strides = t.strides();
  shape[size_t(dim)] = (end - start + step - 1) / step;
  const int64_t offset = t.impl()->offset + start * strides[size_t(dim)];
  strides[size_t(dim)] *= step;
  Tensor y = make_view(t, shape, strides, offset);
  return record_scatter(y, t, "SliceBackward",
                        [dim, start, end, step](const Tensor& z) { return slice(z, dim, start, end, step); });
}

// Forward: y = x without dim if its size is 1 (else a same-shape view)   Backward: dx = g reshaped to x
Tensor squeeze(const Tensor& t, int64_t dim) {
  TAPE_CHECK(t.defined(), "squeeze: input is undefined");
  dim = wrap_dim(dim, t.dim(), "squeeze");
  Shape shape = t.shape(), strides = t.strides();
  if (t.dim() > 0 && shape[size_t(dim)] == 1) {
    shape.erase(shape.begin() + dim);
    strides.erase(strides.begin() + dim);
  }
  return record_reshape(make_view(t, shape, strides), t, "SqueezeBackward");
}

// Forward: y = x with a size-1 dim inserted at dim   Backward: dx = g reshaped to x
Tensor unsqueeze(const Tensor& t, int64_t dim) {
  TAPE_CHECK(t.defined(), "unsqueeze: input is undefined");
  dim = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  Shape shape = t.shape(), strides = t.strides();
  // the stride of a size-1 dim is never used; PyTorch's choice keeps contiguous tensors contiguous
  const int64_t stride = dim < t.dim() ? shape[size_t(dim)] * strides[size_t(dim)] : 1;
  shape.insert(shape.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return record_reshape(make_view(t, shape, strides), t, "UnsqueezeBackward");
}

// Forward: y = x with dims reordered (y's dim i is x's dim dims[i])   Backward: dx = g permuted back
Tensor permute(const Tensor& t, const Shape& dims) {
  TAPE_CHECK(t.defined(), "permute: input is undefined");
  TAPE_CHECK(int64_t(dims.size()) == t.dim(), "permute: got ", dims.size(), " dims ", dims, " for a tensor of shape ",
             t.shape(), " (", t.dim(), " dims)");
  Shape shape(dims.size()), strides(dims.size()), inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], t.dim(), "permute");
    TAPE_CHECK(inverse[size_t(d)] < 0, "permute: dim ", d, " repeats in ", dims);
    inverse[size_t(d)] = int64_t(i);
    shape[i] = t.shape()[size_t(d)];
    strides[i] = t.strides()[size_t(d)];
  }
  Tensor y = make_view(t, shape, strides);
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<PermuteBackward>();
    node->inverse = inverse;
    record(y, std::move(node), {&t});
  }
  return y;
}

// Forward: y = x broadcast to sizes (stride 0 on broadcast dims)   Backward: dx = sum_to(g, x.shape)
Tensor expand(const Tensor& t, const Shape& sizes) {
  TAPE_CHECK(t.defined(), "expand: input is undefined");
  TAPE_CHECK(sizes.size() >= t.shape().size(), "expand: cannot expand a tensor of shape ", t.shape(), " to ", sizes,
             ": fewer dims than the tensor has");
  const size_t lead = sizes.size() - t.shape().size();
  Shape shape(sizes.size()), strides(sizes.size(), 0);
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i < lead) {  // a new leading dim
      TAPE_CHECK(sizes[i] >= 0, "expand: size ", sizes[i], " is not allowed for the new leading dim ", i, " in ",
                 sizes, " (tensor of shape ", t.shape(), ")");
      shape[i] = sizes[i];
      continue;
    }
    const int64_t have = t.shape()[i - lead];
    const int64_t want = sizes[i] == -1 ? have : sizes[i];
    TAPE_CHECK(want == have || (have == 1 && want >= 0), "expand: cannot expand a tensor of shape ", t.shape(),
               " to ", sizes, ": dim ", i, " has size ", have, ", which is not 1");
    shape[i] = want;
    strides[i] = want == have ? t.strides()[i - lead] : 0;
  }
  Tensor y = make_view(t, shape, strides);
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<ExpandBackward>();
    node->in_shape = t.shape();
    record(y, std::move(node), {&t});
  }
  return y;
}

}  // namespace tape
