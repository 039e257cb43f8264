// Embedding and the recurrent layers (PyTorch semantics).
//
// embedding is index_select along the rows (its backward — index_add of g into
// zeros, repeats accumulating — is gather.cpp's), with the padding row cut out
// of the gradient by a `where` over the detached output.
//
// lstm / gru are recorded tape ops, one layer at a time:
//   xw = linear(x [T·N, I], W_ih, b)        one GEMM for the whole sequence
//   steps = unbind(xw [T, N, G·H])          T views, one node (UnbindBackward)
//   per step: hg = linear(h, W_hh[, b_hh])  a [N, H]×[H, G·H] GEMM
//             (h', c') = lstm_cell(x_t, hg, c) / h' = gru_cell(x_t, hg, h)
//   output = stack(h's)
// so a step records two nodes (Float32 LSTM and GRU layers run oneDNN's RNN
// primitives instead: see the Note above use_onednn_rnn). The cells fuse the
// gate arithmetic (sum, the activations, the state update) into one kernel and
// one node; under create_graph their backward is written with public ops, so
// gradients of gradients work, and Float64 gradcheck covers every weight.
//
// Note: the steps are views of xw taken by one multi-output node, not narrow():
// narrow's backward scatters each step's gradient into zeros of xw's full shape,
// which is O(T²) over a sequence; UnbindBackward writes each step's gradient
// into its slot of one [T, N, G·H] buffer.
#include "tape/ops/rnn.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "tape/backend/dnnl.hpp"
#include "tape/backend/eltwise.hpp"
#include "tape/ops/op_util.hpp"

