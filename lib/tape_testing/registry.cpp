// The op registry: one OpInfo per public op or variant (see registry.hpp).
// Adding an op: write it in its family's file with its `// Forward: ... Backward:`
// comment, then add one entry below pointing at that comment.
#include "tape_testing/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

#include "tape/ops/op_util.hpp"
#include "tape/ops/fused.hpp"
#include "tape/ops/norm.hpp"
#include "tape/ops/ops.hpp"
#include "tape/ops/rnn.hpp"

#ifndef TAPE_TESTING_SOURCE_DIR
#define TAPE_TESTING_SOURCE_DIR "."
#endif

namespace tape::testing {

bool OpInfo::supports(Dtype d) const { return std::find(dtypes.begin(), dtypes.end(), d) != dtypes.end(); }

std::vector<std::string> OpInfo::covered_functions() const {
  return functions.empty() ? std::vector<std::string>{name} : functions;
}

namespace {
using Samples = std::vector<SampleInput>;
constexpr Dtype F32 = Dtype::Float32, F64 = Dtype::Float64, I64 = Dtype::Int64, B = Dtype::Bool,
                BF16 = Dtype::BFloat16;
// dtype sets for OpInfo::dtypes (Float32 and Float64 is the default)
const std::vector<Dtype> kAll = {F32, F64, I64, B, BF16};  // views, joins, masks: any element type
const std::vector<Dtype> kArith = {F32, F64, I64, BF16};   // arithmetic (BFloat16 through Float32)
const std::vector<Dtype> kFloatBF16 = {F32, F64, BF16};    // float math (BFloat16 through Float32)
const std::vector<Dtype> kNumber = {F32, F64, I64, BF16};  // reductions with an Int64 kernel (BFloat16 through Float32)

// --- sample makers. Every value is drawn (and shaped) in Float32, then converted
// to the sample's dtype, so Float32 and Float64 samples of one seed hold the same
// numbers. Floating leaves require grad (BFloat16 ones do not: forward only).

/// A tensor of dtype d from Float32 values: floats are converted; Int64 gets
/// round(4v) (non-finite → 0); Bool gets v > 0.
Tensor make(const std::vector<float>& v, const Shape& s, Dtype d, bool grad = true) {
  Tensor t;
  if (d == I64) {
    std::vector<int64_t> iv(v.size());
    for (size_t i = 0; i < v.size(); ++i) iv[i] = std::isfinite(v[i]) ? std::llround(4.f * v[i]) : 0;
    t = tensor(std::move(iv), s);
  } else if (d == B) {
    std::vector<bool> bv(v.size());
    for (size_t i = 0; i < v.size(); ++i) bv[i] = v[i] > 0.f;
    t = tensor(std::move(bv), s);
  } else {
    t = tensor(std::vector<float>(v), s).to(d);
  }
  if (grad && (d == F32 || d == F64)) t.requires_grad_();
  return t;
}

/// n values uniform in [lo, hi).
std::vector<float> draw(Generator& g, int64_t n, float lo, float hi) {
  std::vector<float> v = rand({n}, g).to_vector<float>();
  for (float& x : v) x = lo + (hi - lo) * x;
  return v;
}

/// Uniform in [lo, hi).
Tensor u(Generator& g, Dtype d, const Shape& s, float lo = -1.f, float hi = 1.f, bool grad = true) {
  return make(draw(g, shape_numel(s), lo, hi), s, d, grad);
}
/// |x| in [0.2, 1.2) with a random sign: away from the kinks of relu/abs/... at 0.
std::vector<float> away_values(Generator& g, int64_t n) {
  std::vector<float> v = draw(g, n, 0.2f, 1.2f);
  for (float& x : v)
    if (g.uniform() < 0.5f) x = -x;
  return v;
}
Tensor away(Generator& g, Dtype d, const Shape& s) { return make(away_values(g, shape_numel(s)), s, d); }
/// A leaf of 0.5s (for 0-element samples).
Tensor z(Dtype d, const Shape& s) { return make(std::vector<float>(size_t(shape_numel(s)), 0.5f), s, d); }
/// Distinct values `step` apart, shuffled: the arg max of any window is stable under ±eps.
Tensor distinct(Generator& g, Dtype d, const Shape& s, float step) {
  const int64_t n = shape_numel(s);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(i) * step;
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[size_t(i)], v[size_t(g.below(uint64_t(i + 1)))]);
  return make(v, s, d);
}
/// A Bool mask, true with probability ½ but never all true or all false (then
/// masked_fill's gradient, or one side of where's, would be zero everywhere).
Tensor mask(Generator& g, const Shape& s) {
  std::vector<float> v = draw(g, shape_numel(s), -1.f, 1.f);
  if (v.size() >= 2) {
    v[0] = 1.f;
    v[1] = -1.f;
  }
  return make(v, s, B, false);
}
/// Int64 values (class labels, indices).
Tensor ints(std::vector<int64_t> v, const Shape& s) { return tensor(std::move(v), s); }
/// Rows of probabilities (softmax of uniform logits), computed in Float32.
Tensor probs(Generator& g, Dtype d, int64_t rows, int64_t cols) {
  std::vector<float> v = draw(g, rows * cols, -1.f, 1.f);
  for (int64_t r = 0; r < rows; ++r) {
    float s = 0;
    for (int64_t c = 0; c < cols; ++c) s += (v[size_t(r * cols + c)] = std::exp(v[size_t(r * cols + c)]));
    for (int64_t c = 0; c < cols; ++c) v[size_t(r * cols + c)] /= s;
  }
  return make(v, {rows, cols}, d, false);
}
/// Two operands for comparisons: b equals a at about half of the elements (ties).
Inputs tied_pair(Generator& g, Dtype d, const Shape& s) {
  const int64_t n = shape_numel(s);
  std::vector<float> a = draw(g, n, -1.f, 1.f), b = draw(g, n, -1.f, 1.f);
  for (int64_t i = 0; i < n; ++i)
    if (g.uniform() < 0.5f) b[size_t(i)] = a[size_t(i)];
  return {make(a, s, d, false), make(b, s, d, false)};
}
/// Values in [-1, 1) with every third element exactly 0.25 (ties with the scalar).
Tensor with_quarters(Generator& g, Dtype d, const Shape& s) {
  std::vector<float> v = draw(g, shape_numel(s), -1.f, 1.f);
  for (size_t i = 0; i < v.size(); i += 3) v[i] = 0.25f;
  return make(v, s, d, false);
}

/// A unary op's samples: basic (values in [lo, hi)) and 0-element.
SampleFn unary(Shape s, float lo = -1.f, float hi = 1.f, Shape empty = {0, 3}) {
  return [=](Generator& g, Dtype d) {
    return Samples{{"basic", {u(g, d, s, lo, hi)}}, {"empty", {z(d, empty)}}};
  };
}
/// A unary op's samples away from 0 (ops with a kink there).
SampleFn unary_away(Shape s, Shape empty = {0, 3}) {
  return [=](Generator& g, Dtype d) { return Samples{{"basic", {away(g, d, s)}}, {"empty", {z(d, empty)}}}; };
}

using Fn = std::function<Tensor(const Inputs&)>;

std::vector<OpInfo> build() {
  std::vector<OpInfo> r;
  // name, group, signature, formula source, samples, fn
  auto add_op = [&](std::string name, std::string group, std::string sig, FormulaSource src, SampleFn samples,
                    Fn fn) -> OpInfo& {
    OpInfo o;
    o.name = std::move(name);
    o.group = std::move(group);
    o.signature = std::move(sig);
    o.formula = std::move(src);
    o.samples = std::move(samples);
    o.fn = std::move(fn);
    r.push_back(std::move(o));
    return r.back();
  };
  const std::string kElem = "elementwise.cpp";

  // --- elementwise
  add_op("add", "elementwise", "add(a, b)", {kElem, "struct AddBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), u(g, d, {3, 4})}},
                          {"broadcast", {u(g, d, {3, 4}), u(g, d, {4})}},
                          {"broadcast both", {u(g, d, {2, 1, 4}), u(g, d, {3, 1})}},
                          {"empty", {z(d, {0, 4}), z(d, {4})}}};
         },
         [](const Inputs& x) { return add(x[0], x[1]); });
  r.back().dtypes = kArith;
  add_op("sub", "elementwise", "sub(a, b)", {kElem, "struct SubBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 4}), u(g, d, {2, 3, 4})}},
                          {"broadcast", {u(g, d, {2, 3, 4}), u(g, d, {3, 1})}},
                          {"empty", {z(d, {2, 0, 4}), z(d, {0, 1})}}};
         },
         [](const Inputs& x) { return sub(x[0], x[1]); });
  r.back().dtypes = kArith;
  add_op("mul", "elementwise", "mul(a, b)", {kElem, "struct MulBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), u(g, d, {3, 4})}},
                          {"broadcast", {u(g, d, {3, 4}), u(g, d, {3, 1})}},
                          {"empty", {z(d, {3, 0}), z(d, {3, 1})}}};
         },
         [](const Inputs& x) { return mul(x[0], x[1]); });
  r.back().dtypes = kArith;
  add_op("div", "elementwise", "div(a, b)", {kElem, "struct DivBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), u(g, d, {3, 4}, 0.5f, 2.f)}},
                          {"broadcast", {u(g, d, {3, 4}), u(g, d, {4}, 0.5f, 2.f)}},
                          {"empty", {z(d, {0}), z(d, {1})}}};
         },
         [](const Inputs& x) { return div(x[0], x[1]); });
  r.back().dtypes = kArith;
  add_op("scalar_ops", "elementwise", "a·b − a/b + b; 2 − x·3 + x/4",
         {kElem, "Tensor operator+(const Tensor& a, double s)", "",
          "y = a ∘ s with the scalar s a constant of a's dtype (a·s, s/a, ...)  "
          "Backward: the tensor op's formula with s for b (s gets no gradient)"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), u(g, d, {4}, 0.5f, 2.f)}},
                          {"scalars", {u(g, d, {5})}},
                          {"empty", {z(d, {0})}}};
         },
         [](const Inputs& x) {
           if (x.size() == 2) return x[0] * x[1] - x[0] / x[1] + x[1];
           return 2.f - x[0] * 3.f + x[0] / 4.f;
         })
      .functions = {"operator+", "operator-", "operator*", "operator/"};
  r.back().dtypes = kArith;
  r.back().note = "the arithmetic operators, on two tensors and with double scalars";
  add_op("neg", "elementwise", "neg(x)", {kElem, "struct NegOp"}, unary({3, 4}), [](const Inputs& x) { return neg(x[0]); });
  r.back().dtypes = kArith;
  add_op("exp", "elementwise", "exp(x)", {kElem, "struct ExpOp"}, unary({3, 4}), [](const Inputs& x) { return exp(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("log", "elementwise", "log(x)", {kElem, "struct LogOp"}, unary({3, 4}, 0.5f, 2.f),
         [](const Inputs& x) { return log(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("sqrt", "elementwise", "sqrt(x)", {kElem, "struct SqrtOp"}, unary({3, 4}, 0.5f, 2.f, {3, 0}),
         [](const Inputs& x) { return sqrt(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("abs", "elementwise", "abs(x)", {kElem, "struct AbsOp"}, unary_away({3, 4}, {0}),
         [](const Inputs& x) { return abs(x[0]); });
  r.back().dtypes = kArith;
  add_op("pow", "elementwise", "pow(x, 2.5)", {kElem, "struct PowOp"}, unary({3, 4}, 0.5f, 1.5f, {0, 2}),
         [](const Inputs& x) { return pow(x[0], 2.5); });
  r.back().dtypes = kFloatBF16;
  add_op("log1p", "elementwise", "log1p(x)", {kElem, "struct Log1pOp"}, unary({3, 4}, -0.5f, 2.f),
         [](const Inputs& x) { return log1p(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("expm1", "elementwise", "expm1(x)", {kElem, "struct Expm1Op"}, unary({3, 4}),
         [](const Inputs& x) { return expm1(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("sin", "elementwise", "sin(x)", {kElem, "struct SinOp"}, unary({3, 4}, -3.f, 3.f, {3, 0}),
         [](const Inputs& x) { return sin(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("cos", "elementwise", "cos(x)", {kElem, "struct CosOp"}, unary({3, 4}, -3.f, 3.f, {0}),
         [](const Inputs& x) { return cos(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("rsqrt", "elementwise", "rsqrt(x)", {kElem, "struct RsqrtOp"}, unary({3, 4}, 0.5f, 2.f, {0, 2}),
         [](const Inputs& x) { return rsqrt(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("square", "elementwise", "square(x)", {kElem, "struct SquareOp"}, unary({3, 4}, -1.f, 1.f, {0}),
         [](const Inputs& x) { return square(x[0]); });
  r.back().dtypes = kArith;
  add_op("sign", "elementwise", "sign(x)·x²", {kElem, "struct SignOp"}, unary_away({3, 4}, {2, 0}),
         [](const Inputs& x) { return mul(sign(x[0]), square(x[0])); })
      .note = "times x², so that the (zero) gradient of sign is seen next to a nonzero one";
  r.back().dtypes = kArith;
  add_op("clamp", "elementwise", "clamp(x, -0.5, 0.5)", {kElem, "struct ClampOp"},
         [](Generator& g, Dtype d) {  // |x| in [0.2, 1.2) minus the band around ±0.5
           std::vector<float> v = away_values(g, 12);
           for (float& x : v)
             if (std::fabs(std::fabs(x) - 0.5f) < 0.05f) x *= 1.3f;
           return Samples{{"basic", {make(v, {3, 4}, d)}}, {"empty", {z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return clamp(x[0], -0.5, 0.5); });
  r.back().dtypes = kArith;
  add_op("maximum", "elementwise", "maximum(a, b)", {kElem, "struct MinMaxBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {away(g, d, {3, 4}), u(g, d, {3, 4}, -0.1f, 0.1f)}},
                          {"broadcast", {away(g, d, {3, 4}), u(g, d, {4}, -0.1f, 0.1f)}},
                          {"empty", {z(d, {0, 4}), z(d, {4})}}};
         },
         [](const Inputs& x) { return maximum(x[0], x[1]); });
  r.back().dtypes = kArith;
  add_op("minimum", "elementwise", "minimum(a, b)", {kElem, "struct MinMaxBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {away(g, d, {3, 4}), u(g, d, {3, 4}, -0.1f, 0.1f)}},
                          {"broadcast", {away(g, d, {3, 4}), u(g, d, {3, 1}, -0.1f, 0.1f)}},
                          {"empty", {z(d, {3, 0}), z(d, {3, 1})}}};
         },
         [](const Inputs& x) { return minimum(x[0], x[1]); });
  r.back().dtypes = kArith;
  add_op("sum_to", "elementwise", "sum_to(x, {3, 1})", {kElem, "struct SumToBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 4})}}, {"empty", {z(d, {0, 3, 4})}}};
         },
         [](const Inputs& x) { return sum_to(x[0], {3, 1}); });
  r.back().dtypes = kArith;

  // --- activations
  const std::string kAct = "activation.cpp";
  add_op("relu", "activation", "relu(x)", {kAct, "struct ReluOp"}, unary_away({4, 5}, {0, 5}),
         [](const Inputs& x) { return relu(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("leaky_relu", "activation", "leaky_relu(x, 0.1)", {kAct, "struct LeakyReluOp"}, unary_away({4, 5}, {0, 5}),
         [](const Inputs& x) { return leaky_relu(x[0], 0.1f); });
  r.back().dtypes = kFloatBF16;
  add_op("elu", "activation", "elu(x, 1)", {kAct, "struct EluOp"}, unary_away({4, 5}, {0, 5}),
         [](const Inputs& x) { return elu(x[0], 1.f); });
  r.back().dtypes = kFloatBF16;
  add_op("selu", "activation", "selu(x)", {kAct, "struct SeluOp"}, unary_away({4, 5}, {0, 5}),
         [](const Inputs& x) { return selu(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("tanh", "activation", "tanh(x)", {kAct, "struct TanhOp"}, unary({4, 5}, -2.f, 2.f, {0, 5}),
         [](const Inputs& x) { return tanh(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("sigmoid", "activation", "sigmoid(x)", {kAct, "struct SigmoidOp"}, unary({4, 5}, -3.f, 3.f, {5, 0}),
         [](const Inputs& x) { return sigmoid(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("gelu", "activation", "gelu(x)", {kAct, "struct GeluOp"}, unary({4, 5}, -3.f, 3.f, {0, 5}),
         [](const Inputs& x) { return gelu(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("silu", "activation", "silu(x)", {kAct, "struct SiluOp"}, unary({4, 5}, -3.f, 3.f, {5, 0}),
         [](const Inputs& x) { return silu(x[0]); });
  r.back().dtypes = kFloatBF16;
  add_op("softplus", "activation", "softplus(x, 2, 3)", {kAct, "struct SoftplusOp"},
         [](Generator& g, Dtype d) {  // βx in [−6, 6) away from the threshold 3
           std::vector<float> v = draw(g, 20, -3.f, 3.f);
           for (float& x : v)
             if (std::fabs(2.f * x - 3.f) < 0.1f) x += 0.2f;
           return Samples{{"basic", {make(v, {4, 5}, d)}}, {"empty", {z(d, {0})}}};
         },
         [](const Inputs& x) { return softplus(x[0], 2.f, 3.f); });

  // --- linear algebra
  const std::string kMm = "matmul.cpp";
  r.back().dtypes = kFloatBF16;
  add_op("matmul", "linear algebra", "matmul(a, b)", {kMm, "struct MatmulBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 5}), u(g, d, {5, 4})}},
                          {"empty rows", {z(d, {0, 3}), z(d, {3, 4})}},
                          {"empty K", {z(d, {2, 0}), z(d, {0, 3})}},
                          {"empty cols", {z(d, {2, 3}), z(d, {3, 0})}}};
         },
         [](const Inputs& x) { return matmul(x[0], x[1]); });
  add_op("matmul_batched", "linear algebra", "matmul(a, b) 3-D", {kMm, "struct MatmulBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 4}), u(g, d, {2, 4, 2})}},
                          {"empty batch", {z(d, {0, 3, 4}), z(d, {0, 4, 2})}},
                          {"empty K", {z(d, {2, 1, 0}), z(d, {2, 0, 2})}}};
         },
         [](const Inputs& x) { return matmul(x[0], x[1]); })
      .functions = {"matmul"};
  r.back().note = "C[i] = A[i]·B[i]";
  add_op("matmul_transposed", "linear algebra", "matmul(a.t(), b)", {kMm, "struct MatmulBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {5, 3}), u(g, d, {5, 4})}},
                          {"empty", {z(d, {5, 0}), z(d, {5, 4})}},
                          {"empty K", {z(d, {0, 3}), z(d, {0, 2})}}};
         },
         [](const Inputs& x) { return matmul(x[0].t(), x[1]); })
      .functions = {"matmul"};
  r.back().note = "a strided (transposed) operand";
  add_op("linear", "linear algebra", "linear(x, w, b)", {kMm, "struct LinearBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {4, 6}), u(g, d, {3, 6}), u(g, d, {3})}},
                          {"no bias", {u(g, d, {4, 6}), u(g, d, {3, 6})}},
                          {"empty batch", {z(d, {0, 6}), z(d, {3, 6}), z(d, {3})}},
                          {"empty features", {z(d, {2, 0}), z(d, {3, 0}), z(d, {3})}}};
         },
         [](const Inputs& x) { return linear(x[0], x[1], x.size() > 2 ? x[2] : Tensor()); });

  // --- shape
  const std::string kShape = "shape.cpp";
  add_op("reshape", "shape", "reshape(x, {3, -1})", {kShape, "struct ReshapeBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {2, 3, 2})}}, {"empty", {z(d, {0, 3})}}}; },
         [](const Inputs& x) { return reshape(x[0], {3, -1}); });
  r.back().dtypes = kAll;
  add_op("flatten", "shape", "flatten(x, 1)", {kShape, "struct ReshapeBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {2, 3, 2})}}, {"empty", {z(d, {0, 3, 2})}}}; },
         [](const Inputs& x) { return flatten(x[0], 1); });
  r.back().dtypes = kAll;
  add_op("transpose", "shape", "transpose(x, 0, 2)", {kShape, "struct TransposeBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {2, 3, 4})}}, {"empty", {z(d, {0, 3, 4})}}}; },
         [](const Inputs& x) { return transpose(x[0], 0, 2); });
  r.back().dtypes = kAll;
  // view needs strides that allow it: its fn makes the input non-contiguous itself
  add_op("view", "shape", "view(x.transpose(0, 1), {3, 2, 2, -1})", {kShape, "struct ReshapeBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {2, 3, 4})}}, {"empty", {z(d, {0, 3, 4})}}}; },
         [](const Inputs& x) { return view(transpose(x[0], 0, 1), {3, 2, 2, -1}); })
      .auto_noncontiguous = false;
  r.back().dtypes = kAll;
  r.back().note = "a no-copy view of a transposed tensor (its own non-contiguous case)";

  // --- views (index.cpp); the fns also take views of their inputs
  const std::string kIdx = "index.cpp";
  add_op("select", "views", "select(x.transpose(0, 2), 1, -2)", {kIdx, "Tensor select("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 4, 5})}}, {"empty", {z(d, {3, 4, 0})}}}; },
         [](const Inputs& x) { return select(transpose(x[0], 0, 2), 1, -2); });
  r.back().dtypes = kAll;
  add_op("narrow", "views", "narrow(x.t(), 1, 1, 2)", {kIdx, "Tensor narrow("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {4, 3})}}, {"empty", {z(d, {4, 0})}}}; },
         [](const Inputs& x) { return narrow(x[0].t(), 1, 1, 2); });
  r.back().dtypes = kAll;
  add_op("slice", "views", "slice(x.t(), 0, -5, 100, 2)", {kIdx, "Tensor slice("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 6})}}, {"empty", {z(d, {0, 6})}}}; },
         [](const Inputs& x) { return slice(x[0].t(), 0, -5, 100, 2); });
  r.back().dtypes = kAll;
  add_op("squeeze", "views", "squeeze(x.transpose(0, 1), 0)", {kIdx, "Tensor squeeze("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 1, 4})}}, {"empty", {z(d, {0, 1, 4})}}}; },
         [](const Inputs& x) { return squeeze(transpose(x[0], 0, 1), 0); });
  r.back().dtypes = kAll;
  add_op("unsqueeze", "views", "unsqueeze(x.t(), -1)", {kIdx, "Tensor unsqueeze("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 4})}}, {"empty", {z(d, {0, 4})}}}; },
         [](const Inputs& x) { return unsqueeze(x[0].t(), -1); });
  r.back().dtypes = kAll;
  add_op("permute", "views", "permute(x, {2, 0, 1})", {kIdx, "Tensor permute("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {2, 3, 4})}}, {"empty", {z(d, {2, 0, 4})}}}; },
         [](const Inputs& x) { return permute(x[0], {2, 0, 1}); });
  r.back().dtypes = kAll;
  add_op("expand", "views", "expand(x.t(), {2, -1, 3})", {kIdx, "Tensor expand("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {1, 4})}}, {"empty", {z(d, {1, 0})}}};
         },
         [](const Inputs& x) { return expand(x[0].t(), {2, -1, 3}); });
  r.back().dtypes = kAll;

  // --- joins (join.cpp)
  const std::string kJoin = "join.cpp";
  add_op("cat", "joins", "cat({a, b.t(), c}, 1)", {kJoin, "struct CatBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 2}), u(g, d, {4, 3}), u(g, d, {3, 1})}},
                          {"one empty part", {u(g, d, {3, 2}), z(d, {0, 3}), u(g, d, {3, 1})}},
                          {"empty", {z(d, {0, 2}), z(d, {4, 0}), z(d, {0, 1})}}};
         },
         [](const Inputs& x) { return cat({x[0], x[1].t(), x[2]}, 1); });
  r.back().dtypes = kAll;
  add_op("stack", "joins", "stack({a, b.t()}, 1)", {kJoin, "Tensor stack("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), u(g, d, {4, 3})}}, {"empty", {z(d, {0, 4}), z(d, {4, 0})}}};
         },
         [](const Inputs& x) { return stack({x[0], x[1].t()}, 1); });
  r.back().dtypes = kAll;
  add_op("split", "joins", "split(x.t(), 2, 1), joined in reverse", {kJoin, "std::vector<Tensor> split("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {5, 3})}}, {"empty", {z(d, {5, 0})}}}; },
         [](const Inputs& x) {
           auto p = split(x[0].t(), 2, 1);
           return cat({p[2], p[1], p[0]}, 1);
         });
  r.back().dtypes = kAll;
  add_op("chunk", "joins", "chunk(x, 3, 0), joined in reverse", {kJoin, "std::vector<Tensor> chunk("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {7, 2})}}, {"empty", {z(d, {7, 0})}}}; },
         [](const Inputs& x) {
           auto p = chunk(x[0], 3, 0);
           return cat({p[2], p[1], p[0]}, 0);
         });
  r.back().dtypes = kAll;

  // --- gather & scatter (gather.cpp): indices repeat, so gradients accumulate
  const std::string kGather = "gather.cpp";
  add_op("index_select", "gather & scatter", "index_select(t, 1, index)", {kGather, "Tensor index_select(const Tensor& t"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), ints({3, 0, 3, 1, 0}, {5})}},
                          {"empty index", {u(g, d, {3, 4}), ints({}, {0})}},
                          {"empty", {z(d, {0, 4}), ints({2, 2}, {2})}}};
         },
         [](const Inputs& x) { return index_select(x[0], 1, x[1]); });
  r.back().dtypes = kAll;
  add_op("gather", "gather & scatter", "gather(t, 1, index)", {kGather, "Tensor gather(const Tensor& t"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), ints({0, 3, 3, 1, 2, 2, 2, 0, 1, 1, 3, 0, 3, 3, 2}, {3, 5})}},
                          {"index smaller than t", {u(g, d, {3, 4}), ints({1, 1, 0, 3, 2, 2}, {2, 3})}},
                          {"empty", {u(g, d, {3, 4}), ints({}, {3, 0})}}};
         },
         [](const Inputs& x) { return gather(x[0], 1, x[1]); });
  r.back().dtypes = kAll;
  add_op("scatter_add", "gather & scatter", "scatter_add(t, 1, index, src)", {kGather, "Tensor scatter_add(const Tensor& t"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), ints({0, 3, 3, 1, 2, 2, 2, 0, 1, 1, 3, 0, 3, 3, 2}, {3, 5}),
                                     u(g, d, {3, 5})}},
                          {"src larger than index", {u(g, d, {3, 4}), ints({1, 1, 0, 3, 2, 2}, {2, 3}), u(g, d, {3, 6})}},
                          {"empty", {u(g, d, {3, 4}), ints({}, {3, 0}), z(d, {3, 0})}}};
         },
         [](const Inputs& x) { return scatter_add(x[0], 1, x[1], x[2]); })
      .dtypes = {F32, F64, I64};

  // --- comparisons & masks (compare.cpp): Bool results; where/masked_fill are differentiable
  const std::string kCmp = "compare.cpp";
  add_op("where", "compare", "where(cond, a, b)", {kCmp, "struct WhereBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {mask(g, {3, 4}), u(g, d, {3, 4}), u(g, d, {3, 4})}},
                          {"broadcast", {mask(g, {2, 1, 4}), u(g, d, {3, 4}), u(g, d, {3, 1})}},
                          {"empty", {make({}, {0, 1}, B, false), z(d, {4}), z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return where(x[0], x[1], x[2]); });
  r.back().dtypes = kAll;
  add_op("masked_fill", "compare", "masked_fill(t, mask, 0.5)", {kCmp, "struct MaskedFillBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), mask(g, {3, 4})}},
                          {"broadcast", {u(g, d, {3, 4}), mask(g, {4})}},
                          {"empty", {z(d, {0, 3}), make({-1.f, 1.f, 1.f}, {3}, B, false)}}};
         },
         [](const Inputs& x) { return masked_fill(x[0], x[1], 0.5); });
  r.back().dtypes = kAll;
  struct Cmp {
    const char* name;
    Tensor (*tt)(const Tensor&, const Tensor&);
    Tensor (*ts)(const Tensor&, float);
  };
  // the scalar sample goes through the operator form (a == 0.25), which calls the scalar overload
  const Cmp cmps[] = {
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, [](const Tensor& a, float s) { return a == s; }},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, [](const Tensor& a, float s) { return a != s; }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, [](const Tensor& a, float s) { return a < s; }},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }, [](const Tensor& a, float s) { return a <= s; }},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, [](const Tensor& a, float s) { return a > s; }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, [](const Tensor& a, float s) { return a >= s; }},
  };
  for (const Cmp& c : cmps) {
    const std::string op = c.name;
    OpInfo& o = add_op(op, "compare", op + "(a, b); a " + op + " 0.25", {kCmp, "Tensor compare(const Tensor& a, const Tensor& b"},
                       [](Generator& g, Dtype d) {
                         return Samples{{"basic", tied_pair(g, d, {3, 4})},
                                        {"broadcast", {u(g, d, {2, 1, 4}, -1.f, 1.f, false), u(g, d, {3, 1}, -1.f, 1.f, false)}},
                                        {"scalar", {with_quarters(g, d, {3, 4})}},
                                        {"empty", {make({}, {0, 4}, d, false), make({0.5f}, {1}, d, false)}}};
                       },
                       [tt = c.tt, ts = c.ts](const Inputs& x) { return x.size() == 1 ? ts(x[0], 0.25f) : tt(x[0], x[1]); });
    o.dtypes = kAll;
    o.differentiable = false;
    o.note = "ties in every sample; the scalar form via the operator";
  }
  add_op("logical_and", "compare", "logical_and(a, b)", {kCmp, "Tensor logical_and("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -1.f, 1.f, false), u(g, d, {3, 4}, -1.f, 1.f, false)}},
                          {"broadcast", {u(g, d, {3, 4}, -1.f, 1.f, false), u(g, d, {4}, -1.f, 1.f, false)}},
                          {"empty", {make({}, {0, 4}, d, false), make({1.f}, {1}, d, false)}}};
         },
         [](const Inputs& x) { return logical_and(x[0], x[1]); })
      .dtypes = {B};
  r.back().differentiable = false;
  add_op("logical_or", "compare", "logical_or(a, b)", {kCmp, "Tensor logical_or("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -1.f, 1.f, false), u(g, d, {3, 4}, -1.f, 1.f, false)}},
                          {"broadcast", {u(g, d, {2, 1, 4}, -1.f, 1.f, false), u(g, d, {3, 1}, -1.f, 1.f, false)}},
                          {"empty", {make({}, {0}, d, false), make({1.f}, {1}, d, false)}}};
         },
         [](const Inputs& x) { return logical_or(x[0], x[1]); })
      .dtypes = {B};
  r.back().differentiable = false;
  add_op("logical_not", "compare", "logical_not(a)", {kCmp, "Tensor logical_not("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -1.f, 1.f, false)}}, {"empty", {make({}, {0, 2}, d, false)}}};
         },
         [](const Inputs& x) { return logical_not(x[0]); })
      .dtypes = {B};
  r.back().differentiable = false;
  // values with NaN and ±inf among ordinary ones
  const auto special = [](Generator& g, Dtype d) {
    std::vector<float> v = draw(g, 12, -1.f, 1.f);
    v[1] = std::numeric_limits<float>::quiet_NaN();
    v[4] = std::numeric_limits<float>::infinity();
    v[7] = -std::numeric_limits<float>::infinity();
    v[10] = std::numeric_limits<float>::quiet_NaN();
    return Samples{{"basic", {make(v, {3, 4}, d, false)}}, {"empty", {make({}, {0, 3}, d, false)}}};
  };
  add_op("isnan", "compare", "isnan(x)", {kCmp, "Tensor isnan("}, special, [](const Inputs& x) { return isnan(x[0]); })
      .differentiable = false;
  r.back().dtypes = kAll;
  add_op("isfinite", "compare", "isfinite(x)", {kCmp, "Tensor isfinite("}, special,
         [](const Inputs& x) { return isfinite(x[0]); })
      .differentiable = false;
  r.back().dtypes = kAll;

  // --- reductions
  const std::string kRed = "reduce.cpp";
  add_op("sum", "reduction", "sum(x·x)", {kRed, "struct SumBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 4})}}, {"empty", {z(d, {0, 3})}}}; },
         [](const Inputs& x) { return sum(mul(x[0], x[0])); });
  r.back().dtypes = kNumber;
  add_op("sum_dim", "reduction", "sum(x, 1, keepdim)", {kRed, "struct SumBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {2, 3, 4})}}, {"empty", {z(d, {2, 0, 4})}}}; },
         [](const Inputs& x) { return sum(x[0], 1, true); })
      .functions = {"sum"};
  r.back().dtypes = {F32, F64, I64, B, BF16};  // Bool sums count (Int64)
  add_op("mean", "reduction", "mean(x·x)", {kRed, "struct SumBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 4})}}, {"empty", {z(d, {0, 3})}}}; },
         [](const Inputs& x) { return mean(mul(x[0], x[0])); });
  add_op("mean_dim", "reduction", "mean(x, -1)", {kRed, "struct SumBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4})}}, {"empty dim", {z(d, {3, 0})}}, {"empty", {z(d, {0, 3})}}};
         },
         [](const Inputs& x) { return mean(x[0], -1); })
      .functions = {"mean"};
  add_op("max_all", "reduction", "max(x)", {kRed, "struct MaxBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {distinct(g, d, {3, 4}, 0.3f)}}}; },
         [](const Inputs& x) { return max(x[0]); })
      .functions = {"max"};
  r.back().dtypes = kNumber;
  r.back().note = "over all elements (an empty input is an error)";
  add_op("max_dim", "reduction", "max(x, 1)", {kRed, "struct MaxBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {distinct(g, d, {3, 4}, 0.3f)}}, {"empty", {z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return max(x[0], 1); })
      .functions = {"max"};
  r.back().dtypes = kNumber;
  add_op("min_dim", "reduction", "min(x, 0, keepdim)", {kRed, "struct MaxBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {distinct(g, d, {3, 4}, 0.3f)}}, {"empty", {z(d, {3, 0})}}};
         },
         [](const Inputs& x) { return min(x[0], 0, true); })
      .functions = {"min"};
  r.back().dtypes = kNumber;
  add_op("argmax", "reduction", "argmax(x, 1)", {kRed, "Tensor argmax("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {distinct(g, d, {3, 4}, 0.3f)}}, {"empty", {z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return argmax(x[0], 1); })
      .differentiable = false;
  r.back().dtypes = kNumber;
  r.back().formula.fallback = "y = the index of the largest x along dim (the first on ties; Int64)  Backward: none";
  add_op("argmin", "reduction", "argmin(x, 0, keepdim)", {kRed, "Tensor argmin("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {distinct(g, d, {3, 4}, 0.3f)}}, {"empty", {z(d, {3, 0})}}};
         },
         [](const Inputs& x) { return argmin(x[0], 0, true); })
      .differentiable = false;
  r.back().dtypes = kNumber;
  r.back().formula.fallback = "y = the index of the smallest x along dim (the first on ties; Int64)  Backward: none";
  add_op("prod", "reduction", "prod(x)", {kRed, "struct ProdBackward"},
         [](Generator& g, Dtype d) {
           // one zero and two zeros exercise the zero-aware backward
           std::vector<float> one = away_values(g, 6), two = away_values(g, 6);
           one[2] = 0.f;
           two[1] = two[4] = 0.f;
           return Samples{{"basic", {away(g, d, {2, 3})}},
                          {"one zero", {make(one, {2, 3}, d)}},
                          {"two zeros", {make(two, {2, 3}, d)}, /*zero_gradient=*/true},
                          {"empty", {z(d, {0, 3})}}};
         },
         [](const Inputs& x) { return prod(x[0]); });
  r.back().dtypes = kNumber;
  add_op("var", "reduction", "var(x, 1)", {kRed, "Tensor var("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4})}}, {"empty dim", {z(d, {3, 0})}}, {"empty", {z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return var(x[0], 1); });
  add_op("std", "reduction", "std(x, 0, false, keepdim)", {kRed, "Tensor std("},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {4, 3})}}, {"empty", {z(d, {0, 3})}}}; },
         [](const Inputs& x) { return std(x[0], 0, false, true); });
  add_op("logsumexp", "reduction", "logsumexp(x, 1)", {kRed, "Tensor logsumexp("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -2.f, 2.f)}}, {"empty dim", {z(d, {2, 0})}}, {"empty", {z(d, {0, 3})}}};
         },
         [](const Inputs& x) { return logsumexp(x[0], 1); });
  add_op("norm", "reduction", "norm(x)", {kRed, "struct NormBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 4})}}, {"empty", {z(d, {0, 3})}}}; },
         [](const Inputs& x) { return norm(x[0]); });
  add_op("norm_p1", "reduction", "norm(x, 1)", {kRed, "struct NormBackward"}, unary_away({3, 4}, {0}),
         [](const Inputs& x) { return norm(x[0], 1.f); })
      .functions = {"norm"};
  add_op("norm_p3", "reduction", "norm(x, 3)", {kRed, "struct NormBackward"}, unary_away({3, 4}, {2, 0}),
         [](const Inputs& x) { return norm(x[0], 3.f); })
      .functions = {"norm"};

  // --- softmax
  const std::string kSm = "softmax.cpp";
  add_op("softmax", "softmax & losses", "softmax(x, 1)", {kSm, "struct SoftmaxBackward", "softmax:"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 5}, -2.f, 2.f)}}, {"empty", {z(d, {0, 5})}}, {"empty dim", {z(d, {3, 0})}}};
         },
         [](const Inputs& x) { return softmax(x[0], 1); });
  add_op("softmax_dim0", "softmax & losses", "softmax(x, 0)", {kSm, "struct SoftmaxBackward", "softmax:"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {4, 3}, -2.f, 2.f)}}, {"empty", {z(d, {0, 3})}}}; },
         [](const Inputs& x) { return softmax(x[0], 0); })
      .functions = {"softmax"};
  r.back().note = "along a non-last dim";
  add_op("log_softmax", "softmax & losses", "log_softmax(x, 1)", {kSm, "struct SoftmaxBackward", "log_softmax:"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {3, 5}, -2.f, 2.f)}}, {"empty", {z(d, {0, 5})}}}; },
         [](const Inputs& x) { return log_softmax(x[0], 1); });

  // --- losses & regularisation (loss.cpp, dropout.cpp)
  const std::string kLoss = "loss.cpp";
  add_op("cross_entropy", "softmax & losses", "cross_entropy(logits, Int64 target)",
         {kLoss, "struct CrossEntropyBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {4, 5}, -2.f, 2.f), ints({0, 3, 4, 1}, {4})}},
                          {"repeated class", {u(g, d, {3, 4}, -2.f, 2.f), ints({2, 2, 0}, {3})}},
                          {"empty", {z(d, {0, 5}), ints({}, {0})}}};
         },
         [](const Inputs& x) { return cross_entropy(x[0], x[1]); });
  add_op("cross_entropy_probs", "softmax & losses", "cross_entropy(logits, probabilities)",
         {kLoss, "struct CrossEntropyBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -2.f, 2.f), probs(g, d, 3, 4)}},
                          {"empty", {z(d, {0, 4}), make({}, {0, 4}, d, false)}}};
         },
         [](const Inputs& x) { return cross_entropy(x[0], x[1]); })
      .functions = {"cross_entropy"};
  r.back().note = "soft targets of the input's dtype";
  add_op("nll_loss", "softmax & losses", "nll_loss(log_softmax(x, 1), target)", {kLoss, "struct NllLossBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {4, 3}), ints({2, 0, 1, 2}, {4})}}, {"empty", {z(d, {0, 3}), ints({}, {0})}}};
         },
         [](const Inputs& x) { return nll_loss(log_softmax(x[0], 1), x[1]); });
  add_op("mse_loss", "softmax & losses", "mse_loss(input, target)", {kLoss, "Tensor mse_loss("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}), u(g, d, {3, 4})}}, {"empty", {z(d, {0, 4}), z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return mse_loss(x[0], x[1]); });
  // basic: one target ignored (2 inputs: no smoothing); then weight, smoothing, both, probabilities
  add_op("cross_entropy_options", "softmax & losses", "cross_entropy(logits, target, {weight, ignore_index, label_smoothing})",
         {kLoss, "Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {4, 5}, -2.f, 2.f), ints({0, -100, 4, 1}, {4})}},
                          {"weight", {u(g, d, {4, 5}, -2.f, 2.f), ints({0, 3, 4, 3}, {4}), u(g, d, {5}, 0.5f, 1.5f)}},
                          {"smoothing", {u(g, d, {4, 5}, -2.f, 2.f), ints({2, 3, -100, 1}, {4}), make({}, {0}, d, false)}},
                          {"all", {u(g, d, {4, 5}, -2.f, 2.f), ints({2, -100, 2, 1}, {4}), u(g, d, {5}, 0.5f, 1.5f)}},
                          {"probabilities", {u(g, d, {3, 4}, -2.f, 2.f), probs(g, d, 3, 4), u(g, d, {4}, 0.5f, 1.5f)}},
                          {"empty", {z(d, {0, 5}), ints({}, {0}), make({}, {0}, d, false)}}};
         },
         [](const Inputs& x) {
           // a 3rd input of 0 elements: no weight; label smoothing with the samples that ignore or weigh
           CrossEntropyOptions o;
           if (x.size() > 2 && x[2].numel() > 0) o.weight = x[2];
           if (x.size() > 2) o.label_smoothing = 0.1;
           return cross_entropy(x[0], x[1], o);
         })
      .functions = {"cross_entropy"};
  r.back().note = "PyTorch 1.13's weighted / ignored / label-smoothed mean";
  add_op("bce_with_logits", "softmax & losses", "bce_with_logits(input, target)", {kLoss, "Tensor bce_with_logits("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -3.f, 3.f), u(g, d, {3, 4}, 0.f, 1.f)}},
                          {"empty", {z(d, {0, 4}), z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return bce_with_logits(x[0], x[1]); });
  add_op("l1_loss", "softmax & losses", "l1_loss(input, target)", {kLoss, "Tensor l1_loss("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -1.f, 0.f), u(g, d, {3, 4}, 0.1f, 1.f)}},
                          {"empty", {z(d, {0, 4}), z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return l1_loss(x[0], x[1]); });
  r.back().note = "input and target apart (the kink of |d| at 0)";
  add_op("smooth_l1_loss", "softmax & losses", "smooth_l1_loss(input, target, 0.5)", {kLoss, "Tensor smooth_l1_loss("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -1.f, 1.f), u(g, d, {3, 4}, -1.f, 1.f)}},
                          {"empty", {z(d, {0, 4}), z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return smooth_l1_loss(x[0], x[1], 0.5); });
  add_op("huber_loss", "softmax & losses", "huber_loss(input, target, 0.5)", {kLoss, "Tensor huber_loss("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 4}, -1.f, 1.f), u(g, d, {3, 4}, -1.f, 1.f)}},
                          {"empty", {z(d, {0, 4}), z(d, {0, 4})}}};
         },
         [](const Inputs& x) { return huber_loss(x[0], x[1], 0.5); });
  add_op("one_hot", "softmax & losses", "one_hot(labels, 4)", {kLoss, "Tensor one_hot("},
         [](Generator&, Dtype d) {
           return Samples{{"basic", {make({0.f, 0.75f, 0.25f, 0.75f, 0.5f}, {5}, d, false)}},
                          {"empty", {make({}, {0}, d, false)}}};
         },
         [](const Inputs& x) { return one_hot(x[0], 4); })
      .dtypes = {I64};
  r.back().differentiable = false;
  r.back().formula.fallback = "y[i, c] = 1 if labels[i] = c else 0 (Float32)  Backward: none";
  add_op("dropout", "regularisation", "dropout(x, 0.3, training)", {"dropout.cpp", "struct DropoutBackward"},
         [](Generator& g, Dtype d) { return Samples{{"basic", {u(g, d, {4, 6})}}, {"empty", {z(d, {0, 6})}}}; },
         [](const Inputs& x) {
           Generator fixed(99);  // the same mask on every call, so finite differences see one function
           return dropout(x[0], 0.3f, true, fixed);
         });
  r.back().dtypes = kFloatBF16;

  // --- convolution & pooling (conv.cpp, pool.cpp)
  add_op("conv2d", "convolution & pooling", "conv2d(x, w, b, 1, 1)", {"conv.cpp", "class Conv2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 7, 7}), u(g, d, {4, 3, 3, 3}, -.5f, .5f), u(g, d, {4}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 3, 7, 7}), z(d, {4, 3, 3, 3}), z(d, {4})}},
                          {"no filters", {z(d, {2, 3, 7, 7}), z(d, {0, 3, 3, 3}), z(d, {0})}}};
         },
         [](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, 1); });
  add_op("conv2d_stride2", "convolution & pooling", "conv2d(x, w, {}, 2, 0)", {"conv.cpp", "class Conv2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 2, 7, 6}), u(g, d, {3, 2, 3, 2}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 2, 7, 6}), z(d, {3, 2, 3, 2})}}};
         },
         [](const Inputs& x) { return conv2d(x[0], x[1], {}, 2, 0); })
      .functions = {"conv2d"};
  r.back().note = "stride 2, no bias";
  // distinct values 0.01 apart (≫ eps), so each window's arg max is stable under ±eps
  add_op("max_pool2d", "convolution & pooling", "max_pool2d(x, 2)", {"pool.cpp", "class MaxPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {distinct(g, d, {2, 3, 6, 6}, 0.01f)}},
                          {"empty batch", {z(d, {0, 3, 6, 6})}},
                          {"empty channels", {z(d, {2, 0, 6, 6})}}};
         },
         [](const Inputs& x) { return max_pool2d(x[0], 2); });
  add_op("max_pool2d_overlap", "convolution & pooling", "max_pool2d(x, 3, 2)", {"pool.cpp", "class MaxPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {distinct(g, d, {1, 2, 7, 8}, 0.01f)}}, {"empty", {z(d, {0, 2, 7, 8})}}};
         },
         [](const Inputs& x) { return max_pool2d(x[0], 3, 2); })
      .functions = {"max_pool2d"};
  r.back().note = "overlapping windows: dx sums g over the windows whose arg max it is";
  // The fused block (conv_block.cpp): Float32 runs the fused kernel, Float64 the
  // composition, so the Float32-vs-Float64 check compares the two.
  add_op("conv2d_relu_max_pool2d", "convolution & pooling", "conv2d_relu_max_pool2d(x, w, b, 2)",
         {"conv_block.cpp", "class ConvReluMaxPoolBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 8, 8}), u(g, d, {4, 3, 3, 3}, -.5f, .5f), u(g, d, {4}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 3, 8, 8}), z(d, {4, 3, 3, 3}), z(d, {4})}}};
         },
         [](const Inputs& x) { return conv2d_relu_max_pool2d(x[0], x[1], x[2], 2); });
  r.back().note = "fused Conv2d → ReLU → MaxPool2d; Float64 (and autocast, BFloat16) run the composition";

  // --- dtypes (cast.cpp): the sample's second input is an empty tensor of the target dtype
  add_op("to", "dtypes", "x.to(dtype)", {"cast.cpp", "struct ToCopyBackward"},
         [](Generator& g, Dtype d) {
           // a Float32 leaf cast to d: Float32 → Float64 is exact, so the Float64
           // check keeps its tolerances (gradcheck measures the Float32 step it takes)
           return Samples{{"basic", {u(g, F32, {3, 4}), make({}, {0}, d, false)}},
                          {"empty", {z(F32, {0, 3}), make({}, {0}, d, false)}}};
         },
         [](const Inputs& x) { return x[0].to(x[1].dtype()); })
      .dtypes = kAll;
  r.back().note = "Tensor::to: the input is Float32, the sample's dtype is the target";
  // eps 1: the second-order check perturbs the Float64 upstream gradient, which the
  // backward casts to the Float32 leaf's dtype; that rounding (2^-24·|v|) over a
  // 1e-6 step is ~5 % of the numeric derivative. The op is linear, so a large
  // step has no truncation error, and rtol/atol keep their Float64 defaults (a
  // backward 0.1 % off still fails, at ~100× the tolerance)
  r.back().eps = 1.0;

  // --- [norm] normalization ops (ops/norm.cpp): batch_norm, layer_norm, group_norm
  // Samples hold x, then weight and bias when the layer is affine ("no affine":
  // x alone). Weights are drawn in [0.5, 1.5).
  {
    const std::string kNorm = "norm.cpp";
    const auto affine = [](const Inputs& x, size_t i) { return x.size() > i ? x[i] : Tensor(); };
    add_op("batch_norm", "normalization", "batch_norm(x, running_mean, running_var, w, b, training=true)",
           {kNorm, "struct BatchNormBackward"},
           [](Generator& g, Dtype d) {
             return Samples{{"basic", {u(g, d, {4, 3, 2}), u(g, d, {3}, 0.5f, 1.5f), u(g, d, {3})}},
                            {"2-D", {u(g, d, {5, 3}), u(g, d, {3}, 0.5f, 1.5f), u(g, d, {3})}},
                            {"4-D", {u(g, d, {2, 3, 2, 2}), u(g, d, {3}, 0.5f, 1.5f), u(g, d, {3})}},
                            {"no affine", {u(g, d, {3, 2, 3})}},
                            {"empty batch", {z(d, {0, 3, 2}), z(d, {3}), z(d, {3})}}};
           },
           [affine](const Inputs& x) {
             // fresh running statistics per call: their in-place update never feeds back
             const int64_t c = x[0].size(1);
             const Tensor rm = zeros({c}, Dtype::Float64), rv = ones({c}, Dtype::Float64);
             return batch_norm(x[0], rm, rv, affine(x, 1), affine(x, 2), true);
           });
    r.back().note = "training: the batch's statistics (x's gradient goes through them); running statistics updated";
    add_op("batch_norm_eval", "normalization", "batch_norm(x, running_mean, running_var, w, b, training=false)",
           {kNorm, "struct BatchNormBackward"},
           [](Generator& g, Dtype d) {
             return Samples{{"basic", {u(g, d, {4, 3, 2}), u(g, d, {3}, 0.5f, 1.5f), u(g, d, {3})}},
                            {"4-D", {u(g, d, {2, 3, 2, 2}), u(g, d, {3}, 0.5f, 1.5f), u(g, d, {3})}},
                            {"no affine", {u(g, d, {3, 3})}},
                            {"one sample", {u(g, d, {1, 3}), u(g, d, {3}, 0.5f, 1.5f), u(g, d, {3})}},
                            {"empty batch", {z(d, {0, 3, 2}), z(d, {3}), z(d, {3})}}};
           },
           [affine](const Inputs& x) {
             const int64_t c = x[0].size(1);
             const Tensor rm = arange(c, Dtype::Float64) * 0.2 - 0.1, rv = arange(c, Dtype::Float64) * 0.5 + 0.5;
             return batch_norm(x[0], rm, rv, affine(x, 1), affine(x, 2), false);
           })
        .functions = {"batch_norm"};
    r.back().note = "eval: constant running statistics";
    add_op("layer_norm", "normalization", "layer_norm(x, w.shape(), w, b)", {kNorm, "struct RowNormBackward", "layer_norm:"},
           [](Generator& g, Dtype d) {
             return Samples{{"basic", {u(g, d, {3, 2, 4}), u(g, d, {2, 4}, 0.5f, 1.5f), u(g, d, {2, 4})}},
                            {"last dim", {u(g, d, {4, 5}), u(g, d, {5}, 0.5f, 1.5f), u(g, d, {5})}},
                            {"no affine", {u(g, d, {3, 4})}},
                            {"empty", {z(d, {0, 4}), z(d, {4}), z(d, {4})}}};
           },
           [affine](const Inputs& x) {
             const Shape normalized = x.size() > 1 ? x[1].shape() : Shape{x[0].size(-1)};
             return layer_norm(x[0], normalized, affine(x, 1), affine(x, 2));
           });
    add_op("group_norm", "normalization", "group_norm(x, 2, w, b)", {kNorm, "struct RowNormBackward", "group_norm:"},
           [](Generator& g, Dtype d) {
             return Samples{{"basic", {u(g, d, {2, 4, 3}), u(g, d, {4}, 0.5f, 1.5f), u(g, d, {4})}},
                            {"4-D", {u(g, d, {2, 6, 2, 2}), u(g, d, {6}, 0.5f, 1.5f), u(g, d, {6})}},
                            {"no affine", {u(g, d, {3, 4, 2})}},
                            {"empty batch", {z(d, {0, 4, 3}), z(d, {4}), z(d, {4})}}};
           },
           [affine](const Inputs& x) { return group_norm(x[0], 2, affine(x, 1), affine(x, 2)); });
  }
  // --- [end norm]

  // --- [conv2] convolution options, conv_transpose2d, avg pooling (conv.cpp, pool.cpp)
  add_op("conv2d_groups", "convolution & pooling", "conv2d(x, w, b, {2, 1}, {1, 2}, {2, 1}, 2)",
         {"conv.cpp", "class Conv2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 4, 7, 5}), u(g, d, {6, 2, 3, 2}, -.5f, .5f), u(g, d, {6}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 4, 7, 5}), z(d, {6, 2, 3, 2}), z(d, {6})}}};
         },
         [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {2, 1}, {1, 2}, {2, 1}, 2); })
      .functions = {"conv2d"};
  r.back().note = "rectangular kernel, stride (2, 1), padding (1, 2), dilation (2, 1), groups 2";
  add_op("conv2d_depthwise", "convolution & pooling", "conv2d(x, w, {}, 1, 1, 2, 3)",
         {"conv.cpp", "class Conv2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 6, 6}), u(g, d, {3, 1, 3, 3}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 3, 6, 6}), z(d, {3, 1, 3, 3})}}};
         },
         [](const Inputs& x) { return conv2d(x[0], x[1], {}, 1, 1, 2, 3); })
      .functions = {"conv2d"};
  r.back().note = "depthwise (groups = channels), dilation 2, no bias";
  add_op("conv_transpose2d", "convolution & pooling", "conv_transpose2d(x, w, b, 2, 1, 1, 2, {1, 2})",
         {"conv.cpp", "class ConvTranspose2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 4, 3, 3}), u(g, d, {4, 3, 3, 2}, -.5f, .5f), u(g, d, {6}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 4, 3, 3}), z(d, {4, 3, 3, 2}), z(d, {6})}}};
         },
         [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2], 2, 1, 1, 2, {1, 2}); });
  r.back().note = "stride 2, padding 1, output_padding 1, groups 2, dilation (1, 2)";
  add_op("conv_transpose2d_dilation", "convolution & pooling", "conv_transpose2d(x, w, {}, 1, 1, 1, 1, 2)",
         {"conv.cpp", "class ConvTranspose2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 2, 3, 4}), u(g, d, {2, 3, 3, 3}, -.5f, .5f)}},
                          {"empty batch", {z(d, {0, 2, 3, 4}), z(d, {2, 3, 3, 3})}}};
         },
         [](const Inputs& x) { return conv_transpose2d(x[0], x[1], {}, 1, 1, 1, 1, 2); })
      .functions = {"conv_transpose2d"};
  r.back().note = "output_padding 1 ≥ stride 1 (allowed: < dilation 2), no bias";
  add_op("avg_pool2d", "convolution & pooling", "avg_pool2d(x, 3, 2, 1)", {"pool.cpp", "class AvgPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 7, 6})}},
                          {"empty batch", {z(d, {0, 3, 7, 6})}},
                          {"empty channels", {z(d, {2, 0, 7, 6})}}};
         },
         [](const Inputs& x) { return avg_pool2d(x[0], 3, 2, 1); });
  r.back().note = "count_include_pad = true";
  add_op("avg_pool2d_exclude_pad", "convolution & pooling", "avg_pool2d(x, {3, 2}, {2, 1}, 1, false, false)",
         {"pool.cpp", "class AvgPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 7, 6})}}, {"empty batch", {z(d, {0, 3, 7, 6})}}};
         },
         [](const Inputs& x) { return avg_pool2d(x[0], {3, 2}, {2, 1}, 1, false, false); })
      .functions = {"avg_pool2d"};
  r.back().note = "count_include_pad = false, rectangular kernel";
  add_op("avg_pool2d_ceil", "convolution & pooling", "avg_pool2d(x, {3, 2}, {2, 3}, 1, true)",
         {"pool.cpp", "class AvgPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 2, 5, 7})}}, {"empty batch", {z(d, {0, 2, 5, 7})}}};
         },
         [](const Inputs& x) { return avg_pool2d(x[0], {3, 2}, {2, 3}, 1, true); })
      .functions = {"avg_pool2d"};
  r.back().note = "ceil_mode: last windows past the padding (the loop, also in Float32)";
  add_op("avg_pool2d_ceil_exclude_pad", "convolution & pooling", "avg_pool2d(x, 2, -1, 0, true, false)",
         {"pool.cpp", "class AvgPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 2, 5, 7})}}, {"empty batch", {z(d, {0, 2, 5, 7})}}};
         },
         [](const Inputs& x) { return avg_pool2d(x[0], 2, -1, 0, true, false); })
      .functions = {"avg_pool2d"};
  r.back().note = "ceil_mode, count_include_pad = false";
  add_op("adaptive_avg_pool2d", "convolution & pooling", "adaptive_avg_pool2d(x, {3, 2})",
         {"pool.cpp", "class AvgPool2dBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {2, 3, 7, 5})}},  // uneven, overlapping bins
                          {"even bins", {u(g, d, {2, 3, 6, 4})}},
                          {"empty batch", {z(d, {0, 3, 7, 5})}}};
         },
         [](const Inputs& x) { return adaptive_avg_pool2d(x[0], {3, 2}); });
  // --- [end conv2]

  // --- [rnn] embedding, lstm, gru (ops/rnn.cpp)
  // embedding: repeated indices accumulate into one row; the padding row gets no gradient
  const std::string kRnn = "rnn.cpp";
  add_op("embedding", "embedding & recurrent", "embedding(weight, indices)", {kRnn, "Tensor embedding("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {5, 3}), ints({1, 3, 1, 0, 3, 4}, {2, 3})}},
                          {"0-D index", {u(g, d, {4, 2}), ints({2}, {})}},
                          {"empty", {u(g, d, {4, 2}), ints({}, {0, 3})}}};
         },
         [](const Inputs& x) { return embedding(x[0], x[1]); })
      .dtypes = kAll;
  add_op("embedding_padding_idx", "embedding & recurrent", "embedding(weight, indices, 3)", {kRnn, "Tensor embedding("},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {5, 3}), ints({1, 4, 1, 0, 2, 4}, {2, 3})}},
                          {"empty", {u(g, d, {4, 2}), ints({}, {0})}}};
         },
         [](const Inputs& x) { return embedding(x[0], x[1], 3); })
      .functions = {"embedding"};
  r.back().dtypes = kAll;
  // the padding row's zero gradient is a definition, not a derivative (finite
  // differences see its value): test_rnn.cpp checks it against PyTorch
  r.back().note = "the recorded path that keeps the padding row's gradient out (row 3 not picked)";
  // one layer, H = 3, T = 3, N = 2, every weight and the initial state an input; the
  // output joins y and the final cell state, so gradcheck sees both paths
  add_op("lstm", "embedding & recurrent", "lstm(x, h0, c0, {{w_ih, w_hh, b_ih, b_hh}}): [y, c_n]",
         {kRnn, "struct LstmCellBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 2, 2}), u(g, d, {12, 2}), u(g, d, {12, 3}), u(g, d, {12}),
                                     u(g, d, {12}), u(g, d, {1, 2, 3}), u(g, d, {1, 2, 3})}},
                          {"zero state", {u(g, d, {2, 2, 2}), u(g, d, {12, 2}), u(g, d, {12, 3}), u(g, d, {12}),
                                          u(g, d, {12})}},
                          {"empty batch", {z(d, {2, 0, 2}), z(d, {12, 2}), z(d, {12, 3}), z(d, {12}), z(d, {12})}}};
         },
         [](const Inputs& x) {
           const bool state = x.size() > 5;
           const LSTMOutput o = lstm(x[0], state ? x[5] : Tensor(), state ? x[6] : Tensor(), {{x[1], x[2], x[3], x[4]}});
           return cat({reshape(o.output, {-1}), reshape(o.c_n, {-1})}, 0);
         })
      .dtypes = {F32, F64};
  r.back().note = "the gate arithmetic of a step is one fused node";
  add_op("gru", "embedding & recurrent", "gru(x, h0, {{w_ih, w_hh, b_ih, b_hh}})", {kRnn, "struct GruCellBackward"},
         [](Generator& g, Dtype d) {
           return Samples{{"basic", {u(g, d, {3, 2, 2}), u(g, d, {9, 2}), u(g, d, {9, 3}), u(g, d, {9}),
                                     u(g, d, {9}), u(g, d, {1, 2, 3})}},
                          {"zero state", {u(g, d, {2, 2, 2}), u(g, d, {9, 2}), u(g, d, {9, 3}), u(g, d, {9}),
                                          u(g, d, {9})}},
                          {"empty batch", {z(d, {2, 0, 2}), z(d, {9, 2}), z(d, {9, 3}), z(d, {9}), z(d, {9})}}};
         },
         [](const Inputs& x) {
           return gru(x[0], x.size() > 5 ? x[5] : Tensor(), {{x[1], x[2], x[3], x[4]}}).output;
         })
      .dtypes = {F32, F64};
  r.back().note = "PyTorch's linear-before-reset cell, one fused node per step";
  // --- [end rnn]

  return r;
}
}  // namespace

