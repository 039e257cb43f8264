// bench/train: epoch time (median of epochs 2..N), samples/s and peak RSS for
// the report's networks, with the examples' recipes (Adam, shuffled batches);
// the roofline: FLOPs per epoch counted from the layer shapes, achieved GFLOP/s
// and the fraction of the machine's measured GEMM peak (bench/peak.hpp); the
// small-batch path (MLP inference at batch 1). Also the allocator's steady
// state: RSS at step 100 and step 2 000.
//   usage: train [--data DIR] [--epochs N] [--only mlp2|mlp4|lenet5|lenet5_64|infer|rss]
#include <cstring>
#include <optional>
#include <string>
#include <tape/tape.hpp>

#include "bench_util.hpp"
#include "models.hpp"
#include "peak.hpp"

using namespace tape;
using namespace tape::examples;

namespace {

data::TensorDataset train_set(const std::string& dir) {
  try {
    return data::load_mnist(dir, "train");
  } catch (const Error& e) {
    std::printf("(MNIST not found: %s — timing on random data of the same shape)\n", e.what());
    manual_seed(1);
    data::TensorDataset ds;
    ds.images = rand({60000, 1, 28, 28});
    ds.labels = Tensor::empty({60000}, Dtype::Int64);
    int64_t* p = ds.labels.data<int64_t>();
    for (int64_t i = 0; i < 60000; ++i) p[i] = i % 10;
    return ds;
  }
}

bool g_bf16 = false;  // --precision bf16: each step's forward and loss under an AutocastGuard

/// Trains for `epochs` and returns the median epoch time over epochs 2..N.
double epoch_seconds(const ModelSpec& spec, const data::TensorDataset& ds, int64_t batch, double lr, int epochs) {
  manual_seed(0);
  auto model = build_model(spec);
  optim::Adam opt(model->parameters(), lr);
  data::DataLoader loader(ds, batch, true, 0);
  std::vector<double> times;
  for (int e = 0; e < epochs; ++e) {
    auto t0 = std::chrono::steady_clock::now();
    for (auto& b : loader) {
      Tensor loss;
      {
        std::optional<AutocastGuard> autocast;
        if (g_bf16) autocast.emplace(Dtype::BFloat16);
        loss = cross_entropy((*model)(b.x), b.y);
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> later(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  std::sort(later.begin(), later.end());
  return later[later.size() / 2];
}

// Note: FLOPs are those of the products only — each Linear and Conv2d, forward
// (2·K per output element), weight gradient (the same count) and input gradient
// (the same again, except for a layer reading the model's input, which needs
// none). Elementwise ops, pooling, the loss and the optimizer are left out: they
// are memory-bound, and leaving them out keeps the figure comparable with the
// GEMM peak it is divided by (PyTorch's profilers count the same way).
/// Training FLOPs per sample of `model` for one input of shape `sample`.
double training_flops_per_sample(nn::Module& model, const Shape& sample) {
  Tensor x = zeros(sample);
  double flops = 0;
  std::vector<std::pair<nn::Module*, int>> hooks;
  for (nn::Module* m : model.modules()) {
    Tensor w;
    if (auto* lin = dynamic_cast<nn::Linear*>(m)) w = lin->weight;
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m)) w = conv->weight;
    if (!w.defined()) continue;
    hooks.emplace_back(m, m->register_forward_hook([&, w](nn::Module&, const Tensor& in, const Tensor& out) {
      const double k = double(w.numel() / w.size(0));  // inputs per output element: in, or C/groups·kh·kw
      const double fwd = 2.0 * k * double(out.numel());
      flops += in.impl() == x.impl() ? 2 * fwd : 3 * fwd;
      return Tensor();
    }));
  }
  {
    NoGradGuard no_grad;
    model(x);
  }
  for (auto& [m, h] : hooks) m->remove_forward_hook(h);
  return flops;
}

struct Peaks {
  double f32 = 0, bf16 = 0;  // GFLOP/s; bf16 = 0 when the CPU has no bf16 kernels
};
Peaks g_peaks;

void run(const std::string& base, const ModelSpec& spec, const data::TensorDataset& ds, int64_t batch, double lr, int epochs) {
  const std::string name = g_bf16 ? base + " bf16" : base;
  const double s = epoch_seconds(spec, ds, batch, lr, epochs);
  bench::row(name + " epoch", s, "s");
  bench::row(name + " throughput", double(ds.size()) / s, "samples/s");
  bench::row(name + " peak RSS so far", bench::peak_rss_mb(), "MB");
  auto model = build_model(spec);
  const double gflop = training_flops_per_sample(*model, Shape{1, 1, 28, 28}) * double(ds.size()) / 1e9;
  bench::row(name + " GFLOP per epoch", gflop, "GFLOP");
  bench::row(name + " achieved", gflop / s, "GFLOP/s");
  if (!g_bf16 && g_peaks.f32 > 0) bench::row(name + " of f32 GEMM peak", 100 * gflop / s / g_peaks.f32, "%");
  if (g_bf16 && g_peaks.bf16 > 0) bench::row(name + " of bf16 GEMM peak", 100 * gflop / s / g_peaks.bf16, "%");
}

/// Latency of one sample through the MLP: forward with grad recording (what a
/// training step's forward costs), and the no-grad forward_inference path.
void small_batch() {
  manual_seed(0);
  auto model = build_model(ModelSpec{});
  model->eval();
  Tensor x = rand({1, 1, 28, 28});
  const double with_grad = bench::median_seconds([&] { (*model)(x); }, 2000, 200);
  const double infer = bench::median_seconds([&] { model->forward_inference(x); }, 2000, 200);
  bench::row("mlp2 batch 1 forward (recording)", with_grad * 1e6, "us");
  bench::row("mlp2 batch 1 forward_inference", infer * 1e6, "us");
}

void rss_steady_state(const data::TensorDataset& ds) {
  manual_seed(0);
  auto model = build_model(ModelSpec{});
  optim::Adam opt(model->parameters(), 0.01);
  data::DataLoader loader(ds, 1000, true, 0);
  int64_t step = 0;
  double at100 = 0;
  size_t sys100 = 0;
  while (step < 2000)
    for (auto& b : loader) {
      Tensor loss = cross_entropy((*model)(b.x), b.y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (++step == 100) {
        at100 = bench::rss_mb();
        sys100 = allocator_stats().system_allocs;
      }
      if (step == 2000) break;
    }
  bench::row("mlp2 RSS at step 100", at100, "MB");
  bench::row("mlp2 RSS at step 2000", bench::rss_mb(), "MB");
  bench::row("system allocations between steps 100 and 2000", double(allocator_stats().system_allocs - sys100), "");
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "data/mnist", only, precision = "f32";
  int epochs = 4;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help") {
      std::printf("usage: train [--data DIR] [--epochs N] [--only mlp2|mlp4|lenet5|lenet5_64|infer|peak|rss] [--precision f32|bf16]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "train: error: %s needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--data") dir = argv[++i];
    else if (a == "--epochs") epochs = std::max(2, std::atoi(argv[++i]));
    else if (a == "--only") only = argv[++i];
    else if (a == "--precision") precision = argv[++i];
    else {
      std::fprintf(stderr, "train: error: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (precision != "f32" && precision != "bf16") {
    std::fprintf(stderr, "train: error: --precision must be f32 or bf16, got '%s'\n", precision.c_str());
    return 2;
  }
  std::printf("bench/train: %d threads, median of epochs 2..%d\n", get_num_threads(), epochs);
  std::printf("oneDNN ISA: %s\n", cpu_isa_name().c_str());
  if (precision == "bf16") {
    g_bf16 = bf16_supported();
    std::printf("bf16 autocast: %s\n", g_bf16 ? "on" : "off (no bf16 kernels on this CPU: the f32 rows are the result)");
    if (!g_bf16) return 0;
  }
  if (only != "rss" && only != "infer") {
    g_peaks.f32 = bench::gemm_peak(dnnl::memory::data_type::f32);
    g_peaks.bf16 = bench::gemm_peak(dnnl::memory::data_type::bf16);
    bench::row("f32 GEMM peak (raw oneDNN, best of 1024^3, 2048^3)", g_peaks.f32, "GFLOP/s");
    bench::row("bf16 GEMM peak (raw oneDNN, f32 output)", g_peaks.bf16, "GFLOP/s");
  }
  if (only == "peak") return 0;
  if (only.empty() || only == "infer") small_batch();
  if (only == "infer") return 0;
  data::TensorDataset ds = train_set(dir);
  ModelSpec mlp2, mlp4;
  mlp4.hidden = {370, 115, 50};
  if (only.empty() || only == "mlp2") run("mlp2 784-50-10 batch 1000", mlp2, ds, 1000, 0.01, epochs);
  if (only.empty() || only == "mlp4") run("mlp4 784-370-115-50-10 batch 1000", mlp4, ds, 1000, 0.01, epochs);
  if (only.empty() || only == "lenet5") run("lenet5 batch 2500", ModelSpec::lenet5(), ds, 2500, 0.001, epochs);
  if (only.empty() || only == "lenet5_64") run("lenet5 batch 64", ModelSpec::lenet5(), ds, 64, 0.001, std::min(epochs, 3));
  if (only.empty() || only == "rss") rss_steady_state(ds);
  return 0;
}
