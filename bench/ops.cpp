// bench/ops: tape's per-op costs next to the raw oneDNN primitive, so the
// framework's overhead shows as a ratio.
//   eager overhead  — a chain of 100 small elementwise ops on 1×16, fwd + bwd
//   matmul          — 1000×784×{50,370} forward + backward (dense layer)
//   conv            — LeNet conv1 / conv2 at batch 1000, forward + backward
//   gemm            — 1024³ GFLOP/s, tape and the raw primitive; Float64 (OpenBLAS dgemm)
//   cat, index_select, gather — memory-bound copies (forward)
//   blocks          — LeNet-5's fused conv → ReLU → max-pool blocks at batch 2500:
//                     conv1 on the direct kernels and on oneDNN (TAPE_DIRECT_CONV=0),
//                     conv2 under bf16 autocast
//   amx             — conv2's AMX kernels pass by pass on a 1 250-image slice (AMX CPUs)
#include <algorithm>
#include <dnnl.hpp>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <tape/tape.hpp>

#include "bench_util.hpp"
#include "tape/ops/conv_block_amx.hpp"
#include "tape/ops/conv_block_direct.hpp"

using namespace tape;
using bench::median_seconds;
using bench::row;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  static dnnl::stream s(eng());
  return s;
}

void eager_overhead() {
  Tensor x = randn({1, 16}).requires_grad_();
  Tensor w = randn({1, 16}), b = randn({1, 16});
  constexpr int kOps = 100;
  double t = median_seconds([&] {
    Tensor y = x;
    for (int i = 0; i < kOps / 2; ++i) y = y * w + b;
    y.sum().backward();
  }, 200, 20);
  row("eager overhead, fwd+bwd per small op", t / kOps * 1e6, "us");
  double tf = median_seconds([&] {
    NoGradGuard ng;
    Tensor y = x;
    for (int i = 0; i < kOps / 2; ++i) y = y * w + b;
  }, 200, 20);
  row("eager overhead, fwd per small op (no grad)", tf / kOps * 1e6, "us");
}

/// Raw oneDNN dense layer y = x·W (+b) forward and both backward products, as
/// a framework would issue them with primitives built once.
double raw_dense(int64_t m, int64_t k, int64_t n) {
  using namespace dnnl;
  std::vector<float> x(size_t(m * k), 0.5f), w(size_t(k * n), 0.01f), y(size_t(m * n)), dy(size_t(m * n), 1.f),
      dx(size_t(m * k)), dw(size_t(k * n)), bias(size_t(n), 0.f);
  auto md = [](memory::dims d, memory::dims s) { return memory::desc(d, dt::f32, s); };
  // forward: x[m,k] · w[k,n] + b
  dnnl::matmul::primitive_desc fpd(dnnl::matmul::desc(md({m, k}, {k, 1}), md({k, n}, {1, k}), md({1, n}, {n, 1}), md({m, n}, {n, 1})), eng());
  dnnl::matmul fwd(fpd);
  // dx = dy[m,n] · wᵀ[n,k]
  dnnl::matmul::primitive_desc dpd(dnnl::matmul::desc(md({m, n}, {n, 1}), md({n, k}, {k, 1}), md({m, k}, {k, 1})), eng());
  dnnl::matmul bwd_data(dpd);
  // dw = dyᵀ[n,m] · x[m,k]
  dnnl::matmul::primitive_desc wpd(dnnl::matmul::desc(md({n, m}, {1, n}), md({m, k}, {k, 1}), md({n, k}, {k, 1})), eng());
  dnnl::matmul bwd_w(wpd);
  auto mem = [](const memory::desc& d, std::vector<float>& v) { return memory(d, eng(), v.data()); };
  return median_seconds([&] {
    fwd.execute(strm(), {{DNNL_ARG_SRC, mem(fpd.src_desc(), x)}, {DNNL_ARG_WEIGHTS, mem(fpd.weights_desc(), w)},
                         {DNNL_ARG_BIAS, mem(md({1, n}, {n, 1}), bias)}, {DNNL_ARG_DST, mem(fpd.dst_desc(), y)}});
    bwd_data.execute(strm(), {{DNNL_ARG_SRC, mem(dpd.src_desc(), dy)}, {DNNL_ARG_WEIGHTS, mem(dpd.weights_desc(), w)},
                              {DNNL_ARG_DST, mem(dpd.dst_desc(), dx)}});
    bwd_w.execute(strm(), {{DNNL_ARG_SRC, mem(wpd.src_desc(), dy)}, {DNNL_ARG_WEIGHTS, mem(wpd.weights_desc(), x)},
                           {DNNL_ARG_DST, mem(wpd.dst_desc(), dw)}});
    // bias gradient: column sums of dy
    std::fill(bias.begin(), bias.end(), 0.f);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) bias[size_t(j)] += dy[size_t(i * n + j)];
    strm().wait();
  });
}

