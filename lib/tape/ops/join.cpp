// Joins and splits: cat (a new tensor), stack (unsqueeze + cat), split and
// chunk (views, via narrow). Forward works for any dtype; cat and stack promote
// mixed dtypes as PyTorch does (promote_types, converting with .to()).
#include <algorithm>
#include <cstring>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

// Forward: y = [x0; x1; ...] along dim   Backward: dxi = narrow(g, dim, offset_i, size_i)
struct CatBackward final : Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;  // each input's size along dim
  const char* name() const override { return "CatBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    std::vector<Tensor> dx(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs_input_grad(i)) dx[i] = narrow(g, dim, offset, sizes[i]);
      offset += sizes[i];
    }
    return dx;
  }
};

/// Copies src (any strides, y's dtype) into dst, a strided view of y, element by element.
void copy_strided(const Tensor& dst, const Tensor& src) {
  visit_dtype(dst.dtype(), [&]<class E>() {
    E* pd = static_cast<E*>(dst.impl()->storage->data()) + dst.impl()->offset;
    const E* ps = base_ptr<E>(src);
    for_each_strided<2>(src.shape(), {&dst.strides(), &src.strides()},
                        [&](int64_t, const std::array<int64_t, 2>& o) { pd[o[0]] = ps[o[1]]; });
  });
}

/// Writes the parts side by side along dim into y (contiguous, parts' sizes
/// along dim add up to y's). A contiguous part is `outer` blocks of
/// size·inner elements, one memcpy each; threads split the rows of y, or, when
/// there are few rows, the blocks themselves.
void cat_into(const Tensor& y, const std::vector<Tensor>& parts, const std::vector<int64_t>& sizes, int64_t dim) {
  const Shape& shape = y.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[size_t(d)];
  for (size_t d = size_t(dim) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t row = shape[size_t(dim)] * inner;  // elements of y per outer index
  const size_t es = dtype_size(y.dtype());
  char* py = static_cast<char*>(y.impl()->storage->data()) + y.impl()->offset * int64_t(es);
  struct Block {
    const char* src;
    int64_t at, len;  // destination offset within a row of y, and length, in elements
  };
  std::vector<Block> blocks;
  int64_t at = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t len = sizes[i] * inner;
    if (len > 0 && parts[i].is_contiguous()) {
      blocks.push_back({static_cast<const char*>(parts[i].impl()->storage->data()) +
                            parts[i].impl()->offset * int64_t(es), at, len});
    } else if (len > 0) {
      NoGradGuard no_grad;  // the narrow is only a place to write into
      copy_strided(narrow(y, dim, at / inner, sizes[i]), parts[i]);
    }
    at += len;
  }
  if (outer >= 64) {
    parallel_for(
        outer,
        [&](int64_t o) {
          for (const Block& b : blocks)
            std::memcpy(py + size_t(o * row + b.at) * es, b.src + size_t(o * b.len) * es, size_t(b.len) * es);
        },
        row);
    return;
  }
  // few rows: cut every block into pieces of at most 64K elements
  constexpr int64_t kPiece = 1 << 16;
  struct Piece {
    char* dst;
    const char* src;
    int64_t len;
  };
  std::vector<Piece> pieces;
  for (int64_t o = 0; o < outer; ++o)
    for (const Block& b : blocks)
      for (int64_t p = 0; p < b.len; p += kPiece)
        pieces.push_back({py + size_t(o * row + b.at + p) * es, b.src + size_t(o * b.len + p) * es,
                          std::min(kPiece, b.len - p)});
  parallel_for(
      int64_t(pieces.size()),
      [&](int64_t i) { std::memcpy(pieces[size_t(i)].dst, pieces[size_t(i)].src, size_t(pieces[size_t(i)].len) * es); },
      kPiece);
}

