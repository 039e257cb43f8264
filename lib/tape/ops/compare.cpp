// Comparisons (eq ne lt le gt ge → Bool), logic on Bool tensors, where,
// isnan / isfinite and masked_fill. Every kernel is one call of broadcast_map:
// a loop over the output shape reading each operand through its broadcast
// strides, so no op writes its own loop.
#include <cmath>
#include <functional>
#include <tuple>
#include <utility>

#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;

namespace {

/// One operand of broadcast_map: the tensor and its first element typed as T.
template <class T>
struct Operand {
  const Tensor* t;
  const T* p;
};
template <class T>
Operand<T> operand(const Tensor& t) {
  TAPE_CHECK(t.dtype() == DtypeOf<T>::value, "internal: operand of dtype ", dtype_name(t.dtype()), ", expected ",
             dtype_name(DtypeOf<T>::value));
  return {&t, static_cast<const T*>(t.impl()->storage->data()) + t.impl()->offset};
}

/// A new contiguous tensor of `shape` and dtype Out with out[i] = f(x_0, x_1, ...),
/// where x_k is operand k's element at i under broadcasting. Every operand's
/// shape must broadcast to `shape` (the callers check, naming their op).
template <class Out, class F, class... In>
Tensor broadcast_map(const Shape& shape, F f, Operand<In>... ops) {
  constexpr size_t K = sizeof...(In);
  Tensor out = Tensor::empty(shape, DtypeOf<Out>::value);
  Out* po = out.data<Out>();
  const std::array<Shape, K> st{broadcast_strides(ops.t->shape(), ops.t->strides(), shape)...};
  std::array<const Shape*, K> sp{};
  for (size_t k = 0; k < K; ++k) sp[k] = &st[k];
  const std::tuple<const In*...> ptrs{ops.p...};
  [&]<size_t... I>(std::index_sequence<I...>) {
    for_each_strided<K>(shape, sp, [&](int64_t i, const std::array<int64_t, K>& o) {
      po[i] = f(std::get<I>(ptrs)[o[I]]...);
    });
  }(std::index_sequence_for<In...>{});
  return out;
}

void check_defined_arg(const Tensor& t, const char* op, const char* arg) {
  TAPE_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
}

void check_bool(const Tensor& t, const char* op, const char* arg) {
  check_defined_arg(t, op, arg);
  TAPE_CHECK(t.dtype() == Dtype::Bool, op, ": ", arg, " must be Bool, got ", dtype_name(t.dtype()),
             " tensor of shape ", t.shape());
}

/// The type an element of T is compared in: BFloat16 as float (exact), the others as themselves.
template <class T>
using Real = std::conditional_t<std::is_same_v<T, BFloat16>, float, T>;

// Forward: y = a ⋈ b elementwise (Bool; NaN compares false except ne; mixed dtypes promote)
// Backward: none (not differentiable)
template <class Cmp>
Tensor compare(const Tensor& a, const Tensor& b, const char* op, Cmp cmp) {
  check_defined_arg(a, op, "first operand");
  check_defined_arg(b, op, "second operand");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  const Dtype d = promote_types(a.dtype(), b.dtype());
  // not recorded: a comparison has no gradient
  const Tensor ac = a.dtype() == d ? a : cast_copy(a, d), bc = b.dtype() == d ? b : cast_copy(b, d);
  return visit_dtype(d, [&]<class T>() {
    return broadcast_map<bool>(shape, [&](T x, T z) { return cmp(Real<T>(x), Real<T>(z)); }, operand<T>(ac),
                               operand<T>(bc));
  });
}

// Forward: y = a ⋈ s elementwise (Bool; s rounded to a floating a's dtype, as
// PyTorch does; an Int64 or Bool a is compared as double)   Backward: none
template <class Cmp>
Tensor compare(const Tensor& a, double s, const char* op, Cmp cmp) {
  check_defined_arg(a, op, "input");
  return visit_dtype(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, bool>) {
      return broadcast_map<bool>(a.shape(), [&](T x) { return cmp(double(x), s); }, operand<T>(a));
    } else {
      const Real<T> sr = Real<T>(T(s));
      return broadcast_map<bool>(a.shape(), [&](T x) { return cmp(Real<T>(x), sr); }, operand<T>(a));
    }
  });
}

// Forward: y = where(cond, a, b)   Backward: da = sum_to(where(cond, g, 0)), db = sum_to(where(cond, 0, g))
struct WhereBackward final : SavingNode<1> {
  Shape as, bs;
  const char* name() const override { return "WhereBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    const Tensor cond = saved(0);
    const Tensor zero = scalar_tensor(0, g.dtype());
    return {needs_input_grad(0) ? sum_to(where(cond, g, zero), as) : Tensor(),
            needs_input_grad(1) ? sum_to(where(cond, zero, g), bs) : Tensor()};
  }
};

// Forward: y = t with value where mask   Backward: dt = g with the masked positions zeroed
struct MaskedFillBackward final : SavingNode<1> {
  const char* name() const override { return "MaskedFillBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {masked_fill(g, saved(0), 0.f)}; }
};

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, "eq", std::equal_to<>{}); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, "ne", std::not_equal_to<>{}); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, "lt", std::less<>{}); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, "le", std::less_equal<>{}); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, "gt", std::greater<>{}); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, "ge", std::greater_equal<>{}); }
Tensor eq(const Tensor& a, double s) { return compare(a, s, "eq", std::equal_to<>{}); }
Tensor ne(const Tensor& a, double s) { return compare(a, s, "ne", std::not_equal_to<>{}); }
Tensor lt(const Tensor& a, double s) { return compare(a, s, "lt", std::less<>{}); }
Tensor le(const Tensor& a, double s) { return compare(a, s, "le", std::less_equal<>{}); }
Tensor gt(const Tensor& a, double s) { return compare(a, s, "gt", std::greater<>{}); }
Tensor ge(const Tensor& a, double s) { return compare(a, s, "ge", std::greater_equal<>{}); }

Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double s) { return eq(a, s); }
Tensor operator!=(const Tensor& a, double s) { return ne(a, s); }
Tensor operator<(const Tensor& a, double s) { return lt(a, s); }
Tensor operator<=(const Tensor& a, double s) { return le(a, s); }
Tensor operator>(const Tensor& a, double s) { return gt(a, s); }
Tensor operator>=(const Tensor& a, double s) { return ge(a, s); }

