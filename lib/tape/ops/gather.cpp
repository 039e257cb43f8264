// Gather & scatter: index_select, gather, scatter_add (PyTorch semantics).
// Two strided kernels do all the work, each written once for every dtype:
// gather_into reads t at index positions, scatter_add_into accumulates src at
// index positions. index_select is a gather whose 1-D index is expanded
// (stride 0) over the other dims, plus a row-memcpy path when the slices it
// picks are contiguous blocks. The backward of each op is the other kernel.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

/// row(offsets, n, steps) for every row (run along the last dim) of `shape`
/// (at least 1-D): offsets[k] is the row's first element in operand k and
/// steps[k] its stride along the row. Threads split `shape` along dim `split`
/// (−1: one thread) and each walks its share row-major, so a caller that
/// accumulates passes a dim along which no two elements write the same place,
/// and the additions into one place happen in the sequential order.
template <size_t K, class Row>
void for_each_row(const Shape& shape, const std::array<Shape, K>& strides, int64_t split, Row&& row) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  const size_t last = shape.size() - 1;
  std::array<Shape, K> outer;  // strides over the dims before the last
  std::array<const Shape*, K> po;
  std::array<int64_t, K> steps;
  for (size_t k = 0; k < K; ++k) {
    outer[k].assign(strides[k].begin(), strides[k].end() - 1);
    po[k] = &outer[k];
    steps[k] = strides[k][last];
  }
  // the rows of `sub` (shape with dim `split` cut to [begin, end)), offsets shifted by begin along it
  auto walk = [&](int64_t begin, int64_t end) {
    Shape sub = shape;
    std::array<int64_t, K> base{};
    if (split >= 0) {
      sub[size_t(split)] = end - begin;
      for (size_t k = 0; k < K; ++k) base[k] = begin * strides[k][size_t(split)];
    }
    const Shape sub_outer(sub.begin(), sub.end() - 1);
    for_each_strided<K>(sub_outer, po, [&](int64_t, std::array<int64_t, K> o) {
      for (size_t k = 0; k < K; ++k) o[k] += base[k];
      row(o, sub[last], steps);
    });
  };
  if (split < 0 || n <= kParallelGrain) {
    walk(0, split < 0 ? 0 : shape[size_t(split)]);
    return;
  }
  backend::sync_num_threads();
  const int64_t size = shape[size_t(split)];
  const int64_t chunks = std::min<int64_t>(size, 4 * int64_t(omp_get_max_threads()));
  parallel_for(
      chunks, [&](int64_t c) { walk(size * c / chunks, size * (c + 1) / chunks); }, n / chunks);
}

/// The first dim of `shape` other than `except` with more than one element, or −1.
int64_t split_dim(const Shape& shape, int64_t except) {
  for (size_t d = 0; d < shape.size(); ++d)
    if (int64_t(d) != except && shape[d] > 1) return int64_t(d);
  return -1;
}

/// t itself, or a [1] view of a 0-D t (the kernels index a dim).
Tensor at_least_1d(const Tensor& t) { return t.dim() == 0 ? make_view(t, {1}, {1}) : t; }

/// Throws naming the op and the first value of `index` outside [0, size).
void check_index_values(const Tensor& index, int64_t size, const char* op, int64_t dim, const Tensor& t) {
  const int64_t* pi = base_ptr<int64_t>(index);
  std::atomic<bool> bad{false};
  for_each_row<1>(index.shape(), {index.strides()}, split_dim(index.shape(), -1),
                  [&](const std::array<int64_t, 1>& o, int64_t n, const std::array<int64_t, 1>& step) {
                    bool any = false;
                    for (int64_t i = 0; i < n; ++i) {
                      const int64_t v = pi[o[0] + i * step[0]];
                      any |= v < 0 || v >= size;
                    }
                    if (any) bad.store(true, std::memory_order_relaxed);
                  });
  if (!bad.load()) return;
  for_each_strided<1>(index.shape(), {&index.strides()}, [&](int64_t, const std::array<int64_t, 1>& o) {
    const int64_t v = pi[o[0]];
    TAPE_CHECK(v >= 0 && v < size, op, ": index ", v, " is out of range for dim ", dim, " of size ", size,
               " (input of shape ", t.shape(), ")");
  });
}