namespace tape {
using namespace detail;
namespace dn = backend;

namespace {

// --- activations over a flat buffer: oneDNN's JIT eltwise for Float32 (libm per
// element would cost more than the step's GEMM), std:: for Float64
template <class T>
T sigma(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
template <class T>
void sigmoid_inplace(T* p, int64_t n) {
  if (n == 0) return;
  if constexpr (std::is_same_v<T, float>) backend::eltwise_forward(backend::Eltwise::Logistic, 0.f, p, p, n);
  else
    for (int64_t i = 0; i < n; ++i) p[i] = sigma(p[i]);
}
template <class T>
void tanh_inplace(T* p, int64_t n) {
  if (n == 0) return;
  if constexpr (std::is_same_v<T, float>) backend::eltwise_forward(backend::Eltwise::Tanh, 0.f, p, p, n);
  else
    for (int64_t i = 0; i < n; ++i) p[i] = std::tanh(p[i]);
}

/// Undefined gradients (a step or an output no gradient reached) read as zeros.
Tensor or_zeros(const Tensor& g, const Shape& shape, Dtype dtype) { return g.defined() ? g : zeros(shape, dtype); }

// --- unbind: T views of x [T, ...] along dim 0 ---------------------------------

// Forward: y_t = x[t] for every t (views, one node)   Backward: dx = stack(g_t) (zeros where none arrived)
struct UnbindBackward final : Node {
  Shape in_shape;
  Dtype dtype = Dtype::Float32;
  const char* name() const override { return "UnbindBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    std::vector<Tensor> gs{g};
    return apply_all(gs);
  }
  std::vector<Tensor> apply_all(std::vector<Tensor>& gs) override {
    const Shape step(in_shape.begin() + 1, in_shape.end());
    bool graph = false;
    for (const Tensor& g : gs) graph = graph || (g.defined() && any_requires_grad({&g}));
    if (graph) {  // create_graph: recorded
      std::vector<Tensor> parts;
      for (const Tensor& g : gs) parts.push_back(or_zeros(g, step, dtype));
      return {stack(parts, 0)};
    }
    Tensor dx = Tensor::empty(in_shape, dtype);
    const int64_t n = shape_numel(step);
    visit_float(dtype, name(), [&]<class T>() {
      T* pd = dx.data<T>();
      for (size_t t = 0; t < gs.size(); ++t) {
        if (!gs[t].defined()) {
          std::fill(pd + int64_t(t) * n, pd + int64_t(t + 1) * n, T(0));
          continue;
        }
        const Tensor g = contig(gs[t]);
        std::memcpy(pd + int64_t(t) * n, g.data<T>(), size_t(n) * sizeof(T));
      }
    });
    return {dx};
  }
};

/// x [T, ...] as T views x[0], x[1], ... recorded by one UnbindBackward.
std::vector<Tensor> unbind_steps(const Tensor& x_in) {
  const Tensor x = x_in.is_contiguous() ? x_in : x_in.contiguous();  // recorded when it copies
  const Shape step(x.shape().begin() + 1, x.shape().end());
  const Shape step_strides(x.strides().begin() + 1, x.strides().end());
  const int64_t T = x.size(0), n = shape_numel(step);
  std::vector<Tensor> out;
  out.reserve(size_t(T));
  for (int64_t t = 0; t < T; ++t) out.push_back(make_view(x, step, step_strides, x.impl()->offset + t * n));
  if (T > 0 && any_requires_grad({&x})) {
    auto node = std::make_shared<UnbindBackward>();
    node->in_shape = x.shape();
    node->dtype = x.dtype();
    record(out[0], node, {&x});
    for (int64_t t = 1; t < T; ++t) out[size_t(t)].set_grad_fn(node, node->add_output(out[size_t(t)]));
  }
  return out;
}

// --- the LSTM cell's gate arithmetic ---------------------------------------------

// Forward: a = xg + hg = (a_i, a_f, a_g, a_o); i, f, o = σ(a_i, a_f, a_o), g = tanh(a_g);
//   c' = f·c + i·g, h' = o·tanh(c')
// Backward: dc' = g_c' + g_h'·o·(1 − tanh²c'); dxg = dhg = (dc'·g·i(1 − i), dc'·c·f(1 − f),
//   dc'·i·(1 − g²), g_h'·tanh c'·o(1 − o)); dc = dc'·f
struct LstmCellBackward final : SavingNode<5> {  // saved: xg, hg, c, act = (i, f, g, o), tanh(c')
  int64_t H = 0;
  const char* name() const override { return "LstmCellBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    std::vector<Tensor> gs{g, Tensor()};
    return apply_all(gs);
  }
  std::vector<Tensor> apply_all(std::vector<Tensor>& gs) override {
    const Tensor gh = gs[0], gc = gs.size() > 1 ? gs[1] : Tensor();
    const Tensor xg = saved(0), hg = saved(1), c = saved(2);
    if (any_requires_grad({&gh, &gc, &xg, &hg, &c})) return composite(gh, gc, xg, hg, c);
    const Tensor act = saved(3), tc = saved(4);
    const int64_t N = c.size(0);
    Tensor da = Tensor::empty({N, 4 * H}, c.dtype()), dc = Tensor::empty({N, H}, c.dtype());
    const Tensor ghc = gh.defined() ? contig(gh) : Tensor(), gcc = gc.defined() ? contig(gc) : Tensor();
    const Tensor cc = contig(c);
    visit_float(c.dtype(), name(), [&]<class T>() {
      const T* pa = act.data<T>();
      const T* pt = tc.data<T>();
      const T* pc = cc.data<T>();
      const T* pgh = ghc.defined() ? ghc.data<T>() : nullptr;
      const T* pgc = gcc.defined() ? gcc.data<T>() : nullptr;
      T* pda = da.data<T>();
      T* pdc = dc.data<T>();
      const int64_t H_ = H;
      parallel_for(
          N,
          [&](int64_t n) {
            const T* a = pa + n * 4 * H_;
            T* d = pda + n * 4 * H_;
            for (int64_t j = 0; j < H_; ++j) {
              const int64_t k = n * H_ + j;
              const T i = a[j], f = a[H_ + j], g = a[2 * H_ + j], o = a[3 * H_ + j], t = pt[k];
              const T dh = pgh ? pgh[k] : T(0);
              const T dc1 = (pgc ? pgc[k] : T(0)) + dh * o * (T(1) - t * t);
              d[j] = dc1 * g * i * (T(1) - i);
              d[H_ + j] = dc1 * pc[k] * f * (T(1) - f);
              d[2 * H_ + j] = dc1 * i * (T(1) - g * g);
              d[3 * H_ + j] = dh * t * o * (T(1) - o);
              pdc[k] = dc1 * f;
            }
          },
          4 * H_);
    });
    return {da, da, dc};
  }

 private:
  /// The same formula with public ops (create_graph), the activations recomputed from the inputs.
  std::vector<Tensor> composite(const Tensor& gh_in, const Tensor& gc_in, const Tensor& xg, const Tensor& hg,
                                const Tensor& c) const {
    const Tensor a = add(xg, hg);
    const Tensor i = sigmoid(narrow(a, 1, 0, H)), f = sigmoid(narrow(a, 1, H, H)), g = tanh(narrow(a, 1, 2 * H, H)),
                 o = sigmoid(narrow(a, 1, 3 * H, H));
    const Tensor t = tanh(f * c + i * g);
    const Tensor gh = or_zeros(gh_in, c.shape(), c.dtype()), gc = or_zeros(gc_in, c.shape(), c.dtype());
    const Tensor dc1 = gc + gh * o * (1.0 - t * t);
    const Tensor da = cat({dc1 * g * i * (1.0 - i), dc1 * c * f * (1.0 - f), dc1 * i * (1.0 - g * g),
                           gh * t * o * (1.0 - o)},
                          1);
    return {da, da, dc1 * f};
  }
};

/// (h', c') of one LSTM step from the input projection xg [N, 4H], the hidden
/// projection hg [N, 4H] and the cell state c [N, H] (one node, two outputs).
std::pair<Tensor, Tensor> lstm_cell(const Tensor& xg_in, const Tensor& hg_in, const Tensor& c_in) {
  const Tensor xg = contig(xg_in), hg = contig(hg_in), c = contig(c_in);
  const int64_t N = c.size(0), H = c.size(1);
  const Dtype dt = c.dtype();
  Tensor act = Tensor::empty({N, 4 * H}, dt), tc = Tensor::empty({N, H}, dt), h1 = Tensor::empty({N, H}, dt),
         c1 = Tensor::empty({N, H}, dt);
  visit_float(dt, "lstm", [&]<class T>() {
    const T* px = xg.data<T>();
    const T* ph = hg.data<T>();
    const T* pc = c.data<T>();
    T* pa = act.data<T>();
    T* pt = tc.data<T>();
    T* ph1 = h1.data<T>();
    T* pc1 = c1.data<T>();
    const int64_t n4 = N * 4 * H;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t q = 0; q < 4; ++q) {
        const int64_t base = n * 4 * H + q * H;
        if constexpr (std::is_same_v<T, float>) {  // tanh(a) = 2σ(2a) − 1: one logistic pass over all four gates
          const float s = q == 2 ? 2.f : 1.f;
          for (int64_t j = 0; j < H; ++j) pa[base + j] = (px[base + j] + ph[base + j]) * s;
        } else {
          for (int64_t j = 0; j < H; ++j) {
            const T a = px[base + j] + ph[base + j];
            pa[base + j] = q == 2 ? std::tanh(a) : sigma(a);
          }
        }
      }
    if constexpr (std::is_same_v<T, float>) sigmoid_inplace(pa, n4);
    for (int64_t n = 0; n < N; ++n) {
      T* a = pa + n * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        if constexpr (std::is_same_v<T, float>) a[2 * H + j] = 2.f * a[2 * H + j] - 1.f;
        const int64_t k = n * H + j;
        pc1[k] = a[H + j] * pc[k] + a[j] * a[2 * H + j];
      }
    }
    std::memcpy(pt, pc1, size_t(N * H) * sizeof(T));
    tanh_inplace(pt, N * H);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < H; ++j) ph1[n * H + j] = pa[n * 4 * H + 3 * H + j] * pt[n * H + j];
  });
  if (any_requires_grad({&xg_in, &hg_in, &c_in})) {
    auto node = std::make_shared<LstmCellBackward>();
    node->H = H;
    node->save(0, xg_in);
    node->save(1, hg_in);
    node->save(2, c_in);
    node->save(3, act);
    node->save(4, tc);
    record(h1, node, {&xg_in, &hg_in, &c_in});
    c1.set_grad_fn(node, node->add_output(c1));
  }
  return {h1, c1};
}

// --- the GRU cell's gate arithmetic ----------------------------------------------