const std::vector<OpInfo>& op_registry() {
  static const std::vector<OpInfo> r = build();
  return r;
}

const OpInfo* find_op(const std::string& name) {
  for (const auto& o : op_registry())
    if (o.name == name) return &o;
  return nullptr;
}

Tensor noncontiguous_copy(const Tensor& t) {
  if (!t.defined()) return t;
  const Tensor src = detail::cast_copy(t.detach(), t.dtype());  // contiguous
  Tensor out;
  if (t.dim() == 0) {
    out = src;
  } else {
    // element i of src goes to element 2i of a buffer with the last dim doubled:
    // every other element of each row, i.e. the view with last stride 2
    Shape wide = t.shape();
    wide.back() *= 2;
    Tensor base = zeros(wide, t.dtype());
    const size_t bytes = dtype_size(t.dtype());
    const auto* from = static_cast<const char*>(src.impl()->storage->data()) + src.impl()->offset * int64_t(bytes);
    auto* to = static_cast<char*>(base.impl()->storage->data()) + base.impl()->offset * int64_t(bytes);
    for (int64_t i = 0; i < src.numel(); ++i) std::memcpy(to + 2 * i * int64_t(bytes), from + i * int64_t(bytes), bytes);
    Shape strides = contiguous_strides(wide);
    strides.back() = 2;
    out = detail::make_view(base, t.shape(), strides, base.impl()->offset);
  }
  if (t.requires_grad()) out.requires_grad_();
  return out;
}

