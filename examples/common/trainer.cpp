#include "trainer.hpp"

#include <tape_vision/digit_page.hpp>
#include <tape_vision/digits.hpp>
#include <tape_vision/plot.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <iostream>
#include <numbers>
#include <optional>
#include <sstream>

#include "progress.hpp"

namespace tape::examples {

void add_training_flags(po::options_description& desc, TrainConfig& c) {
  desc.add_options()
      ("data", po::value(&c.data_dir)->default_value(c.data_dir), "MNIST directory (tools/fetch_mnist.sh fills it)")
      ("seed", po::value(&c.seed)->default_value(c.seed), "random seed (init, shuffling, dropout)")
      ("threads", po::value(&c.threads)->default_value(c.threads), "threads for oneDNN and tape (0 = default)")
      ("epochs", po::value(&c.epochs)->default_value(c.epochs), "training epochs")
      ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size), "minibatch size")
      ("lr", po::value(&c.lr)->default_value(c.lr, str_cat(c.lr)), "learning rate")
      ("optimizer", po::value(&c.optimizer)->default_value(c.optimizer), "adam | adamw | sgd")
      ("weight-decay", po::value(&c.weight_decay)->default_value(c.weight_decay), "L2 (adam, sgd) or decoupled (adamw)")
      ("momentum", po::value(&c.momentum)->default_value(c.momentum, "0.9"), "SGD momentum")
      ("schedule", po::value(&c.schedule)->default_value(c.schedule), "learning-rate schedule: none | step | cosine | onecycle (per batch, peak --lr)")
      ("limit-train", po::value(&c.limit_train)->default_value(c.limit_train), "train on the first N images only (0 = all)")
      ("csv", po::value(&c.csv), "write one row per epoch: epoch,train_loss,test_loss,test_accuracy,seconds")
      ("plot", po::value(&c.plot), "write loss and accuracy curves to this PNG")
      ("save", po::value(&c.save), "write a checkpoint here after every epoch")
      ("resume", po::value(&c.resume), "continue from this checkpoint")
      ("quiet", po::bool_switch(&c.quiet), "print only the final accuracy")
      ("distributed", po::bool_switch(&c.distributed),
       "data-parallel training over the processes of `mpirun -np N` (one thread each by default); "
       "--batch-size stays the global batch, each rank takes 1/N of it; rank 0 prints and writes the files")
      // a program's default may be on (mnist_resnet): --augment=0 turns it off
      ("augment", po::value(&c.augment)->default_value(c.augment)->implicit_value(true),
       "random rotation, scale, shear, shift and stroke weight per image (--augment=0: off)")
      ("deskew", po::bool_switch(&c.deskew), "deskew train and test images by their moments (recorded in the checkpoint)")
      ("page-crops", po::value(&c.page_crops)->default_value(c.page_crops),
       "add N crops of train digits read off generated handwriting sheets (docs/digits.md)");
  add_precision_flag(desc, c.precision);
}

void validate(const TrainConfig& c) {
  TAPE_CHECK(c.epochs >= 1, "--epochs must be at least 1, got ", c.epochs);
  TAPE_CHECK(c.batch_size >= 1, "--batch-size must be at least 1, got ", c.batch_size);
  TAPE_CHECK(c.lr > 0 && std::isfinite(c.lr), "--lr must be positive, got ", c.lr);
  TAPE_CHECK(c.optimizer == "adam" || c.optimizer == "adamw" || c.optimizer == "sgd", "unknown --optimizer '",
             c.optimizer, "' (expected adam, adamw or sgd)");
  TAPE_CHECK(c.schedule == "none" || c.schedule == "step" || c.schedule == "cosine" || c.schedule == "onecycle",
             "unknown --schedule '", c.schedule, "' (expected none, step, cosine or onecycle)");
  TAPE_CHECK(c.weight_decay >= 0, "--weight-decay must be >= 0, got ", c.weight_decay);
  TAPE_CHECK(c.page_crops >= 0 && c.page_crops <= 1'000'000, "--page-crops must be in [0, 1000000], got ",
             c.page_crops);
  TAPE_CHECK(c.limit_train >= 0, "--limit-train must be >= 0, got ", c.limit_train);
  TAPE_CHECK(c.threads >= 0 && c.threads <= 1024, "--threads must be in [0, 1024], got ", c.threads);
  validate_precision(c.precision);
}