// Forward: xg = W_ih x + b_ih = (x_r, x_z, x_n), hg = W_hh h + b_hh = (h_r, h_z, h_n);
//   r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r·h_n), h' = (1 − z)·n + z·h
// Backward: da_n = g·(1 − z)·(1 − n²), da_r = da_n·h_n·r(1 − r), da_z = g·(h − n)·z(1 − z);
//   dxg = (da_r, da_z, da_n), dhg = (da_r, da_z, da_n·r), dh = g·z
struct GruCellBackward final : SavingNode<5> {  // saved: xg, hg, h, (r, z), n
  int64_t H = 0;
  const char* name() const override { return "GruCellBackward"; }
  std::vector<Tensor> apply(const Tensor& g_in) override {
    const Tensor xg = saved(0), hg = saved(1), h = saved(2);
    if (any_requires_grad({&g_in, &xg, &hg, &h})) {  // create_graph: recorded, activations recomputed
      const Tensor a = narrow(xg, 1, 0, 2 * H) + narrow(hg, 1, 0, 2 * H);
      const Tensor r = sigmoid(narrow(a, 1, 0, H)), z = sigmoid(narrow(a, 1, H, H)), hn = narrow(hg, 1, 2 * H, H);
      const Tensor n = tanh(narrow(xg, 1, 2 * H, H) + r * hn);
      const Tensor dan = g_in * (1.0 - z) * (1.0 - n * n), dar = dan * hn * r * (1.0 - r),
                   daz = g_in * (h - n) * z * (1.0 - z);
      return {cat({dar, daz, dan}, 1), cat({dar, daz, dan * r}, 1), g_in * z};
    }
    const Tensor rz = saved(3), nn = saved(4);
    const int64_t N = h.size(0);
    const Dtype dt = h.dtype();
    Tensor dxg = Tensor::empty({N, 3 * H}, dt), dhg = Tensor::empty({N, 3 * H}, dt), dh = Tensor::empty({N, H}, dt);
    const Tensor g = contig(g_in), hgc = contig(hg), hc = contig(h);
    visit_float(dt, name(), [&]<class T>() {
      const T* pg = g.data<T>();
      const T* prz = rz.data<T>();
      const T* pn = nn.data<T>();
      const T* phg = hgc.data<T>();
      const T* ph = hc.data<T>();
      T* px = dxg.data<T>();
      T* pq = dhg.data<T>();
      T* pd = dh.data<T>();
      const int64_t H_ = H;
      parallel_for(
          N,
          [&](int64_t b) {
            for (int64_t j = 0; j < H_; ++j) {
              const int64_t k = b * H_ + j;
              const T r = prz[b * 2 * H_ + j], z = prz[b * 2 * H_ + H_ + j], n = pn[k], gv = pg[k];
              const T dan = gv * (T(1) - z) * (T(1) - n * n);
              const T dar = dan * phg[b * 3 * H_ + 2 * H_ + j] * r * (T(1) - r);
              const T daz = gv * (ph[k] - n) * z * (T(1) - z);
              T* x = px + b * 3 * H_;
              T* q = pq + b * 3 * H_;
              x[j] = q[j] = dar;
              x[H_ + j] = q[H_ + j] = daz;
              x[2 * H_ + j] = dan;
              q[2 * H_ + j] = dan * r;
              pd[k] = gv * z;
            }
          },
          3 * H_);
    });
    return {dxg, dhg, dh};
  }
};

/// h' of one GRU step from xg [N, 3H] (with b_ih), hg [N, 3H] (with b_hh) and h [N, H].
Tensor gru_cell(const Tensor& xg_in, const Tensor& hg_in, const Tensor& h_in) {
  const Tensor xg = contig(xg_in), hg = contig(hg_in), h = contig(h_in);
  const int64_t N = h.size(0), H = h.size(1);
  const Dtype dt = h.dtype();
  Tensor rz = Tensor::empty({N, 2 * H}, dt), nn = Tensor::empty({N, H}, dt), h1 = Tensor::empty({N, H}, dt);
  visit_float(dt, "gru", [&]<class T>() {
    const T* px = xg.data<T>();
    const T* pq = hg.data<T>();
    const T* ph = h.data<T>();
    T* prz = rz.data<T>();
    T* pn = nn.data<T>();
    T* ph1 = h1.data<T>();
    for (int64_t b = 0; b < N; ++b)
      for (int64_t j = 0; j < 2 * H; ++j) prz[b * 2 * H + j] = px[b * 3 * H + j] + pq[b * 3 * H + j];
    sigmoid_inplace(prz, N * 2 * H);
    for (int64_t b = 0; b < N; ++b)
      for (int64_t j = 0; j < H; ++j)
        pn[b * H + j] = px[b * 3 * H + 2 * H + j] + prz[b * 2 * H + j] * pq[b * 3 * H + 2 * H + j];
    tanh_inplace(pn, N * H);
    for (int64_t b = 0; b < N; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T z = prz[b * 2 * H + H + j];
        ph1[k] = (T(1) - z) * pn[k] + z * ph[k];
      }
  });
  if (any_requires_grad({&xg_in, &hg_in, &h_in})) {
    auto node = std::make_shared<GruCellBackward>();
    node->H = H;
    node->save(0, xg_in);
    node->save(1, hg_in);
    node->save(2, h_in);
    node->save(3, rz);
    node->save(4, nn);
    record(h1, node, {&xg_in, &hg_in, &h_in});
  }
  return h1;
}

// --- the layer loops ---------------------------------------------------------------

/// Checks x, the layers' weights and an initial state of `state_name`; returns H.
int64_t check_rnn(const char* op, int64_t gates, const Tensor& x, const std::vector<RNNLayerWeights>& layers,
                  std::initializer_list<std::pair<const char*, const Tensor*>> states) {
  TAPE_CHECK(x.defined(), op, ": input is an undefined tensor");
  TAPE_CHECK(x.dtype() == Dtype::Float32 || x.dtype() == Dtype::Float64, op,
             ": input must be Float32 or Float64, got ", dtype_name(x.dtype()), " tensor of shape ", x.shape());
  TAPE_CHECK(x.dim() == 3, op, ": expected input [T, N, I] (3-D, sequence first), got shape ", x.shape());
  TAPE_CHECK(x.size(0) > 0, op, ": the sequence is empty (T = 0), got input shape ", x.shape());
  TAPE_CHECK(!layers.empty(), op, ": no layers given");
  TAPE_CHECK(layers[0].w_hh.defined() && layers[0].w_hh.dim() == 2, op, ": weight_hh_l0 must be [", gates,
             "·H, H]");
  const int64_t H = layers[0].w_hh.size(1), L = int64_t(layers.size()), N = x.size(1);
  for (int64_t l = 0; l < L; ++l) {
    const RNNLayerWeights& w = layers[size_t(l)];
    const int64_t in = l == 0 ? x.size(2) : H;
    TAPE_CHECK(w.w_ih.defined() && w.w_ih.dim() == 2 && w.w_ih.size(0) == gates * H && w.w_ih.size(1) == in, op,
               ": weight_ih_l", l, " must be [", gates * H, ", ", in, "] for input [T, N, ", x.size(2),
               "] and hidden size ", H, ", got ", w.w_ih.defined() ? w.w_ih.shape() : Shape{});
    TAPE_CHECK(w.w_hh.defined() && w.w_hh.dim() == 2 && w.w_hh.size(0) == gates * H && w.w_hh.size(1) == H, op,
               ": weight_hh_l", l, " must be [", gates * H, ", ", H, "], got ",
               w.w_hh.defined() ? w.w_hh.shape() : Shape{});
    TAPE_CHECK(w.b_ih.defined() == w.b_hh.defined(), op, ": layer ", l, " has only one of bias_ih and bias_hh");
    for (const Tensor* b : {&w.b_ih, &w.b_hh})
      TAPE_CHECK(!b->defined() || (b->dim() == 1 && b->size(0) == gates * H), op, ": the biases of layer ", l,
                 " must be [", gates * H, "], got ", b->defined() ? b->shape() : Shape{});
    for (const Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})
      TAPE_CHECK(!t->defined() || t->dtype() == x.dtype(), op, ": layer ", l, " has a ", dtype_name(t->dtype()),
                 " weight but the input is ", dtype_name(x.dtype()), " (convert one with .to(dtype))");
  }
  for (const auto& [name, s] : states) {
    if (!s->defined()) continue;
    TAPE_CHECK(s->shape() == Shape({L, N, H}), op, ": expected ", name, " of shape [", L, ", ", N, ", ", H,
               "] (num_layers, batch, hidden_size) for input ", x.shape(), ", got ", s->shape());
    TAPE_CHECK(s->dtype() == x.dtype(), op, ": ", name, " is ", dtype_name(s->dtype()), " but the input is ",
               dtype_name(x.dtype()));
  }
  return H;
}