void dense(int64_t m, int64_t k, int64_t n) {
  Tensor x = randn({m, k}), w = (randn({n, k}) * 0.05f).requires_grad_(), b = zeros({n}).requires_grad_();
  Tensor g = ones({m, n});
  double t = median_seconds([&] {
    Tensor y = linear(x, w, b);
    y.backward(g);
  });
  double raw = raw_dense(m, k, n);
  const std::string name = str_cat("linear ", m, "x", k, "x", n, " fwd+bwd");
  row(name + " (tape)", t * 1e3, "ms");
  row(name + " (raw oneDNN)", raw * 1e3, "ms");
  row(name + " raw/tape", raw / t, "x");
}

double raw_conv(int64_t n, int64_t c, int64_t hw, int64_t o, int64_t k, bool need_dx) {
  using namespace dnnl;
  const int64_t ohw = hw - k + 1;
  memory::dims src{n, c, hw, hw}, wei{o, c, k, k}, bia{o}, dst{n, o, ohw, ohw}, st{1, 1}, pad{0, 0};
  auto any = [](memory::dims d) { return memory::desc(d, dt::f32, tag::any); };
  convolution_forward::primitive_desc fpd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, any(src), any(wei),
                                any(bia), any(dst), st, pad, pad),
      eng());
  convolution_backward_weights::primitive_desc wpd(
      convolution_backward_weights::desc(algorithm::convolution_direct, any(src), any(wei), any(bia), any(dst), st, pad, pad),
      eng(), fpd);
  convolution_backward_data::primitive_desc dpd(
      convolution_backward_data::desc(algorithm::convolution_direct, any(src), any(wei), any(dst), st, pad, pad), eng(), fpd);
  // filled, not left as allocated: leftover bytes read as floats can be
  // denormals, which cost Intel cores a microcode assist per operation (this
  // row measured 160 ms instead of ~8 on a Sapphire Rapids VM)
  auto filled = [](const memory::desc& d) {
    memory m(d, eng());
    std::fill_n(static_cast<float*>(m.get_data_handle()), d.get_size() / sizeof(float), 0.01f);
    return m;
  };
  memory s = filled(fpd.src_desc()), w = filled(fpd.weights_desc()), b = filled(fpd.bias_desc()),
         d = filled(fpd.dst_desc());
  memory dd = filled(wpd.diff_dst_desc()), ws = filled(wpd.src_desc()), dw = filled(wpd.diff_weights_desc()),
         db = filled(wpd.diff_bias_desc());
  memory ddd = filled(dpd.diff_dst_desc()), dww = filled(dpd.weights_desc()), ds = filled(dpd.diff_src_desc());
  convolution_forward fwd(fpd);
  convolution_backward_weights bw(wpd);
  convolution_backward_data bd(dpd);
  return median_seconds([&] {
    fwd.execute(strm(), {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, d}});
    bw.execute(strm(), {{DNNL_ARG_SRC, ws}, {DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_BIAS, db}});
    if (need_dx) bd.execute(strm(), {{DNNL_ARG_DIFF_DST, ddd}, {DNNL_ARG_WEIGHTS, dww}, {DNNL_ARG_DIFF_SRC, ds}});
    strm().wait();
  });
}

void conv(const char* name, int64_t n, int64_t c, int64_t hw, int64_t o, int64_t k, bool need_dx) {
  Tensor x = randn({n, c, hw, hw});
  if (need_dx) x.requires_grad_();
  Tensor w = (randn({o, c, k, k}) * 0.1f).requires_grad_(), b = zeros({o}).requires_grad_();
  Tensor g = ones({n, o, hw - k + 1, hw - k + 1});
  double t = median_seconds([&] { conv2d(x, w, b).backward(g); }, 30, 3);
  double raw = raw_conv(n, c, hw, o, k, need_dx);
  row(str_cat(name, " fwd+bwd (tape)"), t * 1e3, "ms");
  row(str_cat(name, " fwd+bwd (raw oneDNN, blocked, no reorders)"), raw * 1e3, "ms");
  row(str_cat(name, " raw/tape"), raw / t, "x");
}

