#pragma once
/// \file nn::LSTM and nn::GRU (torch.nn.LSTM / torch.nn.GRU): multi-layer
/// recurrent layers over sequence-first input [T, N, I], PyTorch's gate order,
/// parameter names, shapes and initialisation.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tape/nn/module.hpp"
#include "tape/nn/options.hpp"
#include "tape/ops/rnn.hpp"

namespace tape::nn {

struct LSTMOptions {
  LSTMOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  TAPE_ARG(int64_t, input_size);
  TAPE_ARG(int64_t, hidden_size);
  TAPE_ARG(int64_t, num_layers) = 1;
  TAPE_ARG(bool, bias) = true;
  /// Dropout on each layer's output except the last, in training mode only.
  TAPE_ARG(double, dropout) = 0.0;
};

struct GRUOptions {
  GRUOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  TAPE_ARG(int64_t, input_size);
  TAPE_ARG(int64_t, hidden_size);
  TAPE_ARG(int64_t, num_layers) = 1;
  TAPE_ARG(bool, bias) = true;
  TAPE_ARG(double, dropout) = 0.0;
};

/// What LSTM and GRU share: per layer k the parameters weight_ih_l{k} [G·H, I_k],
/// weight_hh_l{k} [G·H, H], bias_ih_l{k} and bias_hh_l{k} [G·H] (G = 4 or 3),
/// all drawn from U(−1/√H, 1/√H) like PyTorch.
class RNNBase : public Module {
 public:
  /// Re-draws every parameter from U(−1/√H, 1/√H).
  void reset_parameters();
  /// Layer k's parameters (the registered tensors themselves).
  const std::vector<RNNLayerWeights>& layer_weights() const { return layers_; }
  std::string extra_repr() const override;  ///< "10, 20, num_layers=2"

 protected:
  RNNBase(const char* name, int64_t gates, int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
          double dropout);
  /// Checks x [T, N, input_size] (the layer's name and sizes in the message).
  void check_input(const Tensor& x) const;

  const char* name_;
  int64_t input_size_, hidden_size_, num_layers_;
  bool bias_;
  double dropout_;
  std::vector<RNNLayerWeights> layers_;
};

/// LSTM's state: h and c, each [num_layers, N, H].
struct LSTMState {
  Tensor h, c;
};

/// Multi-layer LSTM: (i, f, g, o) = (σ, σ, tanh, σ)(W_ih x + b_ih + W_hh h + b_hh),
/// c' = f·c + i·g, h' = o·tanh(c').
class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1);
  explicit LSTM(const LSTMOptions& options);
  /// x [T, N, input_size] → the last layer's h at every step [T, N, hidden_size] (zero initial state).
  Tensor forward(const Tensor& x) override;
  /// The output and the final state (h_n, c_n); `state` undefined → zeros.
  std::pair<Tensor, LSTMState> forward_with_state(const Tensor& x, const LSTMState& state = {});
  std::string type_name() const override { return "LSTM"; }

  LSTMOptions options;
};

/// Multi-layer GRU (linear-before-reset, as PyTorch): r = σ(W_ir x + b_ir + W_hr h + b_hr),
/// z likewise, n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), h' = (1 − z)·n + z·h.
class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1);
  explicit GRU(const GRUOptions& options);
  /// x [T, N, input_size] → [T, N, hidden_size] (zero initial state).
  Tensor forward(const Tensor& x) override;
  /// The output and h_n [num_layers, N, H]; h0 undefined → zeros.
  std::pair<Tensor, Tensor> forward_with_state(const Tensor& x, const Tensor& h0 = {});
  std::string type_name() const override { return "GRU"; }

  GRUOptions options;
};

}  // namespace tape::nn