void check_index_dtype(const Tensor& index, const char* op) {
  TAPE_CHECK(index.defined(), op, ": index is undefined");
  TAPE_CHECK(index.dtype() == Dtype::Int64, op, ": index must be Int64, got ", dtype_name(index.dtype()),
             " tensor of shape ", index.shape());
}

/// out[p] = t[p with coordinate `dim` replaced by index[p]] for every position p
/// of index's shape; out is written through out_strides. t and index any strides
/// with t.dim() == index.dim() >= 1 (values already checked).
template <class T>
void gather_into(T* out, const Shape& out_strides, const Tensor& t, int64_t dim, const Tensor& index) {
  const T* pt = base_ptr<T>(t);
  const int64_t* pi = base_ptr<int64_t>(index);
  Shape ts = t.strides();
  const int64_t step = ts[size_t(dim)];
  ts[size_t(dim)] = 0;
  for_each_row<3>(index.shape(), {out_strides, index.strides(), ts}, split_dim(index.shape(), -1),
                  [&](const std::array<int64_t, 3>& o, int64_t n, const std::array<int64_t, 3>& s) {
                    T* __restrict y = out + o[0];
                    const int64_t* __restrict ip = pi + o[1];
                    const T* __restrict x = pt + o[2];
                    if (s[1] == 0) {  // one index for the whole row (index_select): a strided row copy
                      x += ip[0] * step;
                      for (int64_t i = 0; i < n; ++i) y[i * s[0]] = x[i * s[2]];
                    } else {
                      for (int64_t i = 0; i < n; ++i) y[i * s[0]] = x[i * s[2] + ip[i * s[1]] * step];
                    }
                  });
}

/// out[p with coordinate `dim` replaced by index[p]] += src[p] for every position
/// p of index's shape; out (written through out_strides) must not overlap src.
template <class T>
void scatter_add_into(T* out, const Shape& out_strides, int64_t dim, const Tensor& index, const Tensor& src) {
  const T* ps = base_ptr<T>(src);
  const int64_t* pi = base_ptr<int64_t>(index);
  Shape os = out_strides;
  const int64_t step = os[size_t(dim)];
  os[size_t(dim)] = 0;
  // positions that differ only along `dim` may hit one element: threads split another dim
  for_each_row<3>(index.shape(), {os, index.strides(), src.strides()}, split_dim(index.shape(), dim),
                  [&](const std::array<int64_t, 3>& o, int64_t n, const std::array<int64_t, 3>& s) {
                    T* y = out + o[0];
                    const int64_t* ip = pi + o[1];
                    const T* x = ps + o[2];
                    if (s[1] == 0 && s[0] != 0) {  // one index for a row of distinct places (index_add)
                      T* __restrict yr = y + ip[0] * step;
                      const T* __restrict xr = x;
                      for (int64_t i = 0; i < n; ++i) yr[i * s[0]] = T(yr[i * s[0]] + xr[i * s[2]]);
                    } else {  // the row may hit one place twice: no restrict
                      for (int64_t i = 0; i < n; ++i) {
                        T& d = y[i * s[0] + ip[i * s[1]] * step];
                        d = T(d + x[i * s[2]]);
                      }
                    }
                  });
}

/// A view of a 1-D index as t's shape with `count` along dim: stride 0 on every
/// other dim, so gather/scatter over it act as index_select/index_add.
Tensor expand_index(const Tensor& index, const Shape& t_shape, int64_t dim) {
  Shape shape = t_shape, strides(t_shape.size(), 0);
  shape[size_t(dim)] = index.numel();
  strides[size_t(dim)] = index.strides()[0];
  return make_view(index, shape, strides);
}

/// zeros(shape) + g scattered by `index` along dim, in g's dtype (backward of gather/index_select).
Tensor scatter_into_zeros(const Tensor& g, const Shape& shape, int64_t dim, const Tensor& index) {
  Tensor dx = zeros(shape, g.dtype());
  visit_float(g.dtype(), "scatter_add", [&]<class T>() {
    scatter_add_into<T>(dx.data<T>(), at_least_1d(dx).strides(), dim, at_least_1d(index), at_least_1d(g));
  });
  return dx;
}