/// The next layer's input: dropout between layers in training mode.
Tensor between_layers(const Tensor& y, size_t l, size_t layers, double p, bool training) {
  if (l + 1 == layers || p <= 0.0 || !training) return y;
  return tape::dropout(y, float(p), true);
}

/// One layer's output [T, N, H] and final state (c undefined for GRU).
struct LayerOut {
  Tensor y, h, c;
};

/// One LSTM layer as recorded steps (path of Float64, and of create_graph);
/// h0 / c0 [N, H] or undefined (zeros).
LayerOut lstm_layer_steps(const Tensor& in, const Tensor& h0, const Tensor& c0, const RNNLayerWeights& w, int64_t H) {
  const int64_t T = in.size(0), N = in.size(1);
  const Tensor bias = w.b_ih.defined() ? add(w.b_ih, w.b_hh) : Tensor();
  const Tensor xw = linear(reshape(in, {T * N, in.size(2)}), w.w_ih, bias);
  const std::vector<Tensor> steps = unbind_steps(reshape(xw, {T, N, 4 * H}));
  Tensor h = h0.defined() ? h0 : zeros({N, H}, in.dtype());
  Tensor c = c0.defined() ? c0 : zeros({N, H}, in.dtype());
  std::vector<Tensor> hs;
  hs.reserve(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    std::tie(h, c) = lstm_cell(steps[size_t(t)], linear(h, w.w_hh), c);
    hs.push_back(h);
  }
  return {stack(hs, 0), h, c};
}

/// One GRU layer as recorded steps (path of Float64, and of create_graph);
/// h0 [N, H] or undefined (zeros).
LayerOut gru_layer_steps(const Tensor& in, const Tensor& h0, const RNNLayerWeights& w, int64_t H) {
  const int64_t T = in.size(0), N = in.size(1);
  const Tensor xw = linear(reshape(in, {T * N, in.size(2)}), w.w_ih, w.b_ih);
  const std::vector<Tensor> steps = unbind_steps(reshape(xw, {T, N, 3 * H}));
  Tensor h = h0.defined() ? h0 : zeros({N, H}, in.dtype());
  std::vector<Tensor> hs;
  hs.reserve(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    h = gru_cell(steps[size_t(t)], linear(h, w.w_hh, w.b_hh), h);
    hs.push_back(h);
  }
  return {stack(hs, 0), h, Tensor()};
}