std::vector<SampleInput> op_samples(const OpInfo& op, Dtype dtype, uint64_t seed) {
  Generator g(seed * 7919 + 17);
  std::vector<SampleInput> s = op.samples(g, dtype);
  if (op.auto_noncontiguous && !s.empty()) {
    SampleInput nc{"non-contiguous", {}, s.front().zero_gradient};
    for (const Tensor& t : s.front().inputs) nc.inputs.push_back(noncontiguous_copy(t));
    s.insert(s.begin() + 1, std::move(nc));
  }
  return s;
}

// --- formulas from the source comments ----------------------------------------

namespace {
std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
/// Runs of spaces become one.
std::string squeeze_spaces(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!(c == ' ' && !out.empty() && out.back() == ' ')) out += c;
  return trim(out);
}
int paren_balance(const std::string& s) {
  int b = 0;
  for (char c : s) b += (c == '(') - (c == ')');
  return b;
}
}  // namespace

std::string formula_in(const std::string& text, const FormulaSource& where) {
  std::vector<std::string> lines;
  {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  size_t at = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string t = trim(lines[i]);
    if (!starts_with(t, "//") && lines[i].find(where.anchor) != std::string::npos) {
      at = i;
      break;
    }
  }
  if (at == lines.size()) return "";
  // the comment block right above (template lines in between are skipped)
  size_t j = at;
  while (j > 0 && starts_with(trim(lines[j - 1]), "template")) --j;
  std::vector<std::string> block;
  while (j > 0 && starts_with(trim(lines[j - 1]), "//")) {
    std::string t = trim(lines[--j]);
    block.insert(block.begin(), trim(t.substr(t.find_first_not_of('/'))));
  }
  // the Forward: line (the one labelled `label` when given)
  size_t first = block.size();
  for (size_t i = 0; i < block.size(); ++i) {
    const size_t f = block[i].find("Forward:");
    if (f == std::string::npos) continue;
    if (!where.label.empty() && trim(block[i].substr(0, f)) != where.label) continue;
    first = i;
    break;
  }
  if (first == block.size()) return "";
  std::string out = block[first].substr(block[first].find("Forward:"));
  // continuation lines: until Backward: has been seen, then while the text is
  // visibly unfinished (open parenthesis, trailing comma) or the next line
  // starts in lower case or with '(' — never into a Note or another Forward:
  for (size_t i = first + 1; i < block.size(); ++i) {
    const std::string& l = block[i];
    if (l.empty() || l.find("Forward:") != std::string::npos || starts_with(l, "Note:")) break;
    const bool has_backward = out.find("Backward:") != std::string::npos;
    const char last = out.empty() ? ' ' : out.back();
    const bool unfinished = paren_balance(out) > 0 || last == ',' || last == ':';
    const bool continues = std::islower(static_cast<unsigned char>(l[0])) || l[0] == '(';
    if (has_backward && !unfinished && !continues) break;
    out += " " + l;
  }
  return squeeze_spaces(out);
}