// Backward of index_select (dt = index_add of g into zeros) and of gather
// (dt = scatter_add(zeros, dim, index, g)): index_select's 1-D index is expanded
// first. Under create_graph the public scatter_add records it (its backward is a gather).
struct PickBackward final : SavingNode<1> {
  const char* node_name = "";
  int64_t dim = 0;
  Shape in_shape;
  bool expand = false;
  const char* name() const override { return node_name; }
  std::vector<Tensor> apply(const Tensor& g) override {
    const Tensor index = expand ? expand_index(at_least_1d(saved(0)), in_shape, dim) : saved(0);
    if (any_requires_grad({&g})) return {scatter_add(zeros(in_shape, g.dtype()), dim, index, g)};
    return {scatter_into_zeros(g, in_shape, dim, index)};
  }
};

/// Records a PickBackward for y = index_select / gather of t.
void record_pick(Tensor& y, const Tensor& t, const char* node_name, int64_t dim, const Tensor& index, bool expand) {
  if (!any_requires_grad({&t})) return;
  auto node = std::make_shared<PickBackward>();
  node->node_name = node_name;
  node->dim = dim;
  node->in_shape = t.shape();
  node->expand = expand;
  node->save(0, index);
  record(y, std::move(node), {&t});
}

/// t followed by zeros along every dim where t is shorter than `shape` (recorded: cat).
Tensor zero_pad_to(Tensor t, const Shape& shape) {
  for (size_t d = 0; d < shape.size(); ++d) {
    if (t.shape()[d] == shape[d]) continue;
    Shape rest = t.shape();
    rest[d] = shape[d] - rest[d];
    t = cat({t, zeros(rest, t.dtype())}, int64_t(d));
  }
  return t;
}

// Forward: y = t, then y[p with dim → index[p]] += src[p]
// Backward: dt = g, dsrc = gather(g, dim, index) (zeros where src reaches past index)
struct ScatterAddBackward final : SavingNode<1> {
  int64_t dim = 0;
  Shape src_shape;
  const char* name() const override { return "ScatterAddBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    if (!needs_input_grad(1)) return {g, Tensor()};
    const Tensor index = saved(0);
    if (any_requires_grad({&g})) return {g, zero_pad_to(gather(g, dim, index), src_shape)};  // create_graph
    // src may reach past index on some dims: those elements got no gradient
    Tensor dsrc = src_shape == index.shape() ? Tensor::empty(src_shape, g.dtype()) : zeros(src_shape, g.dtype());
    visit_float(g.dtype(), "scatter_add", [&]<class T>() {
      gather_into<T>(dsrc.data<T>(), at_least_1d(dsrc).strides(), at_least_1d(g), dim, at_least_1d(index));
    });
    return {g, dsrc};
  }
};

}  // namespace

// Forward: y = t's slices index[k] along dim   Backward: dt = index_add of g into zeros (repeats accumulate)
Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  TAPE_CHECK(t.defined(), "index_select: input is undefined");
  check_index_dtype(index, "index_select");
  TAPE_CHECK(index.dim() <= 1, "index_select: index must be 1-D, got shape ", index.shape());
  dim = wrap_dim(dim, t.dim(), "index_select");
  if (t.dim() == 0) {  // PyTorch: a 0-D input takes one index, 0, and gives a 0-D result
    TAPE_CHECK(index.numel() == 1, "index_select: a 0-D input takes an index of 1 element, got shape ",
               index.shape());
    return reshape(index_select(reshape(t, {1}), 0, index), {});
  }
  const Tensor idx = at_least_1d(index);
  check_index_values(idx, t.shape()[size_t(dim)], "index_select", dim, t);
  Shape shape = t.shape();
  shape[size_t(dim)] = idx.numel();
  Tensor y = Tensor::empty(shape, t.dtype());
  // the dims after `dim` form one block; when it is dense each pick is a memcpy
  int64_t inner = 1;
  bool dense = true;
  for (int64_t d = t.dim() - 1; d > dim; --d) {
    dense = dense && (t.shape()[size_t(d)] == 1 || t.strides()[size_t(d)] == inner);
    inner *= t.shape()[size_t(d)];
  }
  visit_dtype(t.dtype(), [&]<class T>() {
    if (!dense || inner < 16) {
      gather_into<T>(y.data<T>(), y.strides(), t, dim, expand_index(idx, shape, dim));
      return;
    }
    const T* pt = base_ptr<T>(t);
    const int64_t* pi = base_ptr<int64_t>(idx);
    const int64_t count = idx.numel(), index_stride = idx.strides()[0], step = t.strides()[size_t(dim)];
    T* py = y.data<T>();
    parallel_for(
        shape_numel(shape) / inner,
        [&](int64_t r) {  // output row r = (outer position o, pick k)
          int64_t o = r / count, src = pi[(r % count) * index_stride] * step;
          for (int64_t d = dim - 1; d >= 0; --d) {  // o's offset in t over the dims before `dim`
            src += (o % t.shape()[size_t(d)]) * t.strides()[size_t(d)];
            o /= t.shape()[size_t(d)];
          }
          std::memcpy(py + r * inner, pt + src, size_t(inner) * sizeof(T));
        },
        inner);
  });
  record_pick(y, t, "IndexSelectBackward", dim, index, /*expand=*/true);
  return y;
}

