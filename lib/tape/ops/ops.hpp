#pragma once
/// \file Differentiable ops: free functions in namespace tape. Each op's file in
/// lib/tape/ops/ holds its forward, its Node (backward) and a one-line formula.
#include "tape/core/tensor.hpp"

namespace tape {

// --- elementwise (NumPy broadcasting for binary ops) — elementwise.cpp
// Mixed dtypes promote (promote_types); Int64 / Int64 is Float32. A scalar keeps
// a floating tensor's dtype; an Int64 tensor stays Int64 for an integral scalar.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor sign(const Tensor& x);  ///< −1, 0 or 1 (NaN stays NaN); zero gradient
/// min(max(x, lo), hi); gradient 1 inside [lo, hi], 0 outside; NaN propagates.
Tensor clamp(const Tensor& x, double lo, double hi);
/// Elementwise max / min with broadcasting; ties split the gradient ½ each; NaN propagates.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

/// Sums `t` down to `shape` (the reverse of broadcasting; differentiable).
Tensor sum_to(const Tensor& t, const Shape& shape);

// --- activations — activation.cpp
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor elu(const Tensor& x, float alpha = 1.f);
Tensor selu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor gelu(const Tensor& x);  ///< x·Φ(x) (erf form)
Tensor silu(const Tensor& x);  ///< x·σ(x)
/// ln(1 + e^(βx))/β; x itself where βx > threshold (PyTorch).
Tensor softplus(const Tensor& x, float beta = 1.f, float threshold = 20.f);

// --- linear algebra (Float32 on oneDNN, Float64 on OpenBLAS; operands of one dtype) — matmul.cpp
/// [M,K]@[K,N] → [M,N]; [B,M,K]@[B,K,N] → [B,M,N].
Tensor matmul(const Tensor& a, const Tensor& b);
/// x[N,in] · w[out,in]ᵀ + b[out] → [N,out]; b may be undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

// --- shape — shape.cpp
Tensor reshape(const Tensor& t, const Shape& shape);  ///< one dim may be -1
Tensor flatten(const Tensor& t, int64_t start_dim = 1);
Tensor transpose(const Tensor& t, int64_t d0, int64_t d1);
/// A no-copy view as `shape` (one dim may be -1); throws when x's strides do not allow one.
Tensor view(const Tensor& t, const Shape& shape);

// --- views: share x's storage and version counter, no copy — index.cpp
Tensor select(const Tensor& t, int64_t dim, int64_t index);  ///< drops `dim`; index < 0 counts from the end
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
/// Elements start, start+step, ... < end along dim; start/end wrap when < 0 and are clamped (PyTorch).
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor squeeze(const Tensor& t, int64_t dim);    ///< drops `dim` if its size is 1, else the same view
Tensor unsqueeze(const Tensor& t, int64_t dim);  ///< inserts a size-1 dim at `dim` (in [-ndim-1, ndim])
Tensor permute(const Tensor& t, const Shape& dims);
/// Broadcasts size-1 dims to `sizes` (stride 0); -1 keeps a size; new leading dims allowed.
Tensor expand(const Tensor& t, const Shape& sizes);

// --- gather & scatter (PyTorch semantics; index is Int64, values in [0, size)) — gather.cpp
/// y = t's slices index[0], index[1], ... along dim (index 1-D; repeats allowed); any dtype.
Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
/// y[i][j][k] = t[i][index[i][j][k]][k] for dim 1 (likewise for other dims): y has index's
/// shape; index has t's ndim and index.size(d) <= t.size(d) for d != dim; any dtype.
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
/// t + src added at the index positions along dim (out[i][index[i][j][k]][k] += src[i][j][k]
/// for dim 1); repeats accumulate. Float32, Float64 or Int64; src has t's dtype.
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);

// --- joins — join.cpp
/// Concatenates along dim: all inputs have the same ndim and agree on the other dims.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Joins along a new dim (all inputs have the same shape).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Views of split_size along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim = 0);
/// `chunks` views along dim of ceil(size / chunks) each (fewer when they run out).
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim = 0);

// --- comparisons & masks (Bool results, NumPy broadcasting) — compare.cpp
/// a ⋈ b elementwise → Bool; numeric operands of mixed dtypes promote. NaN compares
/// false, except ne (true), as in PyTorch.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
/// Against a scalar (rounded to a floating tensor's dtype; an Int64 tensor's elements compare as double).
Tensor eq(const Tensor& a, double s);
Tensor ne(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);
Tensor le(const Tensor& a, double s);
Tensor gt(const Tensor& a, double s);
Tensor ge(const Tensor& a, double s);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double s);
Tensor operator!=(const Tensor& a, double s);
Tensor operator<(const Tensor& a, double s);
Tensor operator<=(const Tensor& a, double s);
Tensor operator>(const Tensor& a, double s);
Tensor operator>=(const Tensor& a, double s);
/// Elementwise logic on Bool tensors (binary ones broadcast).
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
/// cond ? a : b elementwise, all three broadcast; cond Bool, a and b promote (differentiable in a and b).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// → Bool: x is NaN / x is neither NaN nor ±inf (Int64: all false / all true).
Tensor isnan(const Tensor& x);
Tensor isfinite(const Tensor& x);
/// t with `value` where the Bool mask (broadcast to t's shape) is true (differentiable in t).
Tensor masked_fill(const Tensor& t, const Tensor& mask, double value);