// Forward: y = a ∧ b (Bool, broadcast)   Backward: none
Tensor logical_and(const Tensor& a, const Tensor& b) {
  check_bool(a, "logical_and", "first operand");
  check_bool(b, "logical_and", "second operand");
  return broadcast_map<bool>(broadcast_shapes(a.shape(), b.shape(), "logical_and"),
                             [](bool x, bool y) { return x && y; }, operand<bool>(a), operand<bool>(b));
}
// Forward: y = a ∨ b (Bool, broadcast)   Backward: none
Tensor logical_or(const Tensor& a, const Tensor& b) {
  check_bool(a, "logical_or", "first operand");
  check_bool(b, "logical_or", "second operand");
  return broadcast_map<bool>(broadcast_shapes(a.shape(), b.shape(), "logical_or"),
                             [](bool x, bool y) { return x || y; }, operand<bool>(a), operand<bool>(b));
}
// Forward: y = ¬a (Bool)   Backward: none
Tensor logical_not(const Tensor& a) {
  check_bool(a, "logical_not", "input");
  return broadcast_map<bool>(a.shape(), [](bool x) { return !x; }, operand<bool>(a));
}

namespace {
/// pred(x) elementwise for a floating x (Bool); `integer_value` for every
/// element of an Int64 or Bool x, which holds no NaN or infinity (PyTorch).
template <class Pred>
Tensor classify(const Tensor& x, const char* op, bool integer_value, Pred pred) {
  check_defined_arg(x, op, "input");
  return visit_dtype(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, bool>)
      return full(x.shape(), integer_value ? 1.0 : 0.0, Dtype::Bool);
    else return broadcast_map<bool>(x.shape(), [&](T v) { return pred(Real<T>(v)); }, operand<T>(x));
  });
}
}  // namespace

// Forward: y = x is NaN (Bool)   Backward: none
Tensor isnan(const Tensor& x) {
  return classify(x, "isnan", false, [](auto v) { return std::isnan(v); });
}
// Forward: y = x is neither NaN nor ±inf (Bool)   Backward: none
Tensor isfinite(const Tensor& x) {
  return classify(x, "isfinite", true, [](auto v) { return std::isfinite(v); });
}

// Forward: y = cond ? a : b, all three broadcast; a and b promote   Backward: see WhereBackward
Tensor where(const Tensor& cond, const Tensor& a_in, const Tensor& b_in) {
  check_bool(cond, "where", "cond");
  check_defined_arg(a_in, "where", "a");
  check_defined_arg(b_in, "where", "b");
  Shape shape;
  try {
    shape = broadcast_shapes(broadcast_shapes(cond.shape(), a_in.shape(), "where"), b_in.shape(), "where");
  } catch (const Error&) {
    throw Error(str_cat("where: shapes ", cond.shape(), " (cond), ", a_in.shape(), " (a) and ", b_in.shape(),
                        " (b) cannot be broadcast together"));
  }
  // recorded casts, so each operand's gradient comes back in its own dtype
  const Dtype d = promote_types(a_in.dtype(), b_in.dtype());
  const Tensor a = a_in.to(d), b = b_in.to(d);
  Tensor y = visit_dtype(d, [&]<class T>() {
    return broadcast_map<T>(shape, [](bool c, T x, T z) { return c ? x : z; }, operand<bool>(cond), operand<T>(a),
                            operand<T>(b));
  });
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<WhereBackward>();
    node->save(0, cond);
    node->as = a.shape();
    node->bs = b.shape();
    record(y, std::move(node), {&a, &b});
  }
  return y;
}

// Forward: y = mask ? value : t (mask broadcast to t's shape; value converted to
// t's dtype)   Backward: see MaskedFillBackward
Tensor masked_fill(const Tensor& t, const Tensor& mask, double value) {
  check_defined_arg(t, "masked_fill", "input");
  check_bool(mask, "masked_fill", "mask");
  bool fits = mask.dim() <= t.dim();
  for (int64_t i = 1; fits && i <= mask.dim(); ++i) {
    const int64_t dm = mask.shape()[size_t(mask.dim() - i)], dt = t.shape()[size_t(t.dim() - i)];
    fits = dm == dt || dm == 1;
  }
  TAPE_CHECK(fits, "masked_fill: mask of shape ", mask.shape(), " does not broadcast to the input's shape ",
             t.shape());
  Tensor y = visit_dtype(t.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, int64_t>)
      TAPE_CHECK(std::isfinite(value) && std::fabs(value) < 0x1p63, "masked_fill: value ", value,
                 " does not fit an Int64 tensor of shape ", t.shape());
    const T v = T(value);
    return broadcast_map<T>(t.shape(), [v](T x, bool m) { return m ? v : x; }, operand<T>(t), operand<bool>(mask));
  });
  if (any_requires_grad({&t})) {
    auto node = std::make_shared<MaskedFillBackward>();
    node->save(0, mask);
    record(y, std::move(node), {&t});
  }
  return y;
}

}  // namespace tape