namespace {
/// The shape rules shared by gather and scatter_add: index has t's ndim and fits
/// in t on every dim but `dim` (and in src on every dim, when given).
void check_index_shape(const Tensor& t, int64_t dim, const Tensor& index, const Tensor* src, const char* op) {
  TAPE_CHECK(index.dim() == t.dim(), op, ": index has ", index.dim(), " dims (shape ", index.shape(),
             ") but the input has ", t.dim(), " (shape ", t.shape(), ")");
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t n = index.shape()[size_t(d)];
    TAPE_CHECK(d == dim || n <= t.shape()[size_t(d)], op, ": index of shape ", index.shape(), " is larger than the input ",
               t.shape(), " at dim ", d);
    TAPE_CHECK(!src || n <= src->shape()[size_t(d)], op, ": index of shape ", index.shape(), " is larger than src ",
               src->shape(), " at dim ", d);
  }
}
}  // namespace

// Forward: y[p] = t[p with coordinate dim replaced by index[p]]   Backward: dt = scatter_add(zeros, dim, index, g)
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  TAPE_CHECK(t.defined(), "gather: input is undefined");
  check_index_dtype(index, "gather");
  dim = wrap_dim(dim, t.dim(), "gather");
  check_index_shape(t, dim, index, nullptr, "gather");
  const Tensor t1 = at_least_1d(t), idx = at_least_1d(index);
  check_index_values(idx, t1.shape()[size_t(dim)], "gather", dim, t);
  Tensor y = Tensor::empty(index.shape(), t.dtype());
  visit_dtype(t.dtype(), [&]<class T>() { gather_into<T>(y.data<T>(), at_least_1d(y).strides(), t1, dim, idx); });
  record_pick(y, t, "GatherBackward", dim, index, /*expand=*/false);
  return y;
}

// Forward: y = t, then y[p with coordinate dim replaced by index[p]] += src[p]
// Backward: dt = g, dsrc = gather(g, dim, index)
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  TAPE_CHECK(t.defined(), "scatter_add: input is undefined");
  TAPE_CHECK(src.defined(), "scatter_add: src is undefined");
  check_index_dtype(index, "scatter_add");
  TAPE_CHECK(src.dtype() == t.dtype(), "scatter_add: src has dtype ", dtype_name(src.dtype()), " but the input is ",
             dtype_name(t.dtype()), " (convert one with .to(dtype))");
  dim = wrap_dim(dim, t.dim(), "scatter_add");
  TAPE_CHECK(src.dim() == t.dim(), "scatter_add: src has ", src.dim(), " dims (shape ", src.shape(),
             ") but the input has ", t.dim(), " (shape ", t.shape(), ")");
  check_index_shape(t, dim, index, &src, "scatter_add");
  const Tensor idx = at_least_1d(index);
  check_index_values(idx, at_least_1d(t).shape()[size_t(dim)], "scatter_add", dim, t);
  Tensor y = copy_contiguous(t);
  visit_number(t.dtype(), "scatter_add", [&]<class T>() {
    const Tensor y1 = at_least_1d(y);
    scatter_add_into<T>(y.data<T>(), y1.strides(), dim, idx, at_least_1d(src));
  });
  if (any_requires_grad({&t, &src})) {
    auto node = std::make_shared<ScatterAddBackward>();
    node->dim = dim;
    node->src_shape = src.shape();
    node->save(0, index);
    record(y, std::move(node), {&t, &src});
  }
  return y;
}

}  // namespace tape