// --- Float32 LSTM and GRU layers on oneDNN ------------------------------------------
//
// Note: a Float32 LSTM layer runs oneDNN's lstm_forward / lstm_backward, a
// Float32 GRU layer lbr_gru_forward / lbr_gru_backward (linear-before-reset GRU:
// PyTorch's formulation): one primitive call for the whole sequence (the input
// GEMMs batched over steps, the gate arithmetic fused, the weight gradients
// summed over steps in one GEMM). LSTM: 1.2–1.4× faster than the recorded
// steps at T = 100, N = 32, I = H = 256, GRU ≈ 1.2× (docs/layers-recurrent.md).
//   LSTM: PyTorch's weight [4H, I] is oneDNN's `ldgoi` {1, 1, I, 4, H} as it
// lies in memory, in the same gate order (i, f, g, o); oneDNN takes one bias per
// gate: b_ih + b_hh.
//   GRU: oneDNN's gates are (u, r, o) = PyTorch's (z, r, n), so the first two
// [H, K] row blocks of each weight are swapped (gru_gate_order) before the
// reorder into the primitive's layout, and the weight gradients swapped back.
// Its bias has four rows (u, r, o, u') = (b_iz + b_hz, b_ir + b_hr, b_in, b_hn):
// the candidate's hidden-side bias b_hn sits inside r·(W_hn h + b_hn). Back:
// b_ih and b_hh both get the u and r rows of db, b_in gets db_o, b_hn db_u'.
//   The layer's node (LstmLayerBackward / GruLayerBackward, both RnnLayerNode)
// runs the backward primitive; under create_graph it recomputes the layer with
// the recorded steps from its saved inputs and differentiates those
// (autograd::grad), so double backward still works. TAPE_RNN_ONEDNN=0 turns
// both fast paths off (for comparisons).
bool use_onednn_rnn() {
  static const bool on = [] {
    const char* e = std::getenv("TAPE_RNN_ONEDNN");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

/// The primitives of one cell kind and layer shape: F, B = lstm_forward,
/// lstm_backward (gates i, f, g, o; with a cell state c) or lbr_gru_forward,
/// lbr_gru_backward (gates u, r, o).
template <class F, class B>
struct RnnPrimitives {
  using Fwd = F;
  using Bwd = B;
  static constexpr bool kLstm = std::is_same_v<F, dnnl::lstm_forward>;
  static constexpr int64_t kGates = kLstm ? 4 : 3;
  typename F::primitive_desc fwd_pd;
  F fwd;
  typename B::primitive_desc bwd_pd;
  B bwd;
  dnnl::reorder w_fwd[2], w_bwd[2], dw_back[2];  // user → forward, user → backward, diff → user; [layer, iter]
  dnnl::memory::desc wl_user, wi_user;            // [G·H, I] and [G·H, H] in oneDNN's gate order: ldgoi
};
using LstmPrimitives = RnnPrimitives<dnnl::lstm_forward, dnnl::lstm_backward>;
using GruPrimitives = RnnPrimitives<dnnl::lbr_gru_forward, dnnl::lbr_gru_backward>;

/// P's primitives for one layer shape (cached by cell kind, T, N, I, H).
template <class P>
std::shared_ptr<const P> rnn_primitives(int64_t T, int64_t N, int64_t I, int64_t H) {
  const int64_t key = P::kLstm ? 1001 : 1002;  // outside backend::OpId's range
  return dn::cached<P>({key, T, N, I, H}, [&] {
    using tag = dnnl::memory::format_tag;
    const auto f32 = dnnl::memory::data_type::f32;
    auto md = [&](dnnl::memory::dims d, tag t) { return dnnl::memory::desc(d, f32, t); };
    // memory descriptors: sequences tnc, states ldnc, weights any (user: ldgoi), bias ldgo
    // (four rows for both: LSTM's four gates; lbr_gru's three and the candidate's hidden-side bias)
    const int64_t G = P::kGates;
    const auto src = md({T, N, I}, tag::tnc), dst = md({T, N, H}, tag::tnc), state = md({1, 1, N, H}, tag::ldnc);
    const auto wl_any = md({1, 1, I, G, H}, tag::any), wi_any = md({1, 1, H, G, H}, tag::any);
    const auto wl_user = md({1, 1, I, G, H}, tag::ldgoi), wi_user = md({1, 1, H, G, H}, tag::ldgoi);
    const auto bias = md({1, 1, 4, H}, tag::ldgo);
    const auto dir = dnnl::rnn_direction::unidirectional_left2right;
    const auto fwd = dnnl::prop_kind::forward_training, bwd = dnnl::prop_kind::backward;
    // operation descriptors (LSTM's take the cell state c as well) → primitive descriptors → primitives
    const auto [fd, bd] = [&] {
      if constexpr (P::kLstm)
        return std::pair(dnnl::lstm_forward::desc(fwd, dir, src, state, state, wl_any, wi_any, bias, dst, state, state),
                         dnnl::lstm_backward::desc(bwd, dir, src, state, state, wl_any, wi_any, bias, dst, state,
                                                   state, src, state, state, wl_any, wi_any, bias, dst, state, state));
      else
        return std::pair(dnnl::lbr_gru_forward::desc(fwd, dir, src, state, wl_any, wi_any, bias, dst, state),
                         dnnl::lbr_gru_backward::desc(bwd, dir, src, state, wl_any, wi_any, bias, dst, state, src,
                                                      state, wl_any, wi_any, bias, dst, state));
    }();
    const typename P::Fwd::primitive_desc fpd(fd, dn::attr(), dn::engine());
    const typename P::Bwd::primitive_desc bpd(bd, dn::attr(), dn::engine(), fpd);
    auto reorder = [&](const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
      return dnnl::reorder(dnnl::reorder::primitive_desc(dn::engine(), from, dn::engine(), to, dn::attr()));
    };
    return P{fpd,
             typename P::Fwd(fpd),
             bpd,
             typename P::Bwd(bpd),
             {reorder(wl_user, fpd.weights_layer_desc()), reorder(wi_user, fpd.weights_iter_desc())},
             {reorder(wl_user, bpd.weights_layer_desc()), reorder(wi_user, bpd.weights_iter_desc())},
             {reorder(bpd.diff_weights_layer_desc(), wl_user), reorder(bpd.diff_weights_iter_desc(), wi_user)},
             wl_user,
             wi_user};
  });
}

/// Runs a reorder primitive from one buffer into another.
void run_reorder(const dnnl::reorder& r, const dnnl::memory& from, const dnnl::memory& to) {
  dn::execute(r, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

/// A layer's weights as the primitives take them: w_ih [G·H, I], w_hh [G·H, H]
/// in oneDNN's gate order (the user layout ldgoi), bias [4H] (ldgo); contiguous Float32.
struct RnnWeights {
  Tensor w_ih, w_hh, bias;
};

/// A sequence and its states, contiguous Float32: a layer's input (x [T, N, I], h0, c0 [N, H]),
/// its output (y [T, N, H], h_n, c_n) or their gradients (c: LSTM only, undefined for GRU).
struct RnnSeq {
  Tensor seq, h, c;
};

/// The forward primitive over one layer: writes `out` (allocated), returns the workspace.
template <class P>
Tensor rnn_forward(const P& p, const RnnSeq& in, const RnnWeights& w, const RnnSeq& out) {
  const auto& pd = p.fwd_pd;
  Tensor wl = dn::buffer_for(pd.weights_layer_desc()), wi = dn::buffer_for(pd.weights_iter_desc());
  Tensor ws = dn::buffer_for(pd.workspace_desc());
  backend::translate_errors(P::kLstm ? "lstm" : "gru", {&in.seq.shape()}, [&] {
    run_reorder(p.w_fwd[0], dn::mem(p.wl_user, w.w_ih), dn::mem(pd.weights_layer_desc(), wl));
    run_reorder(p.w_fwd[1], dn::mem(p.wi_user, w.w_hh), dn::mem(pd.weights_iter_desc(), wi));
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC_LAYER, dn::mem(pd.src_layer_desc(), in.seq)},
                                               {DNNL_ARG_SRC_ITER, dn::mem(pd.src_iter_desc(), in.h)},
                                               {DNNL_ARG_WEIGHTS_LAYER, dn::mem(pd.weights_layer_desc(), wl)},
                                               {DNNL_ARG_WEIGHTS_ITER, dn::mem(pd.weights_iter_desc(), wi)},
                                               {DNNL_ARG_BIAS, dn::mem(pd.bias_desc(), w.bias)},
                                               {DNNL_ARG_DST_LAYER, dn::mem(pd.dst_layer_desc(), out.seq)},
                                               {DNNL_ARG_DST_ITER, dn::mem(pd.dst_iter_desc(), out.h)},
                                               {DNNL_ARG_WORKSPACE, dn::mem(pd.workspace_desc(), ws)}};
    if constexpr (P::kLstm) {
      args.emplace(DNNL_ARG_SRC_ITER_C, dn::mem(pd.src_iter_c_desc(), in.c));
      args.emplace(DNNL_ARG_DST_ITER_C, dn::mem(pd.dst_iter_c_desc(), out.c));
    }
    dn::execute(p.fwd, std::move(args));
  });
  return ws;
}

/// The backward primitive over one layer: from the forward's input `in`, output `out`,
/// workspace and the gradient `g` of the output, returns the gradient of the input and
/// of the weights (RnnWeights' layout and gate order).
template <class P>
std::pair<RnnSeq, RnnWeights> rnn_backward(const P& p, const RnnSeq& in, const RnnWeights& w, const RnnSeq& out,
                                           const Tensor& workspace, const RnnSeq& g) {
  const int64_t T = in.seq.size(0), N = in.seq.size(1), I = in.seq.size(2), H = in.h.size(1), G = P::kGates;
  const auto& pd = p.bwd_pd;
  RnnSeq d{Tensor::empty({T, N, I}), Tensor::empty({N, H}), P::kLstm ? Tensor::empty({N, H}) : Tensor()};
  RnnWeights dw{Tensor::empty({G * H, I}), Tensor::empty({G * H, H}), zeros({4 * H})};  // diff_bias accumulates
  Tensor wl = dn::buffer_for(pd.weights_layer_desc()), wi = dn::buffer_for(pd.weights_iter_desc());
  Tensor dwl = dn::buffer_for(pd.diff_weights_layer_desc()).zero_(),  // diff weights accumulate too
      dwi = dn::buffer_for(pd.diff_weights_iter_desc()).zero_();
  backend::translate_errors(P::kLstm ? "lstm" : "gru", {&in.seq.shape()}, [&] {
    run_reorder(p.w_bwd[0], dn::mem(p.wl_user, w.w_ih), dn::mem(pd.weights_layer_desc(), wl));
    run_reorder(p.w_bwd[1], dn::mem(p.wi_user, w.w_hh), dn::mem(pd.weights_iter_desc(), wi));
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC_LAYER, dn::mem(pd.src_layer_desc(), in.seq)},
        {DNNL_ARG_SRC_ITER, dn::mem(pd.src_iter_desc(), in.h)},
        {DNNL_ARG_WEIGHTS_LAYER, dn::mem(pd.weights_layer_desc(), wl)},
        {DNNL_ARG_WEIGHTS_ITER, dn::mem(pd.weights_iter_desc(), wi)},
        {DNNL_ARG_BIAS, dn::mem(pd.bias_desc(), w.bias)},
        {DNNL_ARG_DST_LAYER, dn::mem(pd.dst_layer_desc(), out.seq)},
        {DNNL_ARG_DST_ITER, dn::mem(pd.dst_iter_desc(), out.h)},
        {DNNL_ARG_WORKSPACE, dn::mem(pd.workspace_desc(), workspace)},
        {DNNL_ARG_DIFF_SRC_LAYER, dn::mem(pd.diff_src_layer_desc(), d.seq)},
        {DNNL_ARG_DIFF_SRC_ITER, dn::mem(pd.diff_src_iter_desc(), d.h)},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, dn::mem(pd.diff_weights_layer_desc(), dwl)},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, dn::mem(pd.diff_weights_iter_desc(), dwi)},
        {DNNL_ARG_DIFF_BIAS, dn::mem(pd.diff_bias_desc(), dw.bias)},
        {DNNL_ARG_DIFF_DST_LAYER, dn::mem(pd.diff_dst_layer_desc(), g.seq)},
        {DNNL_ARG_DIFF_DST_ITER, dn::mem(pd.diff_dst_iter_desc(), g.h)}};
    if constexpr (P::kLstm) {
      args.emplace(DNNL_ARG_SRC_ITER_C, dn::mem(pd.src_iter_c_desc(), in.c));
      args.emplace(DNNL_ARG_DST_ITER_C, dn::mem(pd.dst_iter_c_desc(), out.c));
      args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, dn::mem(pd.diff_src_iter_c_desc(), d.c));
      args.emplace(DNNL_ARG_DIFF_DST_ITER_C, dn::mem(pd.diff_dst_iter_c_desc(), g.c));
    }
    dn::execute(p.bwd, std::move(args));
    run_reorder(p.dw_back[0], dn::mem(pd.diff_weights_layer_desc(), dwl), dn::mem(p.wl_user, dw.w_ih));
    run_reorder(p.dw_back[1], dn::mem(pd.diff_weights_iter_desc(), dwi), dn::mem(p.wi_user, dw.w_hh));
  });
  return {d, dw};
}

