#pragma once
/// \file Embedding lookup and the recurrent layers' functional forms (PyTorch
/// semantics): embedding, lstm, gru. The modules nn::Embedding, nn::LSTM and
/// nn::GRU are the public face; these are what they call.
#include <cstdint>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape {

/// Rows of `weight` [num_embeddings, dim] picked by the Int64 `indices` (any
/// shape) → [..., dim]. Repeated indices accumulate their gradients into one
/// row; the row `padding_idx` (when >= 0) gets no gradient. An index outside
/// [0, num_embeddings) is an error naming it and its position.
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);

/// One recurrent layer's parameters, PyTorch's layout: w_ih [G·H, I], w_hh [G·H, H],
/// b_ih and b_hh [G·H] (both undefined: no bias). G = 4 for LSTM (gates i, f, g, o),
/// 3 for GRU (r, z, n).
struct RNNLayerWeights {
  Tensor w_ih, w_hh, b_ih, b_hh;
};

/// The result of lstm(): output [T, N, H] (the last layer's h at every step),
/// h_n and c_n [num_layers, N, H] (every layer's final state).
struct LSTMOutput {
  Tensor output, h_n, c_n;
};

/// A multi-layer LSTM over x [T, N, I] (sequence first). h0 and c0 are
/// [num_layers, N, H] or undefined (zeros). Per step and layer:
/// (i, f, g, o) = (σ, σ, tanh, σ)(W_ih x + b_ih + W_hh h + b_hh), c' = f·c + i·g,
/// h' = o·tanh(c'). `dropout` is applied to every layer's output but the last's
/// when `training`. Float32 or Float64, all operands of one dtype.
LSTMOutput lstm(const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<RNNLayerWeights>& layers,
                double dropout = 0.0, bool training = false);

/// The result of gru(): output [T, N, H] and h_n [num_layers, N, H].
struct GRUOutput {
  Tensor output, h_n;
};

/// A multi-layer GRU over x [T, N, I], PyTorch's (linear-before-reset) cell:
/// r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in + r·(W_hn h + b_hn)),
/// h' = (1 − z)·n + z·h. h0 [num_layers, N, H] or undefined (zeros); dropout as in lstm().
GRUOutput gru(const Tensor& x, const Tensor& h0, const std::vector<RNNLayerWeights>& layers, double dropout = 0.0,
              bool training = false);

}  // namespace tape