void gemm() {
  const int64_t n = 1024;
  const double flop = 2.0 * double(n * n * n);
  Tensor a = randn({n, n}), b = randn({n, n});
  double t = median_seconds([&] { matmul(a, b); }, 10, 2);
  // the raw primitive on plain row-major buffers, built once
  using namespace dnnl;
  const memory::desc d({n, n}, dt::f32, tag::ab);
  std::vector<float> x(size_t(n * n), 0.5f), w(size_t(n * n), 0.01f), y(size_t(n * n));
  dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(d, d, d), eng()));
  memory mx(d, eng(), x.data()), mw(d, eng(), w.data()), my(d, eng(), y.data());
  double raw = median_seconds([&] {
    prim.execute(strm(), {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}});
    strm().wait();
  }, 10, 2);
  row("matmul 1024^3 (tape)", flop / t / 1e9, "GFLOP/s");
  row("matmul 1024^3 (raw oneDNN)", flop / raw / 1e9, "GFLOP/s");
  row("matmul 1024^3 raw/tape", raw / t, "x");
  // Float64 runs on OpenBLAS's dgemm (oneDNN 2.6 has no f64 matmul)
  Tensor a64 = a.to(Dtype::Float64), b64 = b.to(Dtype::Float64);
  double t64 = median_seconds([&] { tape::matmul(a64, b64); }, 10, 2);
  row("matmul f64 1024^3 (tape, OpenBLAS)", flop / t64 / 1e9, "GFLOP/s");
}

/// Random Int64 indices in [0, bound).
Tensor random_indices(const Shape& shape, int64_t bound) {
  return clamp(rand(shape) * float(bound), 0.f, float(bound - 1)).to(Dtype::Int64);
}

void copies() {
  std::vector<Tensor> parts;
  for (int i = 0; i < 4; ++i) parts.push_back(randn({256, 1024}));
  for (int64_t dim : {0, 1}) {
    double t = median_seconds([&] { cat(parts, dim); }, 50, 5);
    row(str_cat("cat 4x[256,1024] dim ", dim), t * 1e6, "us");
  }
  Tensor table = randn({50000, 128});
  Tensor rows = random_indices({10000}, 50000);
  double t = median_seconds([&] { index_select(table, 0, rows); }, 50, 5);
  row("index_select [50000,128] dim 0, 10000 rows", t * 1e6, "us");
  Tensor x = randn({4096, 1000});
  for (int64_t k : {1, 64}) {
    Tensor idx = random_indices({4096, k}, 1000);
    double tg = median_seconds([&] { gather(x, 1, idx); }, 50, 5);
    row(str_cat("gather [4096,1000] dim 1, index [4096,", k, "]"), tg * 1e6, "us");
  }
}

/// One fused conv block at batch n: forward, and forward + backward, in ms and
/// GFLOP/s (2·K per conv output element per pass; no input gradient: 2 passes).
void block(const std::string& name, int64_t n, int64_t c, int64_t hw, int64_t o, int64_t k, bool need_dx,
           bool bf16 = false) {
  std::optional<AutocastGuard> autocast;
  if (bf16) autocast.emplace();
  Tensor x = randn({n, c, hw, hw});
  if (need_dx) x.requires_grad_();
  Tensor w = (randn({o, c, k, k}) * 0.1f).requires_grad_(), b = zeros({o}).requires_grad_();
  const int64_t ohw = hw - k + 1;
  const Tensor g = ones({n, o, ohw / 2, ohw / 2});
  const double flop = 2.0 * double(n * o * ohw * ohw) * double(c * k * k);
  const double tf = median_seconds([&] { NoGradGuard ng; conv2d_relu_max_pool2d(x, w, b, 2); }, 20, 3);
  const double tb = median_seconds([&] { conv2d_relu_max_pool2d(x, w, b, 2).backward(g); }, 20, 3);
  row(name + " forward (inference)", tf * 1e3, "ms");
  row(name + " forward", flop / tf / 1e9, "GFLOP/s");
  row(name + " fwd+bwd", tb * 1e3, "ms");
  row(name + " fwd+bwd", flop * (need_dx ? 3 : 2) / tb / 1e9, "GFLOP/s");
}

/// Runs f with TAPE_DIRECT_CONV=0 (the blocks on oneDNN only), then restores the variable.
template <class F>
void without_direct_kernels(F&& f) {
  const char* was = std::getenv("TAPE_DIRECT_CONV");
  const std::string saved = was ? was : "";
  setenv("TAPE_DIRECT_CONV", "0", 1);
  f();
  if (was) setenv("TAPE_DIRECT_CONV", saved.c_str(), 1);
  else unsetenv("TAPE_DIRECT_CONV");
}