/// LSTM weights for the primitives: PyTorch's, bias b_ih + b_hh (zeros without bias).
RnnWeights lstm_onednn_weights(const RNNLayerWeights& w, int64_t H) {
  NoGradGuard no_grad;
  return {contig(w.w_ih), contig(w.w_hh), w.b_ih.defined() ? contig(add(w.b_ih, w.b_hh)) : zeros({4 * H})};
}

/// A GRU weight's (or weight gradient's) [3H, K] row blocks from PyTorch's gate order
/// (r, z, n) to oneDNN's (u = z, r, o = n), or back: the first two swapped.
Tensor gru_gate_order(const Tensor& w_in, int64_t H) {
  const Tensor w = contig(w_in);
  const int64_t block = H * (w.numel() / (3 * H));
  Tensor out = Tensor::empty(w.shape());
  const float* s = w.data<float>();
  float* o = out.data<float>();
  std::memcpy(o, s + block, size_t(block) * sizeof(float));
  std::memcpy(o + block, s, size_t(block) * sizeof(float));
  std::memcpy(o + 2 * block, s + 2 * block, size_t(block) * sizeof(float));
  return out;
}

/// GRU weights for the primitives: rows in oneDNN's gate order, bias (u, r, o, u') =
/// (b_iz + b_hz, b_ir + b_hr, b_in, b_hn) (zeros without bias).
RnnWeights gru_onednn_weights(const RNNLayerWeights& w, int64_t H) {
  Tensor bias = zeros({4 * H});
  if (w.b_ih.defined()) {
    const Tensor bi = contig(w.b_ih), bh = contig(w.b_hh);
    const float* pi = bi.data<float>();
    const float* ph = bh.data<float>();
    float* pb = bias.data<float>();
    for (int64_t j = 0; j < H; ++j) {
      pb[j] = pi[H + j] + ph[H + j];  // u = z
      pb[H + j] = pi[j] + ph[j];      // r
      pb[2 * H + j] = pi[2 * H + j];  // o = n, input side
      pb[3 * H + j] = ph[2 * H + j];  // u': n's hidden side
    }
  }
  return {gru_gate_order(w.w_ih, H), gru_gate_order(w.w_hh, H), bias};
}

/// What the nodes of a layer on oneDNN (LstmLayerBackward, GruLayerBackward) share:
/// the saved inputs and outputs, the workspace, and the create_graph path.
struct RnnLayerNode : Node {
  enum { kX, kH0, kC0, kWih, kWhh, kBih, kBhh, kY, kHn, kCn, kSaved };  // c0, c_n: LSTM only
  using Saved = std::array<Tensor, kSaved>;
  using Grads = std::array<Tensor, kBhh + 1>;
  std::array<SavedTensor, kSaved> saved_;
  Tensor workspace;
  int64_t H = 0;