std::string op_formula(const OpInfo& op, const std::string& source_dir) {
  const std::string dir = source_dir.empty() ? std::string(TAPE_TESTING_SOURCE_DIR) : source_dir;
  const std::string path = dir + "/lib/tape/ops/" + op.formula.file;
  std::ifstream in(path, std::ios::binary);
  TAPE_CHECK(in, "op_formula: cannot read ", path, " (the source of op ", op.name, ")");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string f = formula_in(ss.str(), op.formula);
  if (!f.empty()) {
    TAPE_CHECK(op.formula.fallback.empty(), "op_formula: op ", op.name, " has a formula comment in ", op.formula.file,
               " above '", op.formula.anchor, "' and a fallback formula in the registry: delete the fallback");
    return f;
  }
  TAPE_CHECK(!op.formula.fallback.empty(), "op_formula: no '// Forward: ... Backward: ...' comment above '",
             op.formula.anchor, "' in ", path, " (op ", op.name, ")");
  return "Forward: " + op.formula.fallback;
}

// --- coverage of ops.hpp ------------------------------------------------------

std::vector<std::string> declared_ops(const std::string& header_text) {
  std::vector<std::string> names;
  std::istringstream in(header_text);
  for (std::string line; std::getline(in, line);) {
    std::string t = trim(line);
    std::string rest;
    const size_t space = t.find(' ');
    const std::string type = t.substr(0, space);
    // Tensor, std::vector<Tensor>, or a result struct of several tensors (LSTMOutput)
    const bool result_struct = type.size() > 6 && type.compare(type.size() - 6, 6, "Output") == 0 &&
                               std::all_of(type.begin(), type.end(), [](char c) { return std::isalnum((unsigned char)c); });
    if (type == "Tensor" || type == "std::vector<Tensor>" || result_struct) rest = t.substr(space + 1);
    else continue;
    rest = trim(rest);
    size_t n = 0;
    if (starts_with(rest, "operator")) {  // operator+, operator==, ...
      n = std::min(rest.find('('), rest.size());
    } else {
      while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) ++n;
    }
    if (n == 0 || n >= rest.size() || rest[n] != '(') continue;
    const std::string name = rest.substr(0, n);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

const std::vector<Exemption>& registry_exemptions() {
  // The comparison operators are one-line calls of eq ... ge (compare.cpp); the
  // comparison entries run their scalar samples through them, but their tensor
  // forms are the same calls.
  static const std::vector<Exemption> e = {
      {"operator==", "a one-line call of eq (compare.cpp); the eq entry runs its scalar form"},
      {"operator!=", "a one-line call of ne (compare.cpp); the ne entry runs its scalar form"},
      {"operator<", "a one-line call of lt (compare.cpp); the lt entry runs its scalar form"},
      {"operator<=", "a one-line call of le (compare.cpp); the le entry runs its scalar form"},
      {"operator>", "a one-line call of gt (compare.cpp); the gt entry runs its scalar form"},
      {"operator>=", "a one-line call of ge (compare.cpp); the ge entry runs its scalar form"},
      {"fusion_enabled", "a switch (TAPE_FUSE), not an op"},
  };
  return e;
}

// --- docs/ops.md ----------------------------------------------------------------

std::string dtypes_str(const std::vector<Dtype>& dtypes) {
  std::string s;
  for (Dtype d : dtypes) s += (s.empty() ? "" : ", ") + std::string(dtype_name(d));
  return s;
}

namespace {
/// A markdown table cell: '|' must be escaped, newlines become spaces.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}
}  // namespace

std::string ops_markdown() {
  const auto& ops = op_registry();
  std::vector<std::string> groups;  // in order of first appearance
  for (const auto& o : ops)
    if (std::find(groups.begin(), groups.end(), o.group) == groups.end()) groups.push_back(o.group);
  std::string s =
      "# Ops\n\n"
      "Generated by `build/tools/tape-ops-doc > docs/ops.md` from the op registry\n"
      "(`lib/tape_testing/registry.cpp`: name, signature, dtypes) and, for the\n"
      "formulas, from the `// Forward: ... Backward: ...` comment above each op's code\n"
      "in `lib/tape/ops/` (the file is in the last column) — do not edit by hand; a\n"
      "test fails when this file is out of date. Every differentiable op is checked\n"
      "in Float64 against central finite differences on each of its samples, and\n"
      "against its own Float32 run, by the test suite and `tape-gradcheck`\n"
      "(see [gradcheck.md](gradcheck.md)). `g` is the gradient arriving at the op's\n"
      "output; \"no grad\" ops (Bool or Int64 results, and one_hot) have no backward.\n\n";
  size_t differentiable = 0;
  for (const auto& o : ops) differentiable += o.differentiable;
  s += str_cat(ops.size(), " entries (", differentiable, " differentiable) in ", groups.size(), " groups.\n\n");
  s += "| group | op | signature | dtypes | forward | backward | source |\n|---|---|---|---|---|---|---|\n";
  for (const auto& gname : groups)
    for (const auto& o : ops) {
      if (o.group != gname) continue;
      std::string f = op_formula(o);  // "Forward: ... Backward: ..."
      std::string fwd = f, bwd;
      const size_t b = f.find("Backward:");
      if (b != std::string::npos) {
        fwd = f.substr(0, b);
        bwd = trim(f.substr(b + 9));
      }
      fwd = trim(fwd.substr(fwd.find("Forward:") + 8));
      if (!o.note.empty()) fwd += " — " + o.note;
      if (!o.differentiable) bwd = "no grad";
      s += "| " + md_cell(o.group) + " | `" + md_cell(o.name) + "` | `" + md_cell(o.signature) + "` | " +
           md_cell(dtypes_str(o.dtypes)) + " | " + md_cell(fwd) + " | " + md_cell(bwd) + " | " +
           md_cell(o.formula.file) + " |\n";
    }
  return s;
}

}  // namespace tape::testing