std::pair<double, double> evaluate(nn::Module& model, const data::TensorDataset& test_all, int64_t batch_size,
                                   bool distributed) {
  TAPE_CHECK(test_all.size() > 0, "evaluate: the test set is empty (0 samples)");
  const int64_t world = distributed ? dist::world_size() : 1, rank = distributed ? dist::rank() : 0;
  if (world > 1) {
    // this rank's slice [n·r/N, n·(r+1)/N); the sums of loss and hits are all-reduced
    const int64_t n = test_all.size(), lo = n * rank / world, hi = n * (rank + 1) / world;
    auto [loss, acc] = hi > lo ? evaluate(model, test_all.subset(lo, hi), batch_size) : std::pair{0.0, 0.0};
    Tensor sums = tensor(std::vector<double>{loss * double(hi - lo), acc * double(hi - lo)}, {2});
    dist::all_reduce(sums);
    auto v = sums.to_vector<double>();
    return {v[0] / double(n), v[1] / double(n)};
  }
  const data::TensorDataset& test = test_all;
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  double loss = 0;
  int64_t correct = 0;
  data::DataLoader loader(test, batch_size, /*shuffle=*/false);
  for (auto& b : loader) {
    Tensor logits = model(b.x);
    loss += double(cross_entropy(logits, b.y).item()) * double(b.y.numel());
    auto pred = argmax(logits, 1).to_vector<int64_t>();
    auto truth = b.y.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  }
  model.train(was_training);
  return {loss / double(test.size()), double(correct) / double(test.size())};
}

namespace {

/// One 28×28 image through a random affine map (inverse mapping, bilinear, zero outside).
void random_affine(float* img, Generator& rng) {
  constexpr int n = 28;
  constexpr double c = 13.5;
  const double rot = (2 * rng.uniform() - 1) * 12 * std::numbers::pi / 180, scale = 0.85 + 0.3 * rng.uniform();
  const double shear = 0.2 * (2 * rng.uniform() - 1), tx = 2.5 * (2 * rng.uniform() - 1), ty = 2.5 * (2 * rng.uniform() - 1);
  // forward: p' = c + t + scale · R · Sh · (p − c); inverse below.
  const double cs = std::cos(rot), sn = std::sin(rot);
  std::array<float, n * n> out{};
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double qx = (x - c - tx) / scale, qy = (y - c - ty) / scale;
      const double rx = cs * qx + sn * qy, ry = -sn * qx + cs * qy;  // R⁻¹
      const double sx = rx - shear * ry + c, sy = ry + c;            // Sh⁻¹
      const int x0 = int(std::floor(sx)), y0 = int(std::floor(sy));
      const float fx = float(sx - x0), fy = float(sy - y0);
      auto at = [&](int i, int j) { return i < 0 || j < 0 || i >= n || j >= n ? 0.f : img[j * n + i]; };
      out[size_t(y) * n + x] = (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) +
                               (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
    }
  std::copy(out.begin(), out.end(), img);
}

/// Bolder (3×3 max) or thinner (half-way to the min over the 4-neighbour cross) strokes.
void stroke_weight(float* img, bool bolder) {
  constexpr int n = 28;
  std::array<float, n * n> out{};
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      float v = img[y * n + x];
      if (bolder) {
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx)
            if (x + dx >= 0 && y + dy >= 0 && x + dx < n && y + dy < n) v = std::max(v, img[(y + dy) * n + x + dx]);
      } else {
        float m = v;
        for (auto [dx, dy] : {std::pair{-1, 0}, {1, 0}, {0, -1}, {0, 1}})
          m = std::min(m, x + dx >= 0 && y + dy >= 0 && x + dx < n && y + dy < n ? img[(y + dy) * n + x + dx] : 0.f);
        v = 0.5f * (v + m);
      }
      out[size_t(y) * n + x] = v;
    }
  std::copy(out.begin(), out.end(), img);
}

/// Deskews every image of a [N, 1, 28, 28] tensor (a copy; the dataset stays as loaded).
Tensor deskewed(const Tensor& images) {
  Tensor out = images.contiguous().clone();
  float* p = out.data<float>();
  for (int64_t i = 0; i < out.size(0); ++i) vision::deskew_digit(p + i * 28 * 28);
  return out;
}

}  // namespace

