#pragma once
/// \file Differentiable ops: free functions in namespace tape. Each op's file in
/// lib/tape/ops/ holds its forward, its Node (backward) and a one-line formula.
#include "tape/core/tensor.hpp"

namespace tape {

// --- elementwise (NumPy broadcasting for binary ops) — elementwise.cpp
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor pow(const Tensor& x, float exponent);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, float s);
Tensor operator-(const Tensor& a, float s);
Tensor operator*(const Tensor& a, float s);
Tensor operator/(const Tensor& a, float s);
Tensor operator+(float s, const Tensor& a);
Tensor operator-(float s, const Tensor& a);
Tensor operator*(float s, const Tensor& a);
Tensor operator/(float s, const Tensor& a);

/// Sums `t` down to `shape` (the reverse of broadcasting; differentiable).
Tensor sum_to(const Tensor& t, const Shape& shape);

// --- activations — activation.cpp
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor elu(const Tensor& x, float alpha = 1.f);
Tensor selu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

// --- linear algebra (oneDNN) — matmul.cpp
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

// --- joins — join.cpp
/// Concatenates along dim: all inputs have the same ndim and agree on the other dims.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Joins along a new dim (all inputs have the same shape).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Views of split_size along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim = 0);
/// `chunks` views along dim of ceil(size / chunks) each (fewer when they run out).
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim = 0);

// --- reductions — reduce.cpp
Tensor sum(const Tensor& t);
Tensor sum(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& t);
Tensor mean(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& t);
Tensor max(const Tensor& t, int64_t dim, bool keepdim = false);   ///< values; grad to the arg max
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim = false); ///< Int64

// --- softmax & losses — softmax.cpp, loss.cpp
Tensor softmax(const Tensor& t, int64_t dim);
Tensor log_softmax(const Tensor& t, int64_t dim);
/// Mean cross-entropy of logits [N,C] against Int64 indices [N] or Float32 probabilities [N,C].
Tensor cross_entropy(const Tensor& logits, const Tensor& target);
/// Mean negative log-likelihood of log-probabilities [N,C] and Int64 targets [N].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target);
/// Mean squared error.
Tensor mse_loss(const Tensor& input, const Tensor& target);
/// Int64 labels [N] → Float32 [N, num_classes].
Tensor one_hot(const Tensor& labels, int64_t num_classes);

// --- regularisation — dropout.cpp
/// Inverted dropout: zero with probability p, scale the rest by 1/(1-p); identity if !training.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen = default_generator());

// --- convolution & pooling (oneDNN) — conv.cpp, pool.cpp
/// x [N,C,H,W], w [O,C,kh,kw], b [O] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = {}, int64_t stride = 1,
              int64_t padding = 0);
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1 /* = kernel */);

}  // namespace tape