  std::vector<Tensor> apply(const Tensor& g) override {
    std::vector<Tensor> gs{g};
    return apply_all(gs);
  }
  void release_saved() override {
    for (auto& s : saved_) s.reset();
    workspace = Tensor();
  }
  std::vector<Tensor> apply_all(std::vector<Tensor>& gs) override {
    gs.resize(3);
    Saved v;
    for (int k = 0; k < kSaved; ++k) v[size_t(k)] = saved_[size_t(k)].unpack(*this);
    bool graph = false;
    for (const Tensor& g : gs) graph = graph || (g.defined() && any_requires_grad({&g}));
    for (int k = kX; k <= kBhh; ++k) graph = graph || any_requires_grad({&v[size_t(k)]});
    if (graph) return recomputed(gs, v);
    const int64_t T = v[kX].size(0), N = v[kX].size(1);
    const bool has_c = v[kCn].defined();  // LSTM
    const RnnSeq in{contig(v[kX]), v[kH0].defined() ? contig(v[kH0]) : zeros({N, H}),
                    !has_c ? Tensor() : v[kC0].defined() ? contig(v[kC0]) : zeros({N, H})};
    const RnnSeq out{v[kY], v[kHn], v[kCn]};
    const RnnSeq g{contig(or_zeros(gs[0], {T, N, H}, Dtype::Float32)), contig(or_zeros(gs[1], {N, H}, Dtype::Float32)),
                   has_c ? contig(or_zeros(gs[2], {N, H}, Dtype::Float32)) : Tensor()};
    const Grads all = primitive_backward(in, {v[kWih], v[kWhh], v[kBih], v[kBhh]}, out, g);
    std::vector<Tensor> result(kBhh + 1);
    for (size_t k = kX; k <= kBhh; ++k)
      if (needs_input_grad(k)) result[k] = all[k];
    return result;
  }

  /// Records `node` for a layer's outputs y, h_n (, c_n) and saves what its backward reads;
  /// in: the layer's inputs x, h0, c0 as the caller passed them (undefined: none).
  static void record_layer(const std::shared_ptr<RnnLayerNode>& node, const RnnSeq& in, const RNNLayerWeights& w,
                           Tensor& y, Tensor& hn, Tensor* cn, const Tensor& ws) {
    const std::vector<Tensor> inputs{in.seq, in.h, in.c, w.w_ih, w.w_hh, w.b_ih, w.b_hh};
    node->workspace = ws;
    record(y, node, inputs);
    hn.set_grad_fn(node, node->add_output(hn));
    if (cn) cn->set_grad_fn(node, node->add_output(*cn));
    for (size_t k = 0; k < inputs.size(); ++k)
      if (inputs[k].defined()) node->saved_[k] = SavedTensor(inputs[k]);
    node->saved_[kY] = SavedTensor(y, true, 0);
    node->saved_[kHn] = SavedTensor(hn, true, 1);
    if (cn) node->saved_[kCn] = SavedTensor(*cn, true, 2);
  }

 protected:
  /// The gradients of (x, h0, c0, w_ih, w_hh, b_ih, b_hh) from the backward primitive;
  /// in: x, h0, c0 (zeros for undefined states); out: y, h_n, c_n; g: their gradients.
  virtual Grads primitive_backward(const RnnSeq& in, const RNNLayerWeights& w, const RnnSeq& out,
                                   const RnnSeq& g) const = 0;
  /// The layer as recorded steps from its saved inputs.
  virtual LayerOut steps(const Saved& v) const = 0;

 private:
  std::vector<Tensor> recomputed(const std::vector<Tensor>& gs, const Saved& v) const {
    const LayerOut o = steps(v);
    std::vector<Tensor> outs, gouts, ins;
    const Tensor os[] = {o.y, o.h, o.c};
    for (size_t k = 0; k < 3; ++k)
      if (gs[k].defined()) {
        outs.push_back(os[k]);
        gouts.push_back(gs[k]);
      }
    std::vector<size_t> which;
    for (size_t k = kX; k <= kBhh; ++k)
      if (needs_input_grad(k) && v[k].defined()) {
        ins.push_back(v[k]);
        which.push_back(k);
      }
    std::vector<Tensor> result(kBhh + 1);
    if (ins.empty()) return result;
    const std::vector<Tensor> g = autograd::grad(outs, ins, gouts, /*retain_graph=*/true, /*create_graph=*/true,
                                                 /*allow_unused=*/true);
    for (size_t j = 0; j < which.size(); ++j) result[which[j]] = g[j];
    return result;
  }
};

// Forward: one LSTM layer over the whole sequence (oneDNN lstm_forward), outputs y, h_n, c_n
// Backward: oneDNN lstm_backward (dx, dh0, dc0, dW_ih, dW_hh, db; db goes to b_ih and b_hh);
//   under create_graph the recorded steps recomputed and differentiated
struct LstmLayerBackward final : RnnLayerNode {
  const char* name() const override { return "LstmLayerBackward"; }

 protected:
  Grads primitive_backward(const RnnSeq& in, const RNNLayerWeights& w, const RnnSeq& out,
                           const RnnSeq& g) const override {
    const auto p = rnn_primitives<LstmPrimitives>(in.seq.size(0), in.seq.size(1), in.seq.size(2), H);
    const auto [d, dw] = rnn_backward(*p, in, lstm_onednn_weights(w, H), out, workspace, g);
    return {d.seq, d.h, d.c, dw.w_ih, dw.w_hh, dw.bias, dw.bias.clone()};  // b_ih and b_hh each get their own
  }
  LayerOut steps(const Saved& v) const override {
    return lstm_layer_steps(v[kX], v[kH0], v[kC0], {v[kWih], v[kWhh], v[kBih], v[kBhh]}, H);
  }
};

// Forward: one GRU layer over the whole sequence (oneDNN lbr_gru_forward, gates permuted
//   (r, z, n) → (u = z, r, o = n), bias (b_iz + b_hz, b_ir + b_hr, b_in, b_hn)), outputs y, h_n
// Backward: oneDNN lbr_gru_backward (dx, dh0, dW_ih, dW_hh, db = (db_u, db_r, db_o, db_u'));
//   the weight gradients permuted back, db_ih = (db_r, db_u, db_o), db_hh = (db_r, db_u, db_u');
//   under create_graph the recorded steps recomputed and differentiated
struct GruLayerBackward final : RnnLayerNode {
  const char* name() const override { return "GruLayerBackward"; }

 protected:
  Grads primitive_backward(const RnnSeq& in, const RNNLayerWeights& w, const RnnSeq& out,
                           const RnnSeq& g) const override {
    const auto p = rnn_primitives<GruPrimitives>(in.seq.size(0), in.seq.size(1), in.seq.size(2), H);
    const auto [d, dw] = rnn_backward(*p, in, gru_onednn_weights(w, H), out, workspace, g);
    Tensor dbih = Tensor::empty({3 * H}), dbhh = Tensor::empty({3 * H});
    const float* pb = dw.bias.data<float>();
    float* pi = dbih.data<float>();
    float* ph = dbhh.data<float>();
    for (int64_t j = 0; j < H; ++j) {
      pi[j] = ph[j] = pb[H + j];          // r
      pi[H + j] = ph[H + j] = pb[j];      // z = u
      pi[2 * H + j] = pb[2 * H + j];      // n, input side: o
      ph[2 * H + j] = pb[3 * H + j];      // n, hidden side: u'
    }
    return {d.seq, d.h, Tensor(), gru_gate_order(dw.w_ih, H), gru_gate_order(dw.w_hh, H), dbih, dbhh};
  }
  LayerOut steps(const Saved& v) const override {
    return gru_layer_steps(v[kX], v[kH0], {v[kWih], v[kWhh], v[kBih], v[kBhh]}, H);
  }
};