void augment_batch(Tensor& x, Generator& rng) {
  x = x.contiguous().clone();
  float* p = x.data<float>();
  for (int64_t i = 0; i < x.size(0); ++i) {
    float* img = p + i * 28 * 28;
    random_affine(img, rng);
    const float r = rng.uniform();
    if (r < 0.25f) stroke_weight(img, true);
    else if (r < 0.5f) stroke_weight(img, false);
  }
}

namespace {
std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, std::vector<Tensor> params) {
  if (c.optimizer == "sgd") return std::make_unique<optim::SGD>(std::move(params), c.lr, c.momentum, c.weight_decay);
  if (c.optimizer == "adamw")
    return std::make_unique<optim::AdamW>(std::move(params), c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
  return std::make_unique<optim::Adam>(std::move(params), c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
}

/// The library's scheduler for --schedule (none: a constant rate). Schedulers
/// are closed forms of the epoch (onecycle: of the batch step, `steps` per
/// epoch), so a resumed run needs nothing but the epoch.
std::unique_ptr<optim::LRScheduler> make_scheduler(const TrainConfig& c, optim::Optimizer& opt, int64_t steps) {
  if (c.schedule == "step") return std::make_unique<optim::StepLR>(opt, std::max(1, c.epochs / 3), 0.1);
  if (c.schedule == "cosine") return std::make_unique<optim::CosineAnnealingLR>(opt, c.epochs);
  if (c.schedule == "onecycle") {
    auto s = std::make_unique<optim::OneCycleLR>(opt, c.lr, int64_t(c.epochs) * steps);
    // OneCycleLR sets initial_lr to lr/25; the checkpoint keeps --lr (the peak) there,
    // which a resumed run reads back as its --lr
    opt.set_initial_lr(c.lr);
    return s;
  }
  return nullptr;
}

void write_plot(const std::vector<EpochStats>& h, const std::string& path) {
  vision::Series train{"train loss", {}, {}}, test{"test loss", {}, {}}, acc{"test accuracy %", {}, {}};
  for (const auto& s : h) {
    train.y.push_back(s.train_loss);
    test.y.push_back(s.test_loss);
    acc.y.push_back(100 * s.test_accuracy);
  }
  vision::PlotOptions lo;
  lo.title = "loss";
  lo.x_label = "epoch";
  lo.y_label = "cross-entropy";
  lo.y_from_zero = true;
  data::Image a = vision::plot_curves({train, test}, lo);
  vision::PlotOptions ao;
  ao.title = "test accuracy";
  ao.x_label = "epoch";
  ao.y_label = "%";
  data::Image b = vision::plot_curves({acc}, ao);
  // stack the two charts vertically
  data::Image out;
  out.width = std::max(a.width, b.width);
  out.height = a.height + b.height;
  out.channels = 3;
  out.pixels.assign(size_t(out.width) * size_t(out.height) * 3, 255);
  for (const data::Image* img : {&a, &b}) {
    const int y0 = img == &a ? 0 : a.height;
    for (int y = 0; y < img->height; ++y)
      for (int x = 0; x < img->width; ++x)
        for (int ch = 0; ch < 3; ++ch)
          out.pixels[(size_t(y0 + y) * size_t(out.width) + size_t(x)) * 3 + size_t(ch)] =
              img->pixels[(size_t(y) * size_t(img->width) + size_t(x)) * size_t(img->channels) +
                          size_t(img->channels == 1 ? 0 : ch)];
  }
  data::save_png(out, path);
}
}  // namespace

namespace {

std::string csv_row(const EpochStats& s) {
  return str_cat(s.epoch, ',', s.train_loss, ',', s.test_loss, ',', s.test_accuracy, ',', s.seconds, '\n');
}

/// The run's settings, kept in a checkpoint's meta so --resume can compare them.
void store_settings(const TrainConfig& c, CheckpointMeta& meta) {
  meta.strings["run.optimizer"] = c.optimizer;
  meta.strings["run.schedule"] = c.schedule;
  meta.strings["run.epochs"] = str_cat(c.epochs);
  meta.strings["run.batch-size"] = str_cat(c.batch_size);
  meta.strings["run.seed"] = str_cat(c.seed);
  meta.strings["run.limit-train"] = str_cat(c.limit_train);
  meta.strings["run.augment"] = c.augment ? "1" : "0";
  meta.strings["run.page-crops"] = str_cat(c.page_crops);
  if (c.page_crops > 0) meta.strings["input.page-crops"] = str_cat(c.page_crops);
  if (c.deskew) meta.strings[kDeskewMetaKey] = "1";  // readers must deskew too (load_classifier)
}

// Note: --resume and flags. A flag not given on the command line takes the
// checkpoint's value (so `--resume run.ckpt --epochs 20` continues the same run);
// a flag given with a different value is either applied, with one line saying
// so, or refused with exit 2 when it cannot be honoured (another network, another
// optimizer: its state would not fit). The values printed are the values used.
// The settings come from the checkpoint's meta ("run.*", written by this
// trainer) and, for lr/weight-decay/momentum, from the optimizer state itself.
class ResumeMerge {
 public:
  ResumeMerge(TrainConfig& c, const CheckpointMeta& meta) : c_(c), meta_(meta) {}

  /// The network: the checkpoint's, unless model flags asked for another one.
  void model(ModelSpec& spec, bool model_flags_given) const {
    if (meta_.model_spec == spec.to_string()) return;
    const bool adopt = !model_flags_given && spec.kind == "mlp" && meta_.model_spec.rfind("mlp:", 0) == 0;
    TAPE_CHECK(adopt, "--resume: checkpoint '", c_.resume, "' holds model ", meta_.model_spec,
               " but this run builds ", spec.to_string(), " (a network cannot change when resuming)");
    spec = ModelSpec::parse(meta_.model_spec);
  }

  /// A setting kept as text in the meta ("run.epochs" = "10"); `can_change` says
  /// whether a different value given on the command line may be applied.
  template <class T>
  void setting(const char* flag, T& value, bool can_change) {
    auto it = meta_.strings.find(str_cat("run.", flag));
    if (it == meta_.strings.end()) return;
    const std::string& text = it->second;
    T old{};
    std::istringstream is(text);
    const bool printable = text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char ch) {
      return ch > 32 && ch < 127;
    });
    TAPE_CHECK(printable && (is >> old) && is.eof(), "--resume: checkpoint '", c_.resume, "' has an invalid run.",
               flag);
    merge(flag, value, old, can_change);
  }
  /// An optimizer hyper-parameter: the loaded state holds the checkpoint's value.
  bool hyper(const char* flag, double& value, optim::OptimizerState& st, const char* key) {
    auto it = st.scalars.find(key);
    if (it == st.scalars.end() || it->second == value) return false;
    const bool given = c_.given.count(flag) > 0;
    merge(flag, value, it->second, true);
    if (given) it->second = value;
    return given;
  }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  template <class T>
  void merge(const char* flag, T& value, const T& old, bool can_change) {
    if (value == old) return;
    if (!c_.given.count(flag)) {
      value = old;
      return;
    }
    TAPE_CHECK(can_change, "--resume: --", flag, " ", value, " differs from the checkpoint's ", old,
               " (it cannot change when resuming)");
    notes_.push_back(str_cat("resume: --", flag, " ", value, " (checkpoint had ", old, ")"));
  }

  TrainConfig& c_;
  const CheckpointMeta& meta_;
  std::vector<std::string> notes_;
};

}  // namespace