void blocks() {
  block("block1 2500x1x28x28 -> 6@5x5 (direct)", 2500, 1, 28, 6, 5, false);
  block("block2 2500x6x12x12 -> 16@5x5 (direct backward-data)", 2500, 6, 12, 16, 5, true);
  if (bf16_supported())
    block(str_cat("block2 2500x6x12x12 -> 16@5x5 (bf16 autocast", std::string(cpu_isa_name()).find("amx") != std::string::npos ? ", AMX" : "", ")"), 2500, 6, 12,
          16, 5, true, true);
  without_direct_kernels([] {
    block("block1 2500x1x28x28 -> 6@5x5 (oneDNN)", 2500, 1, 28, 6, 5, false);
    block("block2 2500x6x12x12 -> 16@5x5 (oneDNN)", 2500, 6, 12, 16, 5, true);
  });
}
/// LeNet's conv2 block on one 1 250-image slice (what the fused op hands each
/// kernel per call), pass by pass: tape's AMX kernels (conv_block_amx.cpp) next to
/// the f32 direct backward-data they replace. Prints nothing without AMX.
void amx_passes() {
  namespace amx = tape::detail::amx_block;
  namespace db = tape::detail::direct_block;
  if (!amx::available()) {
    std::printf("amx: this CPU has no AMX (or TAPE_AMX_CONV=0)\n");
    return;
  }
  db::Geometry g;
  g.n = 1250, g.c = 6, g.h = 12, g.w = 12, g.oc = 16, g.kh = 5, g.kw = 5;
  const Tensor x = randn({g.n, 6, 12, 12}), w = randn({16, 6, 5, 5}), b = randn({16}), gy = randn({g.n, 16, 4, 4});
  std::vector<float> y(size_t(g.n * 256)), dc(size_t(g.n * 64 * 16)), dx(size_t(g.n * 864)), dw(2400), dbias(16);
  std::vector<uint8_t> code(size_t(db::pool16c_codes(g.n, 16, 8, 8)));
  const auto ms = [](const std::function<void()>& f) { return median_seconds(f, 20, 3) * 1e3; };
  const std::string slice = "conv2 block, 1250 images 6x12x12 -> 16@5x5: ";
  row(slice + "AMX forward (conv, bias, ReLU, 2x2 pool)",
      ms([&] { amx::forward(g, x.data<float>(), w.data<float>(), b.data<float>(), y.data(), code.data()); }), "ms");
  row(slice + "pool16c_backward",
      ms([&] { db::pool16c_backward(g.n, 16, 8, 8, gy.data<float>(), code.data(), dc.data()); }), "ms");
  row(slice + "AMX backward-weights",
      ms([&] { amx::backward_weights_16c(g, x.data<float>(), dc.data(), dw.data(), dbias.data()); }), "ms");
  row(slice + "AMX backward-data",
      ms([&] { amx::backward_data_16c(g, dc.data(), w.data<float>(), dx.data()); }), "ms");
  row(slice + "direct f32 backward-data",
      ms([&] { db::backward_data_16c(g, dc.data(), w.data<float>(), dx.data()); }), "ms");
  row(slice + "AMX whole backward (the three in cache)", ms([&] {
        amx::backward(g, x.data<float>(), gy.data<float>(), code.data(), w.data<float>(), dx.data(), dw.data(),
                      dbias.data());
      }), "ms");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--help") == 0) {
    std::printf("usage: bench/ops [copies|blocks|amx]  — per-op timings of tape next to raw oneDNN\n"
                "(TAPE_NUM_THREADS sets threads); `copies` runs only the cat, index_select and gather rows, `blocks`\n"
                "only LeNet-5's fused conv blocks, `amx` only conv2's AMX kernels pass by pass (AMX CPUs)\n");
    return 0;
  }
  manual_seed(0);
  std::printf("bench/ops: %d threads\n", get_num_threads());
  if (argc > 1 && std::strcmp(argv[1], "copies") == 0) {  // only the cat / index_select / gather rows
    copies();
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "blocks") == 0) {
    blocks();
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "amx") == 0) {
    amx_passes();
    return 0;
  }
  eager_overhead();
  dense(1000, 784, 50);
  dense(1000, 784, 370);
  conv("conv1 1000x1x28x28 -> 6@5x5", 1000, 1, 28, 6, 5, false);
  conv("conv2 1000x6x12x12 -> 16@5x5", 1000, 6, 12, 16, 5, true);
  gemm();
  copies();
  blocks();
  return 0;
}
