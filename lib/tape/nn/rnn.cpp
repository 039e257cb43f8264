#include "tape/nn/rnn.hpp"

#include <cmath>

#include "tape/nn/init.hpp"
#include "tape/nn/layers.hpp"

namespace tape::nn {

RNNBase::RNNBase(const char* name, int64_t gates, int64_t input_size, int64_t hidden_size, int64_t num_layers,
                 bool bias, double dropout)
    : name_(name),
      input_size_(input_size),
      hidden_size_(hidden_size),
      num_layers_(num_layers),
      bias_(bias),
      dropout_(dropout) {
  TAPE_CHECK(input_size > 0 && hidden_size > 0, name, ": input_size and hidden_size must be > 0, got ", input_size,
             " and ", hidden_size);
  TAPE_CHECK(num_layers > 0, name, ": num_layers must be > 0, got ", num_layers);
  TAPE_CHECK(dropout >= 0.0 && dropout <= 1.0, name, ": dropout must be in [0, 1], got ", dropout);
  const int64_t G = gates * hidden_size;
  for (int64_t k = 0; k < num_layers; ++k) {
    const std::string s = "_l" + std::to_string(k);
    RNNLayerWeights w;
    w.w_ih = register_parameter("weight_ih" + s, Tensor::empty({G, k == 0 ? input_size : hidden_size}));
    w.w_hh = register_parameter("weight_hh" + s, Tensor::empty({G, hidden_size}));
    if (bias) {
      w.b_ih = register_parameter("bias_ih" + s, Tensor::empty({G}));
      w.b_hh = register_parameter("bias_hh" + s, Tensor::empty({G}));
    }
    layers_.push_back(w);
  }
  reset_parameters();
}

void RNNBase::reset_parameters() {
  const double b = 1.0 / std::sqrt(double(hidden_size_));
  for (RNNLayerWeights& w : layers_)
    for (Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})
      if (t->defined()) init::uniform_(*t, -b, b);
}

std::string RNNBase::extra_repr() const {
  std::string s = str_cat(input_size_, ", ", hidden_size_);
  if (num_layers_ != 1) s += str_cat(", num_layers=", num_layers_);
  if (!bias_) s += ", bias=false";
  if (dropout_ != 0.0) s += ", dropout=" + format_float(dropout_);
  return s;
}

void RNNBase::check_input(const Tensor& x) const {
  TAPE_CHECK(x.defined(), name_, "(", extra_repr(), "): input is an undefined tensor");
  TAPE_CHECK(x.dim() == 3 && x.size(2) == input_size_, name_, "(", extra_repr(), "): expected input [T, N, ",
             input_size_, "] (sequence first), got ", x.shape());
}

// --- LSTM -------------------------------------------------------------------------

LSTM::LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers)
    : LSTM(LSTMOptions(input_size, hidden_size).num_layers(num_layers)) {}

LSTM::LSTM(const LSTMOptions& o)
    : RNNBase("LSTM", 4, o.input_size(), o.hidden_size(), o.num_layers(), o.bias(), o.dropout()), options(o) {}

Tensor LSTM::forward(const Tensor& x) { return forward_with_state(x).first; }

std::pair<Tensor, LSTMState> LSTM::forward_with_state(const Tensor& x, const LSTMState& state) {
  check_input(x);
  TAPE_CHECK(state.h.defined() == state.c.defined(), "LSTM(", extra_repr(),
             "): the initial state needs both h and c (or neither), got h ",
             state.h.defined() ? state.h.shape() : Shape{}, " and c ", state.c.defined() ? state.c.shape() : Shape{});
  LSTMOutput r = lstm(x, state.h, state.c, layers_, dropout_, is_training());
  return {r.output, LSTMState{r.h_n, r.c_n}};
}

// --- GRU --------------------------------------------------------------------------

GRU::GRU(int64_t input_size, int64_t hidden_size, int64_t num_layers)
    : GRU(GRUOptions(input_size, hidden_size).num_layers(num_layers)) {}

GRU::GRU(const GRUOptions& o)
    : RNNBase("GRU", 3, o.input_size(), o.hidden_size(), o.num_layers(), o.bias(), o.dropout()), options(o) {}

Tensor GRU::forward(const Tensor& x) { return forward_with_state(x).first; }

std::pair<Tensor, Tensor> GRU::forward_with_state(const Tensor& x, const Tensor& h0) {
  check_input(x);
  GRUOutput r = gru(x, h0, layers_, dropout_, is_training());
  return {r.output, r.h_n};
}

}  // namespace tape::nn