data::TensorDataset page_crops(const data::TensorDataset& train, int64_t n, uint64_t seed, bool quiet) {
  std::vector<float> px;
  std::vector<int64_t> labels;
  for (int page = 0; int64_t(labels.size()) < n && page < 10000; ++page) {
    // Scan, photo and the dense stress sheet in turn: clean crops, noisy crops and
    // crops carrying a sliver of a neighbour or cut by the splitter.
    vision::HandwritingOptions ho = page % 3 == 2 ? vision::HandwritingOptions::dense() : vision::HandwritingOptions{};
    ho.photo = page % 3 == 1;
    ho.seed = 0x9E3779B97F4A7C15ull * (seed + 1) + uint64_t(page) * 7919 + 17;
    ho.count = int(std::clamp<int64_t>(n - int64_t(labels.size()) + 50, 50, 2500));
    std::vector<vision::TruthBox> truth;
    const data::Image img = vision::make_handwriting_page(train, ho, &truth);
    const std::vector<vision::DigitBox> found = vision::find_digits(img);
    const std::vector<int> match = vision::match_boxes(truth, found, 0.5f);
    for (size_t i = 0; i < truth.size() && int64_t(labels.size()) < n; ++i) {
      if (match[i] < 0) continue;
      const std::vector<float>& p = found[size_t(match[i])].pixels;
      px.insert(px.end(), p.begin(), p.end());
      labels.push_back(truth[i].label);
    }
    if (!quiet) std::printf("page crops: %zu of %lld\r", labels.size(), (long long)n), std::fflush(stdout);
  }
  const int64_t k = int64_t(labels.size());
  data::TensorDataset out{Tensor::empty({k, 1, 28, 28}), Tensor::empty({k}, Dtype::Int64)};
  std::copy(px.begin(), px.end(), out.images.data<float>());
  std::copy(labels.begin(), labels.end(), out.labels.data<int64_t>());
  return out;
}

