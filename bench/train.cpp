// bench/train: epoch time (median of epochs 2..N), samples/s and peak RSS for
// the report's networks, with the examples' recipes (Adam, shuffled batches).
// Also the allocator's steady state: RSS at step 100 and step 2 000.
//   usage: train [--data DIR] [--epochs N] [--only mlp2|mlp4|lenet5|lenet5_64|rss]
#include <cstring>
#include <string>
#include <tape/tape.hpp>

#include "bench_util.hpp"
#include "models.hpp"

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
      Tensor loss = cross_entropy((*model)(b.x), b.y);
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

void run(const std::string& name, const ModelSpec& spec, const data::TensorDataset& ds, int64_t batch, double lr, int epochs) {
  const double s = epoch_seconds(spec, ds, batch, lr, epochs);
  bench::row(name + " epoch", s, "s");
  bench::row(name + " throughput", double(ds.size()) / s, "samples/s");
  bench::row(name + " peak RSS so far", bench::peak_rss_mb(), "MB");
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
  std::string dir = "data/mnist", only;
  int epochs = 4;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help") {
      std::printf("usage: train [--data DIR] [--epochs N] [--only mlp2|mlp4|lenet5|lenet5_64|rss]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "train: error: %s needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--data") dir = argv[++i];
    else if (a == "--epochs") epochs = std::max(2, std::atoi(argv[++i]));
    else if (a == "--only") only = argv[++i];
    else {
      std::fprintf(stderr, "train: error: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("bench/train: %d threads, median of epochs 2..%d\n", get_num_threads(), epochs);
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