/// The shape with `dim` shown as * ("[2, *]"), for error messages.
std::string shape_with_star(const Shape& s, int64_t dim) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += int64_t(i) == dim ? std::string("*") : std::to_string(s[i]);
  }
  return r + "]";
}

}  // namespace

// Forward: y = [x0; x1; ...] along dim, in the promoted dtype   Backward: dxi = narrow(g, dim, offset_i, size_i)
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  TAPE_CHECK(!tensors.empty(), "cat: expects a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) TAPE_CHECK(tensors[i].defined(), "cat: tensor ", i, " is undefined");
  const Tensor& first = tensors[0];
  TAPE_CHECK(first.dim() > 0, "cat: tensor 0 is 0-D; zero-dimensional tensors cannot be concatenated");
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[size_t(dim)] = 0;
  std::vector<int64_t> sizes;
  Dtype dtype = first.dtype();
  bool needs_grad = false;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    bool fits = t.dim() == first.dim();
    for (int64_t d = 0; fits && d < t.dim(); ++d)
      fits = d == dim || t.shape()[size_t(d)] == first.shape()[size_t(d)];
    TAPE_CHECK(fits, "cat: tensor ", i, " has shape ", t.shape(), ", expected ", shape_with_star(first.shape(), dim),
               " with ", first.dim(), " dims (the shape of tensor 0 except along dim ", dim, ")");
    sizes.push_back(t.shape()[size_t(dim)]);
    shape[size_t(dim)] += sizes.back();
    dtype = promote_types(dtype, t.dtype());
    needs_grad = needs_grad || any_requires_grad({&t});
  }
  // mixed dtypes: convert first (differentiably between floats), as PyTorch does
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.dtype() == dtype ? t : t.to(dtype));
  Tensor y = Tensor::empty(shape, dtype);
  cat_into(y, parts, sizes, dim);
  if (needs_grad) {
    auto node = std::make_shared<CatBackward>();
    node->dim = dim;
    node->sizes = sizes;
    record(y, std::move(node), parts);
  }
  return y;
}

// Forward: y = cat of the inputs each unsqueezed at dim   Backward: through CatBackward and UnsqueezeBackward
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  TAPE_CHECK(!tensors.empty(), "stack: expects a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    TAPE_CHECK(tensors[i].defined(), "stack: tensor ", i, " is undefined");
    TAPE_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i, " has shape ", tensors[i].shape(),
               ", expected ", tensors[0].shape(), " (the shape of tensor 0)");
  }
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, dim));
  return cat(parts, dim);
}

// Forward: views narrow(x, dim, k·split_size, split_size)   Backward: through each NarrowBackward
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  TAPE_CHECK(t.defined(), "split: input is undefined");
  TAPE_CHECK(t.dim() > 0, "split: expects a tensor with at least 1 dim, got a 0-D tensor");
  dim = wrap_dim(dim, t.dim(), "split");
  const int64_t size = t.shape()[size_t(dim)];
  TAPE_CHECK(split_size > 0 || (split_size == 0 && size == 0), "split: split_size must be positive, got ",
             split_size, " (dim ", dim, " of a tensor of shape ", t.shape(), ")");
  if (size == 0) return {narrow(t, dim, 0, 0)};
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < size; start += split_size)
    parts.push_back(narrow(t, dim, start, std::min(split_size, size - start)));
  return parts;
}

// Forward: split(x, ceil(size / chunks), dim)   Backward: through each NarrowBackward
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  TAPE_CHECK(t.defined(), "chunk: input is undefined");
  TAPE_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  TAPE_CHECK(t.dim() > 0, "chunk: expects a tensor with at least 1 dim, got a 0-D tensor");
  dim = wrap_dim(dim, t.dim(), "chunk");
  const int64_t size = t.shape()[size_t(dim)];
  if (size == 0) return std::vector<Tensor>(size_t(chunks), narrow(t, dim, 0, 0));  // PyTorch: `chunks` empty views
  return split(t, (size + chunks - 1) / chunks, dim);
}

}  // namespace tape