/// One Float32 LSTM (P = LstmPrimitives, Node = LstmLayerBackward) or GRU layer on oneDNN
/// (see the Note above); h0 / c0 [N, H] or undefined (c0: LSTM only).
template <class P, class LayerNode>
LayerOut rnn_layer_onednn(const Tensor& in, const Tensor& h0_in, const Tensor& c0_in, const RNNLayerWeights& w,
                          const RnnWeights& weights) {
  const int64_t T = in.size(0), N = in.size(1), I = in.size(2), H = w.w_hh.size(1);
  const auto p = rnn_primitives<P>(T, N, I, H);
  const RnnSeq s{contig(in), h0_in.defined() ? contig(h0_in) : zeros({N, H}),
                 !P::kLstm ? Tensor() : c0_in.defined() ? contig(c0_in) : zeros({N, H})};
  Tensor y = Tensor::empty({T, N, H}), hn = Tensor::empty({N, H}), cn = P::kLstm ? Tensor::empty({N, H}) : Tensor();
  const Tensor ws = rnn_forward(*p, s, weights, {y, hn, cn});
  if (any_requires_grad({&in, &h0_in, &c0_in, &w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})) {
    auto node = std::make_shared<LayerNode>();
    node->H = H;
    RnnLayerNode::record_layer(node, {in, h0_in, c0_in}, w, y, hn, P::kLstm ? &cn : nullptr, ws);
  }
  return {y, hn, cn};
}

LayerOut lstm_layer_onednn(const Tensor& in, const Tensor& h0, const Tensor& c0, const RNNLayerWeights& w) {
  return rnn_layer_onednn<LstmPrimitives, LstmLayerBackward>(in, h0, c0, w, lstm_onednn_weights(w, w.w_hh.size(1)));
}
LayerOut gru_layer_onednn(const Tensor& in, const Tensor& h0, const RNNLayerWeights& w) {
  return rnn_layer_onednn<GruPrimitives, GruLayerBackward>(in, h0, Tensor(), w, gru_onednn_weights(w, w.w_hh.size(1)));
}

}  // namespace

// Forward: y[p, :] = weight[indices[p], :]
// Backward: dweight[r] = Σ g[p] over the positions p with indices[p] = r (none for r = padding_idx)
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  TAPE_CHECK(weight.defined() && weight.dim() == 2, "embedding: weight must be [num_embeddings, embedding_dim], got ",
             weight.defined() ? weight.shape() : Shape{});
  TAPE_CHECK(indices.defined(), "embedding: indices is an undefined tensor");
  TAPE_CHECK(indices.dtype() == Dtype::Int64, "embedding: indices must be Int64, got ", dtype_name(indices.dtype()),
             " tensor of shape ", indices.shape());
  const int64_t num = weight.size(0);
  TAPE_CHECK(padding_idx == -1 || (padding_idx >= 0 && padding_idx < num), "embedding: padding_idx ", padding_idx,
             " is out of range for num_embeddings ", num, " (-1: none)");
  const Tensor flat = reshape(contig(indices), {-1});
  const int64_t* pi = flat.data<int64_t>();
  for (int64_t k = 0; k < flat.numel(); ++k) {
    if (pi[k] >= 0 && pi[k] < num) continue;
    Shape pos(indices.shape().size());  // k's coordinates in indices
    for (int64_t d = indices.dim() - 1, r = k; d >= 0; --d) {
      pos[size_t(d)] = r % indices.size(d);
      r /= indices.size(d);
    }
    TAPE_CHECK(false, "embedding: index ", pi[k], " at position ", pos, " of indices ", indices.shape(),
               " is out of range for num_embeddings ", num);
  }
  Tensor y = index_select(weight, 0, flat);
  if (padding_idx >= 0 && any_requires_grad({&weight}))  // the padding row's value, without its gradient
    y = where(unsqueeze(eq(flat, double(padding_idx)), 1), y.detach(), y);
  Shape shape = indices.shape();
  shape.push_back(weight.size(1));
  return reshape(y, shape);
}

// Forward: per layer, xw = linear(x, W_ih, b_ih + b_hh) for all steps, then per step
//   (h, c) = lstm_cell(xw[t], linear(h, W_hh), c); output = the last layer's h at every step
// Backward: through LinearBackward, UnbindBackward and LstmCellBackward (Float32: LstmLayerBackward)
LSTMOutput lstm(const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<RNNLayerWeights>& layers,
                double dropout, bool training) {
  const int64_t H = check_rnn("lstm", 4, x, layers, {{"h0", &h0}, {"c0", &c0}});
  const int64_t N = x.size(1);
  Tensor in = x;
  std::vector<Tensor> hn, cn;
  for (size_t l = 0; l < layers.size(); ++l) {
    const Tensor h = h0.defined() ? select(h0, 0, int64_t(l)) : Tensor();
    const Tensor c = c0.defined() ? select(c0, 0, int64_t(l)) : Tensor();
    const bool fast = x.dtype() == Dtype::Float32 && N > 0 && use_onednn_rnn();
    LayerOut o = fast ? lstm_layer_onednn(in, h, c, layers[l]) : lstm_layer_steps(in, h, c, layers[l], H);
    hn.push_back(o.h);
    cn.push_back(o.c);
    in = between_layers(o.y, l, layers.size(), dropout, training);
  }
  return {in, stack(hn, 0), stack(cn, 0)};
}

// Forward: per layer, xw = linear(x, W_ih, b_ih) for all steps, then per step
//   h = gru_cell(xw[t], linear(h, W_hh, b_hh), h); output = the last layer's h at every step
// Backward: through LinearBackward, UnbindBackward and GruCellBackward (Float32: GruLayerBackward)
GRUOutput gru(const Tensor& x, const Tensor& h0, const std::vector<RNNLayerWeights>& layers, double dropout,
              bool training) {
  const int64_t H = check_rnn("gru", 3, x, layers, {{"h0", &h0}});
  const int64_t N = x.size(1);
  Tensor in = x;
  std::vector<Tensor> hn;
  for (size_t l = 0; l < layers.size(); ++l) {
    const Tensor h = h0.defined() ? select(h0, 0, int64_t(l)) : Tensor();
    const bool fast = x.dtype() == Dtype::Float32 && N > 0 && use_onednn_rnn();
    LayerOut o = fast ? gru_layer_onednn(in, h, layers[l]) : gru_layer_steps(in, h, layers[l], H);
    hn.push_back(o.h);
    in = between_layers(o.y, l, layers.size(), dropout, training);
  }
  return {in, stack(hn, 0)};
}

}  // namespace tape