// --- reductions — reduce.cpp (Float32, Float64; sum, max, min, argmax, argmin, prod also
// Int64 with Int64 results, and sum of Bool counts into Int64; mean of an integer is an error)
Tensor sum(const Tensor& t);
Tensor sum(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& t);
Tensor mean(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& t);
Tensor max(const Tensor& t, int64_t dim, bool keepdim = false);   ///< values; grad to the arg max
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim = false); ///< Int64
Tensor min(const Tensor& t, int64_t dim, bool keepdim = false);   ///< values; grad to the arg min
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim = false); ///< Int64
Tensor prod(const Tensor& t);  ///< product of all elements (1 when empty)
/// Variance along dim (divisor n − 1 when unbiased, n otherwise; NaN when that is ≤ 0).
Tensor var(const Tensor& t, int64_t dim, bool unbiased = true, bool keepdim = false);
Tensor std(const Tensor& t, int64_t dim, bool unbiased = true, bool keepdim = false);  ///< √var
/// log Σ eˣ along dim, max-shifted (−inf over an empty dim).
Tensor logsumexp(const Tensor& t, int64_t dim, bool keepdim = false);
/// (Σ|x|ᵖ)^(1/p) over all elements, p > 0; gradient 0 where the norm is 0.
Tensor norm(const Tensor& t, float p = 2.f);

// --- softmax & losses — softmax.cpp, loss.cpp
Tensor softmax(const Tensor& t, int64_t dim);
Tensor log_softmax(const Tensor& t, int64_t dim);
/// Mean cross-entropy of logits [N,C] against Int64 indices [N] or probabilities [N,C] of the logits' dtype.
Tensor cross_entropy(const Tensor& logits, const Tensor& target);
/// Mean negative log-likelihood of log-probabilities [N,C] and Int64 targets [N].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target);
/// cross_entropy's PyTorch options (Int64 class targets; weight and label_smoothing also for probabilities).
struct CrossEntropyOptions {
  Tensor weight;                 ///< [C] per-class rescaling (logits' dtype), or undefined
  int64_t ignore_index = -100;   ///< targets equal to it add nothing (and no weight to the mean's divisor)
  double label_smoothing = 0.0;  ///< in [0, 1]: mix the target with the uniform distribution
};
/// cross_entropy with weight / ignore_index / label_smoothing, mean reduction as PyTorch 1.13 defines it:
/// the weighted mean divides by the summed weights of the non-ignored targets.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options);
/// Mean squared error.
Tensor mse_loss(const Tensor& input, const Tensor& target);
/// Mean binary cross-entropy of logits x against targets t in [0, 1] (same shape and dtype), numerically stable.
Tensor bce_with_logits(const Tensor& input, const Tensor& target);
/// Mean absolute error.
Tensor l1_loss(const Tensor& input, const Tensor& target);
/// Mean of 0.5·d²/β where |d| < β, else |d| − 0.5·β (d = input − target; β = 0 is l1_loss).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, double beta = 1.0);
/// Mean of 0.5·d² where |d| < δ, else δ·(|d| − 0.5·δ) (d = input − target; δ > 0).
Tensor huber_loss(const Tensor& input, const Tensor& target, double delta = 1.0);
/// Int64 labels [N] → Float32 [N, num_classes].
Tensor one_hot(const Tensor& labels, int64_t num_classes);

// --- regularisation — dropout.cpp
/// Inverted dropout: zero with probability p, scale the rest by 1/(1-p); identity if !training.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen = default_generator());

// --- convolution & pooling (Float32 on oneDNN, Float64 by reference loops + dgemm) — conv.cpp, pool.cpp
/// (height, width): one int for both or {h, w} — LibTorch's ExpandingArray<2>.
/// Also built from a Shape of 1 or 2 elements (AdaptiveAvgPool2d(Shape{oh, ow})).
struct IntPair {
  IntPair(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor): 3 means {3, 3}
  IntPair(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  IntPair(const Shape& s);  // NOLINT(google-explicit-constructor)
  bool operator==(const IntPair&) const = default;
  std::string str() const;  ///< "(h, w)", as PyTorch prints tuples
  std::string brief() const;  ///< "3" when h == w, else "(3, 5)" (for error messages)
  int64_t h, w;
};

/// x [N,C,H,W], w [O,C/groups,kh,kw], b [O] or undefined; PyTorch's F.conv2d.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = {}, IntPair stride = 1, IntPair padding = 0,
              IntPair dilation = 1, int64_t groups = 1);
/// x [N,C,H,W], w [C,O/groups,kh,kw], b [O] or undefined; PyTorch's F.conv_transpose2d
/// (the backward-data pass of conv2d): out = (H−1)·stride − 2·padding + dilation·(kh−1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b = {}, IntPair stride = 1,
                        IntPair padding = 0, IntPair output_padding = 0, int64_t groups = 1, IntPair dilation = 1);
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1 /* = kernel */);
/// Mean over windows; stride -1 means kernel. PyTorch's F.avg_pool2d (divisor_override unsupported).
Tensor avg_pool2d(const Tensor& x, IntPair kernel, IntPair stride = -1, IntPair padding = 0, bool ceil_mode = false,
                  bool count_include_pad = true);
/// Mean over PyTorch's adaptive bins: row i covers [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉).
Tensor adaptive_avg_pool2d(const Tensor& x, IntPair output_size);

}  // namespace tape