TrainResult train_mnist(const ModelSpec& spec_in, const TrainConfig& cfg) {
  TrainConfig c = cfg;
  ModelSpec spec = spec_in;
  validate(c);
  // Note: --distributed. Every rank loads the data, builds the model from the same
  // seed and walks the same epoch order; the DataLoader gives rank r the samples
  // r, r + N, ... of each global batch, DistributedDataParallel averages the
  // gradients, so each step is the single-process step on the whole batch (up to
  // float rounding). Rank 0 alone prints and writes; every rank reads --resume.
  const int launched = dist::launched_world_size();
  TAPE_CHECK(c.distributed || launched <= 1, "started by mpirun with ", launched,
             " processes but without --distributed: each would train the whole model alone "
             "(add --distributed)");
  if (c.distributed && !dist::is_initialized()) dist::init();
  const int world = c.distributed ? dist::world_size() : 1, rank = c.distributed ? dist::rank() : 0;
  const bool root = rank == 0;
  TAPE_CHECK(c.batch_size % world == 0, "--batch-size ", c.batch_size, " is not divisible by the ", world,
             " ranks (--batch-size is the global batch; each rank takes an equal share)");
  if (!root) c.quiet = true;
  // Outputs that cannot be written are found now, not after an hour of training.
  if (root)
    for (const auto& [path, flag] : {std::pair{c.csv, "--csv"}, {c.plot, "--plot"}, {c.save, "--save"}})
      if (!path.empty()) check_writable(path, flag);
  apply_threads(c.threads);

  CheckpointMeta resume_meta;
  std::optional<ResumeMerge> merge;
  if (!c.resume.empty()) {
    resume_meta = read_checkpoint_meta(c.resume);
    merge.emplace(c, resume_meta);
    merge->model(spec, c.given.count("hidden") || c.given.count("activation") || c.given.count("dropout"));
    merge->setting("epochs", c.epochs, true);
    merge->setting("batch-size", c.batch_size, true);
    merge->setting("seed", c.seed, true);
    merge->setting("limit-train", c.limit_train, true);
    merge->setting("page-crops", c.page_crops, false);
    merge->setting("optimizer", c.optimizer, false);
    merge->setting("schedule", c.schedule, true);
    validate(c);
  }

  data::TensorDataset train = data::load_mnist(c.data_dir, "train");
  data::TensorDataset test = data::load_mnist(c.data_dir, "test");
  if (c.limit_train > 0 && c.limit_train < train.size()) train = train.subset(0, c.limit_train);
  if (c.page_crops > 0) {
    const auto t0 = std::chrono::steady_clock::now();
    const data::TensorDataset crops = page_crops(train, c.page_crops, c.seed, c.quiet);
    const int64_t n0 = train.size(), n1 = crops.size(), px = 28 * 28;
    data::TensorDataset both{Tensor::empty({n0 + n1, 1, 28, 28}), Tensor::empty({n0 + n1}, Dtype::Int64)};
    const Tensor xi = train.images.contiguous(), yi = train.labels.contiguous();
    std::copy(xi.data<float>(), xi.data<float>() + n0 * px, both.images.data<float>());
    std::copy(crops.images.data<float>(), crops.images.data<float>() + n1 * px, both.images.data<float>() + n0 * px);
    std::copy(yi.data<int64_t>(), yi.data<int64_t>() + n0, both.labels.data<int64_t>());
    std::copy(crops.labels.data<int64_t>(), crops.labels.data<int64_t>() + n1, both.labels.data<int64_t>() + n0);
    train = both;
    if (!c.quiet)
      std::printf("added %lld page crops in %.1fs\n", (long long)n1,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (c.deskew) test.images = deskewed(test.images);  // training batches are deskewed after augmenting
  Generator augment_rng(c.seed + 1);

  manual_seed(c.seed);
  auto model = build_model(spec);
  auto opt = make_optimizer(c, model->parameters());
  data::DataLoader loader(train, {.batch_size = c.batch_size / world, .shuffle = true, .seed = c.seed,
                                  .rank = rank, .world_size = world});

  TrainResult result;
  int start_epoch = 0;
  if (merge) {
    CheckpointMeta meta = load_checkpoint(c.resume, *model, opt.get());
    optim::OptimizerState st = opt->state_dict();
    bool changed = merge->hyper("lr", c.lr, st, "initial_lr");
    if (changed) st.scalars["lr"] = c.lr;
    changed |= merge->hyper("weight-decay", c.weight_decay, st, "weight_decay");
    if (c.optimizer == "sgd") changed |= merge->hyper("momentum", c.momentum, st, "momentum");
    if (changed) opt->load_state_dict(st);
    start_epoch = int(meta.epoch);  // load_checkpoint bounds it by kMaxCheckpointEpoch
    // A crafted file may claim many epochs; history comes only from scalars it holds.
    for (int e = std::max(0, start_epoch - int(meta.scalars.size())); e < start_epoch; ++e) {
      auto get = [&](const char* key) {
        auto it = meta.scalars.find(str_cat(key, ".", e + 1));
        return it == meta.scalars.end() ? double(NAN) : it->second;
      };
      result.history.push_back({e + 1, get("train_loss"), get("test_loss"), get("test_accuracy"), get("seconds"), 0});
    }
    if (root)
      for (const std::string& note : merge->notes()) std::printf("%s\n", note.c_str());
    if (!c.quiet) std::printf("resumed from %s after epoch %d\n", c.resume.c_str(), start_epoch);
  }
  // after --resume: the loaded weights are the same on every rank; DDP checks that
  // the ranks built the same model (and broadcasts rank 0's weights regardless)
  std::shared_ptr<nn::Module> net = model;
  if (c.distributed) {
    auto ddp = std::make_shared<dist::DistributedDataParallel>(model);
    ddp->set_gradient_as_bucket_view(true);  // the loop keeps no gradient across steps
    net = ddp;
  }
  auto scheduler = make_scheduler(c, *opt, loader.num_batches());
  const bool per_batch = c.schedule == "onecycle";
  const bool bf16 = use_bf16(c.precision);  // false, after one line on stderr, on a CPU without bf16

  if (!c.quiet) {
    std::printf("%s", model->summary({1, 1, 28, 28}).c_str());
    std::printf("training %s on %lld images%s, batch %lld, %s lr %g%s, %d epochs, seed %llu, %d threads%s, %s\n",
                spec.to_string().c_str(), (long long)train.size(), c.augment ? " (augmented)" : "",
                (long long)c.batch_size, c.optimizer.c_str(), c.lr,
                c.schedule == "none" ? "" : (" (" + c.schedule + " schedule)").c_str(), c.epochs,
                (unsigned long long)c.seed, get_num_threads(),
                c.distributed ? str_cat(" per rank, ", world, world == 1 ? " rank (not started by mpirun)" : " ranks",
                                        " of ", c.batch_size / world, " samples per step").c_str()
                              : "",
                precision_label(bf16).c_str());
  }
  std::string csv = "epoch,train_loss,test_loss,test_accuracy,seconds\n";
  for (const auto& s : result.history) csv += csv_row(s);
  if (root && !c.csv.empty()) write_file_atomically(c.csv, csv, "--csv");

  for (int e = start_epoch; e < c.epochs; ++e) {
    if (scheduler && !per_batch) opt->set_lr(scheduler->lr_at(e));
    loader.set_epoch(e);
    // augmentation draws are a function of (seed, epoch), like the batch order, so a
    // resumed run augments exactly as an uninterrupted one (epoch 0: seed + 1, as before)
    // (each rank its own stream: with --distributed the draws differ from one process's)
    augment_rng.seed_(c.seed + 1 + 0x9E3779B97F4A7C15ull * uint64_t(e) + 0xD1B54A32D192ED03ull * uint64_t(rank));
    net->train();
    // no bar with --quiet, nor under mpirun, whose ranks all write to a pseudo-terminal
    ProgressBar bar(c.quiet || world > 1 ? 0 : loader.num_batches());
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t seen = 0, step = 0;
    for (auto& b : loader) {
      Tensor x = b.x;
      if (c.augment) augment_batch(x, augment_rng);
      if (c.deskew) x = deskewed(x);
      if (per_batch) opt->set_lr(scheduler->lr_at(int64_t(e) * loader.num_batches() + step));
      Tensor loss;
      {
        MaybeAutocast autocast(bf16);  // forward and loss; backward follows each op's forward precision
        loss = cross_entropy((*net)(x), b.y);
      }
      opt->zero_grad();
      loss.backward();
      opt->step();
      const int64_t n = b.y.numel();
      loss_sum += double(loss.item()) * double(n);
      seen += n;
      bar.update(++step, str_cat("loss ", loss.item()));
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.clear();
    if (world > 1) {  // the epoch's wall time is the slowest rank's; loss and count over all ranks
      Tensor t = tensor(std::vector<double>{secs}, {1});
      dist::all_reduce(t, dist::ReduceOp::Max);
      Tensor sums = tensor(std::vector<double>{loss_sum, double(seen)}, {2});
      dist::all_reduce(sums);
      secs = t.item<double>();
      loss_sum = sums.to_vector<double>()[0];
      seen = int64_t(sums.to_vector<double>()[1]);
    }
    const auto [test_loss, test_acc] = [&] {
      MaybeAutocast autocast(bf16);
      return evaluate(*model, test, 1000, c.distributed);
    }();
    EpochStats s{e + 1, loss_sum / double(seen), test_loss, test_acc, secs, double(seen) / secs};
    result.history.push_back(s);
    if (!c.quiet)
      std::printf("epoch %2d/%d  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  %.2fs  %s samples/s\n", s.epoch,
                  c.epochs, s.train_loss, s.test_loss, 100 * s.test_accuracy, s.seconds,
                  nn::format_thousands(int64_t(s.samples_per_s)).c_str());
    std::fflush(stdout);
    csv += csv_row(s);
    if (root && !c.csv.empty()) write_file_atomically(c.csv, csv, "--csv");
    if (root && !c.save.empty()) {
      CheckpointMeta meta;
      meta.model_spec = spec.to_string();
      meta.epoch = e + 1;
      store_settings(c, meta);
      for (const auto& h : result.history) {
        meta.scalars[str_cat("train_loss.", h.epoch)] = h.train_loss;
        meta.scalars[str_cat("test_loss.", h.epoch)] = h.test_loss;
        meta.scalars[str_cat("test_accuracy.", h.epoch)] = h.test_accuracy;
        meta.scalars[str_cat("seconds.", h.epoch)] = h.seconds;
      }
      save_checkpoint(c.save, *model, opt.get(), meta);
    }
  }
  result.test_accuracy =
      result.history.empty() ? evaluate(*model, test, 1000, c.distributed).second : result.history.back().test_accuracy;
  if (!root) return result;
  if (world > 1 && !c.quiet) {
    const auto& st = static_cast<dist::DistributedDataParallel&>(*net).stats();
    std::printf("dist: %d ranks, %zu gradient bucket%s of %.2f MB per step, backward waited %.2f ms per step for "
                "the all-reduce (%lld steps)\n",
                world, st.buckets, st.buckets == 1 ? "" : "s", double(st.bytes) / 1e6,
                st.steps ? 1e3 * st.wait_seconds / double(st.steps) : 0.0, (long long)st.steps);
  }
  std::printf("final test accuracy: %.2f%%\n", 100 * result.test_accuracy);
  if (!c.plot.empty()) {
    write_plot(result.history, c.plot);
    if (!c.quiet) std::printf("wrote %s\n", c.plot.c_str());
  }
  if (!c.save.empty() && !c.quiet) std::printf("checkpoint: %s\n", c.save.c_str());
  return result;
}

}  // namespace tape::examples
